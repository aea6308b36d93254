//! Files as companies have them, against a real PostgreSQL: vCard (Apple, Outlook 2.1, vCard 4),
//! LDIF, Excel, Outlook's German "Unicode" export; numbers as people write them, each person kept
//! and each oddity reported by line; the command line's format, mapping and exit statuses.

mod common;

use std::collections::BTreeMap;

use common::{fixture, options, TestApp};
use switchboard::domain::{PhoneNormalizer, RegionRules};
use switchboard::sources::file::{self, Format};
use switchboard::sync::{ImportReport, RawBatch};

fn read(name: &str, format: Option<Format>) -> RawBatch {
    file::parse_file(&fixture(name), format, &BTreeMap::new()).expect("parse")
}

/// Phone numbers read with `[regions]` only: no company-wide default region.
fn regions(offices: &[(&str, &str)]) -> PhoneNormalizer {
    let offices: BTreeMap<String, String> = offices
        .iter()
        .map(|(l, r)| (l.to_string(), r.to_string()))
        .collect();
    PhoneNormalizer::with_rules(RegionRules::new(None, &offices, None).expect("rules"))
        .expect("normalizer")
}

async fn person(app: &TestApp, email: &str) -> serde_json::Value {
    let (status, _, body) = app
        .get(&format!("/api/v1/people?q={}", common::urlencode(email)))
        .await;
    assert_eq!(status, 200, "{body}");
    let id = body["items"]
        .as_array()
        .and_then(|items| items.iter().find(|p| p["emails"][0] == email))
        .unwrap_or_else(|| panic!("{email} not found in {body}"))["id"]
        .as_str()
        .expect("id")
        .to_string();
    app.get(&format!("/api/v1/people/{id}")).await.2
}

fn phones(person: &serde_json::Value) -> Vec<(String, String)> {
    person["phones"]
        .as_array()
        .expect("phones")
        .iter()
        .map(|p| {
            let number = p["e164"].as_str().map_or_else(
                || format!("as written: {}", p["raw"].as_str().unwrap_or_default()),
                str::to_string,
            );
            (p["kind"].as_str().unwrap_or_default().to_string(), number)
        })
        .collect()
}

fn warnings(report: &ImportReport) -> Vec<(Option<u64>, String)> {
    report
        .warnings
        .iter()
        .map(|w| (w.line, w.reason.clone()))
        .collect()
}

#[tokio::test]
async fn vcards_from_apple_outlook_and_vcard4() {
    let mut app = TestApp::new().await;
    let raw = read("files/contacts.vcf", None);
    assert!(raw.format.starts_with("vCard"), "{}", raw.format);
    let report = app
        .import_with(raw, &options("cards"), &regions(&[]))
        .await
        .expect("import");
    assert_eq!((report.counts.added, report.counts.rejected), (3, 1));
    assert!(
        report.rejects[0].reason.contains("END:VCARD") && report.rejects[0].line == Some(41),
        "{:?}",
        report.rejects
    );

    // Apple: national numbers placed by the work address's country; the fiction-range mobile
    // kept as written and reported by the card's first line; photo, unit and XMPP read.
    let olu = person(&app, "olusegun.okafor@example.com").await;
    assert_eq!(
        phones(&olu),
        [
            ("work".to_string(), "+442079460123".to_string()),
            ("mobile".to_string(), "as written: 07700 900461".to_string())
        ]
    );
    assert_eq!(olu["department"], "Engineering");
    assert_eq!(olu["title"], "Staff Engineer");
    assert_eq!(olu["im"][0], "xmpp:olusegun@chat.example.com");
    assert_eq!(olu["nicknames"], serde_json::json!(["Segun"]));
    assert_eq!(app.names("segun").await, ["Olusegun Okafor"]);
    let photo = olu["photo_url"].as_str().expect("photo");
    let (status, content_type, _) = app.get(photo).await;
    assert_eq!(
        (status.as_u16(), content_type.as_str()),
        (200, "image/jpeg")
    );
    assert_eq!(
        warnings(&report),
        [(
            Some(1),
            "phone kept as written: `07700 900461` is not a valid phone number".to_string()
        )]
    );

    // Outlook's vCard 2.1: Windows-1252 text, a quoted-printable title folded with `=`.
    let jurgen = person(&app, "juergen.mueller@example.de").await;
    assert_eq!(jurgen["display_name"], "Jürgen Müller");
    assert_eq!(jurgen["title"], "Leiter Vertrieb Süd");
    assert_eq!(jurgen["department"], "Vertrieb");
    assert_eq!(
        phones(&jurgen),
        [
            ("work".to_string(), "+4930901820".to_string()),
            ("mobile".to_string(), "+4915123456789".to_string())
        ]
    );

    // vCard 4: tel: URIs with an extension, escaped commas, a urn:uuid UID.
    let ana = person(&app, "ana.lima@example.com").await;
    assert_eq!(ana["department"], "Sales, EMEA");
    assert_eq!(ana["phones"][0]["extension"], "12");
    assert_eq!(
        phones(&ana),
        [
            ("work".to_string(), "+442079460018".to_string()),
            ("mobile".to_string(), "+5511912345678".to_string())
        ]
    );
}

