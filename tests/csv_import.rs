//! CSV import against a real PostgreSQL: each export format, delimiters, BOM, bad rows,
//! idempotence, full-import deletion and its safety limit.

mod common;

use common::{fixture, options, TestApp};
use switchboard::sync::ChangeKind;
use switchboard::Error;

fn read(name: &str) -> String {
    switchboard::sources::file::decode(&std::fs::read(fixture(name)).expect("fixture")).0
}

async fn person_by_email(app: &TestApp, email: &str) -> serde_json::Value {
    let (status, _, body) = app
        .get(&format!("/api/v1/people?q={}", common::urlencode(email)))
        .await;
    assert_eq!(status, 200);
    let id = body["items"]
        .as_array()
        .and_then(|items| {
            items.iter().find(|p| {
                p["emails"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|x| x == email))
            })
        })
        .unwrap_or_else(|| panic!("{email} not found in {body}"))["id"]
        .as_str()
        .expect("id")
        .to_string();
    let (status, _, person) = app.get(&format!("/api/v1/people/{id}")).await;
    assert_eq!(status, 200);
    person
}

#[tokio::test]
async fn outlook_export_imports_without_editing() {
    let mut app = TestApp::new().await;
    let report = app
        .import_csv(&read("csv/outlook.csv"), &options("outlook"))
        .await
        .expect("import");
    assert_eq!(
        (report.counts.added, report.counts.rejected),
        (3, 0),
        "{:?}",
        report.rejects
    );

    let jane = person_by_email(&app, "jane.smith@example.com").await;
    assert_eq!(jane["display_name"], "Jane Smith");
    assert_eq!(jane["title"], "Chief Financial Officer");
    assert_eq!(jane["location"], "London");
    let phones = jane["phones"].as_array().expect("phones");
    let kinds: Vec<&str> = phones
        .iter()
        .map(|p| p["kind"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds, ["work", "mobile", "fax"]);
    assert_eq!(phones[0]["e164"], "+442079460018");
    assert_eq!(phones[0]["display"], "020 7946 0018");
    assert_eq!(jane["sources"][0]["source"], "outlook");

    let jose = person_by_email(&app, "jose.muller@example.com").await;
    assert_eq!(jose["emails"].as_array().map(Vec::len), Some(2));
    assert_eq!(jose["phones"][0]["display"], "+49 30 9018201234");
}

#[tokio::test]
async fn google_contacts_export_imports_with_phone_types() {
    let mut app = TestApp::new().await;
    let report = app
        .import_csv(&read("csv/google.csv"), &options("google"))
        .await
        .expect("import");
    assert_eq!(
        (report.counts.added, report.counts.rejected),
        (2, 0),
        "{:?}",
        report.rejects
    );
    let ana = person_by_email(&app, "ana.lima@example.com").await;
    assert_eq!(ana["department"], "Sales");
    assert_eq!(ana["title"], "Account Executive");
    assert_eq!(ana["phones"][0]["kind"], "mobile");
    assert_eq!(ana["phones"][1]["kind"], "work");
    assert_eq!(
        ana["emails"],
        serde_json::json!(["ana.lima@example.com", "ana@example.org"])
    );
    let lukasz = person_by_email(&app, "lukasz.w@example.com").await;
    assert_eq!(lukasz["display_name"], "Łukasz Wiśniewski");
}

#[tokio::test]
async fn csvde_export_resolves_manager_dns() {
    let mut app = TestApp::new().await;
    let report = app
        .import_csv(&read("csv/csvde.csv"), &options("ad"))
        .await
        .expect("import");
    assert_eq!(
        (report.counts.added, report.counts.rejected),
        (2, 0),
        "{:?}",
        report.rejects
    );
    let alan = person_by_email(&app, "alan.turing@corp.example.com").await;
    assert_eq!(alan["manager"]["display_name"], "Grace Hopper");
    assert_eq!(alan["location"], "London");
    let ext: Vec<&str> = alan["phones"]
        .as_array()
        .expect("phones")
        .iter()
        .filter_map(|p| p["extension"].as_str())
        .collect();
    assert_eq!(ext, ["4101"]);
    assert!(alan["sources"][0]["external_id"]
        .as_str()
        .is_some_and(|id| id.starts_with("CN=Alan Turing")));
}

#[tokio::test]
async fn semicolons_bom_quoted_newlines_and_own_columns() {
    let mut app = TestApp::new().await;
    let report = app
        .import_csv(&read("csv/own_semicolon_bom.csv"), &options("hr"))
        .await
        .expect("import");
    assert_eq!(
        (report.counts.added, report.counts.rejected),
        (2, 0),
        "{:?}",
        report.rejects
    );
    let chloe = person_by_email(&app, "chloe@example.com").await;
    assert_eq!(chloe["given_name"], "Chloé");
    assert_eq!(
        chloe["org_unit"], "Platform Team",
        "embedded newline is kept as one field"
    );
    assert_eq!(chloe["manager"]["display_name"], "Zoë Ødegaard");
    assert_eq!(chloe["phones"][0]["e164"], "+33141315302");
    assert_eq!(chloe["sources"][0]["external_id"], "E2");
    let zoe = person_by_email(&app, "zoe@example.com").await;
    assert_eq!(
        zoe["im"],
        serde_json::json!(["xmpp:zoe@chat.example.com", "matrix:u/zoe:example.com"])
    );
    let kinds: Vec<&str> = zoe["phones"]
        .as_array()
        .expect("phones")
        .iter()
        .map(|p| p["kind"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds, ["work", "extension"]);
}

#[tokio::test]
async fn tab_separated_files_import() {
    let mut app = TestApp::new().await;
    let report = app
        .import_csv(&read("csv/tabs.tsv"), &options("tabs"))
        .await
        .expect("import");
    assert_eq!(
        (report.counts.added, report.counts.rejected),
        (2, 0),
        "{:?}",
        report.rejects
    );
    let grace = person_by_email(&app, "grace@example.com").await;
    assert_eq!(grace["title"], "Head of Reception");
}

#[tokio::test]
async fn bad_rows_are_reported_by_line_and_good_rows_still_import() {
    let mut app = TestApp::new().await;
    let report = app
        .import_csv(&read("csv/bad_rows.csv"), &options("bad"))
        .await
        .expect("import");
    // Odd fields cost nobody: only a second row with the same id and a row with neither name
    // nor email are refused.
    assert_eq!(report.counts.added, 6);
    let rejects: Vec<(Option<u64>, &str)> = report
        .rejects
        .iter()
        .map(|r| (r.line, r.reason.as_str()))
        .collect();
    assert_eq!(rejects.len(), 2, "{rejects:?}");
    assert_eq!(rejects[0].0, Some(6));
    assert!(rejects[0].1.contains("duplicate id `B1`") && rejects[0].1.contains("line 2"));
    assert_eq!(rejects[1].0, Some(9));
    assert!(rejects[1].1.contains("no name and no email"), "{rejects:?}");
    let warnings: Vec<(Option<u64>, &str)> = report
        .warnings
        .iter()
        .map(|r| (r.line, r.reason.as_str()))
        .collect();
    assert_eq!(warnings.len(), 4, "{warnings:?}");
    assert_eq!(warnings[0].0, Some(3));
    assert!(
        warnings[0].1.contains("no name: shown as `noname`"),
        "{warnings:?}"
    );
    assert_eq!(warnings[1].0, Some(4));
    assert!(warnings[1].1.contains("not-an-email"), "{warnings:?}");
    assert_eq!(warnings[2].0, Some(5));
    assert!(
        warnings[2].1.contains("phone kept as written") && warnings[2].1.contains("call me maybe"),
        "{warnings:?}"
    );
    assert_eq!(warnings[3].0, Some(7));
    assert!(warnings[3].1.contains("icq:12345"), "{warnings:?}");
    // Bad Phone is found, with the number as written and flagged.
    let (_, _, found) = app.get("/api/v1/people?q=bad+phone").await;
    assert_eq!(found["items"][0]["phones"][0]["display"], "call me maybe");
    assert_eq!(found["items"][0]["phones"][0]["valid"], false);
    assert!(found["items"][0]["phones"][0]["e164"].is_null());

    // The run and its rejects are on record.
    let run = switchboard::db::runs::get(&app.db.pool, report.run_id.expect("run"))
        .await
        .expect("query")
        .expect("run");
    assert_eq!(
        (run.status.as_str(), run.added, run.rejected, run.warnings),
        ("succeeded", 6, 2, 4)
    );
    let stored = switchboard::db::runs::rejects(&app.db.pool, run.id, false)
        .await
        .expect("rejects");
    assert_eq!(stored, report.rejects);
    let stored = switchboard::db::runs::rejects(&app.db.pool, run.id, true)
        .await
        .expect("warnings");
    assert_eq!(stored, report.warnings);
    assert_eq!(app.names("also good").await, ["Also Good"]);
}

#[tokio::test]
async fn reimporting_the_same_file_changes_nothing() {
    let mut app = TestApp::new().await;
    let csv = read("csv/outlook.csv");
    app.import_csv(&csv, &options("hr")).await.expect("first");
    let log_before: i64 = sqlx::query_scalar("SELECT count(*) FROM change_log")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    let again = app.import_csv(&csv, &options("hr")).await.expect("second");
    assert_eq!(
        (
            again.counts.added,
            again.counts.updated,
            again.counts.unchanged
        ),
        (0, 0, 3)
    );
    assert!(again.changes.is_empty());
    let log_after: i64 = sqlx::query_scalar("SELECT count(*) FROM change_log")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    assert_eq!(log_before, log_after);

    // A real edit is one update.
    let edited = csv.replace("Chief Financial Officer", "Chief Operating Officer");
    let third = app
        .import_csv(&edited, &options("hr"))
        .await
        .expect("third");
    assert_eq!((third.counts.updated, third.counts.unchanged), (1, 2));
    assert_eq!(third.changes[0].kind, ChangeKind::Updated);
    assert_eq!(
        person_by_email(&app, "jane.smith@example.com").await["title"],
        "Chief Operating Officer"
    );
}

fn roster(n: usize) -> String {
    let mut csv = String::from("external_id,display_name,email\n");
    for i in 0..n {
        csv.push_str(&format!("P{i},Person Number{i},person{i}@example.com\n"));
    }
    csv
}

#[tokio::test]
async fn full_import_removes_people_missing_from_the_file() {
    let mut app = TestApp::new().await;
    app.import_csv(&roster(10), &options("hr"))
        .await
        .expect("initial");
    let gone = person_by_email(&app, "person9@example.com").await["id"]
        .as_str()
        .expect("id")
        .to_string();

    let full = switchboard::sync::ImportOptions {
        full: true,
        ..options("hr")
    };
    let report = app.import_csv(&roster(9), &full).await.expect("full");
    assert_eq!((report.counts.removed, report.counts.unchanged), (1, 9));
    let removed: Vec<_> = report
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Removed)
        .collect();
    assert_eq!(removed[0].external_id, "P9");

    let (status, _, body) = app.get(&format!("/api/v1/people/{gone}")).await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (404, Some("not_found"))
    );
    assert!(
        app.names("number9").await.is_empty(),
        "deleted people never appear in search"
    );
    let deleted_at: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT deleted_at FROM people WHERE id = $1::uuid")
            .bind(&gone)
            .fetch_one(&app.db.pool)
            .await
            .expect("row kept");
    assert!(deleted_at.is_some(), "soft deletion keeps the row");

    // Coming back undeletes the same person.
    let back = app.import_csv(&roster(10), &full).await.expect("back");
    assert_eq!((back.counts.added, back.counts.updated), (0, 1));
    assert_eq!(
        person_by_email(&app, "person9@example.com").await["id"],
        gone.as_str()
    );
}

