//! The committed spec tells the truth: schemathesis (PyPI, pinned, in its own venv made by
//! `scripts/setup`) generates requests from it against the real server, signed in with an admin
//! token, and every check must pass: no server error, no response outside its schema or status
//! list, no schema-valid request refused, no schema-violating request accepted, methods the spec
//! does not list answered 405, and requests without credentials refused.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

/// The same seed every run, so CI is repeatable; set `SCHEMATHESIS_SEED` to explore others.
const SEED: &str = "20261201";

fn switchboard(db_url: &str, data_dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env("SWITCHBOARD_DATABASE__URL", db_url)
        .env("SWITCHBOARD_DEFAULT_REGION", "GB")
        .env("RUST_LOG", "warn")
        .output()
        .expect("switchboard")
}

#[tokio::test]
async fn schemathesis_finds_nothing_the_spec_does_not_say() {
    let st = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tmp/schemathesis-venv/bin/st");
    assert!(
        st.exists(),
        "schemathesis is not installed: run scripts/setup"
    );
    let db = common::TestDb::new().await;
    let dir = tempfile::tempdir().expect("tmp");
    for fixture in ["csv/outlook.csv", "csv/google.csv"] {
        let path = common::fixture(fixture);
        let out = switchboard(
            &db.url,
            dir.path(),
            &[
                "import",
                "csv",
                path.to_str().expect("path"),
                "--source",
                fixture,
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = switchboard(
        &db.url,
        dir.path(),
        &["token", "add", "schemathesis", "--role", "admin"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .expect("token")
        .to_string();
    // A partner's key for the shared directory's operations (`partner` scheme), with limits
    // schemathesis will not reach.
    let out = switchboard(
        &db.url,
        dir.path(),
        &[
            "partner",
            "add",
            "schemathesis",
            "--fields",
            "name,title,department,location,work_phone,mobile,email,im,notes",
            "--presence",
            "full",
            "--rate",
            "100000/s",
            "--quota",
            "100000000/day",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let partner_key = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .expect("key")
        .to_string();
    assert!(
        partner_key.starts_with("sbp_"),
        "the key is alone on the last line"
    );

    let mut server = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("SWITCHBOARD_DATABASE__URL", &db.url)
        // Schemathesis asks fast: the rate limit would only turn its requests into 429s.
        .env("SWITCHBOARD_ACCESS__RATE_PER_SECOND", "0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("serve");
    let mut lines = BufReader::new(server.stderr.take().expect("stderr")).lines();
    let url = loop {
        let line = lines.next().expect("serve said nothing").expect("line");
        if let Some(url) = common::served_url(&line) {
            break url;
        }
    };
    std::thread::spawn(move || {
        lines
            .map_while(Result::ok)
            .for_each(|l| eprintln!("server: {l}"))
    });
    let client = reqwest::Client::new();
    for _ in 0..200 {
        if client
            .get(format!("{url}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // The token goes to the spec's `bearer` scheme, so that schemathesis also tries every
    // operation without it (and with a wrong one) and expects a refusal.
    let config = dir.path().join("schemathesis.toml");
    std::fs::write(
        &config,
        "[auth.openapi.bearer]\nbearer = \"${SWITCHBOARD_TEST_TOKEN}\"\n\n\
         [auth.openapi.partner]\nbearer = \"${SWITCHBOARD_TEST_PARTNER_KEY}\"\n\n\
         # The shared directory refuses what its settings refuse (a query under the minimum\n\
         # length, a filter that could list everyone): documented 400s, not refusals of\n\
         # valid data.\n\
         [[operations]]\ninclude-path-regex = \"^/(shared|scim)/\"\n\
         checks.positive_data_acceptance.expected-statuses = \
         [\"2xx\", \"400\", \"401\", \"403\", \"404\", \"429\"]\n\n\
         # Any bytes are a schema-valid file to import; one that is not an export of people\n\
         # is the documented 422 `input_unreadable`, not a refusal of valid data.\n\
         [[operations]]\ninclude-name = \"POST /api/v1/imports\"\n\
         checks.positive_data_acceptance.expected-statuses = \
         [\"2xx\", \"401\", \"403\", \"409\", \"422\", \"429\", \"5xx\"]\n",
    )
    .expect("config");
    let seed = std::env::var("SCHEMATHESIS_SEED").unwrap_or_else(|_| SEED.to_string());
    let run = tokio::process::Command::new(&st)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(format!("{url}/api/v1/openapi.json"))
        .env("SWITCHBOARD_TEST_TOKEN", &token)
        .env("SWITCHBOARD_TEST_PARTNER_KEY", &partner_key)
        .args(["--checks", "all"])
        // The presence stream never ends: a response schemathesis would wait for forever.
        .args(["--exclude-path", "/api/v1/presence/stream"])
        .args(["--exclude-path", "/shared/v1/presence/stream"])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--max-examples", "40", "--seed", &seed])
        // One worker: its hypothesis version trips over its own threads with more.
        .args(["--workers", "1", "--no-color"])
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(dir.path())
        .output()
        .await
        .expect("schemathesis");
    let _ = server.kill();
    let _ = server.wait();
    let report = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "schemathesis found failures (seed {seed}):\n{report}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(report.contains("passed"), "{report}");
}