#[tokio::test]
async fn ldif_maps_as_the_ldap_sync_does() {
    let mut app = TestApp::new().await;
    let raw = read("ldap/people.ldif", None);
    assert!(raw.format.starts_with("LDIF"), "{}", raw.format);
    let report = app
        .import_with(raw, &options("ldif"), &regions(&[]))
        .await
        .expect("import");
    assert_eq!((report.counts.added, report.counts.rejected), (5, 0));
    // The number nobody can dial is a warning, by the entry's line.
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(report.warnings[0].reason.contains("call reception"));
    assert!(report.warnings[0].line.is_some());

    let jose = person(&app, "jose.mueller@example.com").await;
    assert_eq!(jose["display_name"], "José Müller");
    assert_eq!(jose["location"], "Berlin");
    assert_eq!(jose["manager"]["display_name"], "Alice Smith");
    let john = person(&app, "john.doe@example.com").await;
    assert_eq!(john["display_name"], "Johnny Doe");
    assert_eq!(john["emails"].as_array().map(Vec::len), Some(2));
    assert!(john["photo_url"].is_string(), "{john}");
}

#[tokio::test]
async fn an_excel_sheet_from_hr() {
    let mut app = TestApp::new().await;
    // `import csv` takes a workbook too: recognized by content.
    let raw = read("files/hr.xlsx", None);
    assert_eq!(raw.format, "Excel workbook (first sheet)");
    let mapped: BTreeMap<String, Option<&str>> = raw.columns.iter().cloned().collect();
    assert_eq!(mapped["Employee ID"], Some("external_id"));
    assert_eq!(mapped["Office"], Some("location"));
    assert_eq!(mapped["Start Date"], None);
    let report = app
        .import_with(raw, &options("hr"), &regions(&[("London", "GB")]))
        .await
        .expect("import");
    assert_eq!((report.counts.added, report.counts.rejected), (3, 0));
    // Row numbers as Excel shows them (header 1, an empty row 4).
    let found = warnings(&report);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].0, Some(5));
    assert!(found[0].1.contains("`not yet`"), "{found:?}");
    let priya = person(&app, "priya.patel@example.com").await;
    // A number typed as a number (no `+`) is read in the office's region.
    assert_eq!(
        phones(&priya),
        [
            ("work".to_string(), "+442079460300".to_string()),
            ("mobile".to_string(), "+447400123456".to_string())
        ]
    );
    let siobhan = person(&app, "siobhan.osuilleabhain@example.com").await;
    assert_eq!(siobhan["family_name"], "Ó Súilleabháin");
    assert_eq!(phones(&siobhan)[0].1, "+35312345678");
}

