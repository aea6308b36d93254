//! `switchboard sync ldap`, `sync runs` and scheduled syncs in `serve`, through the real binary
//! against a real slapd.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::slapd::{base_ldif, Slapd, SlapdOptions, READER_DN, READER_PW, SUFFIX};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn switchboard(config: &Path, data: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run switchboard")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test]
async fn sync_ldap_sync_runs_and_scheduled_syncs_through_the_binary() {
    let fixture = std::fs::read_to_string(common::fixture("ldap/people.ldif")).expect("fixture");
    let slapd = Slapd::start(SlapdOptions::default(), &(base_ldif() + &fixture));
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let secret = dir.path().join("ldap-password");
    std::fs::write(&secret, format!("{READER_PW}\n")).expect("secret");
    let config = dir.path().join("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            "default_region = \"GB\"\n\n[[sources]]\nname = \"corp\"\nkind = \"ldap\"\n\
             url = \"{}\"\nbind_dn = \"{READER_DN}\"\nbind_password_file = \"{}\"\n\
             base_dn = \"ou=People,{SUFFIX}\"\ninterval = \"1s\"\n",
            slapd.url,
            secret.display()
        ),
    )
    .expect("config");

    // A first sync: five people, one with a number kept as written (a warning by DN, exit
    // status 0: nobody refused), who changed is listed.
    let out = switchboard(&config, &data, &["sync", "ldap", "--source", "corp"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("full sync"), "{said}");
    assert!(said.contains("5 added"), "{said}");
    assert!(said.contains("added: Alice Smith"), "{said}");
    assert!(
        said.contains("dn uid=badphone,ou=people,dc=example,dc=com: phone kept as written"),
        "{said}"
    );

    // Nothing changed: an incremental sync that reads nothing.
    let out = switchboard(&config, &data, &["sync", "ldap", "--source", "corp"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("incremental sync, 0 entries read"), "{said}");

    let out = switchboard(&config, &data, &["sync", "runs"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert_eq!(said.matches("succeeded").count(), 2, "{said}");
    assert!(said.contains("incremental"), "{said}");
    let out = switchboard(&config, &data, &["sync", "runs", "--id", "1", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let run: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(run["run"]["mode"], "full");
    assert_eq!(run["changes"].as_array().expect("changes").len(), 5);
    assert_eq!(run["rejects"].as_array().expect("rejects").len(), 0);
    assert_eq!(run["warnings"].as_array().expect("warnings").len(), 1);

    // Unknown source: a clear error.
    let out = switchboard(&config, &data, &["sync", "ldap", "--source", "nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("config_invalid"), "{}", text(&out));

    // `serve` syncs on the interval: a person added to the directory becomes searchable.
    // The token is the last line of stdout (stderr may carry log lines of a busy machine).
    let added = switchboard(
        &config,
        &data,
        &["token", "add", "checker", "--role", "admin"],
    );
    let token = String::from_utf8_lossy(&added.stdout)
        .lines()
        .last()
        .expect("token")
        .trim()
        .to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(&data)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let url = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("serve did not start");
        if let Some(url) = common::served_url(&line) {
            break url;
        }
    };
    slapd.modify(&format!(
        "dn: uid=newbie,ou=People,{SUFFIX}\nchangetype: add\nobjectClass: inetOrgPerson\n\
         uid: newbie\ncn: Nora Newbie\nsn: Newbie\nmail: nora@example.com\n"
    ));
    let client = reqwest::Client::builder()
        .default_headers(
            [(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {token}").parse().expect("header"),
            )]
            .into_iter()
            .collect(),
        )
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body: serde_json::Value = client
            .get(format!("{url}/api/v1/people?q=nora"))
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json");
        if body["items"][0]["display_name"] == "Nora Newbie" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the scheduled sync never brought Nora in: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let runs: serde_json::Value = client
        .get(format!("{url}/api/v1/sync/runs?source=corp&limit=1"))
        .send()
        .await
        .expect("runs")
        .json()
        .await
        .expect("json");
    assert_eq!(runs["items"][0]["mode"], "incremental", "{runs}");

    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    let status = child.wait().expect("wait");
    assert!(status.success(), "serve exited with {status}");
}
