//! The CardDAV address book as clients use it: `vdirsyncer` (PyPI, installed by
//! `scripts/setup`) discovers it from the server's root and syncs it into a folder twice, the
//! second time fetching only the card that changed in between; every card parses with
//! `vobject`. RFC 6578 sync-collection, vCard 3.0 for Apple clients, refusals and the scope.

mod common;

use std::path::{Path, PathBuf};

use common::{options, TestApp};

const PEOPLE: &str = "\
external_id,given_name,family_name,email,phone,mobile,title,department,location,nickname
1,Jane,Smith,jane.smith@example.com,+44 20 7946 0018,+44 7400 123456,Head of Sales,Sales,London,
2,Janet,Jones,janet.jones@example.com,+44 20 7946 0019,,Account Manager,Sales,London,Jan
3,Jürgen,Müller,juergen.mueller@example.com,+49 30 901820,,Engineer,Engineering,Berlin,
4,Margaret,Hughes,margaret.hughes@example.com,+44 20 7946 0020,,Office Manager,Facilities,London,Peggy
5,Ольга,Петрова,olga.petrova@example.com,+7 495 123 4567,,\"Analyst, Risk; FX\",Finance,Moscow,
";

fn venv_bin(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/tmp/addressbook-venv/bin")
        .join(name)
}

async fn run(program: &Path, args: &[&str], stdin: &str) -> (bool, String) {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{} (scripts/setup installs it): {e}", program.display()));
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).await.expect("stdin");
    drop(input);
    let out = child.wait_with_output().await.expect("run");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn cards_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "vcf"));
    files.sort();
    files
}

