//! Configuration: built-in defaults, then an optional TOML file, then `SWITCHBOARD_…` environment
//! variables (nested keys joined by `__`, e.g. `SWITCHBOARD_DATABASE__URL`), then CLI flags.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the embedded database and the search index live.
    pub data_dir: PathBuf,
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// ISO 3166 region used to read phone numbers written without a country code.
    pub default_region: String,
    pub database: DatabaseConfig,
    pub import: ImportConfig,
    pub search: SearchConfig,
    /// Named contact sources with per-source settings (e.g. CSV column mappings).
    pub sources: Vec<SourceConfig>,
    /// Live presence backends (`[[presence.backends]]`).
    #[serde(default)]
    pub presence: crate::presence::PresenceConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// A PostgreSQL URL. When absent, Switchboard runs its own private cluster in `DATA_DIR/postgres`.
    pub url: Option<String>,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportConfig {
    /// A full import or sync that would remove more than this share of a source stops unless forced.
    pub max_delete_share: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchConfig {
    /// Memory budget of the index writer, in megabytes.
    pub writer_memory_mb: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    pub name: String,
    #[serde(default = "default_source_kind")]
    pub kind: String,
    /// CSV only: header name in the file → Switchboard field (e.g. `"Emp No" = "external_id"`).
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
}

fn default_source_kind() -> String {
    "csv".into()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            default_region: "US".into(),
            database: DatabaseConfig {
                url: None,
                max_connections: 16,
            },
            import: ImportConfig {
                max_delete_share: 0.2,
            },
            search: SearchConfig {
                writer_memory_mb: 256,
            },
            sources: Vec::new(),
            presence: Default::default(),
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
        let config: Config = figment
            .extract()
            .map_err(|e| Error::Config(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<()> {
        if !(0.0..=1.0).contains(&self.import.max_delete_share) {
            return Err(Error::Config(
                "import.max_delete_share must be between 0 and 1".into(),
            ));
        }
        crate::domain::phone::parse_region(&self.default_region)
            .map_err(|e| Error::Config(format!("default_region: {e}")))?;
        for source in &self.sources {
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
        Ok(())
    }

    pub fn source(&self, name: &str) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.name == name)
    }

    pub fn index_dir(&self) -> PathBuf {
        self.data_dir.join("index")
    }
}