#[tokio::test]
async fn a_partial_import_never_removes_anyone() {
    let mut app = TestApp::new().await;
    app.import_csv(&roster(10), &options("hr"))
        .await
        .expect("initial");
    let report = app
        .import_csv(&roster(2), &options("hr"))
        .await
        .expect("partial");
    assert_eq!(report.counts.removed, 0);
    assert_eq!(app.active("hr").await, 10);
}

#[tokio::test]
async fn full_import_safety_limits() {
    let mut app = TestApp::new().await;
    app.import_csv(&roster(10), &options("hr"))
        .await
        .expect("initial");
    let full = switchboard::sync::ImportOptions {
        full: true,
        ..options("hr")
    };

    // An empty file never removes anyone, forced or not.
    let forced = switchboard::sync::ImportOptions {
        force: true,
        ..full.clone()
    };
    let err = app
        .import_csv("external_id,display_name,email\n", &forced)
        .await
        .expect_err("empty");
    assert!(matches!(err, Error::SafetyLimit(_)), "{err}");

    // Removing 3 of 10 (30% > 20%) needs --force, and the refusal is recorded.
    let err = app
        .import_csv(&roster(7), &full)
        .await
        .expect_err("over limit");
    assert!(
        err.to_string().contains("would remove 3 of 10") && err.to_string().contains("--force"),
        "{err}"
    );
    assert_eq!(app.active("hr").await, 10);
    let (status, error): (String, Option<String>) =
        sqlx::query_as("SELECT status, error FROM sync_runs ORDER BY id DESC LIMIT 1")
            .fetch_one(&app.db.pool)
            .await
            .expect("run");
    assert_eq!(status, "failed");
    assert!(error.is_some_and(|e| e.contains("would remove")));

    let report = app.import_csv(&roster(7), &forced).await.expect("forced");
    assert_eq!(report.counts.removed, 3);
    assert_eq!(app.active("hr").await, 7);
}

