//! Single sign-on against a real OpenID Connect provider: the certified `oidc-provider` from npm
//! (installed by `scripts/setup` into `tests/oidc/node_modules`), run by node on a free port.
//! The test plays the browser: it follows each redirect between Switchboard and the provider.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::TestApp;
use switchboard::access::oidc::OidcConfig;
use switchboard::access::RoleGroups;
use switchboard::config::Config;

/// Where the provider sends the browser back (nothing listens there: the test reads the
/// redirect and hands it to the router).
const PUBLIC_URL: &str = "http://127.0.0.1:9";
/// Its Host: requests for any other are refused.
const HOST: &str = "127.0.0.1:9";

struct OidcProvider {
    child: Child,
    issuer: String,
}

impl OidcProvider {
    fn start() -> OidcProvider {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
        assert!(
            dir.join("node_modules/oidc-provider").exists(),
            "oidc-provider is not installed: run scripts/setup"
        );
        let account = |login: &str, name: &str, groups: &[&str]| {
            serde_json::json!({
                "login": login,
                "password": format!("{login}-password"),
                "claims": {
                    "sub": login,
                    "email": format!("{login}@example.com"),
                    "email_verified": true,
                    "name": name,
                    "groups": groups,
                }
            })
        };
        let config = serde_json::json!({
            "clients": [{
                "client_id": "switchboard",
                "client_secret": "client-secret",
                "redirect_uris": [format!("{PUBLIC_URL}/api/v1/auth/oidc/callback")],
            }],
            "accounts": [
                account("alice", "Alice Admin", &["staff", "sb-admins"]),
                account("bob", "Bob Desk", &["reception"]),
                account("carol", "Carol Outsider", &["contractors"]),
            ],
        });
        let mut child = Command::new("node")
            .arg(dir.join("provider.mjs"))
            .env("OIDC_CONFIG", config.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node (install nodejs)");
        let stdout = child.stdout.take().expect("stdout");
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        reader.read_line(&mut line).expect("provider output");
        // Keep reading: the provider logs notices on stdout, and a closed pipe would kill it.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
                sink.clear();
            }
        });
        let issuer = line
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("the provider said: {line}"))
            .trim()
            .to_string();
        OidcProvider { child, issuer }
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(issuer: &str) -> Config {
    let mut config = Config::default();
    config.access.public_url = Some(PUBLIC_URL.into());
    config.access.oidc = Some(OidcConfig {
        issuer_url: issuer.into(),
        client_id: "switchboard".into(),
        client_secret: Some("client-secret".into()),
        client_secret_file: None,
        scopes: vec!["email".into(), "profile".into(), "groups".into()],
        groups_claim: "groups".into(),
        roles: RoleGroups {
            admin: vec!["sb-admins".into()],
            receptionist: vec!["reception".into()],
            viewer: Vec::new(),
            default_role: None,
        },
    });
    config
}

fn location(headers: &axum::http::HeaderMap) -> String {
    headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("a redirect")
        .to_string()
}

fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().to_string())
        .find(|c| c.starts_with(&format!("{name}=")) && c.len() > name.len() + 1)
}

/// The browser's trip: Switchboard → provider → sign-in form → provider → back. Answers the
/// callback URL the provider redirected to and the state cookie Switchboard set.
async fn to_provider_and_back(
    app: &TestApp,
    issuer: &str,
    login: &str,
    password: &str,
) -> Result<(String, String), StatusCode> {
    let (status, headers, _) = app
        .send(
            Request::get("/api/v1/auth/oidc/login")
                .header("host", HOST)
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let authorize = location(&headers);
    assert!(authorize.starts_with(issuer), "{authorize}");
    assert!(
        authorize.contains("code_challenge_method=S256"),
        "PKCE: {authorize}"
    );
    let state_cookie = cookie(&headers, "switchboard_oidc").expect("state cookie");

    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .expect("client");
    let absolute = |l: &str| {
        if l.starts_with('/') {
            format!("{issuer}{l}")
        } else {
            l.to_string()
        }
    };
    let r = browser.get(&authorize).send().await.expect("authorize");
    assert!(r.status().is_redirection(), "{}", r.status());
    let form = absolute(r.headers()["location"].to_str().expect("location"));
    let page = browser
        .get(&form)
        .send()
        .await
        .expect("form")
        .text()
        .await
        .expect("html");
    assert!(page.contains("name=\"password\""), "{page}");
    let r = browser
        .post(format!("{form}/login"))
        .form(&[("login", login), ("password", password)])
        .send()
        .await
        .expect("sign in at the provider");
    if !r.status().is_redirection() {
        return Err(StatusCode::from_u16(r.status().as_u16()).expect("status"));
    }
    let resume = absolute(r.headers()["location"].to_str().expect("location"));
    let r = browser.get(&resume).send().await.expect("resume");
    assert!(r.status().is_redirection(), "{}", r.status());
    let back = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    assert!(back.starts_with(PUBLIC_URL), "{back}");
    Ok((back[PUBLIC_URL.len()..].to_string(), state_cookie))
}

async fn callback(
    app: &TestApp,
    path: &str,
    state_cookie: &str,
) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
    app.send(
        Request::get(path)
            .header("host", HOST)
            .header("cookie", state_cookie)
            .body(Body::empty())
            .expect("request"),
    )
    .await
}

