//! Access through the real router and a real PostgreSQL: every route's requirement against
//! every kind of caller, local sign-in and sessions (expiry, rotation, sign-out, CSRF),
//! throttling, service tokens, policies, and the audit trail.

mod common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use common::TestApp;
use switchboard::access::{tokens, users, Role};
use switchboard::config::Config;
use switchboard::http::auth::{Requirement, Rules};
use tower::ServiceExt;

const PEOPLE: &str = "\
external_id,given_name,family_name,email,phone,mobile,home_phone,department,location
e1,Jane,Smith,jane@example.com,+44 20 7946 0018,+44 7911 123456,+44 20 8123 4567,Engineering,London
e2,John,Brown,john@example.com,+44 20 7946 0019,,,Engineering,Berlin
s1,Sally,Seller,sally@example.com,+44 20 7946 0020,+44 7911 123457,,Sales,London
s2,Sam,Sales,sam@example.com,+44 20 7946 0021,,,Sales,Paris
";

fn addr(last: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, last], 40000))
}

/// A request from `from`, as the real server would see it.
fn request(method: Method, uri: &str, from: SocketAddr) -> axum::http::request::Builder {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(ext) = builder.extensions_mut() {
        ext.insert(ConnectInfo(from));
    }
    builder
}

/// Status only: some routes stream forever, so the body is never read.
async fn status_of(app: &TestApp, req: Request<Body>) -> StatusCode {
    app.router
        .clone()
        .oneshot(req)
        .await
        .expect("response")
        .status()
}