#[tokio::test]
async fn vdirsyncer_syncs_the_book_twice_fetching_only_what_changed() {
    let mut app = TestApp::new().await;
    app.import_csv(PEOPLE, &options("hr"))
        .await
        .expect("import");
    let password = app.device("desk-1").await;
    let url = app.serve().await;
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    let local = d.join("contacts");
    // The collection's folder exists, so discovery asks nothing.
    std::fs::create_dir_all(local.join("directory")).expect("dir");
    let config = d.join("config");
    std::fs::write(
        &config,
        format!(
            "[general]\nstatus_path = \"{status}\"\n\n\
             [pair book]\na = \"switchboard\"\nb = \"local\"\ncollections = [\"from a\"]\n\n\
             [storage switchboard]\ntype = \"carddav\"\nurl = \"{url}/\"\nusername = \"desk-1\"\n\
             password = \"{password}\"\nread_only = true\n\n\
             [storage local]\ntype = \"filesystem\"\npath = \"{local}\"\nfileext = \".vcf\"\n",
            status = d.join("status").display(),
            local = local.display(),
        ),
    )
    .expect("config");
    let vdirsyncer = venv_bin("vdirsyncer");
    let config_arg = config.to_str().expect("path");
    let (ok, out) = run(&vdirsyncer, &["-c", config_arg, "discover", "book"], "y\n").await;
    assert!(ok, "discover: {out}");
    let (ok, out) = run(&vdirsyncer, &["-c", config_arg, "sync"], "").await;
    assert!(ok, "first sync: {out}");
    let book = local.join("directory");
    assert_eq!(cards_in(&book).len(), 5, "{out}");

    // Every card parses with vobject, and says who it is.
    let check = d.join("check.py");
    std::fs::write(
        &check,
        "import sys, vobject, json\n\
         out = []\n\
         for path in sys.argv[1:]:\n\
         \x20   card = vobject.readOne(open(path, encoding='utf-8').read())\n\
         \x20   out.append({'fn': card.fn.value, 'title': getattr(card, 'title', None) and card.title.value,\n\
         \x20               'tel': [t.value for t in card.contents.get('tel', [])],\n\
         \x20               'nickname': getattr(card, 'nickname', None) and card.nickname.value})\n\
         print(json.dumps(sorted(out, key=lambda c: c['fn'])))\n",
    )
    .expect("script");
    let parse = |files: Vec<PathBuf>| {
        let check = check.clone();
        async move {
            let mut args = vec![check.to_str().expect("path").to_string()];
            args.extend(files.iter().map(|f| f.to_str().expect("path").to_string()));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (ok, out) = run(&venv_bin("python"), &args, "").await;
            assert!(ok, "vobject: {out}");
            serde_json::from_str::<serde_json::Value>(&out).expect("json")
        }
    };
    let cards = parse(cards_in(&book)).await;
    let names: Vec<&str> = cards
        .as_array()
        .expect("cards")
        .iter()
        .filter_map(|c| c["fn"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "Jane Smith",
            "Janet Jones",
            "Jürgen Müller",
            "Margaret Hughes",
            "Ольга Петрова"
        ]
    );
    let olga = &cards[4];
    assert_eq!(olga["title"], "Analyst, Risk; FX", "escaped and read back");
    assert_eq!(cards[0]["tel"][0], "tel:+442079460018");
    assert_eq!(cards[3]["nickname"], "Peggy");

    // One person changes; the second sync fetches that card only.
    let changed = PEOPLE.replace("Head of Sales", "Chief Revenue Officer");
    app.import_csv(&changed, &options("hr"))
        .await
        .expect("import");
    let (ok, out) = run(&vdirsyncer, &["-c", config_arg, "sync"], "").await;
    assert!(ok, "second sync: {out}");
    let cards = parse(cards_in(&book)).await;
    assert_eq!(cards[0]["title"], "Chief Revenue Officer");

    // The audit trail holds each request of the device with the people it returned: the first
    // multiget returned all five cards, the second only Jane's.
    let mut app = app;
    app.flush_audit().await;
    let reports: Vec<Vec<uuid::Uuid>> = sqlx::query_scalar(
        "SELECT people FROM audit_log WHERE principal = 'device:desk-1' \
         AND action LIKE 'carddav.REPORT %' ORDER BY seq",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("audit");
    assert_eq!(reports.len(), 2, "{reports:?}");
    assert_eq!(reports[0].len(), 5);
    let jane: uuid::Uuid = sqlx::query_scalar("SELECT id FROM people WHERE family_name = 'Smith'")
        .fetch_one(&app.db.pool)
        .await
        .expect("jane");
    assert_eq!(reports[1], [jane]);
}

async fn dav(
    url: &str,
    method: &str,
    path: &str,
    auth: Option<(&str, &str)>,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let mut request = client
        .request(method.parse().expect("method"), format!("{url}{path}"))
        .body(body.to_string());
    if let Some((user, password)) = auth {
        request = request.basic_auth(user, Some(password));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// A REPORT on the address book.
async fn report(url: &str, auth: Option<(&str, &str)>, body: &str) -> (u16, String) {
    dav(url, "REPORT", "/carddav/directory/", auth, &[], body).await
}

fn token_of(body: &str) -> String {
    body.split("<D:sync-token>")
        .nth(1)
        .and_then(|r| r.split("</D:sync-token>").next())
        .expect("sync token")
        .to_string()
}

#[tokio::test]
async fn sync_collection_reports_changes_and_removals_and_refuses_what_it_must() {
    let config = common::viewers_see_only(&["Sales", "Finance"]);
    let mut app = TestApp::with(config, switchboard::presence::PresenceHub::disabled()).await;
    app.import_csv(PEOPLE, &options("hr"))
        .await
        .expect("import");
    let password = app.device("desk-1").await;
    let url = app.serve().await;
    let auth = Some(("desk-1", password.as_str()));
    let sync = |token: &str| {
        format!(
            "<?xml version=\"1.0\"?><D:sync-collection xmlns:D=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:carddav\">\
             <D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>\
             <D:prop><D:getetag/><C:address-data/></D:prop></D:sync-collection>"
        )
    };

    // The well-known address leads to the book; without or with wrong credentials: 401.
    let (status, _) = dav(
        &url,
        "PROPFIND",
        "/.well-known/carddav",
        auth,
        &[("Depth", "0")],
        "",
    )
    .await;
    assert_eq!(status, 301);
    for bad in [
        None,
        Some(("desk-1", "wrong")),
        Some(("nobody", password.as_str())),
    ] {
        let (status, body) = dav(
            &url,
            "PROPFIND",
            "/carddav/directory/",
            bad,
            &[("Depth", "1")],
            "",
        )
        .await;
        assert_eq!(status, 401, "{body}");
        assert!(!body.contains("Smith"));
    }

    // A first sync lists the people in scope (Sales, Finance): not Müller, not Hughes.
    let (status, body) = report(&url, auth, &sync("")).await;
    assert_eq!(status, 207, "{body}");
    assert_eq!(body.matches("<D:response>").count(), 3, "{body}");
    assert!(body.contains("FN:Jane Smith") && !body.contains("Hughes") && !body.contains("Müller"));
    let token = token_of(&body);

    // Nothing changed: nothing listed. Then a change and a removal.
    let (_, body) = report(&url, auth, &sync(&token)).await;
    assert_eq!(body.matches("<D:response>").count(), 0, "{body}");
    let without_janet: String = PEOPLE
        .lines()
        .filter(|l| !l.starts_with("2,"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        .replace("Head of Sales", "Chief Revenue Officer");
    let mut full = options("hr");
    full.full = true;
    full.force = true;
    app.import_csv(&without_janet, &full).await.expect("import");
    let (_, body) = report(&url, auth, &sync(&token)).await;
    assert_eq!(body.matches("<D:response>").count(), 2, "{body}");
    assert!(body.contains("TITLE:Chief Revenue Officer"), "{body}");
    assert!(
        body.contains("HTTP/1.1 404 Not Found"),
        "Janet is gone: {body}"
    );
    let (status, body) = report(&url, auth, &sync("urn:other:1")).await;
    assert_eq!(status, 403);
    assert!(body.contains("valid-sync-token"), "{body}");

    // An out-of-scope card answers as a card nobody has.
    let hughes: uuid::Uuid =
        sqlx::query_scalar("SELECT id FROM people WHERE family_name = 'Hughes'")
            .fetch_one(&app.db.pool)
            .await
            .expect("id");
    let (hidden, _) = dav(
        &url,
        "GET",
        &format!("/carddav/directory/{hughes}.vcf"),
        auth,
        &[],
        "",
    )
    .await;
    let (nobody, _) = dav(
        &url,
        "GET",
        &format!("/carddav/directory/{}.vcf", uuid::Uuid::nil()),
        auth,
        &[],
        "",
    )
    .await;
    assert_eq!((hidden, nobody), (404, 404));

    // Apple's clients get vCard 3.0; a card's ETag answers If-None-Match.
    let jane: uuid::Uuid = sqlx::query_scalar("SELECT id FROM people WHERE family_name = 'Smith'")
        .fetch_one(&app.db.pool)
        .await
        .expect("id");
    let path = format!("/carddav/directory/{jane}.vcf");
    let (status, body) = dav(
        &url,
        "GET",
        &path,
        auth,
        &[("User-Agent", "iOS/17.4 (21E219) dataaccessd/1.0")],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        body.contains("VERSION:3.0") && body.contains("TEL;TYPE=WORK,VOICE:+442079460018"),
        "{body}"
    );
    let response = reqwest::Client::new()
        .get(format!("{url}{path}"))
        .basic_auth("desk-1", Some(&password))
        .send()
        .await
        .expect("get");
    let etag = response.headers()["etag"]
        .to_str()
        .expect("etag")
        .to_string();
    let (status, _) = dav(&url, "GET", &path, auth, &[("If-None-Match", &etag)], "").await;
    assert_eq!(status, 304);

    // An addressbook-query by name; writes refused.
    let query = "<C:addressbook-query xmlns:D=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:carddav\">\
                 <D:prop><D:getetag/></D:prop><C:filter><C:prop-filter name=\"FN\">\
                 <C:text-match collation=\"i;unicode-casemap\" match-type=\"contains\">петро</C:text-match>\
                 </C:prop-filter></C:filter></C:addressbook-query>";
    let (status, body) = dav(
        &url,
        "REPORT",
        "/carddav/directory/",
        auth,
        &[("Depth", "1")],
        query,
    )
    .await;
    assert_eq!(status, 207);
    assert_eq!(body.matches("<D:response>").count(), 1, "{body}");
    let (status, _) = dav(
        &url,
        "PUT",
        &path,
        auth,
        &[],
        "BEGIN:VCARD\r\nEND:VCARD\r\n",
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = dav(&url, "DELETE", &path, auth, &[], "").await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_person_makes_an_app_password_for_a_phone_and_revokes_it() {
    use axum::body::Body;
    use axum::http::{Method, Request};
    let mut app = TestApp::new().await;
    app.import_csv(PEOPLE, &options("hr"))
        .await
        .expect("import");
    switchboard::access::users::add(
        &app.db.pool,
        "rita",
        switchboard::access::Role::Viewer,
        Some("correct horse battery".into()),
    )
    .await
    .expect("user");
    let url = app.serve().await;
    // Rita signs in to the console…
    let (cookie, csrf) = app.sign_in("rita", "correct horse battery").await;
    let as_rita = |method: Method, uri: &str, body: Option<&str>| {
        Request::builder()
            .method(method)
            .uri(uri)
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .header("content-type", "application/json")
            .body(Body::from(body.unwrap_or_default().to_string()))
            .expect("request")
    };
    // …and makes an app password for her phone.
    let (status, _, made) = app
        .send(as_rita(
            Method::POST,
            "/api/v1/auth/app-passwords",
            Some(r#"{"label":"Rita's iPhone"}"#),
        ))
        .await;
    assert_eq!(status, 201, "{made}");
    let phone_login = made["login"].as_str().expect("login").to_string();
    let phone_password = made["password"].as_str().expect("password").to_string();
    assert!(phone_login.starts_with("app-"));
    let auth = Some((phone_login.as_str(), phone_password.as_str()));
    let (status, body) = dav(
        &url,
        "PROPFIND",
        "/carddav/directory/",
        auth,
        &[("Depth", "1")],
        "",
    )
    .await;
    assert_eq!(status, 207, "{body}");
    assert_eq!(body.matches(".vcf</D:href>").count(), 5, "{body}");
    // The phone acts as Rita, audited under her name.
    let (status, list) = {
        let (s, _, l) = app
            .send(as_rita(Method::GET, "/api/v1/auth/app-passwords", None))
            .await;
        (s, l)
    };
    assert_eq!(status, 200);
    assert_eq!(list[0]["label"], "Rita's iPhone");
    assert!(list[0]["last_used_at"].is_string(), "{list}");
    assert!(list[0].get("password").is_none());
    // A service token makes none; a wrong password is refused; a revoked one too.
    let (status, _, _) = app
        .send(
            Request::post("/api/v1/auth/app-passwords")
                .header("authorization", format!("Bearer {}", app.token))
                .header("content-type", "application/json")
                .body(Body::from(r#"{"label":"x"}"#))
                .expect("request"),
        )
        .await;
    assert!(status == 401 || status == 403, "{status}");
    let (status, _) = dav(
        &url,
        "PROPFIND",
        "/carddav/directory/",
        Some((phone_login.as_str(), "wrong")),
        &[("Depth", "0")],
        "",
    )
    .await;
    assert_eq!(status, 401);
    let (status, _, _) = app
        .send(as_rita(
            Method::DELETE,
            &format!("/api/v1/auth/app-passwords/{phone_login}"),
            None,
        ))
        .await;
    assert_eq!(status, 204);
    let (status, _) = dav(
        &url,
        "PROPFIND",
        "/carddav/directory/",
        auth,
        &[("Depth", "0")],
        "",
    )
    .await;
    assert_eq!(status, 401, "revoked");
    let actions = app.audit_actions().await;
    assert!(
        actions.contains(&("local:rita".to_string(), "app_password.create".to_string())),
        "{actions:?}"
    );
}
