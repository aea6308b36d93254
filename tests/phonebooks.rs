//! Remote XML phone books as desk phones fetch them: HTTP Basic as a device, each vendor's
//! documented shape (the vendor's own example is kept in `tests/fixtures/phonebooks/`, its
//! source named), search and paging, the policy's scope, and refusals.

mod common;

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use base64::Engine;
use common::{options, TestApp};
use http_body_util::BodyExt;
use tower::ServiceExt;

const PEOPLE: &str = "\
external_id,given_name,family_name,email,phone,mobile,extension,title,department,location
1,Jane,Smith,jane.smith@example.com,+44 20 7946 0018,+44 7400 123456,,Head of Sales,Sales,London
2,Janet,Jones,janet.jones@example.com,+44 20 7946 0019,,4711,Account Manager,Sales,London
3,Tom,O'Neil & Sons,tom@example.com,+44 20 7946 0021,,,Engineer,Engineering,London
4,Margaret,Hughes,margaret.hughes@example.com,+44 20 7946 0020,,,Office Manager,Facilities,London
";

const VENDORS: [&str; 5] = ["cisco", "yealink", "snom", "polycom", "grandstream"];

/// The element paths (`root/child`) and attributes (`root/child@name`) of a document.
fn shape(xml: &str) -> (String, BTreeSet<String>) {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut root = String::new();
    let mut open = |start: &quick_xml::events::BytesStart, path: &mut Vec<String>| {
        path.push(String::from_utf8_lossy(start.name().as_ref()).into_owned());
        let here = path.join("/");
        for attribute in start.attributes().flatten() {
            seen.insert(format!(
                "{here}@{}",
                String::from_utf8_lossy(attribute.key.as_ref())
            ));
        }
        seen.insert(here);
    };
    loop {
        match reader.read_event().expect("well-formed XML") {
            quick_xml::events::Event::Start(start) => {
                open(&start, &mut path);
                if root.is_empty() {
                    root = path[0].clone();
                }
            }
            quick_xml::events::Event::Empty(start) => {
                open(&start, &mut path);
                if root.is_empty() {
                    root = path[0].clone();
                }
                path.pop();
            }
            quick_xml::events::Event::End(_) => {
                path.pop();
            }
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    (root, seen)
}

fn basic(name: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"))
    )
}

async fn fetch(
    app: &TestApp,
    uri: &str,
    auth: Option<&str>,
) -> (StatusCode, String, String, Option<String>) {
    let mut request = Request::get(uri);
    if let Some(auth) = auth {
        request = request.header(header::AUTHORIZATION, auth);
    }
    let response = app
        .router
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("response");
    let status = response.status();
    let header_of = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header_of(header::CONTENT_TYPE).unwrap_or_default();
    let challenge = header_of(header::WWW_AUTHENTICATE);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        content_type,
        String::from_utf8_lossy(&body).into_owned(),
        challenge,
    )
}

