//! A real Samba Active Directory domain controller for tests: `samba-tool domain provision` into
//! a temp dir, then `samba` in its own network namespace (it insists on ports 389/636), reached
//! over a veth pair. Needs root and the Debian packages `samba-ad-dc` and `samba-ad-provision`
//! (`scripts/setup` installs them); opt in with `TEST_SAMBA_AD=1`, which `scripts/test`
//! sets when it can.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BASE: &str = "DC=example,DC=test";
pub const ADMIN_DN: &str = "CN=Administrator,CN=Users,DC=example,DC=test";
pub const ADMIN_PW: &str = "Sw1tchb0ard!Admin";

pub struct SambaDc {
    pub dir: tempfile::TempDir,
    pub url: String,
    netns: String,
    child: Option<Child>,
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl SambaDc {
    /// Provisions and starts a domain controller; `None` when the run did not opt in. Once
    /// opted in, anything that stops the server from starting fails the test.
    pub fn start() -> Option<SambaDc> {
        if std::env::var("TEST_SAMBA_AD").as_deref() != Ok("1") {
            return None;
        }
        assert!(
            nix::unistd::Uid::effective().is_root(),
            "TEST_SAMBA_AD=1 needs root (for a network namespace)"
        );
        Some(Self::provision_and_start().unwrap_or_else(|e| panic!("Samba AD DC: {e}")))
    }

    fn provision_and_start() -> Result<SambaDc, String> {
        let dir = tempfile::Builder::new()
            .prefix("samba")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let target = dir.path().display().to_string();
        run(Command::new("samba-tool").args([
            "domain",
            "provision",
            "--realm=EXAMPLE.TEST",
            "--domain=EXAMPLE",
            "--server-role=dc",
            "--dns-backend=NONE",
            "--host-name=dc1",
            &format!("--adminpass={ADMIN_PW}"),
            &format!("--targetdir={target}"),
            "--option=server services = ldap",
        ]));

        // A namespace and a /30 of our own, derived from the pid so parallel runs do not meet.
        let pid = std::process::id();
        let netns = format!("sbtest{pid}");
        let (host_if, ns_if) = (
            format!("sbh{}", pid % 100_000),
            format!("sbn{}", pid % 100_000),
        );
        let (a, b) = ((pid / 64) % 250, (pid % 64) * 4);
        let (host_ip, ns_ip) = (
            format!("10.{}.{a}.{}", 200, b + 1),
            format!("10.200.{a}.{}", b + 2),
        );
        let _ = Command::new("ip").args(["netns", "del", &netns]).output();
        run(Command::new("ip").args(["netns", "add", &netns]));
        let dc = SambaDc {
            url: format!("ldap://{ns_ip}"),
            dir,
            netns: netns.clone(),
            child: None,
        };
        let exec = |args: &[&str]| {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &netns]).args(args);
            run(&mut c);
        };
        exec(&["ip", "link", "set", "lo", "up"]);
        run(Command::new("ip").args([
            "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
        ]));
        run(Command::new("ip").args(["link", "set", &ns_if, "netns", &netns]));
        run(Command::new("ip").args(["addr", "add", &format!("{host_ip}/30"), "dev", &host_if]));
        run(Command::new("ip").args(["link", "set", &host_if, "up"]));
        exec(&["ip", "addr", "add", &format!("{ns_ip}/30"), "dev", &ns_if]);
        exec(&["ip", "link", "set", &ns_if, "up"]);

        // Listen on the namespace's address only; simple binds over plain LDAP for the test.
        let conf = dc.dir.path().join("etc/smb.conf");
        let text = std::fs::read_to_string(&conf).map_err(|e| e.to_string())?;
        let text = text.replace(
            "[global]\n",
            &format!(
                "[global]\n\tinterfaces = {ns_ip}/30\n\tbind interfaces only = yes\n\
                 \tldap server require strong auth = no\n\tlog file = {target}/samba.log\n\
                 \tpid directory = {target}\n"
            ),
        );
        std::fs::write(&conf, text).map_err(|e| e.to_string())?;
        let mut dc = dc;
        let child = Command::new("ip")
            .args(["netns", "exec", &netns, "samba", "-i", "-M", "single", "-s"])
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("samba: {e}"))?;
        dc.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(90);
        while Command::new("ldapsearch")
            .args([
                "-x",
                "-H",
                &dc.url,
                "-D",
                ADMIN_DN,
                "-w",
                ADMIN_PW,
                "-b",
                "",
                "-s",
                "base",
                "dsServiceName",
            ])
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
        {
            if Instant::now() > deadline {
                let log =
                    std::fs::read_to_string(dc.dir.path().join("samba.log")).unwrap_or_default();
                return Err(format!(
                    "samba did not answer LDAP within 90 s; its log:\n{log}"
                ));
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        Ok(dc)
    }

    /// Runs `samba-tool` on this DC's own database (as an administrator on the DC would).
    pub fn tool(&self, args: &[&str]) {
        let conf = self.dir.path().join("etc/smb.conf");
        run(Command::new("samba-tool").args(args).arg("-s").arg(&conf));
    }

    /// Applies LDIF change records as Administrator.
    pub fn modify(&self, ldif: &str) {
        let mut child = Command::new("ldapmodify")
            .args(["-x", "-H", &self.url, "-D", ADMIN_DN, "-w", ADMIN_PW])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ldapmodify");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(ldif.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("ldapmodify");
        assert!(
            out.status.success(),
            "ldapmodify failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A `[[sources]]` entry of kind `active_directory` for `base_dn`.
    pub fn source(&self, name: &str, base_dn: &str) -> switchboard::config::SourceConfig {
        switchboard::config::SourceConfig {
            name: name.into(),
            kind: "active_directory".into(),
            default_region: None,
            url: Some(self.url.clone()),
            // Plain LDAP to the test DC's own network namespace (its test certificate is not
            // for that address).
            allow_plaintext: true,
            bind_dn: Some(ADMIN_DN.into()),
            bind_password: Some(ADMIN_PW.into()),
            base_dn: Some(base_dn.into()),
            page_size: Some(2),
            timeout: Some("10s".into()),
            ..Default::default()
        }
    }
}

impl Drop for SambaDc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Samba forks nothing in the single process model, but be sure nothing outlives the test.
        let _ = Command::new("ip")
            .args(["netns", "pids", &self.netns])
            .output()
            .map(|o| {
                for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-9", pid]).output();
                }
            });
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .output();
    }
}