#[tokio::test]
async fn google_contacts_current_export_and_thunderbird() {
    let mut app = TestApp::new().await;
    let google = read("files/google_current.csv", None);
    assert!(
        google.format.starts_with("CSV (Google Contacts)"),
        "{}",
        google.format
    );
    let thunderbird = read("files/thunderbird.csv", None);
    assert!(
        thunderbird.format.starts_with("CSV (Thunderbird)"),
        "{}",
        thunderbird.format
    );
    for (raw, source) in [(google, "google"), (thunderbird, "thunderbird")] {
        let report = app
            .import_with(raw, &options(source), &regions(&[]))
            .await
            .expect("import");
        assert_eq!((report.counts.added, report.counts.rejected), (1, 0));
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    }
    // Google: "Phone N - Label" gives the kind, ` ::: ` joins values, the address's country
    // places the national numbers.
    let peggy = person(&app, "margaret.hughes@example.com").await;
    assert_eq!(
        phones(&peggy),
        [
            ("mobile".to_string(), "+447400123457".to_string()),
            ("work".to_string(), "+442079460125".to_string()),
            ("work".to_string(), "+442079460126".to_string())
        ]
    );
    assert_eq!(
        (&peggy["title"], &peggy["department"], &peggy["location"]),
        (
            &serde_json::json!("Office Manager"),
            &serde_json::json!("Facilities"),
            &serde_json::json!("London")
        )
    );
    // Google's "Nickname": the name she goes by, shown and searched.
    assert_eq!(peggy["nicknames"], serde_json::json!(["Peggy"]));
    assert_eq!(
        app.names("peggy hughes").await.first().map(String::as_str),
        Some("Margaret Hughes")
    );
    // Thunderbird: its own header names, the work address's country.
    let lena = person(&app, "lena.schulz@example.de").await;
    assert_eq!(lena["department"], "Finanzen");
    assert_eq!(lena["title"], "Buchhalterin");
    assert_eq!(
        phones(&lena),
        [
            ("work".to_string(), "+493090182200".to_string()),
            ("mobile".to_string(), "+491601234567".to_string())
        ]
    );
}

#[tokio::test]
async fn numbers_as_people_write_them_cost_nobody() {
    let mut app = TestApp::new().await;
    let raw = read("files/numbers.csv", None);
    let report = app
        .import_with(raw, &options("numbers"), &regions(&[("London", "GB")]))
        .await
        .expect("import");
    assert_eq!((report.counts.added, report.counts.rejected), (6, 0));
    let lines: Vec<Option<u64>> = report.warnings.iter().map(|w| w.line).collect();
    assert_eq!(
        lines,
        [Some(2), Some(6), Some(6), Some(7)],
        "{:?}",
        report.warnings
    );
    assert!(report.warnings[3].reason.contains("default_region"));

    let by_office = person(&app, "office@example.com").await;
    assert_eq!(phones(&by_office)[0].1, "+442079460019");
    let intl = person(&app, "intl@example.com").await;
    assert_eq!(
        phones(&intl),
        [
            ("work".to_string(), "+4930901821".to_string()),
            ("mobile".to_string(), "+33141315302".to_string())
        ]
    );
    let ext = person(&app, "ext@example.com").await;
    assert_eq!(ext["phones"][0]["kind"], "extension");
    // Never read as a US number: kept as written, found by its digits, flagged.
    let lisbon = person(&app, "nocountry@example.com").await;
    assert_eq!(lisbon["phones"][0]["valid"], false);
    assert_eq!(lisbon["phones"][0]["e164"], serde_json::Value::Null);
    let (_, _, found) = app.get("/api/v1/people?q=0612%20345%20678").await;
    assert_eq!(
        found["items"][0]["emails"][0], "nocountry@example.com",
        "{found}"
    );
    let (_, _, found) = app.get("/api/v1/people?q=07700%20900461").await;
    assert_eq!(
        found["items"][0]["emails"][0], "unalloc@example.com",
        "{found}"
    );
}

fn switchboard(app: &TestApp, data_dir: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("SWITCHBOARD_DATABASE__URL", &app.db.url)
        .output()
        .expect("run switchboard");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    (output.status.code(), format!("{stdout}\n{stderr}"))
}

