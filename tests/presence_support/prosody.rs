//! A real Prosody (Debian package `prosody`, installed by `scripts/setup`), started unprivileged
//! on a free loopback port from a throwaway config in a temp dir.

use std::path::PathBuf;

// Not every test crate that starts Prosody has `common` (those that do compile it twice).
#[allow(clippy::duplicate_mod)]
#[path = "../common/certs.rs"]
mod certs;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const DOMAIN: &str = "corp.example";
pub const PASSWORD: &str = "secret";

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

pub struct Prosody {
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// With TLS: the XEP-0368 direct TLS port and the CA that signed the server's certificate.
    pub tls: Option<(u16, PathBuf)>,
    child: Option<Child>,
}

impl Prosody {
    /// Writes the config and accounts for `users` (all with password `secret`); does not start.
    pub fn prepare(port: u16, users: &[&str]) -> Prosody {
        Prosody::prepare_with(port, users, false)
    }

    /// With `tls`: encryption required on c2s (STARTTLS), a direct TLS port too, and a
    /// certificate for the domain from a throwaway CA.
    pub fn prepare_with(port: u16, users: &[&str], tls: bool) -> Prosody {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().display().to_string();
        // Account files of Prosody's internal_plain storage: data/<host with '.' as %2e>/accounts.
        let accounts: PathBuf = dir.path().join("data/corp%2eexample/accounts");
        std::fs::create_dir_all(&accounts).expect("accounts dir");
        for user in users {
            std::fs::write(
                accounts.join(format!("{user}.dat")),
                format!("return {{\n\t[\"password\"] = \"{PASSWORD}\";\n}};\n"),
            )
            .expect("account");
        }
        std::fs::create_dir_all(dir.path().join("certs")).expect("certs dir");
        let (tls_config, tls) = if tls {
            let issued = certs::issue(&dir.path().join("certs"), DOMAIN, &format!("DNS:{DOMAIN}"));
            let direct = free_port();
            let ssl = format!(
                "{{ certificate = \"{}\", key = \"{}\" }}",
                issued.cert.display(),
                issued.key.display()
            );
            (
                format!(
                    "c2s_require_encryption = true\nallow_unencrypted_plain_auth = false\n\
                     c2s_direct_tls_ports = {{ {direct} }}\nssl = {ssl}\nc2s_direct_tls_ssl = {ssl}\n\
                     modules_disabled = {{ \"s2s\" }}\n"
                ),
                Some((direct, issued.ca)),
            )
        } else {
            (
                "c2s_require_encryption = false\nallow_unencrypted_plain_auth = true\n\
                 c2s_direct_tls_ports = { }\nmodules_disabled = { \"s2s\"; \"tls\" }\n"
                    .to_string(),
                None,
            )
        };
        let config = format!(
            r#"-- throwaway test server
run_as_root = true
pidfile = "{root}/prosody.pid"
data_path = "{root}/data"
certificates = "{root}/certs"
c2s_ports = {{ {port} }}
c2s_interfaces = {{ "127.0.0.1" }}
legacy_ssl_ports = {{ }}
s2s_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}
{tls_config}authentication = "internal_plain"
storage = "internal"
log = {{ {{ levels = {{ min = "info" }}, to = "file", filename = "{root}/prosody.log" }} }}
modules_enabled = {{ "roster"; "saslauth"; "tls"; "disco"; "ping"; "posix" }}
VirtualHost "{DOMAIN}"
"#
        );
        std::fs::write(dir.path().join("prosody.cfg.lua"), config).expect("config");
        Prosody {
            dir,
            port,
            tls,
            child: None,
        }
    }

    pub fn start(users: &[&str]) -> Prosody {
        let mut p = Prosody::prepare(free_port(), users);
        p.run();
        p
    }

    pub fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts (or restarts) the server and waits until it accepts connections.
    pub fn run(&mut self) {
        assert!(self.child.is_none(), "already running");
        let config = self.dir.path().join("prosody.cfg.lua");
        let child = Command::new("prosody")
            .arg("-F")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prosody is not installed: run scripts/setup (apt-get install prosody)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("prosody exited with {status}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "prosody did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Kills the server hard, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
    pub fn pause(&self) {
        self.signal(nix::sys::signal::Signal::SIGSTOP);
    }

    /// Thaws a paused server (SIGCONT).
    pub fn resume(&self) {
        self.signal(nix::sys::signal::Signal::SIGCONT);
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        let child = self.child.as_ref().expect("running");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal)
            .expect("signal prosody");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prosody.log")).unwrap_or_default()
    }
}

impl Drop for Prosody {
    fn drop(&mut self) {
        self.kill();
    }
}
