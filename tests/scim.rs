//! The shared directory as a read-only SCIM 2.0 service: `scim2-tester` (PyPI, pinned, in its
//! own venv from `scripts/setup`) checks discovery and our reads over HTTP, with a partner's
//! key; and the partner's policy holds in SCIM as in `/shared/v1`.

mod common;

use std::path::Path;

use common::{options, TestApp};
use serde_json::{json, Value};

const PEOPLE: &str = "\
external_id,given_name,family_name,email,title,department,location,phone,mobile
1,Jane,Smith,jane.smith@example.com,Account Manager,Sales,London,+44 20 7946 0018,+44 7700 900461
2,John,Smithers,john.smithers@example.com,Engineer,Engineering,Berlin,+49 30 901820,
3,Janet,Smithson,janet.smithson@example.com,Sales Lead,Sales,Berlin,+49 30 901821,
";

async fn partner(app: &TestApp, name: &str, settings: Value) -> String {
    let settings = serde_json::from_value(settings).expect("settings");
    switchboard::access::partners::add(&app.db.pool, &Default::default(), name, &settings)
        .await
        .expect("partner")
        .1
}

#[tokio::test]
async fn scim2_tester_passes_the_read_only_service() {
    let mut app = TestApp::new().await;
    app.import_csv(PEOPLE, &options("hr"))
        .await
        .expect("import");
    let key = partner(
        &app,
        "acme",
        // scim2-tester asks quickly: more than a partner's default ten a second.
        json!({"fields": ["name", "title", "department", "location", "work_phone", "mobile", "email"], "rate": "1000/s"}),
    )
    .await;
    let url = app.serve().await;
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp/scim-venv/bin/python");
    let script = common::fixture("scim/scim_tester.py");
    let out = tokio::process::Command::new(&python)
        .arg(&script)
        .arg(format!("{url}/scim/v2"))
        .arg(&key)
        .arg(r#"name.familyName sw "Smi""#)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/setup)", python.display()));
    let printed = String::from_utf8_lossy(&out.stdout);
    println!("{printed}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "scim2-tester found errors:\n{printed}"
    );
    assert!(printed.contains("users_filter"), "{printed}");
}

#[tokio::test]
async fn scim_users_follow_the_partner_policy_and_filters() {
    let mut app = TestApp::new().await;
    app.import_csv(PEOPLE, &options("hr"))
        .await
        .expect("import");
    let key = partner(
        &app,
        "acme",
        json!({"fields": ["name", "title", "email"], "scope": {"department": ["Sales"]}}),
    )
    .await;
    let client = reqwest::Client::new();
    let url = app.serve().await;
    let get = |query: &str| {
        let request = client
            .get(format!("{url}/scim/v2/Users?{query}"))
            .bearer_auth(&key);
        async move {
            let response = request.send().await.expect("send");
            let status = response.status();
            let ct = response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap_or_default().to_string())
                .unwrap_or_default();
            (
                status,
                ct,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let enc = |f: &str| form_urlencoded::byte_serialize(f.as_bytes()).collect::<String>();
    let (status, ct, body) = get(&format!("filter={}", enc(r#"name.familyName sw "smith""#))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ct, "application/scim+json");
    assert_eq!(
        body["totalResults"], 2,
        "Sales only, and the total counts only them: {body}"
    );
    let users = body["Resources"].as_array().expect("resources");
    let jane = users
        .iter()
        .find(|u| u["userName"] == "jane.smith@example.com")
        .expect("jane");
    assert_eq!(jane["name"]["familyName"], "Smith");
    assert_eq!(jane["title"], "Account Manager");
    assert!(
        jane.get("phoneNumbers").is_none(),
        "no numbers granted: {jane}"
    );
    assert!(
        jane.get(switchboard::http::scim::ENTERPRISE).is_none(),
        "no department: {jane}"
    );
    // or, and, co; out of scope John is nobody.
    let (_, _, body) = get(&format!(
        "filter={}",
        enc(r#"userName eq "john.smithers@example.com" or emails.value co "janet""#)
    ))
    .await;
    assert_eq!(body["totalResults"], 1, "{body}");
    assert_eq!(body["Resources"][0]["displayName"], "Janet Smithson");
    let (_, _, body) = get(&format!(
        "filter={}",
        enc(r#"name.givenName eq "jane" and name.familyName sw "smi""#)
    ))
    .await;
    assert_eq!(body["totalResults"], 1, "{body}");
    let id = body["Resources"][0]["id"].as_str().expect("id").to_string();
    // The same id as /shared/v1 gives.
    let shared: Value = client
        .get(format!("{url}/shared/v1/people?q=jane%20smith"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    assert_eq!(shared["items"][0]["id"], id.as_str());
    // No filter, a filter that could match anyone, values too short: refused.
    for query in [
        String::new(),
        format!("filter={}", enc("title pr")),
        format!("filter={}", enc(r#"userName sw "j""#)),
    ] {
        let (status, _, body) = get(&query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["scimType"], "tooMany", "{body}");
    }
    let (status, _, body) = get(&format!("filter={}", enc("userName eq"))).await;
    assert_eq!(status, 400);
    assert_eq!(body["scimType"], "invalidFilter", "{body}");
    // Pages within the matches; attributes projected.
    let (_, _, body) = get(&format!(
        "filter={}&startIndex=2&count=1&attributes=userName",
        enc(r#"name.familyName sw "smith""#)
    ))
    .await;
    assert_eq!(body["totalResults"], 2);
    assert_eq!(body["startIndex"], 2);
    let only = body["Resources"][0].as_object().expect("user");
    let mut keys: Vec<&String> = only.keys().collect();
    keys.sort();
    assert_eq!(keys, ["id", "schemas", "userName"]);
    // Writes: SCIM's error for what a read-only service does not do.
    let response = client
        .post(format!("{url}/scim/v2/Users"))
        .bearer_auth(&key)
        .json(&json!({"schemas": [switchboard::http::scim::USER], "userName": "x"}))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["content-type"], "application/scim+json");
    let error: Value = response.json().await.expect("json");
    assert_eq!(error["status"], "405");
    assert_eq!(
        error["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
    );
    // Staff tokens are not partner keys.
    let response = client
        .get(format!(
            "{url}/scim/v2/Users?filter={}",
            enc(r#"userName eq "jane""#)
        ))
        .bearer_auth(&app.token)
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), 403);
}
