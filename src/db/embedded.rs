//! A private PostgreSQL cluster in the data dir, for running with no configuration.
//!
//! It uses the machine's PostgreSQL binaries (on `PATH` or under `/usr/lib/postgresql/*/bin`),
//! listens only on a Unix socket, and asks for a password (SCRAM-SHA-256): a random one made at
//! `initdb`, kept beside the cluster in `postgres.password` (mode 0600). Run as root, the server
//! runs as its own system user, `switchboard-db` (created when missing), as PostgreSQL refuses to
//! run as root. [`EmbeddedPostgres::supervise`] restarts it, with backoff, when it dies.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use tokio::process::Command;
use tokio::sync::watch;

use crate::error::{Error, Result};

pub const SUPERUSER: &str = "switchboard";

/// The system user a root-started cluster runs as.
pub const OS_USER: &str = "switchboard-db";

/// Unix socket paths are limited to 107 bytes; leave room for `/.s.PGSQL.5432`.
const MAX_SOCKET_DIR_LEN: usize = 90;

#[derive(Debug)]
pub struct EmbeddedPostgres {
    dir: PathBuf,
    socket_dir: PathBuf,
    bin_dir: PathBuf,
    run_as: Option<(u32, u32)>,
    /// The superuser's password (none for a cluster made before passwords, which trusts).
    password: Option<String>,
    /// True when this process started the server, and so may stop it.
    owned: AtomicBool,
}

