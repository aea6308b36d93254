//! The shared directory for partner companies: partners and their keys (admin API and CLI
//! rules), `/shared/v1` search and lookup through the partner's policy (each field, scope,
//! consent and presence level), ids of the partner's own, every authentication failure, the
//! limits against listing (minimum query, cap, rate, daily quota, sweep alert), vCard and jCard,
//! and the audit trail of every partner request.

mod common;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use serde_json::{json, Value};
use switchboard::presence::{directory, PresenceHub};

use common::{options, TestApp};

const PEOPLE: &str = "\
external_id,given_name,family_name,email,title,department,location,phone,mobile,im
1,Jane,Smith,jane.smith@example.com,Account Manager,Sales,London,+44 20 7946 0018,+44 7700 900461,sip:jane@pbx.example.com
2,John,Smithers,john.smithers@example.com,Engineer,Engineering,Berlin,+49 30 901820,+49 151 2345678,
3,Janet,Smithson,janet.smithson@example.com,Sales Lead,Sales,Berlin,+49 30 901821,,
4,Margaret,Hughes,margaret.hughes@example.com,Receptionist,Facilities,London,+44 20 7946 0099,,
";

const PBX: &str = "pbx-token-0123456789";

async fn app() -> (TestApp, PresenceHub) {
    let hub = common::webhook_hub(PBX);
    let mut config = switchboard::config::Config::default();
    config.partners.organization = "Example Ltd".into();
    let mut app = TestApp::with(config, hub.clone()).await;
    app.import_csv(PEOPLE, &options("hr"))
        .await
        .expect("import");
    let (_, people) = directory::load_all(&app.db.pool).await.expect("load");
    hub.set_people(&people);
    let event = serde_json::from_value(json!({
        "handle": "sip:jane@pbx.example.com", "availability": "busy", "status_message": "with a client"
    }))
    .expect("event");
    hub.ingest_webhook(PBX, vec![event]).expect("accepted");
    (app, hub)
}