/// The id of the person called `name` in a search response.
fn id_of(found: &serde_json::Value, name: &str) -> String {
    found["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|p| p["display_name"] == name)
        .expect(name)["id"]
        .as_str()
        .expect("id")
        .to_string()
}

#[tokio::test]
async fn every_route_refuses_the_wrong_caller() {
    let app = TestApp::new().await;
    let viewer = tokens::add(&app.db.pool, "viewer", Role::Viewer)
        .await
        .expect("token");
    let admin = app.token.clone();
    let (_, partner) = switchboard::access::partners::add(
        &app.db.pool,
        &Default::default(),
        "acme",
        &Default::default(),
    )
    .await
    .expect("partner");
    let spec = switchboard::http::openapi::spec();
    let rules = Rules::from_spec(&spec);
    let mut checked = 0;
    for ((method, path), requirement) in rules.iter() {
        assert_ne!(
            *requirement,
            Requirement::Undeclared,
            "{method} {path} declares no requirement"
        );
        let uri = if path.contains("presence") && !path.ends_with("events") {
            format!(
                "{}?ids=00000000-0000-0000-0000-000000000001",
                common::sample_path(path)
            )
        } else {
            common::sample_path(path)
        };
        let call = |token: Option<&str>| {
            let mut r = request(method.clone(), &uri, addr(1));
            if let Some(t) = token {
                r = r.header("authorization", format!("Bearer {t}"));
            }
            r.header("content-type", "application/json")
                .body(Body::from("{}"))
                .expect("request")
        };
        let nobody = status_of(&app, call(None)).await;
        let wrong = status_of(&app, call(Some("sbt_not-a-token"))).await;
        let as_viewer = status_of(&app, call(Some(&viewer))).await;
        let as_admin = status_of(&app, call(Some(&admin))).await;
        let as_partner = status_of(&app, call(Some(&partner))).await;
        let refused = |s: StatusCode| s == StatusCode::UNAUTHORIZED || s == StatusCode::FORBIDDEN;
        let what = format!("{method} {uri} ({requirement:?}): anonymous {nobody}, wrong token {wrong}, viewer {as_viewer}, admin {as_admin}, partner {as_partner}");
        // A partner's key opens the shared directory and nothing else.
        match requirement {
            Requirement::Partner => assert!(!refused(as_partner), "{what}"),
            Requirement::Public => assert!(!refused(as_partner), "{what}"),
            Requirement::Webhook => assert_eq!(as_partner, StatusCode::UNAUTHORIZED, "{what}"),
            _ => assert_eq!(as_partner, StatusCode::FORBIDDEN, "{what}"),
        }
        match requirement {
            Requirement::Partner => {
                assert_eq!(nobody, StatusCode::UNAUTHORIZED, "{what}");
                assert_eq!(wrong, StatusCode::UNAUTHORIZED, "{what}");
                assert_eq!(
                    as_viewer,
                    StatusCode::FORBIDDEN,
                    "{what}: staff use /api/v1"
                );
                assert_eq!(as_admin, StatusCode::FORBIDDEN, "{what}");
            }
            Requirement::Public => {
                assert!(!refused(nobody) && !refused(as_viewer), "{what}");
            }
            // A service token has no sessions to end and no board of favourites: refused even
            // for an admin's.
            Requirement::Role(_)
                if path == "/api/v1/auth/logout-all" || path.starts_with("/api/v1/me/") =>
            {
                assert_eq!(nobody, StatusCode::UNAUTHORIZED, "{what}");
                assert_eq!(wrong, StatusCode::UNAUTHORIZED, "{what}");
                assert_eq!(as_admin, StatusCode::FORBIDDEN, "{what}");
            }
            Requirement::Role(role) => {
                assert_eq!(nobody, StatusCode::UNAUTHORIZED, "{what}");
                assert_eq!(wrong, StatusCode::UNAUTHORIZED, "{what}");
                assert!(!refused(as_admin), "{what}");
                if *role > Role::Viewer {
                    assert_eq!(as_viewer, StatusCode::FORBIDDEN, "{what}");
                } else {
                    assert!(!refused(as_viewer), "{what}");
                }
            }
            Requirement::SelfOr(_) => {
                // The handler decides: a viewer who is not the person is refused (here: nobody
                // has that id, so it is a 404, as for anyone).
                assert_eq!(nobody, StatusCode::UNAUTHORIZED, "{what}");
                assert_eq!(wrong, StatusCode::UNAUTHORIZED, "{what}");
                assert!(!as_viewer.is_success(), "{what}");
                assert!(!refused(as_admin), "{what}");
            }
            Requirement::Webhook => {
                // Only a webhook backend's own token: staff and service tokens are not it.
                for s in [nobody, wrong, as_viewer, as_admin] {
                    assert_eq!(s, StatusCode::UNAUTHORIZED, "{what}");
                }
            }
            Requirement::Metrics => {
                assert_eq!(nobody, StatusCode::UNAUTHORIZED, "{what}");
                assert_eq!(wrong, StatusCode::UNAUTHORIZED, "{what}");
                assert_eq!(as_viewer, StatusCode::OK, "{what}: any service token");
                assert_eq!(as_admin, StatusCode::OK, "{what}");
            }
            Requirement::Undeclared => unreachable!(),
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} routes");
    // The page and its assets are open; an unknown route is a 404 to anyone.
    let page = status_of(
        &app,
        request(Method::GET, "/", addr(1))
            .body(Body::empty())
            .expect("r"),
    )
    .await;
    assert_eq!(page, StatusCode::OK);
    let unknown = status_of(
        &app,
        request(Method::GET, "/api/v1/nothing-here", addr(1))
            .body(Body::empty())
            .expect("r"),
    )
    .await;
    assert_eq!(unknown, StatusCode::NOT_FOUND);
}

#[test]
fn an_operation_without_security_is_refused_to_everyone() {
    let op = serde_json::json!({"responses": {}});
    assert_eq!(Requirement::of_operation(&op), Requirement::Undeclared);
    let public = serde_json::json!({"security": [{}]});
    assert_eq!(Requirement::of_operation(&public), Requirement::Public);
    let admin = serde_json::json!({"security": [{"session": ["admin"]}, {"bearer": ["admin"]}]});
    assert_eq!(
        Requirement::of_operation(&admin),
        Requirement::Role(Role::Admin)
    );
}

/// Signs in; answers the status, the session cookie (`name=value`) and the CSRF token.
async fn sign_in(
    app: &TestApp,
    user: &str,
    password: &str,
    from: SocketAddr,
) -> (
    StatusCode,
    Option<String>,
    Option<String>,
    axum::http::HeaderMap,
) {
    sign_in_with(app, user, password, from, None).await
}

async fn sign_in_with(
    app: &TestApp,
    user: &str,
    password: &str,
    from: SocketAddr,
    cookie: Option<&str>,
) -> (
    StatusCode,
    Option<String>,
    Option<String>,
    axum::http::HeaderMap,
) {
    let mut r = request(Method::POST, "/api/v1/auth/login", from)
        .header("content-type", "application/json");
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    let body = serde_json::json!({"username": user, "password": password}).to_string();
    let (status, headers, json) = app.send(r.body(Body::from(body)).expect("request")).await;
    let cookie = headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().to_string());
    let csrf = json["csrf_token"].as_str().map(str::to_string);
    (status, cookie, csrf, headers)
}

async fn with_cookie(
    app: &TestApp,
    method: Method,
    uri: &str,
    cookie: &str,
    csrf: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let mut r = request(method, uri, addr(1)).header("cookie", cookie);
    if let Some(t) = csrf {
        r = r.header("x-csrf-token", t);
    }
    let (status, _, json) = app.send(r.body(Body::empty()).expect("request")).await;
    (status, json)
}

#[tokio::test]
async fn local_sign_in_sessions_and_sign_out() {
    let mut config = Config::default();
    config.access.session_idle = "30m".into();
    config.access.session_absolute = "1h".into();
    let mut app = TestApp::with(config, switchboard::presence::PresenceHub::disabled()).await;
    app.import_csv(PEOPLE, &common::options("hr"))
        .await
        .expect("import");
    users::add(
        &app.db.pool,
        "rita",
        Role::Receptionist,
        Some("rita-password".into()),
    )
    .await
    .expect("user");

    let (status, cookie, _, _) = sign_in(&app, "rita", "wrong-password", addr(2)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(cookie, None);
    let (status, _, _, _) = sign_in(&app, "nobody", "rita-password", addr(2)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "unknown names answer as wrong passwords"
    );

    let (status, cookie, csrf, headers) = sign_in(&app, "rita", "rita-password", addr(2)).await;
    assert_eq!(status, StatusCode::OK);
    let set_cookie = headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .expect("set-cookie");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    assert!(!set_cookie.contains("Secure"), "plain http: {set_cookie}");
    let cookie = cookie.expect("cookie");
    let csrf = csrf.expect("csrf");

    let (status, me) = with_cookie(&app, Method::GET, "/api/v1/auth/session", &cookie, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["principal"], "local:rita");
    assert_eq!(me["role"], "receptionist");
    assert_eq!(me["csrf_token"], csrf.as_str());
    let (status, found) =
        with_cookie(&app, Method::GET, "/api/v1/people?q=jane", &cookie, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["items"][0]["display_name"], "Jane Smith");
    let (status, _) = with_cookie(&app, Method::GET, "/api/v1/sync/runs", &cookie, None).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "receptionists are not admins"
    );

    // State changes with the cookie need the CSRF token.
    let (status, body) =
        with_cookie(&app, Method::POST, "/api/v1/auth/logout", &cookie, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "csrf_failed");
    let (status, body) = with_cookie(
        &app,
        Method::POST,
        "/api/v1/auth/logout",
        &cookie,
        Some("forged"),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("csrf_failed"))
    );

    // Idle expiry: active every 20 minutes it lives; the absolute limit ends it anyway.
    for _ in 0..2 {
        app.advance(chrono::Duration::minutes(20));
        let (status, _) =
            with_cookie(&app, Method::GET, "/api/v1/auth/session", &cookie, None).await;
        assert_eq!(status, StatusCode::OK);
    }
    app.advance(chrono::Duration::minutes(21));
    let (status, _) = with_cookie(&app, Method::GET, "/api/v1/auth/session", &cookie, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "past the absolute limit");

    // Idle: 31 minutes without a request.
    let (_, cookie, _, _) = sign_in(&app, "rita", "rita-password", addr(2)).await;
    let cookie = cookie.expect("cookie");
    app.advance(chrono::Duration::minutes(31));
    let (status, _) = with_cookie(&app, Method::GET, "/api/v1/auth/session", &cookie, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "idle too long");

    // Sign-in rotates: the cookie the browser had before is dead afterwards.
    let (_, first, _, _) = sign_in(&app, "rita", "rita-password", addr(2)).await;
    let first = first.expect("cookie");
    let (_, second, csrf2, _) =
        sign_in_with(&app, "rita", "rita-password", addr(2), Some(&first)).await;
    let second = second.expect("cookie");
    assert_ne!(first, second);
    assert_eq!(
        with_cookie(&app, Method::GET, "/api/v1/auth/session", &first, None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        with_cookie(&app, Method::GET, "/api/v1/auth/session", &second, None)
            .await
            .0,
        StatusCode::OK
    );

    // Sign out: that session ends.
    let (status, _) = with_cookie(
        &app,
        Method::POST,
        "/api/v1/auth/logout",
        &second,
        csrf2.as_deref(),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        with_cookie(&app, Method::GET, "/api/v1/auth/session", &second, None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    // Sign out everywhere: two devices, one request, both end.
    let (_, a, csrf_a, _) = sign_in(&app, "rita", "rita-password", addr(2)).await;
    let (_, b, _, _) = sign_in(&app, "rita", "rita-password", addr(3)).await;
    let (a, b) = (a.expect("a"), b.expect("b"));
    let (status, body) = with_cookie(
        &app,
        Method::POST,
        "/api/v1/auth/logout-all",
        &a,
        csrf_a.as_deref(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["sessions"], 2);
    for c in [&a, &b] {
        assert_eq!(
            with_cookie(&app, Method::GET, "/api/v1/people", c, None)
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
    }

    // A new password ends every session too.
    let (_, c, _, _) = sign_in(&app, "rita", "rita-password", addr(2)).await;
    users::set_password(&app.db.pool, "rita", Some("another-password".into()))
        .await
        .expect("passwd");
    app.advance(chrono::Duration::seconds(6)); // past the other-process cache
    assert_eq!(
        with_cookie(&app, Method::GET, "/api/v1/people", &c.expect("c"), None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    let actions = app.audit_actions().await;
    for (principal, action) in [
        ("local:rita", "sign_in"),
        ("anonymous:rita", "sign_in_failed"),
        ("anonymous:nobody", "sign_in_failed"),
        ("local:rita", "sign_out_everywhere"),
        // A refused admin action is recorded too.
        ("local:rita", "GET /api/v1/sync/runs"),
    ] {
        assert!(
            actions.contains(&(principal.to_string(), action.to_string())),
            "{principal} {action}: {actions:?}"
        );
    }
    assert!(
        !actions.iter().any(|(_, a)| a == "GET /api/v1/people"),
        "staff lookups are not recorded by default"
    );
}

#[tokio::test]
async fn failed_sign_ins_are_throttled_per_account_and_per_address() {
    let app = TestApp::new().await;
    users::add(
        &app.db.pool,
        "tom",
        Role::Viewer,
        Some("tom-password".into()),
    )
    .await
    .expect("user");
    for _ in 0..5 {
        assert_eq!(
            sign_in(&app, "tom", "guess", addr(10)).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (status, _, _, headers) = sign_in(&app, "tom", "tom-password", addr(11)).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the account is held, from any address"
    );
    let retry: u64 = headers["retry-after"]
        .to_str()
        .expect("retry-after")
        .parse()
        .expect("secs");
    assert!((1..=900).contains(&retry), "{retry}");
    app.advance(chrono::Duration::minutes(15));
    assert_eq!(
        sign_in(&app, "tom", "tom-password", addr(11)).await.0,
        StatusCode::OK
    );

    // One address trying many names.
    for i in 0..20 {
        assert_eq!(
            sign_in(&app, &format!("guess{i}"), "x", addr(20)).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        sign_in(&app, "tom", "tom-password", addr(20)).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        sign_in(&app, "tom", "tom-password", addr(21)).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn service_tokens_work_until_revoked_and_their_requests_are_audited() {
    let mut app = TestApp::new().await;
    app.import_csv(PEOPLE, &common::options("hr"))
        .await
        .expect("import");
    let token = tokens::add(&app.db.pool, "crm", Role::Viewer)
        .await
        .expect("token");
    assert!(
        tokens::add(&app.db.pool, "crm", Role::Viewer)
            .await
            .is_err(),
        "one live token per name"
    );
    let get = |t: String, uri: &'static str| {
        request(Method::GET, uri, addr(5))
            .header("authorization", format!("Bearer {t}"))
            .body(Body::empty())
            .expect("request")
    };
    let (status, _, found) = app.send(get(token.clone(), "/api/v1/people?q=smith")).await;
    assert_eq!(status, StatusCode::OK);
    let jane = found["items"][0]["id"].as_str().expect("id").to_string();
    assert_eq!(
        app.send(get(token.clone(), "/api/v1/sync/runs")).await.0,
        StatusCode::FORBIDDEN
    );

    assert!(tokens::revoke(&app.db.pool, "crm").await.expect("revoke"));
    app.advance(chrono::Duration::seconds(6));
    let (status, headers, body) = app.send(get(token.clone(), "/api/v1/people?q=smith")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], "unauthorized");
    assert!(headers.contains_key("www-authenticate"));
    assert_eq!(headers["content-type"], "application/problem+json");

    app.flush_audit().await;
    type Row = (
        String,
        String,
        Option<String>,
        Vec<uuid::Uuid>,
        i16,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT principal, action, query, people, status, address FROM audit_log WHERE principal = 'token:crm' ORDER BY seq",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("audit");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0].1, "GET /api/v1/people");
    assert_eq!(rows[0].2.as_deref(), Some("q=smith"));
    assert_eq!(rows[0].3, vec![uuid::Uuid::parse_str(&jane).expect("uuid")]);
    assert_eq!((rows[0].4, rows[0].5.as_deref()), (200, Some("10.0.0.5")));
    assert_eq!(
        (rows[1].1.as_str(), rows[1].4),
        ("GET /api/v1/sync/runs", 403)
    );
}

#[tokio::test]
async fn a_policy_limits_people_fields_and_presence_inside_the_search() {
    let mut config = Config::default();
    let mut viewer = switchboard::access::Policy::staff_default();
    viewer.scope.department = vec!["Engineering".into()];
    viewer
        .fields
        .remove(&switchboard::access::PersonField::Mobile);
    config.access.policies.insert(Role::Viewer, viewer);
    config.audit.staff_lookups = true;
    let mut app = TestApp::with(config, switchboard::presence::PresenceHub::disabled()).await;
    app.import_csv(PEOPLE, &common::options("hr"))
        .await
        .expect("import");
    let token = tokens::add(&app.db.pool, "desk", Role::Viewer)
        .await
        .expect("token");
    let as_viewer = |uri: String| {
        request(Method::GET, &uri, addr(6))
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .expect("request")
    };

    // Admin (everything) first, for the ids.
    let (_, _, all) = app.get("/api/v1/people?facets=true").await;
    assert_eq!(all["total"], 4);
    let id_of = |name: &str| id_of(&all, name);
    let (jane, sally) = (id_of("Jane Smith"), id_of("Sally Seller"));
    let (_, _, jane_full) = app.get(&format!("/api/v1/people/{jane}")).await;
    let kinds = |p: &serde_json::Value| -> Vec<String> {
        p["phones"]
            .as_array()
            .expect("phones")
            .iter()
            .map(|x| x["kind"].as_str().expect("kind").to_string())
            .collect()
    };
    assert_eq!(kinds(&jane_full), ["work", "mobile", "home"]);

    // The viewer: Engineering only, counted inside the search, no mobile, no home.
    let (status, _, seen) = app
        .send(as_viewer("/api/v1/people?facets=true".into()))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen["total"], 2, "{seen}");
    assert_eq!(common::display_names(&seen), ["Jane Smith", "John Brown"]);
    let departments: Vec<&str> = seen["facets"]["department"]
        .as_array()
        .expect("facets")
        .iter()
        .map(|f| f["value"].as_str().expect("v"))
        .collect();
    assert_eq!(departments, ["Engineering"]);
    let (_, _, sales) = app.send(as_viewer("/api/v1/people?q=sally".into())).await;
    assert_eq!(sales["total"], 0);
    let (status, _, jane_seen) = app.send(as_viewer(format!("/api/v1/people/{jane}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kinds(&jane_seen), ["work"]);

    // Out of scope answers exactly as nobody.
    let (s1, _, out_of_scope) = app.send(as_viewer(format!("/api/v1/people/{sally}"))).await;
    let (s2, _, nobody) = app
        .send(as_viewer(format!(
            "/api/v1/people/{}",
            uuid::Uuid::new_v4()
        )))
        .await;
    assert_eq!((s1, &out_of_scope), (s2, &nobody));
    assert_eq!(s1, StatusCode::NOT_FOUND);
    let (s1, _, b1) = app
        .send(as_viewer("/api/v1/people/by-phone/%2B442079460020".into()))
        .await;
    let (s2, _, b2) = app
        .send(as_viewer("/api/v1/people/by-phone/%2B442079469999".into()))
        .await;
    assert_eq!((s1, b1["code"].clone()), (s2, b2["code"].clone()));
    assert_eq!(s1, StatusCode::NOT_FOUND);
    // A hidden number finds nobody either; a visible one finds its owner.
    let (status, _, _) = app
        .send(as_viewer("/api/v1/people/by-phone/07911123456".into()))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "Jane's mobile is hidden from viewers"
    );
    let (status, _, owner) = app
        .send(as_viewer("/api/v1/people/by-phone/02079460018".into()))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(owner["items"][0]["display_name"], "Jane Smith");
    // A filter on a field the caller may see works; presence only for people in scope.
    let (status, _, filtered) = app
        .send(as_viewer("/api/v1/people?location=London".into()))
        .await;
    assert_eq!(
        (status, filtered["total"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    let (status, _, presence) = app
        .send(as_viewer(format!("/api/v1/presence?ids={jane},{sally}")))
        .await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = presence["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, [jane.as_str()]);

    // Staff lookups are audited when asked, with the people returned.
    app.flush_audit().await;
    let returned: Vec<Vec<uuid::Uuid>> = sqlx::query_scalar(
        "SELECT people FROM audit_log WHERE principal = 'token:desk' AND action = 'GET /api/v1/people/{id}' ORDER BY seq",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("audit");
    assert_eq!(
        returned[0],
        vec![uuid::Uuid::parse_str(&jane).expect("uuid")]
    );
    assert!(
        returned[1].is_empty(),
        "nobody returned for the out-of-scope lookup"
    );
}

async fn verify(app: &TestApp) -> Option<String> {
    switchboard::audit::verify(&app.db.pool)
        .await
        .expect("verify")
        .problem
}

async fn tamper(app: &TestApp, sql: &str) {
    app.tamper(sql).await;
}

async fn swap(app: &TestApp, a: i64, b: i64) {
    tamper(
        app,
        &format!("UPDATE audit_log SET seq = -1 WHERE seq = {a}"),
    )
    .await;
    tamper(
        app,
        &format!("UPDATE audit_log SET seq = {a} WHERE seq = {b}"),
    )
    .await;
    tamper(
        app,
        &format!("UPDATE audit_log SET seq = {b} WHERE seq = -1"),
    )
    .await;
}

#[tokio::test]
async fn audit_verify_names_the_edited_deleted_or_reordered_record() {
    let mut app = TestApp::new().await;
    app.import_csv(PEOPLE, &common::options("hr"))
        .await
        .expect("import");
    for q in ["jane", "john", "sally", "sam", "smith", "brown"] {
        app.get(&format!("/api/v1/people?q={q}")).await;
    }
    app.flush_audit().await;
    let seqs: Vec<i64> = sqlx::query_scalar("SELECT seq FROM audit_log ORDER BY seq")
        .fetch_all(&app.db.pool)
        .await
        .expect("seqs");
    assert_eq!(seqs.len(), 6);
    assert_eq!(verify(&app).await, None);
    let report = switchboard::audit::verify(&app.db.pool)
        .await
        .expect("verify");
    assert_eq!(report.records, 6);

    // Append-only for everyone else.
    assert!(sqlx::query("DELETE FROM audit_log")
        .execute(&app.db.pool)
        .await
        .is_err());
    assert!(sqlx::query("UPDATE audit_log SET query = 'x'")
        .execute(&app.db.pool)
        .await
        .is_err());

    // Edited.
    tamper(
        &app,
        &format!(
            "UPDATE audit_log SET query = 'q=nobody' WHERE seq = {}",
            seqs[2]
        ),
    )
    .await;
    let problem = verify(&app).await.expect("edited");
    assert!(
        problem.contains(&format!("record {} was edited", seqs[2])),
        "{problem}"
    );
    tamper(
        &app,
        &format!(
            "UPDATE audit_log SET query = 'q=sally' WHERE seq = {}",
            seqs[2]
        ),
    )
    .await;
    assert_eq!(verify(&app).await, None, "restored");

    // Reordered: two records swap places.
    swap(&app, seqs[3], seqs[4]).await;
    let problem = verify(&app).await.expect("reordered");
    assert!(
        problem.contains(&format!("record {} is out of order", seqs[3])),
        "{problem}"
    );
    swap(&app, seqs[3], seqs[4]).await;
    assert_eq!(verify(&app).await, None, "restored");

    // Deleted.
    tamper(
        &app,
        &format!("DELETE FROM audit_log WHERE seq = {}", seqs[1]),
    )
    .await;
    let problem = verify(&app).await.expect("deleted");
    assert!(
        problem.contains(&format!("record {} does not follow", seqs[2]))
            && problem.contains("deleted"),
        "{problem}"
    );

    // Export both ways.
    let mut csv = Vec::new();
    let n = switchboard::audit::export(
        &app.db.pool,
        &switchboard::audit::ExportFilter::default(),
        switchboard::audit::ExportFormat::Csv,
        &mut csv,
    )
    .await
    .expect("csv");
    assert_eq!(n, 5);
    let text = String::from_utf8(csv).expect("utf8");
    assert_eq!(text.lines().count(), 6, "{text}");
    assert!(text.starts_with("seq,at,principal,action,query,people,status,address,hash\n"));
    let mut jsonl = Vec::new();
    switchboard::audit::export(
        &app.db.pool,
        &switchboard::audit::ExportFilter::default(),
        switchboard::audit::ExportFormat::Jsonl,
        &mut jsonl,
    )
    .await
    .expect("jsonl");
    let first: serde_json::Value = serde_json::from_str(
        String::from_utf8(jsonl)
            .expect("utf8")
            .lines()
            .next()
            .expect("line"),
    )
    .expect("json");
    assert_eq!(first["principal"], "token:test-admin");
    assert_eq!(first["action"], "GET /api/v1/people");
}

#[tokio::test]
async fn admins_read_the_audit_trail_over_http() {
    let mut app = TestApp::new().await;
    app.get("/api/v1/sync/runs").await;
    app.flush_audit().await;
    let (status, _, body) = app.get("/api/v1/audit?limit=10").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"][0]["action"], "GET /api/v1/sync/runs");
    assert_eq!(body["items"][0]["principal"], "token:test-admin");
    assert_eq!(body["items"][0]["hash"].as_str().map(str::len), Some(64));
    let (status, _, _) = app.get("/api/v1/audit?limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn readiness_details_are_for_admins() {
    let app = TestApp::new().await;
    let anonymous = request(Method::GET, "/readyz", addr(1))
        .body(Body::empty())
        .expect("r");
    let (status, _, bare) = app.send(anonymous).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bare, serde_json::json!({"status": "ready"}));
    let (_, _, detail) = app.get("/readyz").await;
    assert!(detail["indexed_people"].is_u64(), "{detail}");
}

#[tokio::test]
async fn an_open_server_needs_no_sign_in_and_says_so() {
    let mut config = Config::default();
    config.access.open = true;
    let app = TestApp::with(config, switchboard::presence::PresenceHub::disabled()).await;
    let (status, _, me) = app
        .send(
            request(Method::GET, "/api/v1/auth/session", addr(1))
                .body(Body::empty())
                .expect("r"),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["open"], true);
    let (_, _, methods) = app
        .send(
            request(Method::GET, "/api/v1/auth/methods", addr(1))
                .body(Body::empty())
                .expect("r"),
        )
        .await;
    assert_eq!(methods["open"], true);
    // And a closed one (the default) refuses the same request.
    let closed = TestApp::new().await;
    let (status, _, _) = closed
        .send(
            request(Method::GET, "/api/v1/auth/session", addr(1))
                .body(Body::empty())
                .expect("r"),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn absence_notes_by_the_person_or_by_reception_and_audited() {
    let mut app = TestApp::new().await;
    app.import_csv(PEOPLE, &common::options("hr"))
        .await
        .expect("import");
    let (_, _, all) = app.get("/api/v1/people").await;
    let id_of = |name: &str| id_of(&all, name);
    let (jane, john) = (id_of("Jane Smith"), id_of("John Brown"));
    users::add_with_email(
        &app.db.pool,
        "jane",
        Role::Viewer,
        Some("jane-password".into()),
        Some("Jane@Example.com"),
    )
    .await
    .expect("user");
    users::add(
        &app.db.pool,
        "rita",
        Role::Receptionist,
        Some("rita-password".into()),
    )
    .await
    .expect("user");
    let (_, jane_cookie, jane_csrf, _) = sign_in(&app, "jane", "jane-password", addr(7)).await;
    let (jane_cookie, jane_csrf) = (jane_cookie.expect("cookie"), jane_csrf.expect("csrf"));
    let (_, rita_cookie, rita_csrf, _) = sign_in(&app, "rita", "rita-password", addr(7)).await;
    let (rita_cookie, rita_csrf) = (rita_cookie.expect("cookie"), rita_csrf.expect("csrf"));
    let put = |cookie: &str, csrf: &str, id: &str, text: &str| {
        request(
            Method::PUT,
            &format!("/api/v1/people/{id}/notes/absence"),
            addr(7),
        )
        .header("cookie", cookie)
        .header("x-csrf-token", csrf)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::json!({"text": text}).to_string()))
        .expect("request")
    };

    // Jane sets her own; she may not set John's; reception may.
    let (status, _, note) = app
        .send(put(
            &jane_cookie,
            &jane_csrf,
            &jane,
            "at the dentist, back 14:00",
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{note}");
    assert_eq!(note["set_by"], "local:jane");
    let (status, _, body) = app
        .send(put(&jane_cookie, &jane_csrf, &john, "gone fishing"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _, _) = app
        .send(put(&rita_cookie, &rita_csrf, &john, "called in sick"))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, body) = app.send(put(&rita_cookie, "forged", &john, "x")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("csrf_failed"))
    );
    let (status, _, _) = app.send(put(&rita_cookie, &rita_csrf, &john, "")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an empty note");

    let (_, _, person) = app.get(&format!("/api/v1/people/{jane}")).await;
    assert_eq!(person["absence"]["text"], "at the dentist, back 14:00");
    let (_, _, person) = app.get(&format!("/api/v1/people/{john}")).await;
    assert_eq!(person["absence"]["set_by"], "local:rita");

    // A note with an end disappears after it.
    let until = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let timed = request(
        Method::PUT,
        &format!("/api/v1/people/{john}/notes/status"),
        addr(7),
    )
    .header("cookie", &rita_cookie)
    .header("x-csrf-token", &rita_csrf)
    .header("content-type", "application/json")
    .body(Body::from(
        serde_json::json!({"text": "in the lobby", "until": until}).to_string(),
    ))
    .expect("request");
    assert_eq!(app.send(timed).await.0, StatusCode::OK);
    assert_eq!(
        app.get(&format!("/api/v1/people/{john}")).await.2["status"]["text"],
        "in the lobby"
    );
    app.advance(chrono::Duration::hours(3));
    assert!(app.get(&format!("/api/v1/people/{john}")).await.2["status"].is_null());

    let delete = request(
        Method::DELETE,
        &format!("/api/v1/people/{jane}/notes/absence"),
        addr(7),
    )
    .header("cookie", &jane_cookie)
    .header("x-csrf-token", &jane_csrf)
    .body(Body::empty())
    .expect("request");
    // Jane's session has idled out in those three hours? No: 8 h idle by default.
    assert_eq!(app.send(delete).await.0, StatusCode::NO_CONTENT);
    assert!(app.get(&format!("/api/v1/people/{jane}")).await.2["absence"].is_null());

    app.flush_audit().await;
    let actions: Vec<(String, String)> = sqlx::query_as("SELECT principal, action FROM audit_log WHERE action LIKE 'absence.%' OR action LIKE 'status.%' ORDER BY seq")
        .fetch_all(&app.db.pool)
        .await
        .expect("audit");
    assert_eq!(
        actions,
        [
            ("local:jane".to_string(), "absence.set".to_string()),
            ("local:rita".to_string(), "absence.set".to_string()),
            ("local:rita".to_string(), "status.set".to_string()),
            ("local:jane".to_string(), "absence.clear".to_string()),
        ]
    );
}

#[tokio::test]
async fn metrics_for_tokens_admins_and_allowed_addresses_only() {
    let mut config = Config::default();
    config.access.metrics_allow = vec!["10.0.0.9".into(), "fd00::/8".into()];
    let app = TestApp::with(config, switchboard::presence::PresenceHub::disabled()).await;
    let from = |ip: &str| {
        let addr: SocketAddr = format!("{ip}:5000").parse().expect("addr");
        request(Method::GET, "/metrics", addr)
            .body(Body::empty())
            .expect("request")
    };
    assert_eq!(status_of(&app, from("10.0.0.9")).await, StatusCode::OK);
    assert_eq!(
        status_of(&app, from("10.0.0.8")).await,
        StatusCode::UNAUTHORIZED
    );
    users::add(
        &app.db.pool,
        "val",
        Role::Viewer,
        Some("val-password".into()),
    )
    .await
    .expect("user");
    let (_, cookie, _, _) = sign_in(&app, "val", "val-password", addr(8)).await;
    let (status, _) = with_cookie(
        &app,
        Method::GET,
        "/metrics",
        &cookie.expect("cookie"),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a viewer's session is not enough"
    );
}

#[tokio::test]
async fn photos_follow_their_owners_and_removed_peoples_are_for_admins() {
    let mut app = TestApp::new().await;
    let digest = "00112233445566778899aabbccddeeff";
    sqlx::query("INSERT INTO photos (digest, content_type, bytes) VALUES ($1, 'image/jpeg', $2)")
        .bind(digest)
        .bind(vec![0xFFu8, 0xD8, 0xFF, 0xE0])
        .execute(&app.db.pool)
        .await
        .expect("photo");
    let csv = format!(
        "external_id,given_name,family_name,photo_url\np1,Pia,Photo,/api/v1/photos/{digest}\n"
    );
    app.import_csv(&csv, &common::options("hr"))
        .await
        .expect("import");
    let viewer = tokens::add(&app.db.pool, "kiosk", Role::Viewer)
        .await
        .expect("token");
    let get = |token: &str| {
        request(Method::GET, &format!("/api/v1/photos/{digest}"), addr(9))
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .expect("request")
    };
    assert_eq!(status_of(&app, get(&viewer)).await, StatusCode::OK);
    sqlx::query("UPDATE people SET deleted_at = now()")
        .execute(&app.db.pool)
        .await
        .expect("remove");
    assert_eq!(status_of(&app, get(&viewer)).await, StatusCode::NOT_FOUND);
    assert_eq!(
        status_of(&app, get(&app.token)).await,
        StatusCode::OK,
        "admins still may"
    );
}