async fn session(app: &TestApp, cookie: &str) -> serde_json::Value {
    let (status, _, me) = app
        .send(
            Request::get("/api/v1/auth/session")
                .header("host", HOST)
                .header("cookie", cookie)
                .body(Body::empty())
                .expect("r"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    me
}

#[tokio::test]
async fn single_sign_on_with_a_real_openid_provider() {
    let provider = OidcProvider::start();
    let mut app = TestApp::with(
        config(&provider.issuer),
        switchboard::presence::PresenceHub::disabled(),
    )
    .await;
    app.import_csv(
        "given_name,family_name,email\nAlice,Admin,alice@example.com\n",
        &common::options("hr"),
    )
    .await
    .expect("import");
    let (_, _, methods) = app
        .send(
            Request::get("/api/v1/auth/methods")
                .header("host", HOST)
                .body(Body::empty())
                .expect("r"),
        )
        .await;
    assert_eq!(methods["oidc"], true);

    // Alice: in sb-admins, so an admin; her session is linked to her person by email.
    let (path, state) = to_provider_and_back(&app, &provider.issuer, "alice", "alice-password")
        .await
        .expect("signed in");
    assert!(
        path.starts_with("/api/v1/auth/oidc/callback?code="),
        "{path}"
    );
    let (status, headers, body) = callback(&app, &path, &state).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(location(&headers), "/");
    let alice = cookie(&headers, "switchboard_session").expect("session cookie");
    let me = session(&app, &alice).await;
    assert_eq!(me["role"], "admin");
    assert_eq!(me["display_name"], "Alice Admin");
    assert_eq!(me["principal"], format!("oidc:{}#alice", provider.issuer));
    assert!(me["person_id"].is_string(), "linked by email: {me}");

    // The same code and state again: refused (a state is used once).
    let (status, _, body) = callback(&app, &path, &state).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // Bob: reception.
    let (path, state) = to_provider_and_back(&app, &provider.issuer, "bob", "bob-password")
        .await
        .expect("signed in");
    let (status, headers, _) = callback(&app, &path, &state).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let bob = cookie(&headers, "switchboard_session").expect("session cookie");
    assert_eq!(session(&app, &bob).await["role"], "receptionist");

    // A callback that did not start in this browser (no or another state cookie) is refused.
    let (path, _) = to_provider_and_back(&app, &provider.issuer, "bob", "bob-password")
        .await
        .expect("signed in");
    let (status, _, body) = callback(&app, &path, "switchboard_oidc=someone-elses").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // Carol signs in at the provider, but is in no group that may use Switchboard.
    let (path, state) = to_provider_and_back(&app, &provider.issuer, "carol", "carol-password")
        .await
        .expect("signed in");
    let (status, headers, body) = callback(&app, &path, &state).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(cookie(&headers, "switchboard_session").is_none());

    // A wrong password stops at the provider; a refusal sent back is a 401 here.
    assert_eq!(
        to_provider_and_back(&app, &provider.issuer, "alice", "guess")
            .await
            .err(),
        Some(StatusCode::FORBIDDEN)
    );
    let (status, _, _) = callback(
        &app,
        "/api/v1/auth/oidc/callback?error=access_denied&state=x",
        &state,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    app.flush_audit().await;
    let actions: Vec<(String, String)> = sqlx::query_as(
        "SELECT principal, action FROM audit_log WHERE action LIKE 'sign_in%' ORDER BY seq",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("audit");
    let alice_principal = format!("oidc:{}#alice", provider.issuer);
    assert!(
        actions.contains(&(alice_principal, "sign_in".to_string())),
        "{actions:?}"
    );
    assert_eq!(
        actions
            .iter()
            .filter(|(_, a)| a == "sign_in_failed")
            .count(),
        4,
        "{actions:?}"
    );
}

#[tokio::test]
async fn an_unreachable_provider_is_unavailable_not_a_crash() {
    let mut config = config("http://127.0.0.1:9");
    if let Some(oidc) = config.access.oidc.as_mut() {
        oidc.issuer_url = "http://127.0.0.1:9".into();
    }
    let app = TestApp::with(config, switchboard::presence::PresenceHub::disabled()).await;
    let (status, _, body) = app
        .send(
            Request::get("/api/v1/auth/oidc/login")
                .header("host", HOST)
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "unavailable");
}
