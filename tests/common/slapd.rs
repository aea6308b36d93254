//! A real OpenLDAP `slapd` for tests: a throwaway cn=config and MDB database in a temp dir,
//! loaded from LDIF with `slapadd`, listening on a free loopback port, unprivileged (as root it
//! drops to the `openldap` user). `scripts/setup` installs the Debian packages `slapd` and
//! `ldap-utils`.
#![allow(dead_code)]

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SUFFIX: &str = "dc=example,dc=com";
pub const ADMIN_DN: &str = "cn=admin,dc=example,dc=com";
pub const ADMIN_PW: &str = "admin-secret";
/// A plain reader, subject to the server's size limit (the root DN is not).
pub const READER_DN: &str = "cn=reader,dc=example,dc=com";
pub const READER_PW: &str = "reader-secret";

#[derive(Debug, Clone)]
pub struct SlapdOptions {
    /// Load the syncprov overlay (RFC 4533 provider).
    pub syncprov: bool,
    /// syncprov session log size: deletions are sent explicitly while it covers the cookie;
    /// `None` makes the server use the present phase.
    pub sessionlog: Option<u32>,
    /// Entries a non-root search may return without paging.
    pub size_limit: Option<u32>,
    /// Serve TLS too (ldaps:// on a second port, and StartTLS) with a certificate for
    /// 127.0.0.1 from a throwaway CA (`server-ca.pem` in the server's dir).
    pub tls: bool,
    /// Index what address book clients search (cn, sn, givenName, mail, telephoneNumber,
    /// mobile: equality and substring), as an administrator serving phones would.
    pub directory_indexes: bool,
}

impl Default for SlapdOptions {
    fn default() -> Self {
        SlapdOptions {
            syncprov: true,
            sessionlog: Some(10_000),
            size_limit: None,
            tls: false,
            directory_indexes: false,
        }
    }
}

pub struct Slapd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub url: String,
    /// `ldaps://` URL when started with `tls`.
    pub ldaps_url: Option<String>,
    options: SlapdOptions,
    child: Option<Child>,
}

fn bin(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/sbin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    PathBuf::from(name)
}

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The base entries every fixture sits under: the suffix, two OUs, the reader account.
pub fn base_ldif() -> String {
    format!(
        "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example Corp\n\n\
         dn: ou=People,{SUFFIX}\nobjectClass: organizationalUnit\nou: People\n\n\
         dn: ou=Alumni,{SUFFIX}\nobjectClass: organizationalUnit\nou: Alumni\n\n\
         dn: {READER_DN}\nobjectClass: simpleSecurityObject\nobjectClass: organizationalRole\n\
         cn: reader\nuserPassword: {READER_PW}\n\n"
    )
}

/// `n` generated people under ou=People: `uid=user{i}`, with a work phone and a mail.
pub fn people_ldif(range: std::ops::Range<usize>) -> String {
    let mut out = String::new();
    for i in range {
        out.push_str(&format!(
            "dn: uid=user{i},ou=People,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: user{i}\n\
             cn: Person {i}\ngivenName: Person\nsn: Number{i}\nmail: user{i}@example.com\n\
             telephoneNumber: +1 212 555 {:04}\ntitle: Engineer\nou: Engineering\n\n",
            i % 10_000
        ));
    }
    out
}

impl Slapd {
    /// Starts a server loaded with `ldif` (which must include [`base_ldif`]).
    pub fn start(options: SlapdOptions, ldif: &str) -> Slapd {
        let dir = tempfile::Builder::new()
            .prefix("slapd")
            .tempdir()
            .expect("temp dir");
        std::fs::create_dir_all(dir.path().join("db")).expect("db dir");
        let port = free_port();
        let ldaps_url = options
            .tls
            .then(|| format!("ldaps://127.0.0.1:{}", free_port()));
        let mut slapd = Slapd {
            url: format!("ldap://127.0.0.1:{port}"),
            ldaps_url,
            dir,
            port,
            options,
            child: None,
        };
        if slapd.options.tls {
            slapd.make_certificates();
        }
        slapd.write_config();
        let data = slapd.dir.path().join("data.ldif");
        std::fs::write(&data, ldif).expect("write ldif");
        slapd.run_tool(
            "slapadd",
            &["-q", "-n", "1", "-F", "config", "-l", "data.ldif"],
        );
        slapd.spawn();
        slapd
    }