#[tokio::test]
async fn rejected_rows_keep_their_people_in_a_full_import() {
    let mut app = TestApp::new().await;
    app.import_csv(&roster(10), &options("hr"))
        .await
        .expect("initial");
    // Person 3's row has their id and nothing else: refused, but identified.
    let broken = roster(10).replace("P3,Person Number3,person3@example.com", "P3,,");
    let full = switchboard::sync::ImportOptions {
        full: true,
        ..options("hr")
    };
    let report = app.import_csv(&broken, &full).await.expect("full");
    assert_eq!((report.counts.removed, report.counts.rejected), (0, 1));
    assert_eq!(report.rejects[0].line, Some(5));
    assert_eq!(app.active("hr").await, 10);
}

#[tokio::test]
async fn dry_run_reports_changes_and_writes_nothing() {
    let mut app = TestApp::new().await;
    let dry = switchboard::sync::ImportOptions {
        dry_run: true,
        ..options("hr")
    };
    let report = app.import_csv(&roster(5), &dry).await.expect("dry run");
    assert_eq!(
        (report.counts.added, report.run_id, report.changes.len()),
        (5, None, 5)
    );
    let people: i64 = sqlx::query_scalar("SELECT count(*) FROM people")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM sync_runs")
        .fetch_one(&app.db.pool)
        .await
        .expect("count");
    assert_eq!((people, runs), (0, 0));
}