/// Adds a partner through the admin API; answers its key.
async fn add_partner(app: &TestApp, body: Value) -> String {
    let (status, _, answer) = app
        .send(
            Request::post("/api/v1/partners")
                .header("authorization", format!("Bearer {}", app.token))
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .expect("request"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer["key"].as_str().expect("key").to_string()
}

async fn admin(app: &TestApp, method: Method, uri: &str, body: Value) -> (StatusCode, Value) {
    let (status, _, answer) = app
        .send(
            Request::builder()
                .method(method)
                .uri(uri)
                .header("authorization", format!("Bearer {}", app.token))
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .expect("request"),
        )
        .await;
    (status, answer)
}

/// A request with a bearer key (or none); answers status, headers and the body's bytes.
async fn raw(
    app: &TestApp,
    key: Option<&str>,
    uri: &str,
    accept: Option<&str>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = Request::get(uri);
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    app.send_raw(request.body(Body::empty()).expect("request"))
        .await
}

async fn shared(app: &TestApp, key: &str, uri: &str) -> (StatusCode, Value) {
    let (status, _, bytes) = raw(app, Some(key), uri, None).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn names(body: &Value) -> Vec<String> {
    let mut names: Vec<String> = body["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["display_name"].as_str().unwrap_or_default().to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_partner_sees_its_scope_its_fields_and_its_presence_level_under_ids_of_its_own() {
    let (app, _hub) = app().await;
    let acme = add_partner(
        &app,
        json!({"name": "acme", "fields": ["name", "title", "work_phone", "email"], "presence": "coarse",
               "scope": {"department": ["Sales"]}}),
    )
    .await;
    assert!(acme.starts_with("sbp_"), "{acme}");
    let (status, body) = shared(&app, &acme, "/shared/v1/people?q=smith").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(names(&body), ["Jane Smith", "Janet Smithson"], "Sales only");
    let jane = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|p| p["display_name"] == "Jane Smith")
        .cloned()
        .expect("jane");
    assert_eq!(jane["organization"], "Example Ltd");
    assert_eq!(jane["title"], "Account Manager");
    assert_eq!(jane["emails"], json!(["jane.smith@example.com"]));
    let kinds: Vec<&str> = jane["phones"]
        .as_array()
        .expect("phones")
        .iter()
        .map(|p| p["kind"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds, ["work"], "no mobile: {jane}");
    for absent in ["department", "location", "org_unit"] {
        assert!(jane.get(absent).is_none(), "{absent} shown: {jane}");
    }
    assert_eq!(jane["im"], json!([]));
    assert_eq!(jane["presence"]["availability"], "busy");
    assert!(
        jane["presence"].get("status_message").is_none()
            || jane["presence"]["status_message"].is_null(),
        "coarse presence has no status text: {jane}"
    );
    // Its id is its own: not ours, and stable.
    let ours = app.id_of("Smith").await;
    let theirs = jane["id"].as_str().expect("id");
    assert_ne!(theirs, ours.to_string());
    let (status, again) = shared(&app, &acme, &format!("/shared/v1/people/{theirs}")).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["display_name"], "Jane Smith");
    assert_eq!(again["id"], theirs);

    // Another partner with everything shareable gets other ids for the same people, full
    // presence, and cannot use acme's ids.
    let beta = add_partner(
        &app,
        json!({"name": "beta", "fields": ["name", "title", "department", "org_unit", "location", "work_phone", "mobile", "fax", "email", "im", "notes"],
               "presence": "full"}),
    )
    .await;
    let (_, body) = shared(&app, &beta, "/shared/v1/people?q=jane%20smith").await;
    let beta_jane = &body["items"][0];
    assert_eq!(beta_jane["display_name"], "Jane Smith");
    assert_ne!(
        beta_jane["id"], jane["id"],
        "partners cannot correlate by id"
    );
    assert_eq!(beta_jane["presence"]["status_message"], "with a client");
    assert_eq!(beta_jane["department"], "Sales");
    assert_eq!(beta_jane["phones"].as_array().expect("phones").len(), 2);
    let (status, _) = shared(&app, &beta, &format!("/shared/v1/people/{theirs}")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "acme's id means nothing to beta"
    );

    // Each field alone: it is there, and the fields not granted are not.
    for (field, key) in [
        ("title", "title"),
        ("department", "department"),
        ("location", "location"),
        ("email", "emails"),
        ("im", "im"),
    ] {
        let (status, _) = admin(
            &app,
            Method::PATCH,
            "/api/v1/partners/beta",
            json!({"fields": [field]}),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (_, body) = shared(&app, &beta, "/shared/v1/people?q=jane%20smith").await;
        let p = &body["items"][0];
        let shown = |k: &str| match &p[k] {
            Value::Null => false,
            Value::Array(a) => !a.is_empty(),
            _ => true,
        };
        assert!(shown(key), "{field} missing: {p}");
        for other in [
            "title",
            "department",
            "location",
            "emails",
            "im",
            "phones",
            "given_name",
        ] {
            if other != key {
                assert!(!shown(other), "{other} shown with fields={field}: {p}");
            }
        }
    }
    // Presence none: no presence at all.
    admin(
        &app,
        Method::PATCH,
        "/api/v1/partners/beta",
        json!({"presence": "none"}),
    )
    .await;
    let (_, body) = shared(&app, &beta, "/shared/v1/people?q=jane%20smith").await;
    assert!(body["items"][0].get("presence").is_none(), "{body}");
    // Numbers find their owner only through numbers the partner may see.
    let (_, body) = shared(&app, &acme, "/shared/v1/people?q=07700900461").await;
    assert_eq!(
        names(&body),
        Vec::<String>::new(),
        "acme may not see mobiles"
    );
    let (_, body) = shared(&app, &acme, "/shared/v1/people?q=020%207946%200018").await;
    assert_eq!(names(&body), ["Jane Smith"]);
    // Managers, home numbers and sources are never shareable.
    let (status, problem) = admin(
        &app,
        Method::PATCH,
        "/api/v1/partners/beta",
        json!({"fields": ["name", "home_phone"]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(problem["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("home_phone"));
}

#[tokio::test]
async fn out_of_scope_and_opted_out_people_answer_exactly_as_nobody() {
    let (mut app, _hub) = app().await;
    let acme = add_partner(
        &app,
        json!({"name": "acme", "scope": {"location": ["London"]}}),
    )
    .await;
    let beta = add_partner(&app, json!({"name": "beta"})).await;
    let (_, body) = shared(&app, &beta, "/shared/v1/people?q=smith").await;
    let by_name = |body: &Value, name: &str| {
        body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["display_name"] == name)
            .map(|p| p["id"].as_str().expect("id").to_string())
    };
    // Ids acme would have for people outside its scope: found through beta's ids.
    let john_for_beta = by_name(&body, "John Smithers").expect("john");
    let partner = switchboard::access::partners::get(&app.db.pool, "acme")
        .await
        .expect("get")
        .expect("acme");
    let beta_partner = switchboard::access::partners::get(&app.db.pool, "beta")
        .await
        .expect("get")
        .expect("beta");
    let john = beta_partner.our_id(john_for_beta.parse().expect("uuid"));
    let john_for_acme = partner.public_id(john);
    let nobody = uuid::Uuid::new_v4();
    let out_of_scope = raw(
        &app,
        Some(&acme),
        &format!("/shared/v1/people/{john_for_acme}"),
        None,
    )
    .await;
    let unknown = raw(
        &app,
        Some(&acme),
        &format!("/shared/v1/people/{nobody}"),
        None,
    )
    .await;
    assert_eq!(out_of_scope.0, StatusCode::NOT_FOUND);
    assert_eq!(out_of_scope.0, unknown.0);
    assert_eq!(out_of_scope.2, unknown.2, "byte for byte the same body");
    assert_eq!(
        out_of_scope.1.get("content-length"),
        unknown.1.get("content-length")
    );
    let (_, body) = shared(&app, &acme, "/shared/v1/people?q=smith").await;
    assert_eq!(names(&body), ["Jane Smith"], "London only");

    // Jane opts out from her own account: gone for every partner, as if she did not exist.
    switchboard::access::users::add_with_email(
        &app.db.pool,
        "jane",
        switchboard::access::Role::Viewer,
        Some("correct horse battery".into()),
        Some("jane.smith@example.com"),
    )
    .await
    .expect("user");
    let (cookie, csrf) = app.sign_in("jane", "correct horse battery").await;
    let put = |own: Value| {
        Request::put("/api/v1/me/sharing")
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .header("content-type", "application/json")
            .body(Body::from(json!({"own": own}).to_string()))
            .expect("request")
    };
    let (status, _, answer) = app.send(put(json!(false))).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["own"], false);
    assert_eq!(answer["effective"], false);
    app.indexer.catch_up().await.expect("catch up");
    let (_, body) = shared(&app, &beta, "/shared/v1/people?q=smith").await;
    assert_eq!(
        names(&body),
        ["Janet Smithson", "John Smithers"],
        "Jane opted out"
    );
    let jane = app.id_of("Smith").await;
    let gone = raw(
        &app,
        Some(&beta),
        &format!("/shared/v1/people/{}", beta_partner.public_id(jane)),
        None,
    )
    .await;
    let unknown = raw(
        &app,
        Some(&beta),
        &format!("/shared/v1/people/{nobody}"),
        None,
    )
    .await;
    assert_eq!(gone.2, unknown.2, "opted out is nobody");
    // Staff still see her.
    assert_eq!(app.names("jane smith").await[0], "Jane Smith");

    // A partner that shows only who opted in sees nobody until someone does.
    admin(
        &app,
        Method::PATCH,
        "/api/v1/partners/beta",
        json!({"consent": "opt_in"}),
    )
    .await;
    let (_, body) = shared(&app, &beta, "/shared/v1/people?q=smith").await;
    assert_eq!(names(&body), Vec::<String>::new());
    let (status, _, _) = app.send(put(json!(true))).await;
    assert_eq!(status, StatusCode::OK);
    app.indexer.catch_up().await.expect("catch up");
    let (_, body) = shared(&app, &beta, "/shared/v1/people?q=smith").await;
    assert_eq!(names(&body), ["Jane Smith"], "only who opted in");
    let actions = app.audit_actions().await;
    assert!(
        actions
            .iter()
            .any(|(p, a)| p == "local:jane" && a == "sharing.set"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn every_authentication_failure_is_refused_and_keys_rotate_with_a_grace_period() {
    let (app, _hub) = app().await;
    let key = add_partner(&app, json!({"name": "acme"})).await;
    let uri = "/shared/v1/people?q=smith";
    let problem = |bytes: &[u8]| -> Value { serde_json::from_slice(bytes).expect("problem") };
    // No key, an unknown key, a token that is not a partner's.
    let (status, headers, body) = raw(&app, None, uri, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(problem(&body)["code"], "unauthorized");
    let (status, _, _) = raw(&app, Some("sbp_not-a-key"), uri, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, body) = raw(&app, Some(&app.token), uri, None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an admin token is not a partner key"
    );
    assert_eq!(problem(&body)["code"], "forbidden");
    // A partner key does not open the internal API.
    for internal in [
        "/api/v1/people?q=smith",
        "/api/v1/partners",
        "/api/v1/audit",
    ] {
        let (status, _, _) = raw(&app, Some(&key), internal, None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{internal}");
    }
    assert_eq!(shared(&app, &key, uri).await.0, StatusCode::OK);

    // Rotated with an hour's grace: both keys work, then the old one stops.
    let (status, rotated) = admin(
        &app,
        Method::POST,
        "/api/v1/partners/acme/rotate",
        json!({"grace": "1h"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new = rotated["key"].as_str().expect("key").to_string();
    assert_eq!(
        shared(&app, &key, uri).await.0,
        StatusCode::OK,
        "in its grace"
    );
    assert_eq!(shared(&app, &new, uri).await.0, StatusCode::OK);
    app.advance(chrono::Duration::minutes(61));
    assert_eq!(
        shared(&app, &key, uri).await.0,
        StatusCode::UNAUTHORIZED,
        "rotated out"
    );
    assert_eq!(shared(&app, &new, uri).await.0, StatusCode::OK);
    // Rotated with no grace: the old key stops at once.
    let (_, rotated) = admin(
        &app,
        Method::POST,
        "/api/v1/partners/acme/rotate",
        json!({"grace": "0s"}),
    )
    .await;
    let newest = rotated["key"].as_str().expect("key").to_string();
    assert_eq!(shared(&app, &new, uri).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(shared(&app, &newest, uri).await.0, StatusCode::OK);
    let (_, detail) = admin(&app, Method::GET, "/api/v1/partners/acme", json!({})).await;
    assert_eq!(
        detail["keys"].as_array().expect("keys").len(),
        3,
        "{detail}"
    );
    // Revoked: refused, whatever the key.
    let (status, _) = admin(&app, Method::DELETE, "/api/v1/partners/acme", json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(shared(&app, &newest, uri).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn partners_search_and_are_capped_rated_and_counted_but_do_not_list() {
    let mut config = switchboard::config::Config::default();
    config.partners.max_results = 2;
    config.partners.sweep_prefixes = 3;
    let mut app = TestApp::with(config, PresenceHub::disabled()).await;
    app.import_csv(PEOPLE, &options("hr"))
        .await
        .expect("import");
    let key = add_partner(
        &app,
        json!({"name": "acme", "rate": "600/min", "quota": "9/day"}),
    )
    .await;
    for (uri, what) in [
        ("/shared/v1/people", "no query"),
        ("/shared/v1/people?q=", "empty"),
        ("/shared/v1/people?q=sm", "too short"),
        ("/shared/v1/people?q=smith&limit=3", "past the cap"),
        ("/shared/v1/people?q=smith&cursor=o20", "no paging"),
    ] {
        let (status, body) = shared(&app, &key, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {body}");
    }
    let (status, body) = shared(&app, &key, "/shared/v1/people?q=smi").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"].as_array().expect("items").len(), 2, "capped");
    assert_eq!(body["more"], true);
    // Distinct starts past the limit look like a sweep: counted in the metrics.
    for q in ["jan", "joh", "mar"] {
        shared(&app, &key, &format!("/shared/v1/people?q={q}")).await;
    }
    let (status, _, metrics) = raw(&app, Some(&app.token), "/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    let metrics = String::from_utf8(metrics).expect("text");
    assert!(
        metrics.contains("switchboard_partner_sweep_alerts_total{partner=\"acme\"} 1"),
        "{metrics}"
    );
    // The daily quota: 9 requests (the refused ones count too), then 429 until midnight UTC.
    let (status, headers, body) = raw(&app, Some(&key), "/shared/v1/people?q=smith", None).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let retry: i64 = headers["retry-after"]
        .to_str()
        .expect("retry")
        .parse()
        .expect("seconds");
    let now = chrono::Utc::now();
    let midnight = (now.date_naive() + chrono::Days::new(1))
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    assert!(
        (retry - (midnight - now).num_seconds()).abs() <= 5,
        "{retry}"
    );
    // A rate: two a second with no more burst than that.
    let quick = add_partner(&app, json!({"name": "quick", "rate": "2/s"})).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(
            raw(&app, Some(&quick), "/shared/v1/people?q=smith", None)
                .await
                .0,
        );
    }
    assert_eq!(statuses[..2], [StatusCode::OK, StatusCode::OK]);
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let actions = app.audit_actions().await;
    assert!(
        actions
            .iter()
            .any(|(p, a)| p == "partner:acme" && a == "GET /shared/v1/people"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn vcards_and_jcards_follow_the_policy_parse_and_import_again() {
    let (app, _hub) = app().await;
    let key = add_partner(
        &app,
        json!({"name": "acme", "fields": ["name", "title", "department", "work_phone", "email"]}),
    )
    .await;
    let (_, body) = shared(&app, &key, "/shared/v1/people?q=jane%20smith").await;
    let id = body["items"][0]["id"].as_str().expect("id").to_string();
    let by_accept = raw(
        &app,
        Some(&key),
        &format!("/shared/v1/people/{id}"),
        Some("text/vcard"),
    )
    .await;
    let by_url = raw(
        &app,
        Some(&key),
        &format!("/shared/v1/people/{id}.vcf"),
        None,
    )
    .await;
    assert_eq!(by_accept.0, StatusCode::OK);
    assert_eq!(by_accept.1["content-type"], "text/vcard; charset=utf-8");
    assert_eq!(by_accept.2, by_url.2, "the same card both ways");
    let card = String::from_utf8(by_url.2).expect("utf8");
    assert!(card.starts_with("BEGIN:VCARD\r\nVERSION:4.0\r\n"), "{card}");
    assert!(
        card.contains(&format!("UID:urn:uuid:{id}")),
        "their id: {card}"
    );
    assert!(card.contains("ORG:Example Ltd;Sales"), "{card}");
    assert!(card.contains("tel:+442079460018"), "{card}");
    assert!(!card.contains("7700900461"), "no mobile: {card}");
    let (status, headers, jcard) = raw(
        &app,
        Some(&key),
        &format!("/shared/v1/people/{id}"),
        Some("application/vcard+json"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/vcard+json");
    let jcard: Value = serde_json::from_slice(&jcard).expect("json");
    assert_eq!(jcard[0], "vcard");
    let props = jcard[1].as_array().expect("properties");
    let fname = props.iter().find(|p| p[0] == "fn").expect("fn");
    assert_eq!(fname[3], "Jane Smith");

    // vobject (the Python library vdirsyncer uses) reads it.
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("jane.vcf");
    std::fs::write(&file, &card).expect("write");
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/tmp/addressbook-venv/bin/python");
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg(
            "import sys, vobject; c = vobject.readOne(open(sys.argv[1]).read()); \
             print(c.fn.value); print(c.uid.value); print(len(c.contents.get('tel', [])))",
        )
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup)", python.display()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines, ["Jane Smith", &format!("urn:uuid:{id}"), "1"]);

    // And our own vCard import reads it back to the same person.
    let raw_batch = switchboard::sources::vcard::parse(&card);
    let mut other = TestApp::new().await;
    other
        .import(raw_batch, &options("partner-card"))
        .await
        .expect("import");
    let (_, _, body) = other.get("/api/v1/people?q=jane").await;
    let p = &body["items"][0];
    assert_eq!(p["display_name"], "Jane Smith");
    assert_eq!(p["title"], "Account Manager");
    assert_eq!(p["emails"], json!(["jane.smith@example.com"]));
    assert_eq!(p["phones"][0]["e164"], "+442079460018");
}

#[tokio::test]
async fn every_partner_request_is_audited_exported_and_tamper_evident() {
    let (mut app, _hub) = app().await;
    let key = add_partner(&app, json!({"name": "acme"})).await;
    let other = add_partner(&app, json!({"name": "beta"})).await;
    let (_, body) = shared(&app, &key, "/shared/v1/people?q=jane%20smith").await;
    let id = body["items"][0]["id"].as_str().expect("id").to_string();
    shared(&app, &key, &format!("/shared/v1/people/{id}")).await;
    shared(&app, &key, "/shared/v1/people?q=sm").await;
    shared(&app, &other, "/shared/v1/people?q=hughes").await;
    app.flush_audit().await;
    let export = |principal: Option<&str>, person: Option<uuid::Uuid>| {
        let pool = app.db.pool.clone();
        let principal = principal.map(str::to_string);
        async move {
            let mut out = Vec::new();
            switchboard::audit::export(
                &pool,
                &switchboard::audit::ExportFilter {
                    since: None,
                    principal,
                    person,
                },
                switchboard::audit::ExportFormat::Jsonl,
                &mut out,
            )
            .await
            .expect("export");
            String::from_utf8(out)
                .expect("utf8")
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).expect("json"))
                .collect::<Vec<Value>>()
        }
    };
    let acme = export(Some("partner:acme"), None).await;
    let summary: Vec<(String, String, u64)> = acme
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap_or_default().to_string(),
                r["query"].as_str().unwrap_or_default().to_string(),
                r["status"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "GET /shared/v1/people".to_string(),
                "q=jane%20smith".to_string(),
                200
            ),
            ("GET /shared/v1/people/{id}".to_string(), String::new(), 200),
            ("GET /shared/v1/people".to_string(), "q=sm".to_string(), 400),
        ],
        "{acme:?}"
    );
    let jane = app.id_of("Smith").await;
    assert!(
        acme[0]["people"]
            .as_array()
            .expect("people")
            .contains(&json!(jane)),
        "our ids, for our DPO: {}",
        acme[0]
    );
    // Who looked at Jane: acme, twice; not beta.
    let about_jane = export(None, Some(jane)).await;
    assert_eq!(about_jane.len(), 2);
    assert!(about_jane.iter().all(|r| r["principal"] == "partner:acme"));
    // Editing one is caught.
    let seq = acme[1]["seq"].as_i64().expect("seq");
    app.tamper(&format!(
        "UPDATE audit_log SET query = 'q=nothing' WHERE seq = {seq}"
    ))
    .await;
    let report = switchboard::audit::verify(&app.db.pool)
        .await
        .expect("verify");
    let problem = report.problem.expect("tampering found");
    assert!(problem.contains(&format!("record {seq}")), "{problem}");
}

#[tokio::test]
async fn sources_say_who_is_shared_and_the_person_has_the_last_word() {
    let mut app = TestApp::new().await;
    let csv = "\
external_id,given_name,family_name,email,department,Share With Partners
1,Anna,Berg,anna.berg@example.com,Sales,no
2,Bruno,Berger,bruno.berger@example.com,Sales,yes
3,Carla,Bergmann,carla.bergmann@example.com,Sales,perhaps
4,David,Bergström,david.bergstrom@example.com,Sales,
";
    let report = app.import_csv(csv, &options("hr")).await.expect("import");
    assert_eq!(report.counts.added, 4, "nobody lost for an odd value");
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.reason.contains("partner_sharing") && w.reason.contains("perhaps")),
        "{:?}",
        report.warnings
    );
    let everyone_but = add_partner(&app, json!({"name": "acme"})).await;
    let only_yes = add_partner(&app, json!({"name": "beta", "consent": "opt_in"})).await;
    let (_, body) = shared(&app, &everyone_but, "/shared/v1/people?q=berg").await;
    assert_eq!(
        names(&body),
        ["Bruno Berger", "Carla Bergmann", "David Bergström"]
    );
    let (_, body) = shared(&app, &only_yes, "/shared/v1/people?q=berg").await;
    assert_eq!(names(&body), ["Bruno Berger"]);

    // Anna says yes herself: her word wins over HR's.
    switchboard::access::users::add_with_email(
        &app.db.pool,
        "anna",
        switchboard::access::Role::Viewer,
        Some("correct horse battery".into()),
        Some("anna.berg@example.com"),
    )
    .await
    .expect("user");
    let (cookie, csrf) = app.sign_in("anna", "correct horse battery").await;
    let (status, _, answer) = app
        .send(
            Request::put("/api/v1/me/sharing")
                .header("cookie", &cookie)
                .header("x-csrf-token", &csrf)
                .header("content-type", "application/json")
                .body(Body::from(json!({"own": true}).to_string()))
                .expect("request"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["source"], false);
    assert_eq!(answer["effective"], true);
    app.indexer.catch_up().await.expect("catch up");
    let (_, body) = shared(&app, &only_yes, "/shared/v1/people?q=berg").await;
    assert_eq!(names(&body), ["Anna Berg", "Bruno Berger"]);
    // A re-import of the same file changes nothing she chose.
    app.import_csv(csv, &options("hr")).await.expect("import");
    let (_, body) = shared(&app, &only_yes, "/shared/v1/people?q=berg").await;
    assert_eq!(names(&body), ["Anna Berg", "Bruno Berger"]);
}

#[tokio::test]
async fn a_partner_follows_presence_live_under_its_own_ids() {
    let (app, hub) = app().await;
    let key = add_partner(&app, json!({"name": "acme", "presence": "coarse"})).await;
    let none = add_partner(&app, json!({"name": "blind", "presence": "none"})).await;
    let (_, body) = shared(&app, &key, "/shared/v1/people?q=jane%20smith").await;
    let id = body["items"][0]["id"].as_str().expect("id").to_string();
    let url = app.serve().await;
    let client = reqwest::Client::new();
    let refused = client
        .get(format!("{url}/shared/v1/presence/stream?ids={id}"))
        .bearer_auth(&none)
        .send()
        .await
        .expect("send");
    assert_eq!(refused.status(), 403, "presence is not in its agreement");
    let mut stream = client
        .get(format!("{url}/shared/v1/presence/stream?ids={id}"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("send");
    assert_eq!(stream.status(), 200);
    let mut text = String::new();
    read_until(&mut stream, &mut text, "busy").await;
    hub.ingest_webhook(
        PBX,
        vec![serde_json::from_value(json!({
            "handle": "sip:jane@pbx.example.com", "availability": "available", "status_message": "back"
        }))
        .expect("event")],
    )
    .expect("accepted");
    read_until(&mut stream, &mut text, "available").await;
    assert!(
        text.contains(&format!("\"id\":\"{id}\"")),
        "their id: {text}"
    );
    assert!(
        !text.contains("with a client") && !text.contains("back"),
        "coarse: {text}"
    );
}

/// Reads a stream's chunks into `text` until it holds `wanted`.
async fn read_until(stream: &mut reqwest::Response, text: &mut String, wanted: &str) {
    while !text.contains(wanted) {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), stream.chunk())
            .await
            .expect("an event in time")
            .expect("chunk")
            .expect("open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn a_partner_finds_people_only_by_what_it_may_see() {
    let (app, _hub) = app().await;
    let names_only = add_partner(
        &app,
        json!({"name": "names", "fields": ["name"], "presence": "full"}),
    )
    .await;
    let more = add_partner(
        &app,
        json!({"name": "more", "fields": ["name", "title", "department", "org_unit", "location", "email", "work_phone"]}),
    )
    .await;
    // Jane's title, department, email and mobile are hidden from the first: words of them
    // find nothing, beside her name or alone.
    for q in [
        "jane%20account",
        "jane%20sales",
        "smith%20example",
        "jane%200770",
        "example",
    ] {
        let (status, body) = shared(&app, &names_only, &format!("/shared/v1/people?q={q}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(names(&body), Vec::<String>::new(), "{q}: {body}");
    }
    let (_, body) = shared(&app, &names_only, "/shared/v1/people?q=jane%20smith").await;
    assert!(names(&body).contains(&"Jane Smith".to_string()), "{body}");
    // The second sees title and email: they find her.
    for q in ["jane%20account", "smith%20example"] {
        let (_, body) = shared(&app, &more, &format!("/shared/v1/people?q={q}")).await;
        assert!(
            names(&body).contains(&"Jane Smith".to_string()),
            "{q}: {body}"
        );
    }
    // Full presence without handles: availability and status, not the channels that name them.
    let jane = &body_of(&app, &names_only, "jane%20smith").await["items"][0];
    assert_eq!(jane["presence"]["availability"], "busy");
    assert_eq!(jane["presence"]["channels"], json!([]), "{jane}");
    // Punctuation is no query.
    let (status, _) = shared(&app, &names_only, "/shared/v1/people?q=...").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn body_of(app: &TestApp, key: &str, q: &str) -> Value {
    shared(app, key, &format!("/shared/v1/people?q={q}"))
        .await
        .1
}
