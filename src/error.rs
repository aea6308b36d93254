//! The one error type of Switchboard. Every variant has a stable snake_case `code` that clients can
//! match on; the mapping to HTTP happens once, in `http::error`.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} not found")]
    NotFound { what: &'static str },

    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter { name: &'static str, reason: String },

    #[error("configuration error: {0}")]
    Config(String),

    #[error("{0}")]
    SafetyLimit(String),

    /// The request is valid but clashes with what exists (a name taken, a partner revoked).
    #[error("conflict: {0}")]
    Conflict(String),

    #[error("cannot read {path}: {reason}")]
    Input { path: PathBuf, reason: String },

    #[error("the search index is in use by another process (is `switchboard serve` running on this data dir?)")]
    IndexLocked,

    #[error("unauthorized: {0}")]
    Unauthorized(String),

    #[error("forbidden: {0}")]
    Forbidden(String),

    #[error("missing or wrong CSRF token: send the session's token as `X-CSRF-Token`")]
    Csrf,

    #[error("the server is handling as many requests as it can; try again")]
    Overloaded,

    #[error("the request took longer than {0:?}")]
    Timeout(std::time::Duration),

    #[error("misdirected request: {0}")]
    MisdirectedRequest(String),

    #[error("request body too large: {0}")]
    TooLarge(String),

    #[error("too many {what}; try again in {retry_after} s")]
    TooManyRequests { retry_after: u64, what: String },

    #[error("directory {source_name}: {reason}")]
    Directory { source_name: String, reason: String },

    #[error("directory {source_name} rejected the credentials: {reason}")]
    DirectoryAuth { source_name: String, reason: String },

    #[error("service unavailable: {0}")]
    Unavailable(String),

    #[error("embedded database: {0}")]
    EmbeddedDb(String),

    #[error("database error: {0}")]
    Database(sqlx::Error),

    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),

    #[error("search index error: {0}")]
    Index(#[from] tantivy::TantivyError),

    #[error("{0}")]
    Io(#[from] std::io::Error),

    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    /// Stable machine-readable code; part of the public API, never renamed.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "not_found",
            Error::InvalidParameter { .. } => "invalid_parameter",
            Error::Config(_) => "config_invalid",
            Error::SafetyLimit(_) => "safety_limit",
            Error::Conflict(_) => "conflict",
            Error::Input { .. } => "input_unreadable",
            Error::IndexLocked => "index_locked",
            Error::Unauthorized(_) => "unauthorized",
            Error::Forbidden(_) => "forbidden",
            Error::Csrf => "csrf_failed",
            Error::TooLarge(_) => "payload_too_large",
            Error::MisdirectedRequest(_) => "misdirected",
            Error::Overloaded => "overloaded",
            Error::Timeout(_) => "timeout",
            Error::TooManyRequests { .. } => "rate_limited",
            Error::Directory { .. } => "directory_unavailable",
            Error::DirectoryAuth { .. } => "directory_credentials_rejected",
            Error::Unavailable(_) => "unavailable",
            Error::EmbeddedDb(_) => "embedded_database",
            Error::Database(_) => "database",
            Error::Migration(_) => "migration",
            Error::Index(_) => "search_index",
            Error::Io(_) => "io",
            Error::Internal(_) => "internal",
        }
    }

    pub fn invalid(name: &'static str, reason: impl Into<String>) -> Self {
        Error::InvalidParameter {
            name,
            reason: reason.into(),
        }
    }
}

/// A lost or refused connection (the database restarting, say) is `Unavailable`, answered 503
/// with `Retry-After`; any other database error stays an internal one.
impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        if is_connection_loss(&e) {
            tracing::warn!(error = %e, "the database is unreachable");
            Error::Unavailable("the database is unreachable; try again shortly".into())
        } else {
            Error::Database(e)
        }
    }
}

fn is_connection_loss(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // Class 08: connection exception; 57P01–57P03: shut down, crashed, starting up;
        // 53300: too many connections.
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

impl From<tantivy::directory::error::OpenDirectoryError> for Error {
    fn from(e: tantivy::directory::error::OpenDirectoryError) -> Self {
        Error::Index(e.into())
    }
}