#[tokio::test]
async fn the_cli_imports_and_exits_2_when_rows_were_rejected() {
    let app = TestApp::new().await;
    let data_dir = tempfile::tempdir().expect("tmp");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["--data-dir"])
        .arg(data_dir.path())
        .args(["import", "csv"])
        .arg(fixture("csv/bad_rows.csv"))
        .args(["--source", "hr"])
        .env("SWITCHBOARD_DATABASE__URL", &app.db.url)
        .env("SWITCHBOARD_DEFAULT_REGION", "GB")
        .output()
        .expect("run switchboard");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("6 added") && stdout.contains("2 rejected"),
        "{stdout}"
    );
    assert!(
        stdout.contains("line 9: refused: no name and no email"),
        "{stdout}"
    );
    assert!(stdout.contains("4 warning(s) on people kept"), "{stdout}");
    assert!(stdout.contains("line 4: email not kept"), "{stdout}");

    // A missing file is a clear error and exit 1.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["import", "csv", "/nonexistent.csv", "--source", "hr"])
        .env("SWITCHBOARD_DATABASE__URL", &app.db.url)
        .output()
        .expect("run switchboard");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent.csv"));
}

#[tokio::test]
async fn an_unidentifiable_refused_row_blocks_removals_in_a_full_import() {
    let mut app = TestApp::new().await;
    app.import_csv(&roster(10), &options("hr"))
        .await
        .expect("initial");
    // Nine people listed, plus a row with no id, no name and no usable email: it might be the
    // tenth person, so nobody may be removed.
    let csv = format!("{},,not-an-email\n", roster(9));
    let full = switchboard::sync::ImportOptions {
        full: true,
        force: true,
        ..options("hr")
    };
    let err = app.import_csv(&csv, &full).await.expect_err("refused");
    assert!(matches!(err, Error::SafetyLimit(_)), "{err}");
    assert!(err.to_string().contains("line 11"), "{err}");
    assert_eq!(app.active("hr").await, 10);
}

