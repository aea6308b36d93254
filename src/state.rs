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
use crate::presence::{simulated, BackendConfig, Clock, PresenceBackend, PresenceHub};
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
        notes: crate::http::notes::NotesFeed::default(),
    })
}

/// The index writer. Another process may hold it for a while (an import indexing a first
/// load): waited for, up to two minutes, saying so; then `IndexLocked` (another server on the
/// same data directory holds it for good).
async fn take_index(index: &SearchIndex, pool: &PgPool, memory_mb: usize) -> Result<Indexer> {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut said = false;
    loop {
        match Indexer::new(index.clone(), pool.clone(), memory_mb) {
            Err(crate::error::Error::IndexLocked) if tokio::time::Instant::now() < deadline => {
                if !said {
                    tracing::warn!(
                        "the search index is being written by another process (an import's \
                         first load, or another server on this data directory); waiting up to 2 minutes"
                    );
                    said = true;
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            taken => return taken,
        }
    }
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
    let indexer = take_index(&index, pool, config.search.writer_memory_mb).await?;
    let ready = Arc::new(AtomicBool::new(false));
    let (stop, stopped) = watch::channel(false);
    let mut tasks = vec![tokio::spawn(indexer.run(ready.clone(), stopped.clone()))];
    tasks.extend(crate::server::schedule_syncs(config, pool, &stopped)?);
    let mut extra: Vec<(BackendConfig, Arc<dyn PresenceBackend>)> = Vec::new();
    if config.presence.simulated {
        let mut simulated = BackendConfig::new(simulated::NAME, simulated::NAME);
        simulated.schemes = Some(vec!["xmpp".into()]);
        extra.push((
            simulated,
            Arc::new(simulated::SimulatedBackend::new(
                pool.clone(),
                crate::demo::utc_offset,
            )),
        ));
    }
    let presence = PresenceHub::from_config_and(&config.presence, clock.clone(), extra)?;
    presence.start();
    tasks.push(tokio::spawn(
        presence.clone().follow_directory(pool.clone()),
    ));
    tasks.push(tokio::spawn(follow_availability(
        presence.clone(),
        index.available().clone(),
        stopped.clone(),
    )));
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
    tasks.push(tokio::spawn(
        state.notes.clone().follow(pool.clone(), stopped.clone()),
    ));
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

/// Keeps the search's "available now" set in step with presence: each change as it comes, and
/// a full reading at start, after falling behind the changes, and every two minutes (a channel
/// that goes stale turns `unknown` without a change being sent).
pub async fn follow_availability(
    presence: PresenceHub,
    available: crate::search::live::Available,
    mut stop: watch::Receiver<bool>,
) {
    use tokio::sync::broadcast::error::RecvError;
    if !presence.enabled() {
        return;
    }
    let mut changes = presence.subscribe();
    let mut every = tokio::time::interval(std::time::Duration::from_secs(120));
    loop {
        let resync = tokio::select! {
            _ = every.tick() => true,
            change = changes.recv() => match change {
                Ok(change) => {
                    let now = change.presence.availability == crate::presence::Availability::Available;
                    available.set(change.id, now);
                    false
                }
                Err(RecvError::Lagged(_)) => true,
                Err(RecvError::Closed) => return,
            },
            _ = stop.wait_for(|s| *s) => return,
        };
        if resync {
            // A full reading, and the comparison with what is known: off the async workers.
            let (hub, set) = (presence.clone(), available.clone());
            let _ = tokio::task::spawn_blocking(move || set.replace(hub.available_now())).await;
        }
    }
}