impl EmbeddedPostgres {
    /// Initializes the cluster in `dir` if needed and starts it unless it is already running.
    /// Concurrent callers (several CLI commands, parallel tests) serialize on a lock file.
    pub async fn start(dir: &Path) -> Result<EmbeddedPostgres> {
        let parent = dir.parent().unwrap_or(Path::new("."));
        fs::create_dir_all(parent)?;
        let dir = fs::canonicalize(parent)?.join(dir.file_name().unwrap_or("postgres".as_ref()));
        let bin_dir = find_bin_dir()?;
        let socket_dir = socket_dir_for(&dir);
        let lock = lock(&dir).await?;
        let run_as = unprivileged_user(&dir).await?;

        let mut cluster = EmbeddedPostgres {
            dir,
            socket_dir,
            bin_dir,
            run_as,
            password: None,
            owned: AtomicBool::new(false),
        };
        if !cluster.dir.join("PG_VERSION").exists() {
            cluster.init().await?;
        }
        cluster.password = match fs::read_to_string(cluster.password_file()) {
            Ok(p) => Some(p.trim().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(
                    dir = %cluster.dir.display(),
                    "this embedded cluster predates passwords and trusts local connections;                      move it away and import again to get one that asks for a password"
                );
                None
            }
            Err(e) => return Err(e.into()),
        };
        cluster.prepare_socket_dir()?;
        if !cluster.is_running().await? {
            cluster.launch().await?;
            cluster.owned.store(true, Ordering::SeqCst);
        }
        drop::<File>(lock);
        Ok(cluster)
    }

    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        let options = PgConnectOptions::new()
            .socket(&self.socket_dir)
            .username(SUPERUSER)
            .database(database)
            .application_name(&application_name());
        match &self.password {
            Some(password) => options.password(password),
            None => options,
        }
    }

    /// A `postgres://` URL for `database` (its password is alphanumeric: no escaping).
    pub fn url(&self, database: &str) -> String {
        let password = self
            .password
            .as_ref()
            .map(|p| format!(":{p}"))
            .unwrap_or_default();
        format!(
            "postgres://{SUPERUSER}{password}@localhost/{database}?host={}",
            self.socket_dir.display()
        )
    }

    fn password_file(&self) -> PathBuf {
        self.dir.with_extension("password")
    }

    /// The postmaster's process id, from `postmaster.pid`.
    pub fn postmaster_pid(&self) -> Option<i32> {
        let text = fs::read_to_string(self.dir.join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    fn postmaster_alive(&self) -> bool {
        self.postmaster_pid().is_some_and(|pid| {
            match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
                Ok(()) => true,
                Err(e) => e == nix::errno::Errno::EPERM,
            }
        })
    }

    /// Starts the server again if it is not running (another process may have done so first).
    async fn restart(&self) -> Result<()> {
        let lock = lock(&self.dir).await?;
        if !self.is_running().await? {
            self.launch().await?;
            self.owned.store(true, Ordering::SeqCst);
        }
        drop::<File>(lock);
        Ok(())
    }

    /// Watches the server and starts it again when it dies (checked every `every`; failed
    /// restarts retried after 1, 2, 4… up to 30 seconds) until `stop`. Meanwhile requests that
    /// need the database are answered 503 `unavailable` with `Retry-After`.
    pub fn supervise(
        self: Arc<Self>,
        every: Duration,
        mut stop: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let max_backoff = Duration::from_secs(30);
            let mut backoff = Duration::from_secs(1);
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = crate::presence::stopped(&mut stop) => return,
                }
                if self.postmaster_alive() {
                    backoff = Duration::from_secs(1);
                    continue;
                }
                tracing::error!(dir = %self.dir.display(), "embedded postgres is down; restarting it");
                match self.restart().await {
                    Ok(()) => tracing::info!("embedded postgres restarted"),
                    Err(e) => {
                        tracing::error!(error = %e, retry_in = ?backoff, "embedded postgres did not restart");
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = crate::presence::stopped(&mut stop) => return,
                        }
                        backoff = (backoff * 2).min(max_backoff);
                    }
                }
            }
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn owned(&self) -> bool {
        self.owned.load(Ordering::SeqCst)
    }

    /// Stops the server if this process started it. Call after closing every connection.
    pub async fn stop(&self) {
        if !self.owned() {
            return;
        }
        let mut cmd = self.command("pg_ctl");
        cmd.arg("stop")
            .arg("-D")
            .arg(&self.dir)
            .args(["-m", "fast", "-w", "-t", "60"]);
        match self.run(cmd, "pg_ctl stop").await {
            Ok(_) => tracing::info!(dir = %self.dir.display(), "embedded postgres stopped"),
            Err(e) => tracing::warn!(error = %e, "could not stop embedded postgres"),
        }
    }

    async fn init(&self) -> Result<()> {
        tracing::info!(dir = %self.dir.display(), "initializing embedded postgres cluster");
        let data_dir = self.dir.parent().unwrap_or(Path::new("/"));
        if let Some((uid, gid)) = self.run_as {
            // The unprivileged server must be able to reach its directory.
            let mode = fs::metadata(data_dir)?.permissions().mode();
            if mode & 0o001 == 0 {
                fs::set_permissions(data_dir, fs::Permissions::from_mode(mode | 0o711))?;
            }
            check_traversable(data_dir)?;
            fs::create_dir_all(&self.dir)?;
            std::os::unix::fs::chown(&self.dir, Some(uid), Some(gid))?;
        } else {
            fs::create_dir_all(&self.dir)?;
        }
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))?;
        // The password: ours in a file only we read, initdb's copy readable by its user only
        // and removed once the cluster holds it.
        let password = crate::access::secret::random_password();
        write_private(&self.password_file(), &password, None)?;
        let pwfile = self.dir.with_extension("initpw");
        write_private(&pwfile, &password, self.run_as)?;
        let mut cmd = self.command("initdb");
        cmd.arg("-D")
            .arg(&self.dir)
            .arg(format!("--pwfile={}", pwfile.display()))
            .args([
                "-U",
                SUPERUSER,
                "-A",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-instructions",
            ]);
        let made = self.run(cmd, "initdb").await;
        let _ = fs::remove_file(&pwfile);
        made?;
        // Buffers for a million people's rows and indexes (a bulk import that overflows them
        // writes evicted pages itself), within an eighth of the machine's memory.
        let shared_buffers_mb = (total_memory_mb().unwrap_or(2048) / 8).clamp(128, 1024);
        let tuning = format!(
            "\n# Switchboard embedded cluster\n\
            listen_addresses = ''\n\
            max_connections = 200\n\
            shared_buffers = {shared_buffers_mb}MB\n\
            work_mem = 32MB\n\
            maintenance_work_mem = 256MB\n\
            max_wal_size = 4GB\n\
            checkpoint_timeout = 15min\n"
        );
        let conf = self.dir.join("postgresql.conf");
        let mut text = fs::read_to_string(&conf)?;
        text.push_str(&tuning);
        fs::write(&conf, text)?;
        Ok(())
    }

    fn prepare_socket_dir(&self) -> Result<()> {
        if self.socket_dir != self.dir {
            fs::create_dir_all(&self.socket_dir)?;
            fs::set_permissions(&self.socket_dir, fs::Permissions::from_mode(0o700))?;
            if let Some((uid, gid)) = self.run_as {
                std::os::unix::fs::chown(&self.socket_dir, Some(uid), Some(gid))?;
            }
        }
        Ok(())
    }

    async fn is_running(&self) -> Result<bool> {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("status").arg("-D").arg(&self.dir);
        let out = cmd
            .output()
            .await
            .map_err(|e| self.spawn_error("pg_ctl", e))?;
        // 0: running; 3: not running; 4: no accessible data directory.
        match out.status.code() {
            Some(0) => Ok(self.socket_dir.join(".s.PGSQL.5432").exists()),
            Some(3) => Ok(false),
            _ => Err(Error::EmbeddedDb(format!(
                "pg_ctl status failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))),
        }
    }

    async fn launch(&self) -> Result<()> {
        tracing::info!(dir = %self.dir.display(), "starting embedded postgres");
        let mut cmd = self.command("pg_ctl");
        let options = format!("-c listen_addresses='' -k '{}'", self.socket_dir.display());
        cmd.arg("start")
            .arg("-D")
            .arg(&self.dir)
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "60", "-o", &options]);
        // pg_ctl leaves the server running with our stdout open: keep it from holding pipes.
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        self.run(cmd, "pg_ctl start").await.map_err(|e| {
            let log = fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(5).collect();
            Error::EmbeddedDb(format!(
                "{e}; server log: {}",
                tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
            ))
        })?;
        Ok(())
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(program));
        cmd.env("LC_ALL", "C")
            .env_remove("PGDATA")
            .current_dir(self.dir.parent().unwrap_or(Path::new("/")));
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd.kill_on_drop(false);
        cmd
    }

    async fn run(&self, mut cmd: Command, what: &str) -> Result<Output> {
        let out = cmd.output().await.map_err(|e| self.spawn_error(what, e))?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(Error::EmbeddedDb(format!(
                "{what} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    fn spawn_error(&self, what: &str, e: std::io::Error) -> Error {
        Error::EmbeddedDb(format!(
            "cannot run {what} from {}: {e}",
            self.bin_dir.display()
        ))
    }
}

/// Identifies this process's connections, so it can tell whether others still use the cluster.
pub fn application_name() -> String {
    format!("switchboard-{}", std::process::id())
}

fn socket_dir_for(dir: &Path) -> PathBuf {
    if dir.as_os_str().len() <= MAX_SOCKET_DIR_LEN {
        dir.to_path_buf()
    } else {
        let digest = xxhash_rust::xxh3::xxh3_64(dir.as_os_str().as_encoded_bytes());
        std::env::temp_dir().join(format!("switchboard-pg-{digest:016x}"))
    }
}

fn find_bin_dir() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("pg_ctl").is_file() && dir.join("initdb").is_file() {
                return Ok(fs::canonicalize(dir.join("pg_ctl"))?
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or(dir));
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        Error::EmbeddedDb(
            "no PostgreSQL server binaries found (looked on PATH and in /usr/lib/postgresql/*/bin); \
             install them (`apt-get install postgresql`) or set database.url"
                .into(),
        )
    })
}

