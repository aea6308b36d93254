//! The composition root: builds the application state and starts its background tasks (the
//! indexer, scheduled directory syncs, presence, the audit writer, the retention purge). `serve` and the tests build
//! the state through [`app_state`], so tests exercise the real wiring.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::access::Access;
use crate::audit::AuditLog;
use crate::config::Config;
use crate::error::Result;
use crate::http::AppState;
use crate::presence::{Clock, PresenceHub};
use crate::search::indexer::Indexer;
use crate::search::SearchIndex;

/// The state every handler shares.
pub fn app_state(
    config: &Config,
    pool: PgPool,
    index: SearchIndex,
    ready: Arc<AtomicBool>,
    presence: PresenceHub,
    audit: AuditLog,
    clock: Clock,
) -> Result<AppState> {
    let access = Access::new(&config.access, &config.sources, pool.clone(), clock)?
        .served_over_tls(config.tls.is_some())
        .with_partners(config.partners.clone());
    Ok(AppState {
        pool,
        index,
        ready,
        presence,
        access: Arc::new(access),
        audit,
        audit_staff_lookups: config.audit.staff_lookups,
        limits: crate::http::Limits {
            request_timeout: config.http.request_timeout()?,
            in_flight: Arc::new(tokio::sync::Semaphore::new(
                config.http.max_concurrent_requests,
            )),
        },
        config: Arc::new(config.clone()),
        federation: Arc::new(crate::federation::Federation::new(&config.federation)?),
    })
}

/// The background tasks of a running server.
pub struct Background {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    presence: PresenceHub,
    audit_stop: watch::Sender<bool>,
    audit_task: JoinHandle<()>,
}

/// Opens the index, starts the indexer, the scheduled syncs, presence and the audit writer,
/// and builds the state.
pub async fn start(config: &Config, pool: &PgPool, clock: Clock) -> Result<(AppState, Background)> {
    // Runs a killed import or sync left `running` will never finish: say so.
    crate::db::runs::fail_abandoned(pool).await?;
    let index = SearchIndex::open(&config.index_dir())?;
    let indexer = Indexer::new(index.clone(), pool.clone(), config.search.writer_memory_mb)?;
    let ready = Arc::new(AtomicBool::new(false));
    let (stop, stopped) = watch::channel(false);
    let mut tasks = vec![tokio::spawn(indexer.run(ready.clone(), stopped.clone()))];
    tasks.extend(crate::server::schedule_syncs(config, pool, &stopped)?);
    let presence = PresenceHub::from_config(&config.presence, clock.clone())?;
    presence.start();
    tasks.push(tokio::spawn(
        presence.clone().follow_directory(pool.clone()),
    ));
    let (audit_stop, audit_stopped) = watch::channel(false);
    let (audit, audit_task) = AuditLog::start(pool.clone(), audit_stopped);
    tasks.push(crate::retention::run(
        pool.clone(),
        config.retention.clone(),
        clock.clone(),
        audit.clone(),
        stopped.clone(),
    ));
    let state = app_state(
        config,
        pool.clone(),
        index,
        ready,
        presence.clone(),
        audit,
        clock,
    )?;
    Ok((
        state,
        Background {
            stop,
            tasks,
            presence,
            audit_stop,
            audit_task,
        },
    ))
}

impl Background {
    /// Ends presence streams at once (they would hold a graceful shutdown open forever).
    pub fn begin_shutdown(&self) {
        self.presence.begin_shutdown();
    }

    /// Stops every task; the audit writer last, after writing what is queued.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        self.presence.shutdown().await;
        let _ = self.audit_stop.send(true);
        let _ = self.audit_task.await;
    }
}
