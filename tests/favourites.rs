//! Each signed-in person's board of favourites (the console's busy-lamp field): kept per user,
//! in their order, through their policy; refused to service tokens, to nobody, and without
//! the CSRF token.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{options, TestApp};

const PEOPLE: &str = "\
external_id,given_name,family_name,email,department,location
1,Jane,Smith,jane.smith@example.com,Sales,London
2,Janet,Jones,janet.jones@example.com,Sales,London
3,Jürgen,Müller,juergen.mueller@example.com,Engineering,Berlin
4,Margaret,Hughes,margaret.hughes@example.com,Facilities,London
";

fn names(body: &serde_json::Value) -> Vec<String> {
    common::display_names(body)
}

#[tokio::test]
async fn a_board_is_kept_per_person_in_their_order_and_scope() {
    let config = common::viewers_see_only(&["Sales", "Facilities"]);
    let mut app = TestApp::with(config, switchboard::presence::PresenceHub::disabled()).await;
    app.import_csv(PEOPLE, &options("hr"))
        .await
        .expect("import");
    for user in ["rita", "sam"] {
        switchboard::access::users::add(
            &app.db.pool,
            user,
            switchboard::access::Role::Viewer,
            Some("correct horse battery".into()),
        )
        .await
        .expect("user");
    }
    let (cookie, csrf) = app.sign_in("rita", "correct horse battery").await;
    let request = |method: Method, body: Option<String>, csrf: Option<&str>| {
        let mut r = Request::builder()
            .method(method)
            .uri("/api/v1/me/favourites")
            .header("cookie", &cookie)
            .header("content-type", "application/json");
        if let Some(t) = csrf {
            r = r.header("x-csrf-token", t);
        }
        r.body(Body::from(body.unwrap_or_default()))
            .expect("request")
    };
    let (hughes, jane, muller) = (
        app.id_of("Hughes").await,
        app.id_of("Smith").await,
        app.id_of("Müller").await,
    );
    // Hughes first, Jane twice, Müller (out of Rita's scope) and someone who does not exist.
    let ids = serde_json::json!({"ids": [hughes, jane, muller, jane, uuid::Uuid::nil()]});
    let (status, _, body) = app
        .send(request(Method::PUT, Some(ids.to_string()), Some(&csrf)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(names(&body), ["Margaret Hughes", "Jane Smith"]);
    let (status, _, body) = app.send(request(Method::GET, None, None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names(&body), ["Margaret Hughes", "Jane Smith"]);

    // Sam's board is his own.
    let (sam_cookie, _) = app.sign_in("sam", "correct horse battery").await;
    let (status, _, body) = app
        .send(
            Request::get("/api/v1/me/favourites")
                .header("cookie", &sam_cookie)
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(names(&body).is_empty(), "{body}");

    // Without the CSRF token, nothing changes; too many people are refused.
    let (status, _, _) = app
        .send(request(Method::PUT, Some(r#"{"ids":[]}"#.into()), None))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let too_many: Vec<uuid::Uuid> = (0..201).map(|i| uuid::Uuid::from_u128(i + 1)).collect();
    let (status, _, _) = app
        .send(request(
            Method::PUT,
            Some(serde_json::json!({ "ids": too_many }).to_string()),
            Some(&csrf),
        ))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, _, body) = app.send(request(Method::GET, None, None)).await;
    assert_eq!(names(&body), ["Margaret Hughes", "Jane Smith"], "unchanged");

    // Nobody, and service tokens (not a person), have no board.
    let (status, _, _) = app
        .send(
            Request::get("/api/v1/me/favourites")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = app.get("/api/v1/me/favourites").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
