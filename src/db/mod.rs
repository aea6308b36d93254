//! PostgreSQL, the source of truth: connection, migrations, and queries per table.

pub mod copy;
pub mod embedded;
pub mod people;
pub mod runs;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};

use crate::config::Config;
use crate::error::{Error, Result};
pub use embedded::EmbeddedPostgres;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Every writer of `people` holds this transaction-scoped advisory lock, so `change_log`
/// sequence numbers become visible in order and an indexer never skips one.
pub const WRITE_LOCK_KEY: i64 = 0x5357_4244; // "SWBD"

/// Channel on which writers announce new `change_log` entries.
pub const CHANGES_CHANNEL: &str = "switchboard_changes";

pub const DATABASE_NAME: &str = "switchboard";

/// The open database: a pool, and the embedded cluster behind it when there is one.
pub struct Database {
    pub pool: PgPool,
    embedded: Option<std::sync::Arc<EmbeddedPostgres>>,
}

impl Database {
    /// Connects to `database.url`, or starts (or joins) the embedded cluster in the data dir;
    /// then runs pending migrations.
    pub async fn open(config: &Config) -> Result<Database> {
        let (options, embedded) = match &config.database.url {
            Some(url) => {
                let options = PgConnectOptions::from_str(url)
                    .map_err(|e| Error::Config(format!("database.url: {e}")))?;
                (options, None)
            }
            None => {
                let cluster = EmbeddedPostgres::start(&config.data_dir.join("postgres")).await?;
                let options = cluster.connect_options(DATABASE_NAME);
                ensure_database(&cluster.connect_options("postgres"), DATABASE_NAME).await?;
                (options, Some(std::sync::Arc::new(cluster)))
            }
        };
        let opened = async {
            let pool = pool(options, config.database.max_connections).await?;
            MIGRATOR.run(&pool).await?;
            Ok::<_, Error>(pool)
        }
        .await;
        match opened {
            Ok(pool) => Ok(Database { pool, embedded }),
            Err(e) => {
                // Do not leave a cluster we started running behind a failed start.
                if let Some(cluster) = embedded {
                    cluster.stop().await;
                }
                Err(e)
            }
        }
    }

    /// Restarts the embedded cluster whenever it dies, until `stop` (nothing to do for a
    /// database of the operator's own).
    pub fn supervise(
        &self,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        self.embedded
            .clone()
            .map(|cluster| cluster.supervise(Duration::from_millis(500), stop))
    }

    /// Closes the pool and stops the embedded cluster if this process started it and no other
    /// process (a `serve` that joined while an `import` ran, say) still uses it.
    pub async fn close(self) {
        let others_connected = match &self.embedded {
            Some(cluster) if cluster.owned() => other_clients(&self.pool).await,
            _ => 0,
        };
        self.pool.close().await;
        if let Some(cluster) = self.embedded {
            if others_connected > 0 {
                tracing::info!(
                    clients = others_connected,
                    "leaving embedded postgres running for other clients"
                );
            } else {
                cluster.stop().await;
            }
        }
    }
}

/// Client connections of other processes (ours carry our application name).
async fn other_clients(pool: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' \
         AND pid <> pg_backend_pid() AND application_name <> $1",
    )
    .bind(embedded::application_name())
    .fetch_one(pool)
    .await
    .unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot tell who else uses embedded postgres; leaving it running");
        1
    })
}

pub async fn pool(options: PgConnectOptions, max_connections: u32) -> Result<PgPool> {
    let options = options.log_statements(tracing::log::LevelFilter::Trace);
    // A request waits at most this for a connection: when the database is down (restarting,
    // say) it is answered 503 `unavailable` within seconds rather than held.
    // A server keeps two connections listening for good (the indexer, notes from other
    // servers): requests must still have some.
    Ok(PgPoolOptions::new()
        .max_connections(max_connections.max(5))
        .acquire_timeout(Duration::from_secs(3))
        .connect_with(options)
        .await?)
}

/// Creates `name` unless it exists, connecting through the maintenance database.
pub async fn ensure_database(maintenance: &PgConnectOptions, name: &str) -> Result<()> {
    let mut conn = PgConnection::connect_with(maintenance).await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await?;
    if !exists {
        let quoted = name.replace('"', "\"\"");
        match sqlx::query(&format!("CREATE DATABASE \"{quoted}\""))
            .execute(&mut conn)
            .await
        {
            Ok(_) => {}
            // Another process created it between our check and our CREATE.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P04") => {}
            Err(e) => return Err(e.into()),
        }
    }
    conn.close().await?;
    Ok(())
}
