//! Configuration: built-in defaults, then an optional TOML file, then `SWITCHBOARD_…` environment
//! variables (nested keys joined by `__`, e.g. `SWITCHBOARD_DATABASE__URL`), then CLI flags.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::domain::{PhoneNormalizer, RegionRules};
use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the embedded database and the search index live.
    pub data_dir: PathBuf,
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// ISO 3166 region of phone numbers written without a country code, when neither the
    /// person's country, their other numbers, their source nor their office (`[regions]`) says;
    /// also the region whose numbers are shown in national format. None: such numbers are kept
    /// as written, with a warning.
    #[serde(default)]
    pub default_region: Option<String>,
    /// Office location → ISO 3166 region of its people's national numbers (`"London" = "GB"`).
    #[serde(default)]
    pub regions: BTreeMap<String, String>,
    pub database: DatabaseConfig,
    pub import: ImportConfig,
    pub search: SearchConfig,
    /// How people from several sources become one.
    pub merge: MergeConfig,
    /// Named contact sources with per-source settings (e.g. CSV column mappings).
    pub sources: Vec<SourceConfig>,
    /// Live presence backends (`[[presence.backends]]`).
    #[serde(default)]
    pub presence: crate::presence::PresenceConfig,
    /// Sign-in and what each role sees (`[access]`).
    #[serde(default)]
    pub access: crate::access::AccessConfig,
    /// The audit trail (`[audit]`).
    #[serde(default)]
    pub audit: crate::access::AuditConfig,
    /// HTTP limits (`[http]`).
    #[serde(default)]
    pub http: HttpConfig,
    /// Serve HTTPS directly (`[tls]`); absent: plain HTTP (behind a TLS proxy, or on loopback).
    #[serde(default)]
    pub tls: Option<crate::tls::TlsConfig>,
    /// How long removed people are kept (`[retention]`).
    #[serde(default)]
    pub retention: crate::retention::RetentionConfig,
    /// The read-only LDAP server for desk phones and mail clients (`[ldap_server]`); absent:
    /// not served.
    #[serde(default)]
    pub ldap_server: Option<crate::addressbook::ldap::LdapServerConfig>,
    /// The shared directory for partner companies (`[partners]`).
    #[serde(default)]
    pub partners: crate::access::partners::PartnersConfig,
    /// Partners' directories our staff may search (`[federation]`).
    #[serde(default)]
    pub federation: crate::federation::FederationConfig,
}

/// `[http]`: what one request may take.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// A request not answered within this long gets 503 `timeout` (a stream counts as answered
    /// once it starts).
    pub request_timeout: String,
    /// Requests handled at once; more get 503 `overloaded` with `Retry-After`.
    pub max_concurrent_requests: usize,
    /// Serve the console's files from this directory (read at each request) instead of those
    /// built into the binary: for working on the console without rebuilding
    /// (`SWITCHBOARD_HTTP__WEB_DIR=src/web/assets`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web_dir: Option<PathBuf>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            request_timeout: "30s".into(),
            max_concurrent_requests: 1024,
            web_dir: None,
        }
    }
}

