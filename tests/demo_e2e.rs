//! The README's first command, end to end through the real binary: `switchboard demo` creates its
//! own PostgreSQL cluster, loads the demo company, serves, and shuts everything down on SIGTERM.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use common::demo::Demo;

fn start_demo(data_dir: &Path, people: u32) -> Demo {
    start_demo_with(data_dir, people, &[])
}

fn start_demo_with(data_dir: &Path, people: u32, extra: &[&str]) -> Demo {
    let mut args: Vec<String> = [
        "--data-dir",
        &data_dir.display().to_string(),
        "demo",
        "--people",
        &people.to_string(),
        "--listen",
        "127.0.0.1:0",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    args.extend(extra.iter().map(|a| a.to_string()));
    common::demo::spawn(args)
}

async fn get_json(client: &reqwest::Client, url: String) -> serde_json::Value {
    let response = client
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    response
        .json()
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"))
}

async fn wait_ready(client: &reqwest::Client, url: &str) -> serde_json::Value {
    for _ in 0..600 {
        if let Ok(r) = client.get(format!("{url}/readyz")).send().await {
            if r.status() == 200 {
                return r.json().await.expect("readiness json");
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never became ready");
}

/// Signs in as the demo's admin with the password it printed.
async fn sign_in(client: &reqwest::Client, demo: &Demo) {
    let password = demo.password.clone().unwrap_or_else(|| {
        panic!(
            "the demo printed no password; it said:\n{}",
            demo.startup.join("\n")
        )
    });
    let r = client
        .post(format!("{}/api/v1/auth/login", demo.url))
        .json(&serde_json::json!({"username": "admin", "password": password}))
        .send()
        .await
        .expect("sign in");
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
}

#[tokio::test]
async fn demo_runs_with_no_configuration_and_stops_cleanly() {
    let data_dir = tempfile::tempdir().expect("tmp");
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .expect("client");

    let demo = start_demo(data_dir.path(), 300);
    let first_password = demo.password.clone();
    let bare = wait_ready(&client, &demo.url).await;
    assert_eq!(
        bare,
        serde_json::json!({"status": "ready"}),
        "no details before sign-in"
    );
    let refused = client
        .get(format!("{}/api/v1/people", demo.url))
        .send()
        .await
        .expect("people");
    assert_eq!(refused.status(), 401, "closed until signed in");
    sign_in(&client, &demo).await;
    let ready = wait_ready(&client, &demo.url).await;
    assert_eq!(ready["indexed_people"], 300);

    let page = client
        .get(format!("{}/", demo.url))
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("html").contains("Switchboard"));

    let all: serde_json::Value =
        get_json(&client, format!("{}/api/v1/people?limit=5", demo.url)).await;
    assert_eq!(all["total"], 300);
    let first = &all["items"][0];
    let family = first["display_name"]
        .as_str()
        .expect("name")
        .split(' ')
        .next_back()
        .expect("family")
        .to_string();
    let found: serde_json::Value = get_json(
        &client,
        format!(
            "{}/api/v1/people?q={}",
            demo.url,
            common::urlencode(&family)
        ),
    )
    .await;
    assert!(found["items"]
        .as_array()
        .expect("items")
        .iter()
        .any(|p| p["id"] == first["id"]));

    let ceo: serde_json::Value = get_json(
        &client,
        format!("{}/api/v1/people?q=chief+executive", demo.url),
    )
    .await;
    assert_eq!(ceo["total"], 1, "{ceo}");

    // An import from the command line, while the server runs on the same data dir, joins the
    // running cluster, leaves it running, and is searchable through the server's indexer.
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("--data-dir")
        .arg(data_dir.path())
        .args(["import", "csv"])
        .arg(common::fixture("csv/google.csv"))
        .args(["--source", "google"])
        .output()
        .expect("import");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut total = serde_json::Value::Null;
    for _ in 0..100 {
        let found: serde_json::Value =
            get_json(&client, format!("{}/api/v1/people?q=ana+lima", demo.url)).await;
        total = found["total"].clone();
        if total == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        total, 1,
        "the CLI import reached the running server's index"
    );

    // A client on the presence stream does not keep the server from stopping.
    let mut stream = client
        .get(format!(
            "{}/api/v1/presence/stream?ids={}",
            demo.url,
            first["id"].as_str().expect("id")
        ))
        .send()
        .await
        .expect("presence stream");
    assert_eq!(stream.status(), 200);
    let snapshot = tokio::time::timeout(Duration::from_secs(30), stream.chunk())
        .await
        .expect("the stream's first event in time")
        .expect("stream readable")
        .expect("a first event");
    assert!(String::from_utf8_lossy(&snapshot).contains("data:"));
    let stopping = tokio::task::spawn_blocking(move || demo.stop_cleanly());
    // The server ends the stream as it shuts down.
    let end = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(end.is_ok(), "the stream was not ended by the shutdown");
    stopping.await.expect("stopped");
    let cluster = data_dir.path().join("postgres");
    assert!(
        cluster.join("PG_VERSION").exists(),
        "the cluster lives in the data dir"
    );
    assert!(
        !cluster.join("postmaster.pid").exists(),
        "postgres was stopped on exit"
    );

    // Starting again reuses the data: same people, no reload; a new password.
    let demo = start_demo(data_dir.path(), 300);
    assert_ne!(demo.password, first_password);
    sign_in(&client, &demo).await;
    let ready = wait_ready(&client, &demo.url).await;
    assert_eq!(
        ready["indexed_people"], 302,
        "demo people plus the two imported ones"
    );
    assert!(
        demo.startup.iter().any(|l| l.contains("already loaded")),
        "{:?}",
        demo.startup
    );
    demo.stop_cleanly();
    assert!(!cluster.join("postmaster.pid").exists());
}

#[tokio::test]
async fn cli_commands_start_and_stop_the_embedded_cluster() {
    let data_dir = tempfile::tempdir().expect("tmp");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("--data-dir")
            .arg(data_dir.path())
            .args(args)
            .env("SWITCHBOARD_DEFAULT_REGION", "GB")
            .output()
            .expect("run switchboard")
    };
    let out = run(&["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("up to date"));

    let csv = common::fixture("csv/outlook.csv");
    let out = run(&[
        "import",
        "csv",
        csv.to_str().expect("path"),
        "--source",
        "outlook",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 added"));

    let out = run(&["index", "rebuild"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("indexed 3 people"));
    assert!(
        !data_dir.path().join("postgres/postmaster.pid").exists(),
        "each command stops the cluster it started"
    );
}

#[tokio::test]
async fn demo_open_serves_without_sign_in_on_loopback_only() {
    let data_dir = tempfile::tempdir().expect("tmp");
    let refused = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("--data-dir")
        .arg(data_dir.path())
        .args(["demo", "--people", "20", "--open", "--listen", "0.0.0.0:0"])
        .output()
        .expect("demo");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("loopback"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let demo = start_demo_with(data_dir.path(), 20, &["--open"]);
    assert_eq!(demo.password, None, "an open demo has no password to print");
    let client = reqwest::Client::new();
    wait_ready(&client, &demo.url).await;
    let people = get_json(&client, format!("{}/api/v1/people", demo.url)).await;
    assert_eq!(people["total"], 20);
    let me = get_json(&client, format!("{}/api/v1/auth/session", demo.url)).await;
    assert_eq!(me["open"], true, "the page shows its banner from this");
    let page = client
        .get(format!("{}/", demo.url))
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    // The page has the banner; its words come from the console's strings.
    assert!(page.contains("id=\"open-banner\""), "{page}");
    let strings = client
        .get(format!("{}/assets/strings.js", demo.url))
        .send()
        .await
        .expect("strings")
        .text()
        .await
        .expect("text");
    assert!(strings.contains("This server runs open"));
    demo.stop_cleanly();
}

/// The embedded PostgreSQL asks for a password, runs as its own system user when started by
/// root, and when its postmaster is killed under a running server (`kill -9`) it is restarted:
/// meanwhile lookups answer 503 `unavailable` with `Retry-After`, never 500, and then recover.
#[tokio::test]
async fn a_killed_embedded_postgres_is_restarted_and_lookups_answer_503_meanwhile() {
    use std::os::unix::fs::MetadataExt;
    let data_dir = tempfile::tempdir().expect("tmp");
    let cluster = data_dir.path().join("postgres");
    let demo = start_demo_with(data_dir.path(), 20, &["--open"]);
    let client = reqwest::Client::new();
    wait_ready(&client, &demo.url).await;

    let hba = std::fs::read_to_string(cluster.join("pg_hba.conf")).expect("pg_hba.conf");
    let rules: Vec<&str> = hba
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .collect();
    assert!(!rules.is_empty());
    assert!(
        rules
            .iter()
            .all(|l| l.trim_end().ends_with("scram-sha-256")),
        "every rule asks for a password: {rules:?}"
    );
    let secret = data_dir.path().join("postgres.password");
    assert_eq!(
        std::fs::metadata(&secret).expect("password file").mode() & 0o777,
        0o600
    );
    let pid = || -> i32 {
        std::fs::read_to_string(cluster.join("postmaster.pid"))
            .expect("postmaster.pid")
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .expect("pid")
    };
    let first = pid();
    if nix::unistd::geteuid().is_root() {
        let owner = std::fs::metadata(format!("/proc/{first}"))
            .expect("proc")
            .uid();
        let user = nix::unistd::User::from_uid(owner.into())
            .expect("user")
            .expect("named");
        assert_eq!(user.name, "switchboard-db", "its own system user");
    }

    let people = get_json(&client, format!("{}/api/v1/people?limit=1", demo.url)).await;
    let id = people["items"][0]["id"].as_str().expect("id").to_string();
    let person = format!("{}/api/v1/people/{id}", demo.url);
    assert_eq!(client.get(&person).send().await.expect("get").status(), 200);

    // Hold the cluster's lock so that the restart waits until the outage has been seen.
    let lock = std::fs::File::open(data_dir.path().join("postgres.lock")).expect("lock file");
    lock.lock().expect("lock");
    let backends = children_of(first);
    kill(Pid::from_raw(first), Signal::SIGKILL).expect("kill -9 the postmaster");
    // Its backends notice and exit.
    let gone = std::time::Instant::now() + Duration::from_secs(30);
    while backends
        .iter()
        .any(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
    {
        assert!(
            std::time::Instant::now() < gone,
            "backends outlived the postmaster"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..3 {
        assert!(!answered(&client, &person).await, "the database is down");
    }
    drop(lock);
    let mut unavailable = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !answered(&client, &person).await {
        unavailable += 1;
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not recover within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("{unavailable} more 503s while it restarted");
    assert_ne!(pid(), first, "a new postmaster");
    // Everything else recovered too: search and readiness.
    let again = get_json(&client, format!("{}/api/v1/people?limit=1", demo.url)).await;
    assert_eq!(again["total"], 20);
    wait_ready(&client, &demo.url).await;
    demo.stop_cleanly();
}

/// The processes whose parent is `pid` (a postmaster's backends and helpers).
fn children_of(pid: i32) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .expect("proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| {
                    // pid (comm) state ppid …: comm may hold spaces, so split after its ')'.
                    let rest = stat.rsplit_once(')')?.1;
                    rest.split_whitespace().nth(1)?.parse::<i32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

/// GETs `url`: true on 200; otherwise it must be 503 `unavailable` with `Retry-After` (never a
/// 500 while the database is down), and the answer is false.
async fn answered(client: &reqwest::Client, url: &str) -> bool {
    let r = client.get(url).send().await.expect("the server answers");
    let status = r.status().as_u16();
    if status == 200 {
        return true;
    }
    let retry_after = r.headers().get("retry-after").cloned();
    let body: serde_json::Value = r.json().await.expect("problem");
    assert_eq!(
        status, 503,
        "never a 500 while the database is down: {body}"
    );
    assert_eq!(body["code"], "unavailable", "{body}");
    assert!(retry_after.is_some(), "503 says when to retry");
    false
}
