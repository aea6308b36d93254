//! The receptionist's console in a real browser: Debian's Chromium driven by playwright-core
//! (`tests/browser/console.mjs`), against the real binary serving the demo company with a real
//! presence backend (a webhook the browser test posts events to), a second account for the
//! second receptionist, and a kill and restart of the server while the page is open. The
//! browser test checks each step, runs axe-core on every main screen, saves screenshots (light
//! and dark) and prints its timings; this test fails when it does.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use common::demo::{free_port, start};

const TOKEN: &str = "console-test-webhook-token";

#[test]
fn the_console_works_in_a_real_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let browser = root.join("tests/browser");
    assert!(
        Path::new("/usr/bin/chromium").exists()
            && browser.join("node_modules/playwright-core").exists(),
        "Chromium and playwright-core are missing: run scripts/setup"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let config = format!(
        "[[presence.backends]]\nname = \"pbx\"\nkind = \"webhook\"\ntoken = \"{TOKEN}\"\nschemes = [\"xmpp\"]\n"
    );
    let mut demo = start(dir.path(), free_port(), 7, 2_000, &config);
    let added = demo.cli(&["user", "add", "reception", "--role", "receptionist"]);
    let reception_password = added.lines().last().expect("a password").trim().to_string();
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    std::fs::create_dir_all(&screenshots).expect("screenshot dir");

    let mut node = Command::new("node")
        .arg(browser.join("console.mjs"))
        .env("SWITCHBOARD_URL", &demo.url)
        .env("ADMIN_PASSWORD", demo.admin_password())
        .env("RECEPTION_USER", "reception")
        .env("RECEPTION_PASSWORD", &reception_password)
        .env("WEBHOOK_TOKEN", TOKEN)
        .env("SCREENSHOTS", &screenshots)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run node");
    let mut stdin = node.stdin.take().expect("stdin");
    let stdout = BufReader::new(node.stdout.take().expect("stdout"));
    for line in stdout.lines().map_while(Result::ok) {
        println!("{line}");
        if line.trim() == "RESTART" {
            demo.restart();
            // The demo gives its admin a new password (ending the admin's sessions); the
            // receptionist's sessions live on.
            writeln!(stdin, "RESTARTED {}", demo.admin_password()).expect("tell the browser test");
            stdin.flush().expect("flush");
        }
    }
    let status = node.wait().expect("node");
    assert!(status.success(), "the browser test failed: {status}");
    println!("screenshots in {}", screenshots.display());
}