/// Serializes starting and stopping the cluster between processes (several CLI commands,
/// parallel tests, a supervisor).
async fn lock(dir: &Path) -> Result<File> {
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.with_extension("lock"))?;
    tokio::task::spawn_blocking(move || lock.lock().map(|_| lock))
        .await
        .map_err(|e| Error::EmbeddedDb(e.to_string()))?
        .map_err(Error::from)
}

/// `text` in a new file readable by its owner only (`owner`, else us).
fn write_private(path: &Path, text: &str, owner: Option<(u32, u32)>) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let _ = fs::remove_file(path);
    let mut file = OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))?;
    }
    Ok(())
}

/// Who the server runs as when we are root: the owner of an existing cluster, else the
/// `switchboard-db` system user, created when missing.
async fn unprivileged_user(dir: &Path) -> Result<Option<(u32, u32)>> {
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    if dir.join("PG_VERSION").exists() {
        let meta = fs::metadata(dir)?;
        return Ok(Some((meta.uid(), meta.gid())));
    }
    let found = || {
        nix::unistd::User::from_name(OS_USER)
            .ok()
            .flatten()
            .map(|u| (u.uid.as_raw(), u.gid.as_raw()))
    };
    let mut why = String::new();
    for _ in 0..10 {
        if let Some(user) = found() {
            return Ok(Some(user));
        }
        // Parallel starts may race for /etc/passwd: the loser retries, then finds the user.
        let out = Command::new("useradd")
            .args(["--system", "--user-group", "--no-create-home"])
            .args(["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin"])
            .args(["--comment", "Switchboard embedded PostgreSQL", OS_USER])
            .output()
            .await;
        match out {
            Ok(out) if out.status.success() => {}
            Ok(out) => why = String::from_utf8_lossy(&out.stderr).trim().to_string(),
            Err(e) => why = format!("cannot run useradd: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    found().map(Some).ok_or_else(|| {
        Error::EmbeddedDb(format!(
            "running as root, and the system user {OS_USER} to run PostgreSQL as could not be created: {why}"
        ))
    })
}

fn check_traversable(dir: &Path) -> Result<()> {
    for ancestor in dir.ancestors().skip(1) {
        let mode = fs::metadata(ancestor)?.permissions().mode();
        if mode & 0o001 == 0 {
            return Err(Error::EmbeddedDb(format!(
                "{} is not reachable by the unprivileged postgres user (mode {:o}); choose another --data-dir",
                ancestor.display(),
                mode & 0o777
            )));
        }
    }
    Ok(())
}

/// The machine's memory, from /proc/meminfo.
fn total_memory_mb() -> Option<u64> {
    let info = fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024)
}