impl HttpConfig {
    pub fn request_timeout(&self) -> Result<std::time::Duration> {
        parse_duration("http.request_timeout", &self.request_timeout)
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// A PostgreSQL URL. When absent, Switchboard runs its own private cluster in `DATA_DIR/postgres`.
    /// It may hold a password: never printed, never serialized.
    #[serde(skip_serializing)]
    pub url: Option<String>,
    /// Read `url` from this file instead (trailing newline ignored).
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    pub max_connections: u32,
}

/// Shows whether a URL is set, not the URL (it may carry a password).
impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.url.as_ref().map(|_| "<redacted>"))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportConfig {
    /// A full import or sync that would remove more than this share of a source stops unless forced.
    pub max_delete_share: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeConfig {
    /// What makes records of different sources one person: `email` (a shared address) or `none`.
    #[serde(default = "default_merge_key")]
    pub key: String,
    /// Sources in order of precedence: each attribute comes from the first that has a value.
    /// Sources not listed follow in alphabetical order.
    #[serde(default)]
    pub precedence: Vec<String>,
    /// Per-attribute precedence, e.g. `phones = ["facilities", "corp"]` (attributes:
    /// display_name, given_name, family_name, title, department, org_unit, location, manager,
    /// phones, emails, im, photo_url).
    #[serde(default)]
    pub attributes: BTreeMap<String, Vec<String>>,
}

fn default_merge_key() -> String {
    "email".into()
}

impl Default for MergeConfig {
    fn default() -> Self {
        MergeConfig {
            key: default_merge_key(),
            precedence: Vec::new(),
            attributes: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchConfig {
    /// Memory budget of the index writer, in megabytes.
    pub writer_memory_mb: usize,
}

#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub name: String,
    /// `csv`, `ldap` or `active_directory`.
    #[serde(default = "default_source_kind")]
    pub kind: String,
    /// CSV only: header name in the file → Switchboard field (e.g. `"Emp No" = "external_id"`).
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// ISO 3166 region of this source's numbers written without a country code, when the
    /// person's country and other numbers do not say (before `[regions]` and `default_region`).
    pub default_region: Option<String>,
    /// Directories: `ldap://host:389` or `ldaps://host:636`.
    pub url: Option<String>,
    /// Directories: upgrade `ldap://` with StartTLS.
    #[serde(default)]
    pub starttls: bool,
    /// Directories: allow a bind password over plain `ldap://` to a host off loopback (it
    /// crosses the network in clear). Off: use `ldaps://` or `starttls`.
    #[serde(default)]
    pub allow_plaintext: bool,
    /// Directories: PEM file of the CA that signed the server's certificate (default: system roots).
    pub ca_file: Option<PathBuf>,
    pub bind_dn: Option<String>,
    pub bind_password: Option<String>,
    /// Read the bind password from this file (trailing newline ignored); wins over `bind_password`.
    pub bind_password_file: Option<PathBuf>,
    pub base_dn: Option<String>,
    /// Directories: which entries are people (default depends on `kind`).
    pub filter: Option<String>,
    /// Scheduled sync while `serve` runs, e.g. `5m`; absent means manual only.
    pub interval: Option<String>,
    /// Directories: entries per page of a paged search (RFC 2696).
    pub page_size: Option<u32>,
    /// Directories: limit for connecting and for each server response, e.g. `30s`.
    pub timeout: Option<String>,
    /// Directories: Switchboard field → attribute(s), comma-separated in order of preference
    /// (e.g. `department = "ou,departmentNumber"`). Overrides the defaults for `kind`.
    #[serde(default)]
    pub mapping: BTreeMap<String, String>,
}

/// Shows everything but the password.
impl std::fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("default_region", &self.default_region)
            .field("url", &self.url)
            .field("bind_dn", &self.bind_dn)
            .field(
                "bind_password",
                &self.bind_password.as_ref().map(|_| "<redacted>"),
            )
            .field("bind_password_file", &self.bind_password_file)
            .field("base_dn", &self.base_dn)
            .field("filter", &self.filter)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl SourceConfig {
    pub fn is_directory(&self) -> bool {
        matches!(self.kind.as_str(), "ldap" | "active_directory")
    }

    /// The scheduled sync interval, if any.
    pub fn interval(&self) -> Result<Option<std::time::Duration>> {
        self.interval
            .as_deref()
            .map(|i| parse_duration(&format!("sources.{}.interval", self.name), i))
            .transpose()
    }

    pub fn timeout(&self) -> Result<std::time::Duration> {
        match self.timeout.as_deref() {
            Some(t) => parse_duration(&format!("sources.{}.timeout", self.name), t),
            None => Ok(std::time::Duration::from_secs(30)),
        }
    }

    /// The bind password, from the file if one is named.
    pub fn bind_password(&self) -> Result<Option<String>> {
        match &self.bind_password_file {
            Some(path) => std::fs::read_to_string(path)
                .map(|p| Some(p.trim_end_matches(['\r', '\n']).to_string()))
                .map_err(|e| {
                    Error::Config(format!(
                        "source {}: cannot read bind_password_file {}: {e}",
                        self.name,
                        path.display()
                    ))
                }),
            None => Ok(self.bind_password.clone()),
        }
    }
}

/// A secret from a file, trailing newline ignored; an empty file is an error.
pub fn read_secret(key: &str, path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("{key}: cannot read {}: {e}", path.display())))?;
    let secret = text.trim_end_matches(['\r', '\n']).to_string();
    if secret.is_empty() {
        return Err(Error::Config(format!("{key}: {} is empty", path.display())));
    }
    Ok(secret)
}

fn parse_duration(key: &str, value: &str) -> Result<std::time::Duration> {
    humantime::parse_duration(value)
        .map_err(|e| {
            Error::Config(format!(
                "{key}: `{value}` is not a duration like 30s or 5m: {e}"
            ))
        })
        .and_then(|d| {
            if d.is_zero() {
                Err(Error::Config(format!("{key} must be more than zero")))
            } else {
                Ok(d)
            }
        })
}

fn default_source_kind() -> String {
    "csv".into()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            default_region: None,
            regions: BTreeMap::new(),
            database: DatabaseConfig {
                url: None,
                url_file: None,
                max_connections: 16,
            },
            import: ImportConfig {
                max_delete_share: 0.2,
            },
            search: SearchConfig {
                writer_memory_mb: 256,
            },
            merge: MergeConfig::default(),
            sources: Vec::new(),
            presence: Default::default(),
            access: Default::default(),
            audit: Default::default(),
            http: Default::default(),
            tls: None,
            retention: Default::default(),
            ldap_server: None,
            partners: Default::default(),
            federation: Default::default(),
        }
    }
}

