//! HTTPS served by the real binary with a test certificate (made by `openssl`), and a renewed
//! certificate taken up on SIGHUP without a restart.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A CA `NAME-ca.pem` and a certificate for 127.0.0.1 it signed: `NAME.pem`, `NAME.key`.
fn certificate(dir: &Path, name: &str) {
    common::certs::issue(dir, name, "IP:127.0.0.1,DNS:localhost");
}

/// A client that trusts only the CA `NAME-ca.pem`.
fn trusting(dir: &Path, ca: &str) -> reqwest::ClientBuilder {
    let pem = std::fs::read(dir.join(format!("{ca}-ca.pem"))).expect("ca");
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"))
}

fn client_trusting(dir: &Path, ca: &str) -> reqwest::Client {
    trusting(dir, ca).build().expect("client")
}

#[tokio::test]
async fn https_with_a_certificate_renewed_on_sighup() {
    let db = common::TestDb::new().await;
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    certificate(d, "first");
    certificate(d, "renewed");
    std::fs::copy(d.join("first.pem"), d.join("server.pem")).expect("copy");
    std::fs::copy(d.join("first.key"), d.join("server.key")).expect("copy");
    std::fs::write(
        d.join("switchboard.toml"),
        format!(
            "data_dir = \"{}\"\n[database]\nurl = \"{}\"\nmax_connections = 4\n\
             [tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
            d.join("data").display(),
            db.url,
            d.join("server.pem").display(),
            d.join("server.key").display()
        ),
    )
    .expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("--config")
        .arg(d.join("switchboard.toml"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let url = loop {
        let line = lines.next().expect("serve said nothing").expect("line");
        if let Some(url) = common::served_url(&line) {
            break url;
        }
    };
    let (said, log) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let _ = said.send(line);
        }
    });
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");

    let first = client_trusting(d, "first");
    let renewed = client_trusting(d, "renewed");
    let health = format!("{url}/healthz");
    let response = first
        .get(&health)
        .send()
        .await
        .expect("https with the first certificate");
    assert_eq!(response.status(), 200);
    assert!(
        renewed.get(&health).send().await.is_err(),
        "not yet the renewed certificate"
    );
    assert!(
        reqwest::get(health.replace("https://", "http://"))
            .await
            .is_err(),
        "no plain HTTP on the TLS port"
    );

    // Renew: new files, SIGHUP, new connections get the new certificate.
    std::fs::copy(d.join("renewed.pem"), d.join("server.pem")).expect("copy");
    std::fs::copy(d.join("renewed.key"), d.join("server.key")).expect("copy");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGHUP).expect("SIGHUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        // A fresh client each time: no connection kept from before the reload.
        if client_trusting(d, "renewed")
            .get(&health)
            .send()
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        client_trusting(d, "first")
            .get(&health)
            .send()
            .await
            .is_err(),
        "the old certificate is gone"
    );
    // A broken file on the next reload keeps the renewed certificate in use.
    std::fs::write(d.join("server.pem"), "not a certificate").expect("break");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGHUP).expect("SIGHUP");
    let refused = tokio::task::spawn_blocking(move || loop {
        match log.recv_timeout(Duration::from_secs(20)) {
            Ok(line) if line.contains("certificate not reloaded") => return line,
            Ok(_) => continue,
            Err(e) => panic!("serve never said it kept its certificate: {e}"),
        }
    })
    .await
    .expect("log");
    assert!(refused.contains("server.pem"), "{refused}");
    let response = client_trusting(d, "renewed")
        .get(&health)
        .send()
        .await
        .expect("still served");
    assert_eq!(response.status(), 200);

    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "serve did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A client presenting `NAME.pem` (with its key) and trusting the server's CA `ca`.
fn client_with_certificate(dir: &Path, ca: &str, name: &str) -> reqwest::Client {
    let mut identity = std::fs::read(dir.join(format!("{name}.pem"))).expect("cert");
    identity.extend(std::fs::read(dir.join(format!("{name}.key"))).expect("key"));
    trusting(dir, ca)
        .identity(reqwest::Identity::from_pem(&identity).expect("identity"))
        .build()
        .expect("client")
}

#[tokio::test]
async fn a_partner_key_pinned_to_a_client_certificate_needs_that_certificate() {
    let db = common::TestDb::new().await;
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    certificate(d, "server");
    certificate(d, "acme-client");
    certificate(d, "other-client");
    let config = d.join("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[database]\nurl = \"{}\"\nmax_connections = 4\n\
             [tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\nclient_certificates = true\n",
            d.join("data").display(),
            db.url,
            d.join("server.pem").display(),
            d.join("server.key").display()
        ),
    )
    .expect("config");
    let cli = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .expect("switchboard");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .expect("output")
            .to_string()
    };
    let pem = d.join("acme-client.pem");
    let pinned = cli(&[
        "partner",
        "add",
        "acme",
        "--certificate",
        pem.to_str().expect("path"),
    ]);
    let plain = cli(&["partner", "add", "beta"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("--config")
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let url = loop {
        let line = lines.next().expect("serve said nothing").expect("line");
        if let Some(url) = common::served_url(&line) {
            break url;
        }
    };
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    let search = format!("{url}/shared/v1/people?q=smith");
    let status = |client: reqwest::Client, key: String| {
        let search = search.clone();
        async move {
            client
                .get(&search)
                .bearer_auth(key)
                .send()
                .await
                .expect("https")
                .status()
        }
    };
    assert_eq!(
        status(
            client_with_certificate(d, "server", "acme-client"),
            pinned.clone()
        )
        .await,
        200,
        "the key with its certificate"
    );
    assert_eq!(
        status(client_trusting(d, "server"), pinned.clone()).await,
        401,
        "the key without a certificate"
    );
    assert_eq!(
        status(
            client_with_certificate(d, "server", "other-client"),
            pinned.clone()
        )
        .await,
        401,
        "the key with another certificate"
    );
    assert_eq!(
        status(client_trusting(d, "server"), plain).await,
        200,
        "a partner without a pin needs no certificate; nor does anyone else"
    );
    assert_eq!(
        client_trusting(d, "server")
            .get(format!("{url}/healthz"))
            .send()
            .await
            .expect("https")
            .status(),
        200
    );
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "serve did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
