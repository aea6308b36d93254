//! The command line: `switchboard demo | serve | migrate | import csv | index rebuild | openapi`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::access::Role;
use crate::audit::AuditEvent;
use crate::config::Config;
use crate::db::{people, runs, Database};
use crate::demo::{DemoSource, DEMO_SOURCE};
use crate::error::{Error, Result};
use crate::search::indexer::Indexer;
use crate::search::SearchIndex;
use crate::sources::file::{FileSource, Format};
use crate::sources::ContactSource;
use crate::sync::{self, ImportOptions, ImportReport};

#[derive(Debug, Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Self-hosted business directory with live presence"
)]
pub struct Cli {
    /// TOML configuration file (see deploy/switchboard.example.toml).
    #[arg(long, global = true, env = "SWITCHBOARD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where the embedded database and the search index live [default: ./data].
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load a synthetic company and serve it: no configuration needed.
    Demo {
        /// How many people the demo company has (up to 1,000,000).
        #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        people: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Address to listen on [default: 127.0.0.1:8080].
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Serve without sign-in (loopback addresses only; the page says so in a banner).
        #[arg(long)]
        open: bool,
    },
    /// Serve the API and the web UI.
    Serve {
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Create the database if needed and apply migrations.
    Migrate,
    /// Import people from a file.
    #[command(subcommand)]
    Import(ImportCommand),
    /// Sync people from a directory, or look at past runs.
    #[command(subcommand)]
    Sync(SyncCommand),
    /// Manage the search index.
    #[command(subcommand)]
    Index(IndexCommand),
    /// Print the OpenAPI document.
    Openapi,
    /// Local accounts: for the first admin and for sites without single sign-on.
    #[command(subcommand)]
    User(UserCommand),
    /// Service tokens for scripts and integrations (`Authorization: Bearer …`).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Devices that read the address book over LDAP (desk phones, mail clients).
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Partner companies that read the shared directory (`/shared/v1`, SCIM, vCard, LDAP).
    #[command(subcommand)]
    Partner(PartnerCommand),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// One person's data.
    #[command(subcommand)]
    Person(PersonCommand),
}

#[derive(Debug, Subcommand)]
pub enum PersonCommand {
    /// Erase a person now (GDPR art. 17): their row, records, notes and photo; their name is
    /// blanked in the change log. Audited. A source that still lists them adds them again:
    /// remove them there first.
    Erase { id: uuid::Uuid },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account; prints a generated password alone on the last line.
    Add {
        name: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        /// The account's email: it is then that person's, who may edit their own notes.
        #[arg(long)]
        email: Option<String>,
    },
    /// List accounts.
    List,
    /// Remove an account and end its sessions.
    Remove { name: String },
    /// Set a new password (generated and printed on the last line, or from standard input)
    /// and end the account's sessions.
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; prints it once, alone on the last line.
    Add {
        name: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
    /// List tokens (never the tokens themselves).
    List,
    /// Revoke a token: refused from then on.
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Create a device; prints its password once, alone on the last line. It binds as
    /// `cn=NAME,…` (any DN whose first value is its name) or as NAME.
    Add { name: String },
    /// List devices and when each last bound.
    List,
    /// Remove a device: its binds are refused from then on.
    Remove { name: String },
}

/// What a partner is given; each option left out keeps its value (or the `[partners]` default).
#[derive(Debug, Clone, clap::Args)]
pub struct PartnerArgs {
    /// Fields shown: name,title,department,org_unit,location,work_phone,mobile,fax,email,im,notes
    /// [default: name,title,department,location,work_phone,email].
    #[arg(long)]
    fields: Option<String>,
    /// Presence shown: full, coarse (availability only) or none [default: coarse].
    #[arg(long, value_parser = ["full", "coarse", "none"])]
    presence: Option<String>,
    /// Only these people: department=Sales, location=London, org_unit=… (repeat; a repeated
    /// attribute allows each value). Given with `set`, replaces the scope.
    #[arg(long)]
    scope: Vec<String>,
    /// Who is shared: everyone who has not opted out (opt-out), or only who opted in (opt-in)
    /// [default: `[partners] consent`].
    #[arg(long, value_parser = ["opt-out", "opt-in"])]
    consent: Option<String>,
    /// Requests per second or minute: 10/s, 600/min [default: `[partners] rate`].
    #[arg(long)]
    rate: Option<String>,
    /// Requests per day: 5000/day [default: `[partners] quota`].
    #[arg(long)]
    quota: Option<String>,
    /// A PEM file of the client certificate its key must come with (mutual TLS, with `[tls]
    /// client_certificates`); `none` removes it.
    #[arg(long)]
    certificate: Option<std::path::PathBuf>,
}

impl PartnerArgs {
    fn settings(self) -> Result<crate::access::partners::PartnerSettings> {
        use crate::access::partners::{self, ScopeSettings};
        use crate::access::PresenceLevel;
        let scope = if self.scope.is_empty() {
            None
        } else {
            let mut scope = ScopeSettings::default();
            for item in &self.scope {
                partners::add_scope(&mut scope, item)?;
            }
            Some(scope)
        };
        Ok(partners::PartnerSettings {
            fields: self
                .fields
                .as_deref()
                .map(partners::parse_fields)
                .transpose()?,
            presence: self.presence.map(|p| match p.as_str() {
                "full" => PresenceLevel::Full,
                "none" => PresenceLevel::None,
                _ => PresenceLevel::Coarse,
            }),
            scope,
            consent: self.consent.map(|c| {
                if c == "opt-in" {
                    crate::domain::Consent::OptIn
                } else {
                    crate::domain::Consent::OptOut
                }
            }),
            rate: self.rate,
            quota: self.quota,
            certificate_sha256: match self.certificate {
                None => None,
                Some(path) if path.as_os_str() == "none" => Some(String::new()),
                Some(path) => Some(crate::tls::ClientCertificate::of_pem_file(&path)?.0),
            },
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum PartnerCommand {
    /// Add a partner; prints its API key once, alone on the last line.
    Add {
        name: String,
        #[command(flatten)]
        args: PartnerArgs,
    },
    /// List partners and their policies.
    List,
    /// One partner: policy, limits, keys (never the keys themselves).
    Show { name: String },
    /// Change a partner's policy or limits.
    Set {
        name: String,
        #[command(flatten)]
        args: PartnerArgs,
    },
    /// A new key, printed alone on the last line; the old keys work for the grace period.
    Rotate {
        name: String,
        /// How long the old keys keep working: 24h, 30m, 0s [default: `[partners] rotate_grace`].
        #[arg(long)]
        grace: Option<String>,
    },
    /// Revoke a partner: all its keys are refused from then on.
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the chain; name the first record edited, deleted or reordered. Exit 1 if any.
    Verify,
    /// Write records to standard output.
    Export {
        /// Only records at or after this time (RFC 3339, or a date like 2026-11-30).
        #[arg(long)]
        since: Option<String>,
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormatArg,
        /// Only this partner's requests: what did they look up?
        #[arg(long)]
        partner: Option<String>,
        /// Only records that returned this person (our id): who looked at them?
        #[arg(long)]
        person: Option<uuid::Uuid>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExportFormatArg {
    Csv,
    Jsonl,
}

fn parse_role(s: &str) -> std::result::Result<Role, String> {
    Role::parse(s).map_err(|e| e.to_string())
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import a CSV export (Outlook, Google Contacts, Thunderbird, AD csvde, or our own
    /// columns); Excel workbooks, vCard and LDIF files given here are recognized too.
    Csv(ImportArgs),
    /// Import the first sheet of an Excel workbook (.xlsx), its first row the headers.
    Xlsx(ImportArgs),
    /// Import a vCard file (3.0 or 4.0; several cards per file), as Apple, Google and Outlook
    /// export them.
    Vcard(ImportArgs),
    /// Import an LDIF file (slapcat, ldapsearch, AD ldifde), mapped as an LDAP sync maps it.
    Ldif(ImportArgs),
}

impl ImportCommand {
    fn split(self) -> (Option<Format>, ImportArgs) {
        match self {
            ImportCommand::Csv(args) => (None, args),
            ImportCommand::Xlsx(args) => (Some(Format::Xlsx), args),
            ImportCommand::Vcard(args) => (Some(Format::Vcard), args),
            ImportCommand::Ldif(args) => (Some(Format::Ldif), args),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    file: PathBuf,
    /// Name of the source these people belong to.
    #[arg(long)]
    source: String,
    /// The file lists the whole source: people of this source missing from it are removed.
    #[arg(long)]
    full: bool,
    /// Report the format, the column mapping and what would change; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Allow a full import to remove more than `import.max_delete_share` of the source.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Sync an LDAP or Active Directory source named in the config: incrementally when the
    /// server allows, in full otherwise.
    Ldap {
        /// Name of a `[[sources]]` entry of kind `ldap` or `active_directory`.
        #[arg(long)]
        source: String,
        /// Read the whole directory even when an incremental sync is possible.
        #[arg(long)]
        full: bool,
        /// Report what would change; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Allow a run to remove more than `import.max_delete_share` of the source.
        #[arg(long)]
        force: bool,
        /// Refresh just this person now: a uid, mail, sAMAccountName or cn.
        #[arg(long, conflicts_with = "full")]
        person: Option<String>,
    },
    /// List recent import and sync runs, newest first, or show one run with who changed.
    Runs {
        /// Only runs of this source.
        #[arg(long)]
        source: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Show this run in detail: counts, every change, every refused row.
        #[arg(long)]
        id: Option<i64>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum IndexCommand {
    /// Recreate the search index from the database (stop `serve` first).
    Rebuild,
}

/// Turns transparent huge pages off for this process. The allocator asks for them, and each
/// first touch of a 2 MiB page then zeroes (and may first compact) a whole one: an import of a
/// million people spent seconds in the kernel that way, reading the file alone twice as long.
/// The price: handing that much freed memory back in small pages later takes one allocation
/// about 70 ms, once (README, Search speed).
pub fn without_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_thp_disable(true) {
        tracing::debug!(error = %e, "cannot turn transparent huge pages off");
    }
}

/// Exit status when an import succeeded but refused some rows.
pub const EXIT_REJECTED_ROWS: u8 = 2;

pub fn main() -> ExitCode {
    without_huge_pages();
    let cli = Cli::parse();
    crate::telemetry::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error [{}]: {e}", e.code());
            ExitCode::FAILURE
        }
    }
}

pub async fn run(cli: Cli) -> Result<ExitCode> {
    let mut config = Config::load(cli.config.as_deref())?;
    if let Some(dir) = cli.data_dir {
        config.data_dir = dir;
    }
    match cli.command {
        Command::Openapi => {
            print!("{}", crate::http::openapi::spec_json());
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let db = Database::open(&config).await?;
            let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
                .fetch_one(&db.pool)
                .await?;
            println!("database is up to date ({applied} migrations applied)");
            db.close().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve { listen } => {
            let db = Database::open(&config).await?;
            let result = crate::server::serve(&config, &db, listen.unwrap_or(config.listen)).await;
            db.close().await;
            result.map(|_| ExitCode::SUCCESS)
        }
        Command::Demo {
            people: count,
            seed,
            listen,
            open,
        } => {
            let listen = listen.unwrap_or(config.listen);
            if open {
                if !listen.ip().is_loopback() {
                    return Err(Error::Config(format!(
                        "demo --open serves without sign-in, so only on a loopback address, not {listen}"
                    )));
                }
                config.access.open = true;
            }
            // The address book too, on a free port beside the web server's.
            if config.ldap_server.is_none() {
                config.ldap_server = Some(crate::addressbook::ldap::LdapServerConfig {
                    listen: SocketAddr::new(listen.ip(), 0),
                    base_dn: format!(
                        "ou=people,dc={}",
                        crate::demo::DEMO_DOMAIN.replace('.', ",dc=")
                    ),
                    allow_anonymous: open,
                    ..Default::default()
                });
            }
            // Presence the demo company makes up, unless real backends are configured.
            config.presence.simulated = config.presence.backends.is_empty();
            let db = Database::open(&config).await?;
            let result = async {
                load_demo(&config, &db, count as usize, seed).await?;
                demo_absences(&db).await?;
                if !open {
                    demo_admin(&db).await?;
                    demo_device(&db).await?;
                }
                crate::server::serve(&config, &db, listen).await
            }
            .await;
            db.close().await;
            result.map(|_| ExitCode::SUCCESS)
        }
        Command::Import(command) => {
            let (format, args) = command.split();
            let ImportArgs {
                file,
                source,
                full,
                dry_run,
                force,
            } = args;
            let columns = config
                .source(&source)
                .map(|s| s.columns.clone())
                .unwrap_or_default();
            let mut reader = FileSource::new(&file, format, columns);
            let raw = reader.read().await?;
            print_mapping(&raw, dry_run);
            let opts = ImportOptions {
                source,
                kind: reader.kind().into(),
                full,
                dry_run,
                force,
                max_delete_share: config.import.max_delete_share,
                mode: None,
                merge: config.merge.clone(),
            };
            let db = Database::open(&config).await?;
            let result = run_import(&config, &db, raw, &opts).await;
            db.close().await;
            let report = result?;
            print_report(&file.display().to_string(), &opts, &report);
            Ok(exit_status(&report))
        }
        Command::Sync(SyncCommand::Ldap {
            source,
            full,
            dry_run,
            force,
            person,
        }) => {
            let source_config = config
                .source(&source)
                .filter(|s| s.is_directory())
                .cloned()
                .ok_or_else(|| {
                    Error::Config(format!(
                        "no source `{source}` of kind ldap or active_directory in the config"
                    ))
                })?;
            let db = Database::open(&config).await?;
            let progress = spinner();
            let result = sync::directory::sync_directory(
                &db.pool,
                &config,
                &source_config,
                sync::directory::DirectorySyncOptions {
                    full,
                    dry_run,
                    force,
                    person,
                },
                &progress,
            )
            .await;
            progress.finish_and_clear();
            db.close().await;
            let sync = result?;
            if let Some(reason) = &sync.fell_back {
                println!("incremental sync not possible ({reason}); synced in full");
            }
            let input = format!(
                "{} ({} sync, {} entries read)",
                source_config.url.as_deref().unwrap_or("directory"),
                sync.mode,
                sync.read
            );
            let opts = ImportOptions {
                source,
                kind: source_config.kind.clone(),
                full: sync.mode == "full",
                dry_run,
                force,
                max_delete_share: config.import.max_delete_share,
                mode: Some(sync.mode),
                merge: config.merge.clone(),
            };
            print_report(&input, &opts, &sync.report);
            Ok(exit_status(&sync.report))
        }
        Command::Sync(SyncCommand::Runs {
            source,
            limit,
            id,
            json,
        }) => {
            let db = Database::open(&config).await?;
            let result = show_runs(&db, source.as_deref(), i64::from(limit), id, json).await;
            db.close().await;
            result.map(|_| ExitCode::SUCCESS)
        }
        Command::User(command) => {
            let db = Database::open(&config).await?;
            let result = user_command(&db, command).await;
            db.close().await;
            result
        }
        Command::Token(command) => {
            let db = Database::open(&config).await?;
            let result = token_command(&db, command).await;
            db.close().await;
            result
        }
        Command::Device(command) => {
            let db = Database::open(&config).await?;
            let result = device_command(&db, command).await;
            db.close().await;
            result
        }
        Command::Person(PersonCommand::Erase { id }) => {
            let db = Database::open(&config).await?;
            let result = crate::retention::erase_one(&db.pool, id, &cli_principal()).await;
            db.close().await;
            let erased = result?;
            println!(
                "erased {id} (photos deleted: {}, reports unlinked: {})",
                erased.photos, erased.reports
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Partner(command) => {
            let db = Database::open(&config).await?;
            let result = partner_command(&db, &config.partners, command).await;
            db.close().await;
            result
        }
        Command::Audit(command) => {
            let db = Database::open(&config).await?;
            let result = audit_command(&db, command).await;
            db.close().await;
            result
        }
        Command::Index(IndexCommand::Rebuild) => {
            let db = Database::open(&config).await?;
            let result = async {
                let index = SearchIndex::open(&config.index_dir())?;
                let mut indexer =
                    Indexer::new(index, db.pool.clone(), config.search.writer_memory_mb)?;
                let started = Instant::now();
                let count = indexer.rebuild().await?;
                println!(
                    "indexed {count} people in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
                let started = Instant::now();
                indexer.merge_segments().await?;
                println!(
                    "merged the index into one segment in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
                Ok::<_, Error>(())
            }
            .await;
            db.close().await;
            result.map(|_| ExitCode::SUCCESS)
        }
    }
}

/// Who ran a command, for the audit trail.
fn cli_principal() -> String {
    format!(
        "cli:{}",
        std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "unknown".into())
    )
}

async fn audit_now(db: &Database, action: &str, query: String) -> Result<()> {
    crate::audit::append(
        &db.pool,
        &[AuditEvent::new(chrono::Utc::now(), &cli_principal(), action).query(query)],
    )
    .await
}

fn password_from_stdin() -> Result<String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        return Err(Error::invalid(
            "password",
            "standard input held no password",
        ));
    }
    Ok(password)
}

async fn user_command(db: &Database, command: UserCommand) -> Result<ExitCode> {
    use crate::access::users;
    match command {
        UserCommand::Add {
            name,
            role,
            password_stdin,
            email,
        } => {
            let password = password_stdin.then(password_from_stdin).transpose()?;
            let generated =
                users::add_with_email(&db.pool, &name, role, password, email.as_deref()).await?;
            audit_now(db, "user.add", format!("name={name} role={role}")).await?;
            println!("created user {name} with role {role}");
            if let Some(password) = generated {
                println!(
                    "its password (shown once; change it with `switchboard user passwd {name}`):"
                );
                println!("{password}");
            }
        }
        UserCommand::List => {
            println!(
                "{:<24} {:<13} {:<20} password changed",
                "name", "role", "created"
            );
            for u in users::list(&db.pool).await? {
                println!(
                    "{:<24} {:<13} {:<20} {}",
                    u.name,
                    u.role,
                    u.created_at.format("%Y-%m-%d %H:%M:%S"),
                    u.password_changed_at.format("%Y-%m-%d %H:%M:%S")
                );
            }
        }
        UserCommand::Remove { name } => {
            if !users::remove(&db.pool, &name).await? {
                return Err(Error::NotFound { what: "user" });
            }
            audit_now(db, "user.remove", format!("name={name}")).await?;
            println!("removed user {name} and ended its sessions");
        }
        UserCommand::Passwd {
            name,
            password_stdin,
        } => {
            let password = password_stdin.then(password_from_stdin).transpose()?;
            let generated = users::set_password(&db.pool, &name, password)
                .await?
                .ok_or(Error::NotFound { what: "user" })?;
            audit_now(db, "user.passwd", format!("name={name}")).await?;
            println!("password of {name} changed; its sessions ended");
            if let Some(password) = generated {
                println!("the new password (shown once):");
                println!("{password}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn token_command(db: &Database, command: TokenCommand) -> Result<ExitCode> {
    use crate::access::tokens;
    match command {
        TokenCommand::Add { name, role } => {
            let token = tokens::add(&db.pool, &name, role).await?;
            audit_now(db, "token.add", format!("name={name} role={role}")).await?;
            println!("created token {name} with role {role}; send it as `Authorization: Bearer <token>`.");
            println!("It is shown once:");
            println!("{token}");
        }
        TokenCommand::List => {
            println!("{:<24} {:<13} {:<20} revoked", "name", "role", "created");
            for t in tokens::list(&db.pool).await? {
                println!(
                    "{:<24} {:<13} {:<20} {}",
                    t.name,
                    t.role,
                    t.created_at.format("%Y-%m-%d %H:%M:%S"),
                    t.revoked_at
                        .map(|r| r.format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_else(|| "-".into())
                );
            }
        }
        TokenCommand::Revoke { name } => {
            if !tokens::revoke(&db.pool, &name).await? {
                return Err(Error::NotFound { what: "live token" });
            }
            audit_now(db, "token.revoke", format!("name={name}")).await?;
            println!("revoked token {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn device_command(db: &Database, command: DeviceCommand) -> Result<ExitCode> {
    use crate::access::devices;
    match command {
        DeviceCommand::Add { name } => {
            let password = devices::add(&db.pool, &name).await?;
            audit_now(db, "device.add", format!("name={name}")).await?;
            println!("created device {name}; it binds to the LDAP server as cn={name} (or {name}) with this password.");
            println!("It is shown once:");
            println!("{password}");
        }
        DeviceCommand::List => {
            println!("{:<32} {:<20} last bind", "name", "created");
            for d in devices::list(&db.pool).await? {
                println!(
                    "{:<32} {:<20} {}",
                    d.name,
                    d.created_at.format("%Y-%m-%d %H:%M:%S"),
                    d.last_bind_at
                        .map(|r| r.format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_else(|| "-".into())
                );
            }
        }
        DeviceCommand::Remove { name } => {
            if !devices::remove(&db.pool, &name).await? {
                return Err(Error::NotFound { what: "device" });
            }
            audit_now(db, "device.remove", format!("name={name}")).await?;
            println!("removed device {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn partner_command(
    db: &Database,
    defaults: &crate::access::partners::PartnersConfig,
    command: PartnerCommand,
) -> Result<ExitCode> {
    use crate::access::partners::{self, Partner};
    let describe = |p: &Partner| {
        let fields: Vec<String> = p
            .policy
            .fields
            .iter()
            .map(|f| {
                serde_json::to_value(f)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            })
            .collect();
        let scope = serde_json::to_string(&p.policy.scope).unwrap_or_default();
        format!(
            "{name}: fields {fields}; presence {presence:?}; scope {scope}; rate {rate}/s; quota {quota}/day{revoked}",
            name = p.name,
            fields = fields.join(","),
            presence = p.policy.presence,
            rate = p.rate_per_second,
            quota = p.quota_per_day,
            revoked = p
                .revoked_at
                .map(|t| format!("; revoked {}", t.format("%Y-%m-%d %H:%M:%S")))
                .unwrap_or_default()
        )
    };
    match command {
        PartnerCommand::Add { name, args } => {
            let (partner, key) =
                partners::add(&db.pool, defaults, &name, &args.settings()?).await?;
            audit_now(db, "partner.add", format!("name={name}")).await?;
            println!("added {}", describe(&partner));
            println!("Give the partner this key (sent as `Authorization: Bearer <key>`); it is shown once:");
            println!("{key}");
        }
        PartnerCommand::List => {
            for p in partners::list(&db.pool).await? {
                println!("{}", describe(&p));
            }
        }
        PartnerCommand::Show { name } => {
            let partner = partners::get(&db.pool, &name)
                .await?
                .ok_or(Error::NotFound { what: "partner" })?;
            println!("{}", describe(&partner));
            for key in partners::keys(&db.pool, &name).await? {
                println!(
                    "key {} created {}{}",
                    key.fingerprint,
                    key.created_at.format("%Y-%m-%d %H:%M:%S"),
                    key.expires_at
                        .map(|t| format!(", works until {}", t.format("%Y-%m-%d %H:%M:%S")))
                        .unwrap_or_else(|| ", current".into())
                );
            }
        }
        PartnerCommand::Set { name, args } => {
            let partner = partners::set(&db.pool, &name, &args.settings()?).await?;
            audit_now(db, "partner.set", format!("name={name}")).await?;
            println!("changed {}", describe(&partner));
        }
        PartnerCommand::Rotate { name, grace } => {
            let grace = crate::http::partners::parse_grace(
                grace.as_deref().unwrap_or(&defaults.rotate_grace),
            )?;
            let key = partners::rotate(&db.pool, &name, chrono::Utc::now(), grace).await?;
            audit_now(db, "partner.rotate", format!("name={name}")).await?;
            println!(
                "new key for {name}; the old ones work until {}. It is shown once:",
                chrono::Utc::now().checked_add_signed(grace).map_or_else(
                    || "forever".to_string(),
                    |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
                )
            );
            println!("{key}");
        }
        PartnerCommand::Revoke { name } => {
            if !partners::revoke(&db.pool, &name).await? {
                return Err(Error::NotFound {
                    what: "live partner",
                });
            }
            audit_now(db, "partner.revoke", format!("name={name}")).await?;
            println!("revoked partner {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn audit_command(db: &Database, command: AuditCommand) -> Result<ExitCode> {
    match command {
        AuditCommand::Verify => {
            let report = crate::audit::verify(&db.pool).await?;
            match report.problem {
                None => {
                    println!("audit trail intact: {} records", report.records);
                    Ok(ExitCode::SUCCESS)
                }
                Some(problem) => {
                    println!("audit trail broken: {problem}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        AuditCommand::Export {
            since,
            format,
            partner,
            person,
        } => {
            let since = since.as_deref().map(parse_since).transpose()?;
            let format = match format {
                ExportFormatArg::Csv => crate::audit::ExportFormat::Csv,
                ExportFormatArg::Jsonl => crate::audit::ExportFormat::Jsonl,
            };
            let filter = crate::audit::ExportFilter {
                since,
                principal: partner.map(|name| format!("partner:{name}")),
                person,
            };
            let mut out = std::io::BufWriter::new(std::io::stdout());
            let count = crate::audit::export(&db.pool, &filter, format, &mut out).await?;
            drop(out);
            eprintln!("{count} records");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn parse_since(s: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            Error::invalid(
                "since",
                format!("`{s}` is not a time (RFC 3339) or a date (YYYY-MM-DD)"),
            )
        })
}

/// The demo's admin: created on first run, given a new password on every run, printed.
async fn demo_admin(db: &Database) -> Result<()> {
    use crate::access::users;
    const NAME: &str = "admin";
    let password = match users::add(&db.pool, NAME, Role::Admin, None).await {
        Ok(generated) => generated,
        Err(Error::InvalidParameter { name: "name", .. }) => {
            users::set_password(&db.pool, NAME, None).await?.flatten()
        }
        Err(e) => return Err(e),
    };
    audit_now(db, "user.demo_admin", format!("name={NAME}")).await?;
    if let Some(password) = password {
        eprintln!("Sign in as `{NAME}` with the one-time password {password}");
        eprintln!("(a new one is made each time the demo starts; `--open` serves without sign-in)");
    }
    Ok(())
}

/// The demo's desk phone: made anew on every run, its password printed.
async fn demo_device(db: &Database) -> Result<()> {
    use crate::access::devices;
    const NAME: &str = "desk-phone";
    devices::remove(&db.pool, NAME).await?;
    let password = devices::add(&db.pool, NAME).await?;
    audit_now(db, "device.demo", format!("name={NAME}")).await?;
    eprintln!("Desk phones and mail clients bind to the LDAP address book as `cn={NAME}` with the password {password}");
    Ok(())
}

async fn run_import(
    config: &Config,
    db: &Database,
    raw: sync::RawBatch,
    opts: &ImportOptions,
) -> Result<ImportReport> {
    let phones = config.phones(Some(&opts.source))?;
    let progress = spinner();
    // A first load into an empty index that no server holds is indexed as it is written (the
    // server merges its segments when it starts); otherwise a running server's indexer follows
    // the import, or the next one to start catches up.
    let mut indexer = if opts.dry_run {
        None
    } else {
        first_load_indexer(config, db).await.unwrap_or_else(|e| {
            tracing::info!(error = %e, "the import leaves indexing to the server");
            None
        })
    };
    let result = match indexer.as_mut() {
        Some(indexer) => {
            sync::import_indexing(&db.pool, raw, &phones, opts, &progress, indexer).await
        }
        None => sync::import(&db.pool, raw, &phones, opts, &progress).await,
    };
    progress.finish_and_clear();
    result
}

/// The index writer, when this import may be a first load: the index is empty and has applied
/// every change (a fresh installation). Otherwise the writer is not taken (a server starting
/// meanwhile would find it locked), and an index this process cannot open costs the import
/// nothing: a server's indexer follows the change log.
async fn first_load_indexer(config: &Config, db: &Database) -> Result<Option<Indexer>> {
    let index = SearchIndex::open(&config.index_dir())?;
    let latest = people::latest_change(&mut *db.pool.acquire().await?).await?;
    if index.num_docs() > 0 || index.applied_seq()? != latest {
        return Ok(None);
    }
    match Indexer::new(index, db.pool.clone(), config.search.writer_memory_mb) {
        Ok(indexer) => Ok(Some(indexer)),
        Err(Error::IndexLocked) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A few of the demo company are away (one in a hundred): off sick, on leave, at a customer,
/// each until a day or three from now. Made anew on every start, by `demo`, so they never
/// expire in a demo left alone.
async fn demo_absences(db: &Database) -> Result<()> {
    sqlx::query("DELETE FROM person_notes WHERE set_by = 'demo'")
        .execute(&db.pool)
        .await?;
    sqlx::query(
        "INSERT INTO person_notes (person_id, kind, text, until, set_by, set_at) \
         SELECT id, 'absence', (ARRAY['Off sick today', 'On parental leave', \
             'At a customer site all day, reachable by mobile', 'Training course, back tomorrow', \
             'Working from home: call the mobile'])[1 + (n / 100) % 5], \
             now() + (1 + (n / 100) % 3) * interval '1 day', 'demo', now() \
         FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM people \
               WHERE deleted_at IS NULL) p \
         WHERE n % 100 = 7 \
         ON CONFLICT (person_id, kind) DO NOTHING",
    )
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Loads the demo company unless the data dir already holds one of that size.
async fn load_demo(config: &Config, db: &Database, count: usize, seed: u64) -> Result<()> {
    if people::count_active(&db.pool, Some(DEMO_SOURCE)).await? == count as i64 {
        eprintln!(
            "demo company with {count} people already loaded in {}",
            config.data_dir.display()
        );
        return Ok(());
    }
    eprintln!("generating a demo company with {count} people…");
    let started = Instant::now();
    let raw = DemoSource { count, seed }.read().await?;
    let opts = ImportOptions {
        source: DEMO_SOURCE.into(),
        kind: "demo".into(),
        full: true,
        dry_run: false,
        force: true,
        max_delete_share: config.import.max_delete_share,
        mode: None,
        merge: config.merge.clone(),
    };
    let report = run_import(config, db, raw, &opts).await?;
    eprintln!(
        "loaded {} people ({} added, {} updated, {} removed) in {:.1} s; {}",
        count,
        report.counts.added,
        report.counts.updated,
        report.counts.removed,
        started.elapsed().as_secs_f64(),
        // A first load is indexed as it is written; anything else by the server's indexer.
        if report.timings.index > 0.0 {
            "indexed as written"
        } else {
            "indexing…"
        }
    );
    Ok(())
}

fn spinner() -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {elapsed} {msg}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// 0: nobody refused (warnings are printed); 2: some rows refused; 1: every row refused.
fn exit_status(report: &ImportReport) -> ExitCode {
    let c = &report.counts;
    if report.rejects.is_empty() {
        ExitCode::SUCCESS
    } else if c.added + c.updated + c.unchanged == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::from(EXIT_REJECTED_ROWS)
    }
}

/// A dry run shows the detected format and every column's field; a real run names the columns
/// it did not import, once.
fn print_mapping(raw: &sync::RawBatch, dry_run: bool) {
    if dry_run {
        println!("format: {}", raw.format);
        if !raw.columns.is_empty() {
            println!("columns:");
        }
        for (header, field) in &raw.columns {
            println!("  {header} → {}", field.unwrap_or("(not imported)"));
        }
        return;
    }
    let unused: Vec<&str> = raw
        .columns
        .iter()
        .filter(|(header, field)| field.is_none() && !header.trim().is_empty())
        .map(|(header, _)| header.as_str())
        .collect();
    if !unused.is_empty() {
        println!(
            "not imported ({} columns; map them with `columns` in the source's config): {}",
            unused.len(),
            unused.join(", ")
        );
    }
}

/// Rejects and changes shown before "… and N more".
const SHOWN: usize = 50;

fn print_report(input: &str, opts: &ImportOptions, report: &ImportReport) {
    let c = &report.counts;
    let verb = if report.dry_run {
        "dry run, nothing written"
    } else {
        "imported"
    };
    println!(
        "{input} → source `{}` ({verb}): {} added, {} updated, {} removed, {} unchanged, {} rejected",
        opts.source, c.added, c.updated, c.removed, c.unchanged, c.rejected
    );
    if let Some(run) = report.run_id {
        let t = &report.timings;
        println!(
            "run {run}: validated in {:.1} s, compared in {:.1} s, written in {:.1} s",
            t.validate, t.compare, t.write
        );
    }
    // A dry run lists what it would do; a real run lists who changed unless that is everyone
    // of a first load.
    if report.dry_run || report.counts.added < report.changes.len() || report.changes.len() <= SHOWN
    {
        let verb = if report.dry_run { "would be " } else { "" };
        for change in report.changes.iter().take(SHOWN) {
            println!(
                "  {verb}{}: {} ({})",
                change.kind.as_str(),
                change.display_name,
                change.external_id
            );
        }
        if report.changes.len() > SHOWN {
            println!("  … and {} more changes", report.changes.len() - SHOWN);
        }
    }
    for reject in report.rejects.iter().take(SHOWN) {
        println!("  {}: refused: {}", reject.position(), reject.reason);
    }
    if report.rejects.len() > SHOWN {
        println!(
            "  … and {} more rejected rows",
            report.rejects.len() - SHOWN
        );
    }
    if !report.warnings.is_empty() {
        println!("{} warning(s) on people kept:", report.warnings.len());
    }
    for warning in report.warnings.iter().take(SHOWN) {
        println!("  {}: {}", warning.position(), warning.reason);
    }
    if report.warnings.len() > SHOWN {
        println!(
            "  … and {} more warnings (`switchboard sync runs --id N` lists them all)",
            report.warnings.len() - SHOWN
        );
    }
}

async fn show_runs(
    db: &Database,
    source: Option<&str>,
    limit: i64,
    id: Option<i64>,
    json: bool,
) -> Result<()> {
    let Some(id) = id else {
        let list = runs::list(&db.pool, source, limit).await?;
        if json {
            println!(
                "{}",
                serde_json::to_string_pretty(&list).map_err(anyhow::Error::from)?
            );
            return Ok(());
        }
        println!(
            "{:>6}  {:<16} {:<12} {:<10} {:<20} {:>7} {:>7} {:>7} {:>9} {:>8}",
            "run",
            "source",
            "mode",
            "status",
            "started",
            "added",
            "updated",
            "removed",
            "unchanged",
            "rejected"
        );
        for r in list {
            println!(
                "{:>6}  {:<16} {:<12} {:<10} {:<20} {:>7} {:>7} {:>7} {:>9} {:>8}",
                r.id,
                r.source,
                r.mode,
                r.status,
                r.started_at.format("%Y-%m-%d %H:%M:%S"),
                r.added,
                r.updated,
                r.removed,
                r.unchanged,
                r.rejected
            );
            if let Some(error) = r.error {
                println!("        error: {error}");
            }
        }
        return Ok(());
    };
    let run = runs::get(&db.pool, id)
        .await?
        .ok_or(Error::NotFound { what: "sync run" })?;
    let changes = runs::changes(&db.pool, id, i64::MAX).await?;
    let rejects = runs::rejects(&db.pool, id, false).await?;
    let warnings = runs::rejects(&db.pool, id, true).await?;
    if json {
        let detail = serde_json::json!({ "run": run, "changes": changes, "rejects": rejects, "warnings": warnings });
        println!(
            "{}",
            serde_json::to_string_pretty(&detail).map_err(anyhow::Error::from)?
        );
        return Ok(());
    }
    println!(
        "run {} of `{}` ({} {}): {}, started {}{}",
        run.id,
        run.source,
        run.kind,
        run.mode,
        run.status,
        run.started_at.format("%Y-%m-%d %H:%M:%S"),
        run.finished_at
            .map(|f| format!(", finished {}", f.format("%H:%M:%S")))
            .unwrap_or_default()
    );
    println!(
        "{} added, {} updated, {} removed, {} unchanged, {} rejected",
        run.added, run.updated, run.removed, run.unchanged, run.rejected
    );
    if let Some(error) = &run.error {
        println!("error: {error}");
    }
    for c in &changes {
        println!("  {:<8} {} ({})", c.kind, c.display_name, c.external_id);
    }
    for r in &rejects {
        println!("  refused ({}): {}", r.position(), r.reason);
    }
    for w in &warnings {
        println!("  warning ({}): {}", w.position(), w.reason);
    }
    Ok(())
}