impl Config {
    /// Loads defaults → `file` (if any) → environment.
    pub fn load(file: Option<&Path>) -> Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(Error::Config(format!(
                    "config file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        figment = figment.merge(Env::prefixed("SWITCHBOARD_").split("__"));
        let mut config: Config = figment
            .extract()
            .map_err(|e| Error::Config(e.to_string()))?;
        config.read_secret_files()?;
        config.validate()?;
        Ok(config)
    }

    /// Reads the `*_file` secrets that are read at start (the database URL, presence
    /// backends'); directory bind passwords and the OIDC client secret are read when used.
    pub fn read_secret_files(&mut self) -> Result<()> {
        if let Some(path) = &self.database.url_file {
            self.database.url = Some(read_secret("database.url_file", path)?);
        }
        self.presence.read_secret_files()
    }

    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.import.max_delete_share) {
            return Err(Error::Config(
                "import.max_delete_share must be between 0 and 1".into(),
            ));
        }
        for source in &self.sources {
            self.phones(Some(&source.name))
                .map_err(|e| Error::Config(format!("source {}: {e}", source.name)))?;
        }
        self.phones(None)?;
        if !matches!(self.merge.key.as_str(), "email" | "none") {
            return Err(Error::Config(format!(
                "merge.key `{}` must be `email` or `none`",
                self.merge.key
            )));
        }
        for attribute in self.merge.attributes.keys() {
            if !crate::sync::merge::ATTRIBUTES.contains(&attribute.as_str()) {
                return Err(Error::Config(format!(
                    "merge.attributes: unknown attribute `{attribute}` (known: {})",
                    crate::sync::merge::ATTRIBUTES.join(", ")
                )));
            }
        }
        let mut names = std::collections::HashSet::new();
        for source in &self.sources {
            if !names.insert(source.name.as_str()) {
                return Err(Error::Config(format!(
                    "source {} is declared twice",
                    source.name
                )));
            }
            match source.kind.as_str() {
                "csv" => {}
                "ldap" | "active_directory" => {
                    crate::sources::ldap::LdapSettings::from_config(source)?;
                }
                other => {
                    return Err(Error::Config(format!(
                        "source {}: unknown kind `{other}` (csv, ldap, active_directory)",
                        source.name
                    )))
                }
            }
            source.interval()?;
            for field in source.columns.values() {
                if crate::sources::csv::Field::from_name(field).is_none() {
                    return Err(Error::Config(format!(
                        "source {}: unknown field `{field}` in columns",
                        source.name
                    )));
                }
            }
        }
        self.presence.validate()?;
        self.http.request_timeout()?;
        if self.http.max_concurrent_requests == 0 {
            return Err(Error::Config(
                "http.max_concurrent_requests must be more than zero".into(),
            ));
        }
        // Checks durations, networks and the sign-in sections (reads no secrets, connects nowhere).
        crate::access::Access::check(&self.access, &self.sources)?;
        if let Some(ldap) = &self.ldap_server {
            ldap.check()?;
        }
        self.partners.check()?;
        self.federation.check()?;
        Ok(())
    }

    /// The phone normalizer for people of `source`: its `default_region`, the `[regions]` map,
    /// then the global `default_region`.
    pub fn phones(&self, source: Option<&str>) -> Result<PhoneNormalizer> {
        let source_default = source
            .and_then(|name| self.source(name))
            .and_then(|s| s.default_region.as_deref());
        RegionRules::new(
            self.default_region.as_deref(),
            &self.regions,
            source_default,
        )
        .and_then(PhoneNormalizer::with_rules)
        .map_err(Error::Config)
    }