#[tokio::test]
async fn the_cli_shows_the_format_and_mapping_and_exits_by_what_was_refused() {
    let app = TestApp::new().await;
    let data_dir = tempfile::tempdir().expect("tmp");
    let export = fixture("files/outlook_de_unicode.csv");
    let export = export.to_str().expect("path");

    // A dry run names the format and every column's field, and writes nothing.
    let (code, out) = switchboard(
        &app,
        data_dir.path(),
        &["import", "csv", export, "--source", "outlook", "--dry-run"],
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("format: CSV (Outlook (German)), `;`-delimited, UTF-16LE"),
        "{out}"
    );
    for line in [
        "  Vorname → given_name",
        "  Abteilung → department",
        "  Land/Region geschäftlich → country",
        "  Notizen → (not imported)",
    ] {
        assert!(out.contains(line), "{line} in {out}");
    }
    assert!(out.contains("3 added"), "{out}");

    // A real run names the columns it leaves out, once; warnings alone exit 0. Nobody's
    // national numbers are read as US numbers: the country column places them.
    let (code, out) = switchboard(
        &app,
        data_dir.path(),
        &["import", "csv", export, "--source", "outlook"],
    );
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(out.matches("not imported (").count(), 1, "{out}");
    assert!(out.contains("Notizen, Geburtstag"), "{out}");
    assert!(
        out.contains("3 added") && out.contains("0 rejected"),
        "{out}"
    );
    assert!(
        out.contains("1 warning(s)") && out.contains("07700 900462"),
        "{out}"
    );
    let e164: Vec<String> = sqlx::query_scalar(
        "SELECT p->>'e164' FROM people, jsonb_array_elements(phones) p \
         WHERE p->>'e164' IS NOT NULL ORDER BY 1",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("numbers");
    assert_eq!(
        e164,
        [
            "+442079460124",
            "+4915123456789",
            "+4930901820",
            "+8223123456"
        ]
    );

    // vCard and LDIF have their own commands; a file where every row is refused exits 1.
    let (code, out) = switchboard(
        &app,
        data_dir.path(),
        &[
            "import",
            "vcard",
            fixture("files/contacts.vcf").to_str().expect("path"),
            "--source",
            "cards",
        ],
    );
    assert_eq!(code, Some(2), "one card is unfinished: {out}");
    let nobody = data_dir.path().join("nobody.csv");
    std::fs::write(&nobody, "display_name,title\n,Boss\n").expect("write");
    let (code, out) = switchboard(
        &app,
        data_dir.path(),
        &[
            "import",
            "csv",
            nobody.to_str().expect("path"),
            "--source",
            "x",
        ],
    );
    assert_eq!(code, Some(1), "{out}");
}

#[tokio::test]
async fn the_admin_api_imports_files_and_refuses_everyone_else() {
    use axum::body::Body;
    use axum::http::Request;
    use switchboard::access::{tokens, Role};

    let mut config = switchboard::config::Config::default();
    config.regions.insert("London".into(), "GB".into());
    let mut corp = switchboard::config::SourceConfig {
        name: "corp".into(),
        kind: "ldap".into(),
        url: Some("ldap://127.0.0.1:3890".into()),
        base_dn: Some("dc=example,dc=com".into()),
        ..Default::default()
    };
    corp.default_region = None;
    config.sources.push(corp);
    let app = TestApp::with(config, switchboard::presence::PresenceHub::disabled()).await;
    let numbers = std::fs::read(fixture("files/numbers.csv")).expect("fixture");
    let post = |uri: &str, token: Option<&str>, body: Vec<u8>| {
        let mut request = Request::post(uri).header("content-type", "text/csv");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        request.body(Body::from(body)).expect("request")
    };

    // A dry run: the format, the mapping and what would change; nothing written.
    let (status, _, body) = app
        .send(post(
            "/api/v1/imports?source=api&dry_run=true",
            Some(&app.token),
            numbers.clone(),
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["format"]
            .as_str()
            .is_some_and(|f| f.starts_with("CSV")),
        "{body}"
    );
    assert_eq!(
        body["columns"][5],
        serde_json::json!({"header": "country", "field": "country"})
    );
    assert_eq!(
        (&body["counts"]["added"], &body["run_id"]),
        (&serde_json::json!(6), &serde_json::Value::Null)
    );
    assert_eq!(app.active("api").await, 0);

    // The import itself: recorded as a run, warnings by line, the people found.
    let (status, _, body) = app
        .send(post(
            "/api/v1/imports?source=api",
            Some(&app.token),
            numbers.clone(),
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["counts"]["added"], 6);
    let lines: Vec<u64> = body["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .filter_map(|w| w["line"].as_u64())
        .collect();
    assert_eq!(lines, [2, 6, 6, 7], "{body}");
    let run = body["run_id"].as_i64().expect("run id");
    let (status, _, detail) = app.get(&format!("/api/v1/sync/runs/{run}")).await;
    assert_eq!(
        (status.as_u16(), &detail["run"]["kind"]),
        (200, &serde_json::json!("csv"))
    );
    assert_eq!(detail["warnings"].as_array().map(Vec::len), Some(4));

    // A vCard file in the same way, recognized by its content.
    let cards = std::fs::read(fixture("files/contacts.vcf")).expect("fixture");
    let (status, _, body) = app
        .send(post(
            "/api/v1/imports?source=cards",
            Some(&app.token),
            cards,
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["counts"]["added"], &body["counts"]["rejected"]),
        (&serde_json::json!(3), &serde_json::json!(1))
    );

    // Refused: a viewer, nobody, a directory source, a broken workbook, an empty file.
    let viewer = tokens::add(&app.db.pool, "viewer", Role::Viewer)
        .await
        .expect("token");
    let (status, _, body) = app
        .send(post(
            "/api/v1/imports?source=api",
            Some(&viewer),
            numbers.clone(),
        ))
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, _, _) = app
        .send(post("/api/v1/imports?source=api", None, numbers.clone()))
        .await;
    assert_eq!(status, 401);
    for (uri, body, status, code, detail) in [
        (
            "/api/v1/imports?source=corp",
            numbers.clone(),
            400,
            "invalid_parameter",
            "directory source",
        ),
        (
            "/api/v1/imports?source=api",
            Vec::new(),
            422,
            "input_unreadable",
            "uploaded file: it is empty",
        ),
        (
            "/api/v1/imports?source=..",
            numbers.clone(),
            400,
            "invalid_parameter",
            "source",
        ),
        (
            "/api/v1/imports?source=api&format=xlsx",
            b"PK\x03\x04broken".to_vec(),
            422,
            "input_unreadable",
            "workbook",
        ),
        (
            "/api/v1/imports?source=api",
            b"shoe size\n42\n".to_vec(),
            422,
            "input_unreadable",
            "no name column",
        ),
    ] {
        let (got, _, problem) = app.send(post(uri, Some(&app.token), body)).await;
        assert_eq!(got, status, "{uri}: {problem}");
        assert_eq!(problem["code"], code, "{uri}: {problem}");
        assert!(
            problem["detail"]
                .as_str()
                .is_some_and(|d| d.contains(detail)),
            "{uri}: {problem}"
        );
    }
    // Up to 64 MiB is taken (the API's other routes take 64 KiB); more is 413.
    let huge = vec![b'a'; switchboard::http::imports::MAX_IMPORT_BYTES + 1];
    let (status, _, problem) = app
        .send(post("/api/v1/imports?source=api", Some(&app.token), huge))
        .await;
    assert_eq!(status, 413, "{problem}");
    let big = format!("display_name\n{}\n", "a".repeat(100_000)).into_bytes();
    let (status, _, body) = app
        .send(post(
            "/api/v1/imports?source=big&dry_run=true",
            Some(&app.token),
            big,
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["warnings"][0]["line"], 2, "{body}");
    assert_eq!(
        (
            app.active("api").await,
            app.active("cards").await,
            app.active("corp").await
        ),
        (6, 3, 0),
        "nobody else came in"
    );
}
