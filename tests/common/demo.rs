//! A real `switchboard demo` process of its own (its own data directory and PostgreSQL cluster),
//! for tests that need the binary as a customer runs it: the README's first command, federation
//! between two companies, the console in a browser. Stopped with SIGTERM (a graceful shutdown
//! that stops its cluster) when dropped.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub struct Demo {
    pub child: Child,
    pub url: String,
    /// The demo admin's one-time password, as printed (a new one each start; none with `--open`).
    pub password: Option<String>,
    /// What it printed before it was ready to serve.
    pub startup: Vec<String>,
    args: Vec<String>,
    stopped: bool,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The demo company of `people` people (generated from `seed`) in `dir`, on `port`, with
/// `config` as its config file.
pub fn start(dir: &Path, port: u16, seed: u64, people: usize, config: &str) -> Demo {
    let file = dir.join("switchboard.toml");
    std::fs::write(&file, config).expect("config");
    spawn(vec![
        "--config".to_string(),
        file.display().to_string(),
        "--data-dir".into(),
        dir.join("data").display().to_string(),
        "demo".into(),
        "--people".into(),
        people.to_string(),
        "--seed".into(),
        seed.to_string(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
    ])
}

/// `switchboard ARGS` (a `demo` command), once it says where it serves.
pub fn spawn(args: Vec<String>) -> Demo {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(&args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start switchboard");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen: Vec<String> = Vec::new();
    loop {
        let Ok(line) = rx.recv_timeout(Duration::from_secs(180)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("switchboard did not start; it said:\n{}", seen.join("\n"));
        };
        if let Some(url) = super::served_url(&line) {
            seen.push(line);
            let password = seen
                .iter()
                .find_map(|l| l.split("one-time password ").nth(1))
                .map(|p| p.trim().to_string());
            // Keep draining its output, so that it never blocks on a full pipe.
            std::thread::spawn(move || while rx.recv().is_ok() {});
            return Demo {
                child,
                url,
                password,
                startup: seen,
                args,
                stopped: false,
            };
        }
        seen.push(line);
    }
}

impl Demo {
    /// The admin's password (a demo started without `--open` prints one).
    pub fn admin_password(&self) -> &str {
        self.password.as_deref().expect("the demo's admin password")
    }

    /// The same binary's CLI against this demo's config and data directory (its cluster is
    /// shared while the demo runs): standard output, or a panic with what it said.
    pub fn cli(&self, args: &[&str]) -> String {
        let global = self.args.iter().position(|a| a == "demo").unwrap_or(0);
        let output = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(&self.args[..global])
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run switchboard");
        assert!(
            output.status.success(),
            "switchboard {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// SIGTERM, then waits (generously: a busy machine is slow) for the exit; SIGKILL after a
    /// minute. Its exit status, or `None` when it had to be killed or was stopped before.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if std::mem::replace(&mut self.stopped, true) {
            return None;
        }
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }

    /// Stops it and checks that it shut down by itself, with success.
    pub fn stop_cleanly(mut self) {
        match self.stop() {
            Some(status) => assert!(status.success(), "demo exited with {status}"),
            None => panic!("the demo did not stop within 60 s of SIGTERM"),
        }
    }

    /// Stops it and starts it again with the same arguments (the same port and data).
    pub fn restart(&mut self) {
        self.stop();
        // The old one is stopped: dropping it signals nothing.
        drop(std::mem::replace(self, spawn(self.args.clone())));
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.stop();
    }
}