#[tokio::test]
async fn control_characters_never_fail_an_import() {
    let mut app = TestApp::new().await;
    let csv =
        "external_id,display_name,email,title\nN1,Nul\u{0}l Person,nul@example.com,Ti\u{7}tle\n";
    let report = app.import_csv(csv, &options("hr")).await.expect("import");
    assert_eq!((report.counts.added, report.counts.rejected), (1, 0));
    let person = person_by_email(&app, "nul@example.com").await;
    assert_eq!(person["display_name"], "Null Person");
    assert_eq!(person["title"], "Title");
}

#[tokio::test]
async fn a_partial_import_finds_managers_already_in_its_source_only() {
    let mut app = TestApp::new().await;
    app.import_csv(
        "external_id,display_name,email\nM1,Maria Manager,maria@example.com\n",
        &options("hr"),
    )
    .await
    .expect("manager");
    let report = app
        .import_csv(
            "external_id,display_name,email,manager_email\nR1,Rita Report,rita@example.com,M1\n",
            &options("hr"),
        )
        .await
        .expect("report");
    assert_eq!(report.counts.added, 1);
    assert_eq!(
        person_by_email(&app, "rita@example.com").await["manager"]["display_name"],
        "Maria Manager"
    );

    // Another source's "M1" is not this source's M1.
    app.import_csv(
        "external_id,display_name,email,manager_email\nX1,Xavier Other,xavier@example.com,M1\n",
        &options("crm"),
    )
    .await
    .expect("other source");
    assert!(person_by_email(&app, "xavier@example.com").await["manager"].is_null());
}

#[tokio::test]
async fn removals_reported_by_a_source_apply_once_and_never_to_people_it_lists() {
    let mut app = TestApp::new().await;
    let csv = "external_id,display_name\n\
               a,Ann Able\nb,Ben Baker\nc,Cid Cole\nd,Dee Dunn\ne,Eve East\nf,Fay Ford\n";
    app.import_csv(csv, &options("hr")).await.expect("load");
    // An incremental source says `a` is gone twice (disabled, then deleted) and `b` is gone but
    // also lists `b` again (deleted and re-created in the same window).
    let mut raw = switchboard::sources::csv::parse(
        "external_id,display_name\nb,Ben Baker\n".as_bytes(),
        &Default::default(),
    )
    .expect("parse");
    raw.removals = vec!["a".into(), "a".into(), "b".into(), "zz-unknown".into()];
    let report = app.import(raw, &options("hr")).await.expect("import");
    assert_eq!(report.counts.removed, 1, "{:?}", report.changes);
    let removed: Vec<&str> = report
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Removed)
        .map(|c| c.external_id.as_str())
        .collect();
    assert_eq!(removed, vec!["a"]);
    assert_eq!(app.active("hr").await, 5);
}

