//! `switchboard user | token | audit` through the real binary, against a real PostgreSQL; what
//! they create is then used through the real router.

mod common;

use std::process::{Output, Stdio};

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::TestApp;

/// Runs the binary against the test database. Waits without blocking the runtime: the app's
/// audit writer must go on (a command appending to the trail waits for its lock).
async fn switchboard(app: &TestApp, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env("SWITCHBOARD_DATABASE__URL", &app.db.url)
        .env("RUST_LOG", "warn")
        .env("USER", "ops")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("switchboard");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.expect("write");
    }
    drop(input);
    child.wait_with_output().await.expect("output")
}

fn last_line(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .expect("a last line")
        .to_string()
}

async fn login(app: &TestApp, user: &str, password: &str) -> StatusCode {
    let body = serde_json::json!({"username": user, "password": password}).to_string();
    let request = Request::post("/api/v1/auth/login")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("request");
    app.send(request).await.0
}

async fn with_token(app: &TestApp, token: &str, uri: &str) -> StatusCode {
    let request = Request::get(uri)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .expect("request");
    app.send(request).await.0
}

#[tokio::test]
async fn users_tokens_and_the_audit_trail_from_the_command_line() {
    let mut app = TestApp::new().await;

    // A generated password, alone on the last line.
    let out = switchboard(&app, &["user", "add", "alice", "--role", "admin"], None).await;
    let password = last_line(&out);
    assert_eq!(password.len(), 20, "{password}");
    assert_eq!(login(&app, "alice", &password).await, StatusCode::OK);
    assert_eq!(
        login(&app, "alice", "not-it-at-all").await,
        StatusCode::UNAUTHORIZED
    );

    // From standard input.
    let out = switchboard(
        &app,
        &["user", "add", "bob", "--role", "viewer", "--password-stdin"],
        Some("bob-password-123\n"),
    )
    .await;
    assert!(out.status.success());
    assert_eq!(login(&app, "bob", "bob-password-123").await, StatusCode::OK);
    let out = switchboard(&app, &["user", "add", "bob", "--role", "viewer"], None).await;
    assert!(!out.status.success(), "a second bob is refused");
    let out = switchboard(&app, &["user", "add", "carol", "--role", "king"], None).await;
    assert!(!out.status.success(), "unknown role");
    let out = switchboard(
        &app,
        &[
            "user",
            "add",
            "short",
            "--role",
            "viewer",
            "--password-stdin",
        ],
        Some("short\n"),
    )
    .await;
    assert!(!out.status.success(), "too short a password");

    let list = switchboard(&app, &["user", "list"], None).await;
    let listed = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(
        listed.contains("alice") && listed.contains("admin") && listed.contains("bob"),
        "{listed}"
    );
    assert!(!listed.contains(&password), "passwords are never listed");

    let out = switchboard(&app, &["user", "passwd", "bob"], None).await;
    let new_password = last_line(&out);
    assert_eq!(
        login(&app, "bob", "bob-password-123").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(login(&app, "bob", &new_password).await, StatusCode::OK);
    assert!(switchboard(&app, &["user", "remove", "bob"], None)
        .await
        .status
        .success());
    assert_eq!(
        login(&app, "bob", &new_password).await,
        StatusCode::UNAUTHORIZED
    );
    assert!(!switchboard(&app, &["user", "remove", "bob"], None)
        .await
        .status
        .success());

    // Tokens: shown once, alone on the last line; work until revoked.
    let token =
        last_line(&switchboard(&app, &["token", "add", "cron", "--role", "viewer"], None).await);
    assert!(token.starts_with("sbt_"), "{token}");
    assert_eq!(
        with_token(&app, &token, "/api/v1/people").await,
        StatusCode::OK
    );
    assert_eq!(
        with_token(&app, &token, "/api/v1/sync/runs").await,
        StatusCode::FORBIDDEN
    );
    let listed = String::from_utf8_lossy(&switchboard(&app, &["token", "list"], None).await.stdout)
        .to_string();
    assert!(
        listed.contains("cron") && !listed.contains(&token),
        "{listed}"
    );
    assert!(switchboard(&app, &["token", "revoke", "cron"], None)
        .await
        .status
        .success());
    app.advance(chrono::Duration::seconds(6));
    assert_eq!(
        with_token(&app, &token, "/api/v1/people").await,
        StatusCode::UNAUTHORIZED
    );

    // Every change above is in the trail, and the trail verifies.
    let actions = app.audit_actions().await;
    for action in [
        "user.add",
        "user.passwd",
        "user.remove",
        "token.add",
        "token.revoke",
    ] {
        assert!(
            actions.contains(&("cli:ops".to_string(), action.to_string())),
            "{action}: {actions:?}"
        );
    }
    let verified = switchboard(&app, &["audit", "verify"], None).await;
    assert!(verified.status.success());
    assert!(String::from_utf8_lossy(&verified.stdout).contains("intact"));

    let csv = switchboard(
        &app,
        &[
            "audit",
            "export",
            "--format",
            "csv",
            "--since",
            "2020-01-01",
        ],
        None,
    )
    .await;
    assert!(csv.status.success());
    let text = String::from_utf8_lossy(&csv.stdout).to_string();
    assert_eq!(text.lines().count(), actions.len() + 1, "{text}");
    let jsonl = switchboard(&app, &["audit", "export"], None).await;
    assert_eq!(
        String::from_utf8_lossy(&jsonl.stdout).lines().count(),
        actions.len()
    );

    // A deleted record makes `verify` fail and name it.
    let second: i64 = sqlx::query_scalar("SELECT seq FROM audit_log ORDER BY seq OFFSET 1 LIMIT 1")
        .fetch_one(&app.db.pool)
        .await
        .expect("seq");
    app.tamper(&format!("DELETE FROM audit_log WHERE seq = {second}"))
        .await;
    let broken = switchboard(&app, &["audit", "verify"], None).await;
    assert!(!broken.status.success());
    let said = String::from_utf8_lossy(&broken.stdout).to_string();
    assert!(said.contains("deleted"), "{said}");
}