#[tokio::test]
async fn each_vendor_gets_its_documented_shape_with_basic_auth() {
    let mut app = TestApp::new().await;
    app.import_csv(PEOPLE, &options("hr"))
        .await
        .expect("import");
    let password = app.device("desk-1").await;
    let auth = basic("desk-1", &password);
    for vendor in VENDORS {
        let (status, content_type, body, _) =
            fetch(&app, &format!("/phonebooks/{vendor}"), Some(&auth)).await;
        assert_eq!(status, StatusCode::OK, "{vendor}: {body}");
        assert_eq!(content_type, "text/xml; charset=utf-8");
        let fixture = std::fs::read_to_string(common::fixture(&format!("phonebooks/{vendor}.xml")))
            .expect("fixture");
        let (root, ours) = shape(&body);
        let (vendor_root, theirs) = shape(&fixture);
        assert_eq!(root, vendor_root, "{vendor}");
        let unknown: Vec<&String> = ours.difference(&theirs).collect();
        assert!(
            unknown.is_empty(),
            "{vendor}: not in the vendor's shape: {unknown:?}\n{body}"
        );
        // Every person and number is there, escaped as XML needs.
        assert!(body.contains("+442079460018"), "{vendor}: {body}");
        assert!(body.contains("+447400123456"), "{vendor}: {body}");
        assert!(body.contains("O&apos;Neil &amp; Sons"), "{vendor}: {body}");
        assert!(body.contains("Hughes"), "{vendor}: {body}");
    }
    // Snom's remote directory fetches with POST.
    let response = app
        .router
        .clone()
        .oneshot(
            Request::post("/phonebooks/snom")
                .header(header::AUTHORIZATION, &auth)
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("<tbook"));

    // A search, as a phone sends what was typed.
    let (_, _, body, _) = fetch(&app, "/phonebooks/yealink?q=janet", Some(&auth)).await;
    assert!(
        body.contains("Janet Jones") && !body.contains("Hughes"),
        "{body}"
    );
    let (_, _, body, _) = fetch(&app, "/phonebooks/cisco?q=%2B442079460018", Some(&auth)).await;
    assert!(body.contains("Jane Smith (work)"), "{body}");
    assert!(body.contains("Records 1 to 1 of 1"), "{body}");
    // Cisco: ten people a page (32 entries at most); the Refresh header leads to the next page.
    let more: String = (0..12)
        .map(|i| {
            format!(
                "x{i},Extra{i},Person,extra{i}@example.com,+44 20 7946 01{i:02},,,,Sales,London\n"
            )
        })
        .collect();
    app.import_csv(&format!("{PEOPLE}{more}"), &options("hr"))
        .await
        .expect("import");
    let page = |n: usize| {
        Request::get(format!("/phonebooks/cisco?page={n}"))
            .header(header::AUTHORIZATION, &auth)
            .header(header::HOST, "switchboard.example.com")
            .body(Body::empty())
            .expect("request")
    };
    let first = app.router.clone().oneshot(page(1)).await.expect("response");
    assert_eq!(
        first.headers()[header::REFRESH],
        "0; url=http://switchboard.example.com/phonebooks/cisco?q=&page=2"
    );
    let body = first.into_body().collect().await.expect("body").to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("Records 1 to 10 of 16"));
    let second = app.router.clone().oneshot(page(2)).await.expect("response");
    assert!(
        second.headers().get(header::REFRESH).is_none(),
        "the last page"
    );
    let body = second.into_body().collect().await.expect("body").to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("Records 11 to 16 of 16"));

    // Page 3 of sixteen people is empty.
    let (status, _, body, _) = fetch(&app, "/phonebooks/cisco?page=3", Some(&auth)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!body.contains("<DirectoryEntry>"), "{body}");
    let (status, _, _, _) = fetch(&app, "/phonebooks/cisco?page=0", Some(&auth)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _, _) = fetch(&app, "/phonebooks/nokia", Some(&auth)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // No credentials, a wrong password, or a removed device: 401 asking for Basic.
    for auth in [
        None,
        Some(basic("desk-1", "wrong")),
        Some(basic("nobody", &password)),
    ] {
        let (status, _, body, challenge) = fetch(&app, "/phonebooks/snom", auth.as_deref()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert!(challenge.is_some_and(|c| c.starts_with("Basic ")));
        assert!(!body.contains("Smith"));
    }
    // Basic is taken only by address books: elsewhere it is no credential at all.
    let (status, _, _, challenge) = fetch(&app, "/api/v1/people?q=smith", Some(&auth)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.is_some_and(|c| c.starts_with("Bearer ")));

    // Devices' requests are audited (they are not staff).
    let actions = app.audit_actions().await;
    assert!(
        actions.contains(&(
            "device:desk-1".to_string(),
            "GET /phonebooks/{vendor}".to_string()
        )),
        "{actions:?}"
    );
}

#[tokio::test]
async fn a_scoped_policy_leaves_people_out_as_if_they_did_not_exist() {
    let config = common::viewers_see_only(&["Sales"]);
    let mut app = TestApp::with(config, switchboard::presence::PresenceHub::disabled()).await;
    app.import_csv(PEOPLE, &options("hr"))
        .await
        .expect("import");
    let password = app.device("desk-1").await;
    let auth = basic("desk-1", &password);
    for vendor in VENDORS {
        let (status, _, body, _) = fetch(&app, &format!("/phonebooks/{vendor}"), Some(&auth)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body.contains("Smith") && body.contains("Jones"),
            "{vendor}: {body}"
        );
        assert!(
            !body.contains("Hughes") && !body.contains("Neil"),
            "{vendor}: {body}"
        );
    }
    let (_, _, body, _) = fetch(&app, "/phonebooks/cisco?q=hughes", Some(&auth)).await;
    assert!(body.contains("No matches"), "{body}");
}
