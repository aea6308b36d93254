//! `serve`: the HTTP server, with the indexer following the change log beside it.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::db::Database;
use crate::error::{Error, Result};
use crate::presence::system_clock;

/// How long open connections may drain after the shutdown signal.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a client may take to send a request's headers (a client trickling them a byte at
/// a time would otherwise hold its connection, and a slot, forever).
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting and waits for
/// open connections to finish. Each request carries its client's address (`ConnectInfo`);
/// headers must arrive within `header_timeout` (and, with `tls`, the handshake too).
pub async fn serve_connections(
    listener: TcpListener,
    app: axum::Router,
    tls: Option<Arc<crate::tls::Certificates>>,
    shutdown: impl std::future::Future<Output = ()>,
    header_timeout: std::time::Duration,
) {
    use hyper_util::rt::{TokioExecutor, TokioTimer};

    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder.http2().timer(TokioTimer::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, address) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let (builder, watcher, app) = (builder.clone(), graceful.watcher(), app.clone());
        // The certificate in use when the connection came (a reload applies to the next).
        let acceptor = tls.as_ref().map(|t| t.acceptor());
        tokio::spawn(async move {
            match acceptor {
                None => serve_one(&builder, watcher, app, stream, address, None).await,
                Some(acceptor) => {
                    match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            // A client certificate, for partners who pinned one.
                            let presented = tls
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|chain| chain.first())
                                .map(|leaf| crate::tls::ClientCertificate::of(leaf.as_ref()));
                            serve_one(&builder, watcher, app, tls, address, presented).await
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, %address, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%address, "TLS handshake too slow"),
                    }
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Serves one connection until it closes or the server shuts down.
async fn serve_one<S>(
    builder: &hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    watcher: hyper_util::server::graceful::Watcher,
    app: axum::Router,
    stream: S,
    address: SocketAddr,
    presented: Option<crate::tls::ClientCertificate>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use tower::ServiceExt;
    let service = app.map_request(
        move |mut request: axum::http::Request<hyper::body::Incoming>| {
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(address));
            if let Some(certificate) = presented.clone() {
                request.extensions_mut().insert(certificate);
            }
            request
        },
    );
    let connection = builder.serve_connection_with_upgrades(
        hyper_util::rt::TokioIo::new(stream),
        hyper_util::service::TowerToHyperService::new(service),
    );
    if let Err(e) = watcher.watch(connection).await {
        tracing::debug!(error = %e, "connection ended");
    }
}

/// Serves until Ctrl-C or SIGTERM, then drains requests, stops the background tasks and writes
/// the audit records still queued.
pub async fn serve(config: &Config, db: &Database, listen: SocketAddr) -> Result<()> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| Error::Config(format!("cannot listen on {listen}: {e}")))?;
    let (state, background) = crate::state::start(config, &db.pool, system_clock()).await?;
    if config.access.open {
        tracing::warn!(
            "access.open: serving without sign-in; everyone who can reach the port is an admin"
        );
    }
    let app_state = state.clone();
    let app = crate::http::router(state);
    let (reload_stop, _) = watch::channel(false);
    // The embedded cluster, restarted if it dies: until then requests answer 503.
    let (db_stop, db_stopped) = watch::channel(false);
    let supervisor = db.supervise(db_stopped);
    eprintln!(
        "Switchboard is running at {}://{}/  (API: /api/v1/people, spec: /api/v1/openapi.json)",
        if config.tls.is_some() {
            "https"
        } else {
            "http"
        },
        listener.local_addr()?
    );
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&db.pool)
        .await?;
    if accounts == 0
        && !config.access.open
        && config.access.ldap.is_none()
        && config.access.oidc.is_none()
    {
        eprintln!(
            "Nobody can sign in yet: create the first admin with `switchboard user add admin --role admin`."
        );
    }
    // On the signal, presence streams end at once (they would hold the drain open forever);
    // connections still open after DRAIN are dropped.
    let (signalled, mut draining) = watch::channel(false);
    let background = Arc::new(background);
    let bg = background.clone();
    let tls = config
        .tls
        .as_ref()
        .map(crate::tls::Certificates::load)
        .transpose()?;
    let reloads = tls
        .clone()
        .map(|certs| certs.reload_on_sighup(reload_stop.subscribe()));
    // The address book for desk phones and mail clients, stopped with everything else.
    let (ldap_stop, ldap_stopped) = watch::channel(false);
    let mut ldap_tasks = Vec::new();
    if let Some(ldap) = &config.ldap_server {
        let certs = match (&ldap.tls, &tls) {
            (Some(own), _) => Some(crate::tls::Certificates::load(own)?),
            (None, shared) => shared.clone(),
        };
        let server =
            crate::addressbook::ldap::LdapServer::new(app_state.clone(), ldap.clone(), certs)?;
        for (address, task) in server.start(ldap_stopped).await? {
            eprintln!("LDAP address book at {address}/ (base {})", ldap.base_dn);
            ldap_tasks.push(task);
        }
    }
    eprintln!("Press Ctrl-C to stop.");
    let serving = serve_connections(
        listener,
        app,
        tls,
        async move {
            shutdown_signal().await;
            bg.begin_shutdown();
            let _ = signalled.send(true);
        },
        HEADER_READ_TIMEOUT,
    );
    tokio::select! {
        () = serving => {},
        _ = async {
            if draining.wait_for(|s| *s).await.is_ok() {
                tokio::time::sleep(DRAIN).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => tracing::warn!("connections still open {DRAIN:?} after the shutdown signal; closing them"),
    }

    tracing::info!("shutting down");
    let _ = ldap_stop.send(true);
    for task in ldap_tasks {
        let _ = task.await;
    }
    let _ = reload_stop.send(true);
    if let Some(reloads) = reloads {
        let _ = reloads.await;
    }
    match Arc::try_unwrap(background) {
        Ok(background) => background.shutdown().await,
        Err(_) => tracing::warn!("background tasks still referenced at shutdown"),
    }
    let _ = db_stop.send(true);
    if let Some(supervisor) = supervisor {
        let _ = supervisor.await;
    }
    Ok(())
}

/// One task per directory source with an `interval`: a sync at start, then one per interval.
/// A failed sync is logged and recorded as a failed run; the next one runs on schedule.
pub(crate) fn schedule_syncs(
    config: &Config,
    pool: &sqlx::PgPool,
    stopped: &watch::Receiver<bool>,
) -> Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut tasks = Vec::new();
    for source in config.sources.iter().filter(|s| s.is_directory()) {
        let Some(interval) = source.interval()? else {
            continue;
        };
        let (config, source, pool) = (config.clone(), source.clone(), pool.clone());
        let mut stopped = stopped.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let progress = indicatif::ProgressBar::hidden();
                let run = crate::sync::directory::sync_directory(
                    &pool,
                    &config,
                    &source,
                    crate::sync::directory::DirectorySyncOptions::default(),
                    &progress,
                );
                tokio::select! {
                    result = run => match result {
                        Ok(r) => tracing::info!(
                            source = %source.name,
                            mode = r.mode,
                            added = r.report.counts.added,
                            updated = r.report.counts.updated,
                            removed = r.report.counts.removed,
                            "scheduled sync done"
                        ),
                        Err(e) => tracing::warn!(source = %source.name, code = e.code(), error = %e, "scheduled sync failed"),
                    },
                    _ = stopped.wait_for(|s| *s) => return,
                }
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = stopped.wait_for(|s| *s) => return,
                }
            }
        }));
    }
    Ok(tasks)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