/// `person_sources` rows must name a known source (checked once per statement), and a source
/// people still come from cannot be deleted or renamed.
#[tokio::test]
async fn person_sources_always_name_a_known_source() {
    let mut app = TestApp::new().await;
    app.import_csv(
        "external_id,display_name\na,Ann Able\nb,Ben Baker\n",
        &options("hr"),
    )
    .await
    .expect("load");
    let pool = &app.db.pool;
    let code = |e: sqlx::Error| {
        e.as_database_error()
            .and_then(|d| d.code())
            .map(|c| c.to_string())
    };
    let person: uuid::Uuid = sqlx::query_scalar("SELECT person_id FROM person_sources LIMIT 1")
        .fetch_one(pool)
        .await
        .expect("person");

    // Several rows in one statement, one of them naming no source: none is added.
    let inserted = sqlx::query(
        "INSERT INTO person_sources (source, external_id, person_id, content_hash) \
         VALUES ('hr', 'x1', $1, 0), ('nowhere', 'x2', $1, 0)",
    )
    .bind(person)
    .execute(pool)
    .await;
    assert_eq!(
        inserted.map_err(code).err().flatten().as_deref(),
        Some("23503")
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM person_sources")
        .fetch_one(pool)
        .await
        .expect("count");
    assert_eq!(rows, 2);

    // Moving a row to an unknown source fails; other updates do not check anything.
    let moved = sqlx::query("UPDATE person_sources SET source = 'nowhere' WHERE external_id = 'a'")
        .execute(pool)
        .await;
    assert_eq!(
        moved.map_err(code).err().flatten().as_deref(),
        Some("23503")
    );
    sqlx::query("UPDATE person_sources SET content_hash = 1")
        .execute(pool)
        .await
        .expect("update");

    // A source with people stays; one without can go.
    for statement in [
        "DELETE FROM sources WHERE name = 'hr'",
        "UPDATE sources SET name = 'payroll' WHERE name = 'hr'",
    ] {
        let result = sqlx::query(statement).execute(pool).await;
        assert_eq!(
            result.map_err(code).err().flatten().as_deref(),
            Some("23503"),
            "{statement}"
        );
    }
    sqlx::query("INSERT INTO sources (name, kind) VALUES ('old', 'csv')")
        .execute(pool)
        .await
        .expect("source");
    sqlx::query("DELETE FROM sources WHERE name = 'old'")
        .execute(pool)
        .await
        .expect("unused source deleted");
}

/// The demo company's first `n` people as a parsed CSV file.
fn demo_file(n: usize, seed: u64) -> switchboard::sync::RawBatch {
    let mut csv = Vec::new();
    switchboard::sources::csv::write_records(&mut csv, &switchboard::demo::generate(n, seed))
        .expect("csv");
    switchboard::sources::csv::parse(&csv, &Default::default()).expect("parse")
}

/// Imports `raw` as `switchboard import` does with the index writer at hand (region GB).
async fn import_indexing(
    pool: &sqlx::PgPool,
    raw: switchboard::sync::RawBatch,
    opts: &switchboard::sync::ImportOptions,
    indexer: &mut switchboard::search::indexer::Indexer,
) -> switchboard::Result<switchboard::sync::ImportReport> {
    let phones = switchboard::domain::PhoneNormalizer::new("GB").expect("region");
    let hidden = indicatif::ProgressBar::hidden();
    switchboard::sync::import_indexing(pool, raw, &phones, opts, &hidden, indexer).await
}

/// What searching `index` for each query finds, whole (stored documents and order).
fn answers(index: &switchboard::search::SearchIndex, queries: &[&str]) -> Vec<serde_json::Value> {
    queries
        .iter()
        .map(|q| {
            let found = index.search(q, 5_000, 0).expect("search");
            serde_json::json!({"q": q, "total": found.total, "hits": found.hits})
        })
        .collect()
}

#[tokio::test]
async fn a_first_load_is_indexed_while_written_exactly_as_the_indexer_would() {
    let mut app = TestApp::new().await;
    let opts = options("hr");
    let report = import_indexing(&app.db.pool, demo_file(3_000, 11), &opts, &mut app.indexer)
        .await
        .expect("import");
    assert_eq!(report.counts.added, 3_000);
    assert!(report.timings.index > 0.0, "indexed while written");
    // Committed at the import's last change: nothing is left for the catch-up.
    assert_eq!(app.index.num_docs(), 3_000);
    assert_eq!(app.indexer.catch_up().await.expect("catch up"), 0);

    // The same people indexed the usual way, read back from PostgreSQL.
    let dir = tempfile::tempdir().expect("dir");
    let other = switchboard::search::SearchIndex::open(dir.path()).expect("index");
    let mut indexer =
        switchboard::search::indexer::Indexer::new(other.clone(), app.db.pool.clone(), 50)
            .expect("indexer");
    assert_eq!(indexer.catch_up().await.expect("catch up"), 3_000);
    let queries = [
        "",
        "a",
        "smi",
        "müller",
        "maria garcia",
        "+44 20",
        "london",
        "engineering",
        "ιω",
        "王",
        "jon smyth",
    ];
    assert_eq!(answers(&app.index, &queries), answers(&other, &queries));

    // Not a first load any more: an update goes through the change log as always.
    let report = import_indexing(&app.db.pool, demo_file(3_001, 11), &opts, &mut app.indexer)
        .await
        .expect("second import");
    assert_eq!((report.counts.added, report.timings.index), (1, 0.0));
    assert_eq!(
        app.indexer.catch_up().await.expect("catch up"),
        report.changes.len()
    );
    assert_eq!(app.index.num_docs(), 3_001);

    // An empty index that has not applied every change (a new index beside a directory that
    // has people) is not a first load either: the catch-up reads everyone back.
    let dir = tempfile::tempdir().expect("dir");
    let fresh = switchboard::search::SearchIndex::open(dir.path()).expect("index");
    let mut indexer =
        switchboard::search::indexer::Indexer::new(fresh.clone(), app.db.pool.clone(), 50)
            .expect("indexer");
    let newcomer = "external_id,given_name,family_name,email\nn1,Nora,Newcomer,nora.newcomer@elsewhere.example\n";
    let report = import_indexing(
        &app.db.pool,
        switchboard::sources::csv::parse(newcomer.as_bytes(), &Default::default()).expect("parse"),
        &options("crm"),
        &mut indexer,
    )
    .await
    .expect("third import");
    assert_eq!((report.counts.added, report.timings.index), (1, 0.0));
    assert_eq!(fresh.num_docs(), 0);
    assert!(indexer.catch_up().await.expect("catch up") > 3_000);
}

#[tokio::test]
async fn a_first_load_that_fails_leaves_the_index_as_it_was() {
    let mut app = TestApp::new().await;
    // The database refuses the import's change log, after the people were written.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'refused for the test'; END $$; \
         CREATE TRIGGER refuse BEFORE INSERT ON change_log FOR EACH STATEMENT EXECUTE FUNCTION refuse();",
    )
    .execute(&app.db.pool)
    .await
    .expect("trigger");
    let failed = import_indexing(
        &app.db.pool,
        demo_file(500, 3),
        &options("hr"),
        &mut app.indexer,
    )
    .await;
    assert!(
        failed
            .as_ref()
            .is_err_and(|e| e.to_string().contains("refused for the test")),
        "{:?}",
        failed.map(|r| r.counts)
    );
    assert_eq!(app.indexer.catch_up().await.expect("catch up"), 0);
    app.index.reload().expect("reload");
    assert_eq!(app.index.num_docs(), 0, "nothing of the failed load");

    // The writer is back: the next first load is indexed as it is written.
    sqlx::raw_sql("DROP TRIGGER refuse ON change_log")
        .execute(&app.db.pool)
        .await
        .expect("drop");
    let report = import_indexing(
        &app.db.pool,
        demo_file(500, 3),
        &options("hr"),
        &mut app.indexer,
    )
    .await
    .expect("import");
    assert!(report.timings.index > 0.0);
    assert_eq!(app.index.num_docs(), 500);
}
