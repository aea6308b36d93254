//! A real Synapse homeserver (PyPI `matrix-synapse`, installed by `scripts/setup` into
//! `target/tmp/synapse-venv`), started on a free loopback port with SQLite and presence enabled.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

pub const SERVER_NAME: &str = "test.local";

pub fn python() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("synapse-venv/bin/python")
}

pub struct Synapse {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl Synapse {
    pub fn start() -> Synapse {
        let python = python();
        assert!(
            python.exists(),
            "Synapse is not installed: run scripts/setup (creates {} with matrix-synapse)",
            python.display()
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().display().to_string();
        let port = super::prosody::free_port();
        let config = format!(
            r#"server_name: "{SERVER_NAME}"
listeners:
  - port: {port}
    tls: false
    type: http
    x_forwarded: false
    bind_addresses: ['127.0.0.1']
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: {root}/homeserver.db
log_config: {root}/log.yaml
media_store_path: {root}/media
signing_key_path: {root}/signing.key
report_stats: false
enable_registration: true
enable_registration_without_verification: true
presence:
  enabled: true
trusted_key_servers: []
suppress_key_server_warning: true
macaroon_secret_key: "macaroon-test-secret"
form_secret: "form-test-secret"
rc_message: {{per_second: 1000, burst_count: 1000}}
rc_registration: {{per_second: 1000, burst_count: 1000}}
rc_presence:
  per_user: {{per_second: 1000, burst_count: 1000}}
rc_login:
  address: {{per_second: 1000, burst_count: 1000}}
  account: {{per_second: 1000, burst_count: 1000}}
  failed_attempts: {{per_second: 1000, burst_count: 1000}}
rc_joins:
  local: {{per_second: 1000, burst_count: 1000}}
  remote: {{per_second: 1000, burst_count: 1000}}
rc_invites:
  per_room: {{per_second: 1000, burst_count: 1000}}
  per_user: {{per_second: 1000, burst_count: 1000}}
"#
        );
        let log = format!(
            r#"version: 1
formatters:
  precise:
    format: '%(asctime)s - %(name)s - %(levelname)s - %(message)s'
handlers:
  file:
    class: logging.FileHandler
    formatter: precise
    filename: {root}/homeserver.log
root:
  level: WARNING
  handlers: [file]
disable_existing_loggers: false
"#
        );
        std::fs::write(dir.path().join("homeserver.yaml"), config).expect("config");
        std::fs::write(dir.path().join("log.yaml"), log).expect("log config");
        let status = Command::new(&python)
            .args(["-m", "synapse.app.homeserver", "--config-path"])
            .arg(dir.path().join("homeserver.yaml"))
            .arg("--generate-keys")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("generate keys");
        assert!(status.success(), "synapse --generate-keys failed");
        let mut s = Synapse {
            dir,
            port,
            child: None,
        };
        s.run();
        s
    }

    pub fn run(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new(python())
            .args(["-m", "synapse.app.homeserver", "--config-path"])
            .arg(self.dir.path().join("homeserver.yaml"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start synapse");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let ready = std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok();
            if ready {
                break;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("synapse exited with {status}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "synapse did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("homeserver.log")).unwrap_or_default()
    }

    /// Registers `user`; returns (user id, access token).
    pub async fn register(&self, user: &str) -> (String, String) {
        let response: serde_json::Value = reqwest::Client::new()
            .post(format!("{}/_matrix/client/v3/register", self.url()))
            .json(&json!({"username": user, "password": format!("pw-{user}-0123"), "auth": {"type": "m.login.dummy"}}))
            .send()
            .await
            .expect("register")
            .json()
            .await
            .expect("register json");
        (
            response["user_id"].as_str().expect("user_id").to_string(),
            response["access_token"]
                .as_str()
                .expect("access_token")
                .to_string(),
        )
    }

    /// `owner` creates a room and everyone in `members` joins it, so they see each other's presence.
    pub async fn share_room(&self, owner: &str, members: &[(String, String)]) {
        let client = reqwest::Client::new();
        let invite: Vec<&str> = members.iter().map(|(id, _)| id.as_str()).collect();
        let room: serde_json::Value = client
            .post(format!("{}/_matrix/client/v3/createRoom", self.url()))
            .bearer_auth(owner)
            .json(&json!({"preset": "private_chat", "invite": invite, "name": "Everyone"}))
            .send()
            .await
            .expect("create room")
            .json()
            .await
            .expect("room json");
        let room_id = room["room_id"].as_str().expect("room_id");
        for (_, token) in members {
            let status = client
                .post(format!(
                    "{}/_matrix/client/v3/join/{}",
                    self.url(),
                    room_id.replace('!', "%21").replace(':', "%3A")
                ))
                .bearer_auth(token)
                .json(&json!({}))
                .send()
                .await
                .expect("join")
                .status();
            assert!(status.is_success(), "join: {status}");
        }
    }

    /// Sets a user's presence as their client would: `online`, `unavailable` or `offline`.
    pub async fn set_presence(
        &self,
        user_id: &str,
        token: &str,
        presence: &str,
        status: Option<&str>,
    ) {
        let mut body = json!({"presence": presence});
        if let Some(status) = status {
            body["status_msg"] = json!(status);
        }
        let response = reqwest::Client::new()
            .put(format!(
                "{}/_matrix/client/v3/presence/{}/status",
                self.url(),
                user_id.replace('@', "%40").replace(':', "%3A")
            ))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("set presence");
        assert!(
            response.status().is_success(),
            "set presence: {}",
            response.status()
        );
    }
}

impl Drop for Synapse {
    fn drop(&mut self) {
        self.kill();
    }
}