    pub fn source(&self, name: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.name == name)
    }

    pub fn index_dir(&self) -> PathBuf {
        self.data_dir.join("index")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/switchboard.example.toml");
        let config = Config::load(Some(&path)).expect("example config");
        let corp = config.source("corp").expect("corp");
        assert!(corp.is_directory());
        assert_eq!(
            corp.interval().expect("interval"),
            Some(std::time::Duration::from_secs(300))
        );
        assert_eq!(config.merge.attributes["phones"][0], "facilities");
        let ldap = config.ldap_server.as_ref().expect("ldap_server");
        assert_eq!(ldap.base_dn, "ou=people,dc=example,dc=com");
        assert!(!ldap.allow_anonymous);
    }

    #[test]
    fn the_database_url_is_never_printed_or_serialized() {
        let mut config = Config::default();
        config.database.url = Some("postgres://app:s3cret@db.example.com/switchboard".into());
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        let serialized = serde_json::to_string(&config).expect("json");
        assert!(!serialized.contains("s3cret"), "{serialized}");
    }

    #[test]
    fn secrets_come_from_files() {
        let dir = tempfile::tempdir().expect("tmp");
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).expect("write");
            path
        };
        let mut config = Config::default();
        config.database.url_file = Some(write("db", "postgres://u:p@db/x\n"));
        let mut backend = crate::presence::BackendConfig::new("pbx", "webhook");
        backend.token_file = Some(write("token", "hook-s3cret\n"));
        config.presence.backends.push(backend);
        config.read_secret_files().expect("read");
        config.validate().expect("valid");
        assert_eq!(config.database.url.as_deref(), Some("postgres://u:p@db/x"));
        assert_eq!(
            config.presence.backends[0].token.as_deref(),
            Some("hook-s3cret")
        );
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("u:p@"),
            "{shown}"
        );
        config.database.url_file = Some(write("empty", "\n"));
        assert!(config.read_secret_files().is_err(), "an empty secret file");
        config.database.url_file = Some(dir.path().join("missing"));
        assert!(config.read_secret_files().is_err(), "a missing file");
    }

    #[test]
    fn debug_output_never_shows_the_bind_password() {
        let source = SourceConfig {
            name: "corp".into(),
            bind_password: Some("hunter2".into()),
            ..Default::default()
        };
        let shown = format!("{source:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn bad_directory_and_merge_settings_are_refused() {
        let with = |toml: &str| {
            let figment =
                Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(toml));
            figment
                .extract::<Config>()
                .map_err(|e| Error::Config(e.to_string()))
                .and_then(|c| c.validate())
        };
        let source = "[[sources]]\nname = \"d\"\nkind = \"ldap\"\nbase_dn = \"dc=x\"\n";
        assert!(with(&format!("{source}url = \"ldap://x\"\n")).is_ok());
        // A bind password in clear off loopback: refused unless allowed; TLS or loopback is fine.
        let bound = format!("{source}bind_dn = \"cn=r\"\nbind_password = \"p\"\n");
        let refused = with(&format!("{bound}url = \"ldap://ldap.example.com\"\n"));
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("allow_plaintext")),
            "{refused:?}"
        );
        for ok in [
            "url = \"ldap://ldap.example.com\"\nallow_plaintext = true\n",
            "url = \"ldap://ldap.example.com\"\nstarttls = true\n",
            "url = \"ldaps://ldap.example.com\"\n",
            "url = \"ldap://127.0.0.1:3389\"\n",
            "url = \"ldap://[::1]:389\"\n",
            "url = \"ldap://localhost\"\n",
        ] {
            assert!(with(&format!("{bound}{ok}")).is_ok(), "{ok}");
        }
        assert!(with(source).is_err(), "no url");
        assert!(with(&format!(
            "{source}url = \"ldap://x\"\ninterval = \"soon\"\n"
        ))
        .is_err());
        assert!(with(&format!(
            "{source}url = \"ldap://x\"\n[sources.mapping]\nshoe_size = \"x\"\n"
        ))
        .is_err());
        assert!(with("[merge]\nkey = \"phone\"\n").is_err());
        assert!(with("[merge.attributes]\nshoe_size = [\"a\"]\n").is_err());
        assert!(with("[[sources]]\nname = \"a\"\nkind = \"fax\"\n").is_err());
    }
}