    fn config_ldif(&self) -> String {
        let dir = self.dir.path().display();
        let mut modules = "olcModuleLoad: back_mdb\n".to_string();
        if self.options.syncprov {
            modules.push_str("olcModuleLoad: syncprov\n");
        }
        let indexes = if self.options.directory_indexes {
            "olcDbIndex: cn,sn,givenName,mail,telephoneNumber,mobile eq,sub\n"
        } else {
            ""
        };
        let limits = self
            .options
            .size_limit
            .map(|n| {
                format!(
                    "olcLimits: dn.exact=\"{READER_DN}\" size.soft={n} size.hard={n} size.prtotal=unlimited\n"
                )
            })
            .unwrap_or_default();
        let tls = if self.options.tls {
            format!(
                "olcTLSCACertificateFile: {dir}/server-ca.pem\nolcTLSCertificateFile: {dir}/server.pem\n\
                 olcTLSCertificateKeyFile: {dir}/server.key\n"
            )
        } else {
            String::new()
        };
        let mut out = format!(
            "dn: cn=config\nobjectClass: olcGlobal\ncn: config\nolcPidFile: {dir}/slapd.pid\n{tls}\n\
             dn: cn=module{{0}},cn=config\nobjectClass: olcModuleList\ncn: module{{0}}\n\
             olcModulePath: /usr/lib/ldap\n{modules}\n\
             dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n\n"
        );
        for schema in ["core", "cosine", "nis", "inetorgperson"] {
            let text = std::fs::read_to_string(format!("/etc/ldap/schema/{schema}.ldif"))
                .expect("OpenLDAP schema (is slapd installed? run scripts/setup)");
            // Drop comments; the include files start their own entries.
            let entry: String = text
                .lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| format!("{l}\n"))
                .collect();
            out.push_str(entry.trim_start());
            out.push('\n');
        }
        out.push_str(&format!(
            "dn: olcDatabase={{-1}}frontend,cn=config\nobjectClass: olcDatabaseConfig\n\
             objectClass: olcFrontendConfig\nolcDatabase: {{-1}}frontend\n\n\
             dn: olcDatabase={{0}}config,cn=config\nobjectClass: olcDatabaseConfig\n\
             olcDatabase: {{0}}config\nolcAccess: {{0}}to * by * none\n\n\
             dn: olcDatabase={{1}}mdb,cn=config\nobjectClass: olcDatabaseConfig\n\
             objectClass: olcMdbConfig\nolcDatabase: {{1}}mdb\nolcDbDirectory: {dir}/db\n\
             olcSuffix: {SUFFIX}\nolcRootDN: {ADMIN_DN}\nolcRootPW: {ADMIN_PW}\n\
             olcDbMaxSize: 4294967296\nolcDbIndex: objectClass eq\nolcDbIndex: entryUUID,entryCSN eq\n{indexes}\
             olcAccess: {{0}}to * by * read\n{limits}\n"
        ));
        if self.options.syncprov {
            out.push_str(
                "dn: olcOverlay={0}syncprov,olcDatabase={1}mdb,cn=config\n\
                 objectClass: olcOverlayConfig\nobjectClass: olcSyncProvConfig\n\
                 olcOverlay: {0}syncprov\n",
            );
            if let Some(n) = self.options.sessionlog {
                out.push_str(&format!("olcSpSessionlog: {n}\n"));
            }
            out.push('\n');
        }
        out
    }

    /// A CA and a server certificate for 127.0.0.1.
    fn make_certificates(&self) {
        super::certs::issue(self.dir.path(), "server", "IP:127.0.0.1,DNS:localhost");
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("server-ca.pem")
    }

    fn write_config(&self) {
        let config = self.dir.path().join("config");
        let _ = std::fs::remove_dir_all(&config);
        std::fs::create_dir_all(&config).expect("config dir");
        std::fs::write(self.dir.path().join("config.ldif"), self.config_ldif())
            .expect("write config");
        self.run_tool("slapadd", &["-n", "0", "-F", "config", "-l", "config.ldif"]);
    }

    /// Runs an OpenLDAP tool in the server's dir, as the user the server runs as.
    fn run_tool(&self, tool: &str, args: &[&str]) {
        self.chown();
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "openldap", "--"]).arg(bin(tool));
            c
        } else {
            Command::new(bin(tool))
        };
        let out = cmd
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e} (run scripts/setup)"));
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn chown(&self) {
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "openldap:openldap"])
                .arg(self.dir.path())
                .status()
                .expect("chown");
            assert!(status.success());
        }
    }

    fn spawn(&mut self) {
        self.chown();
        let mut cmd = Command::new(bin("slapd"));
        let mut listen = format!("{}/", self.url);
        if let Some(ldaps) = &self.ldaps_url {
            listen.push_str(&format!(" {ldaps}/"));
        }
        cmd.args(["-d", "0", "-F", "config", "-h", &listen])
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if is_root() {
            cmd.args(["-u", "openldap", "-g", "openldap"]);
        }
        let mut child = cmd.spawn().expect("start slapd (run scripts/setup)");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                panic!("slapd exited ({status}): {err}");
            }
            assert!(Instant::now() < deadline, "slapd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = Some(child);
    }

    /// Stops the server (the data stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server at once (SIGKILL), as a crash or a pulled plug would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again after `stop` or `kill`.
    pub fn start_again(&mut self) {
        self.spawn();
    }

    /// Restarts with other options on the same data and port.
    pub fn restart(&mut self, options: SlapdOptions) {
        self.stop();
        self.options = options;
        self.write_config();
        self.spawn();
    }

    /// Applies LDIF change records as the directory administrator (`ldapmodify`).
    pub fn modify(&self, ldif: &str) {
        let mut child = Command::new(bin("ldapmodify"))
            .args(["-x", "-H", &self.url, "-D", ADMIN_DN, "-w", ADMIN_PW])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ldapmodify (run scripts/setup)");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(ldif.as_bytes())
            .expect("write ldif");
        let out = child.wait_with_output().expect("ldapmodify");
        assert!(
            out.status.success(),
            "ldapmodify failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The entryUUID of an entry, as the server reports it.
    pub fn entry_uuid(&self, dn: &str) -> String {
        let out = Command::new(bin("ldapsearch"))
            .args([
                "-x",
                "-LLL",
                "-H",
                &self.url,
                "-D",
                ADMIN_DN,
                "-w",
                ADMIN_PW,
                "-b",
                dn,
                "-s",
                "base",
                "entryUUID",
            ])
            .output()
            .expect("ldapsearch");
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.strip_prefix("entryUUID: "))
            .unwrap_or_else(|| panic!("no entryUUID for {dn}: {text}"))
            .to_string()
    }

    /// Exit status of a plain (unpaged) `ldapsearch` for every person as the reader: 4 is
    /// sizeLimitExceeded.
    pub fn unpaged_search_status(&self) -> Option<i32> {
        Command::new(bin("ldapsearch"))
            .args([
                "-x",
                "-LLL",
                "-H",
                &self.url,
                "-D",
                READER_DN,
                "-w",
                READER_PW,
                "-b",
                SUFFIX,
                "(objectClass=inetOrgPerson)",
                "1.1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("ldapsearch")
            .code()
    }

    /// A `[[sources]]` entry for this server, binding as the size-limited reader.
    pub fn source(&self, name: &str) -> switchboard::config::SourceConfig {
        switchboard::config::SourceConfig {
            name: name.into(),
            kind: "ldap".into(),
            default_region: None,
            url: Some(self.url.clone()),
            bind_dn: Some(READER_DN.into()),
            bind_password: Some(READER_PW.into()),
            base_dn: Some(format!("ou=People,{SUFFIX}")),
            page_size: Some(50),
            timeout: Some("5s".into()),
            ..Default::default()
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TCP relay in front of a server that cuts every connection once it has relayed `limit`
/// bytes from the server: a connection dropping part way through a read.
pub struct CuttingProxy {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl CuttingProxy {
    pub async fn start(upstream_port: u16, limit: usize) -> CuttingProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let Ok(server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream_port)).await
                    else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut cr, &mut sw).await;
                    });
                    let mut relayed = 0usize;
                    let mut buf = vec![0u8; 4096];
                    while relayed < limit {
                        let n = match sr.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n.min(limit - relayed),
                        };
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        relayed += n;
                    }
                    up.abort();
                    // Dropping both halves closes the client's connection mid-response.
                });
            }
        });
        CuttingProxy { port, task }
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A generated person as an LDIF entry under `ou=People` (non-ASCII values base64, as LDIF
/// wants): what the benchmarks load with `slapadd`.
pub fn person_ldif(i: usize, p: &switchboard::domain::SourceRecord) -> String {
    let mut out = format!(
        "dn: uid=u{i},ou=People,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: u{i}\n\
         cn: {} {}\ngivenName: {}\nsn: {}\n",
        p.given_name.as_deref().unwrap_or_default(),
        p.family_name.as_deref().unwrap_or_default(),
        p.given_name.as_deref().unwrap_or_default(),
        p.family_name.as_deref().unwrap_or_default(),
    );
    let mut line = |attr: &str, value: Option<&str>| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            out.push_str(&format!("{attr}: {v}\n"));
        }
    };
    line("title", p.title.as_deref());
    line("ou", p.department.as_deref());
    line("l", p.location.as_deref());
    line("mail", p.emails.first().map(String::as_str));
    for (kind, number) in &p.phones {
        let attr = match kind {
            switchboard::domain::PhoneKind::Mobile => "mobile",
            _ => "telephoneNumber",
        };
        line(attr, Some(number));
    }
    out.push('\n');
    // LDIF is 7-bit unless base64: write non-ASCII values base64-encoded.
    out.lines()
        .map(|l| match l.split_once(": ") {
            Some((attr, value)) if !value.is_ascii() => {
                use base64::Engine;
                format!(
                    "{attr}:: {}\n",
                    base64::engine::general_purpose::STANDARD.encode(value)
                )
            }
            _ => format!("{l}\n"),
        })
        .collect()
}
