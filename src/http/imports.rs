//! `POST /api/v1/imports`: IT imports a file (CSV, Excel, vCard, LDIF) without shell access,
//! with the same rules as `switchboard import`: nobody lost for an odd field, refusals and
//! warnings by line, full imports bounded by `import.max_delete_share`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use crate::config::Config;
use crate::db::runs::{Counts, Reject};
use crate::error::{Error, Result};
use crate::sources::file::{self, Format};
use crate::sync::{self, Change, ImportOptions};

/// The largest file taken (a million-row CSV is about 150 MB: use the command line for those).
pub const MAX_IMPORT_BYTES: usize = 64 * 1024 * 1024;
/// Changes listed in the answer; `changes_total` says how many there were.
const MAX_CHANGES: usize = 1_000;

pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new().routes(routes!(import_file))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportParams {
    /// The source these people belong to (as `switchboard import … --source`). A directory
    /// source of the config is refused: it is synced, not imported.
    #[param(
        min_length = 1,
        max_length = 64,
        pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
    )]
    pub source: String,
    /// The file's format; absent: recognized by its content.
    #[param(inline)]
    pub format: Option<Format>,
    /// The file lists the whole source: its people missing from the file are removed.
    pub full: Option<bool>,
    /// Report the format, the mapping and what would change; write nothing.
    pub dry_run: Option<bool>,
    /// Allow a full import to remove more than `import.max_delete_share` of the source.
    pub force: Option<bool>,
}

/// How one column (LDIF: attribute) of the file was read.
#[derive(Debug, Serialize, ToSchema)]
pub struct ColumnUse {
    pub header: String,
    /// The field it fills; absent: not imported.
    pub field: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ImportResult {
    /// The format as detected, e.g. `CSV (Outlook (German)), `;`-delimited, UTF-16LE`.
    pub format: String,
    pub columns: Vec<ColumnUse>,
    /// The recorded run (`/api/v1/sync/runs/{id}`); absent for a dry run.
    pub run_id: Option<i64>,
    pub dry_run: bool,
    pub counts: Counts,
    /// Who was (or would be) added, updated or removed: the first 1,000.
    pub changes: Vec<Change>,
    pub changes_total: usize,
    /// Rows refused, by line (LDIF: DN), with the reason.
    pub rejects: Vec<Reject>,
    /// Warnings on people kept: numbers kept as written, emails not kept, fields cut.
    pub warnings: Vec<Reject>,
}

/// Imports a file into a source.
#[utoipa::path(
    post,
    path = "/api/v1/imports",
    tag = "sync",
    params(ImportParams),
    request_body(
        description = "The file as exported: CSV (Outlook, Google Contacts, Thunderbird, AD csvde, our own columns; UTF-8, UTF-16 or Windows-1252), an Excel workbook (first sheet), vCard or LDIF",
        content(
            (Vec<u8> = "application/octet-stream"),
            (String = "text/csv"),
            (String = "text/vcard"),
            (String = "text/x-ldif"),
            (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        )
    ),
    security(("session" = ["admin"]), ("bearer" = ["admin"])),
    responses(
        (status = 401, description = "Not signed in", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 200, description = "Imported (or, for a dry run, what would change)", body = ImportResult),
        (status = 400, description = "Bad parameter", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a file of people at all (`input_unreadable`: empty, no header with a name column, a damaged workbook)", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A full import would remove more than `import.max_delete_share` of the source, or another run of the source is in progress", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Larger than 64 MiB", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn import_file(
    State(state): State<AppState>,
    params: std::result::Result<Query<ImportParams>, QueryRejection>,
    body: Bytes,
) -> Result<Json<ImportResult>> {
    let Query(params) = params.map_err(|e| Error::invalid("query", e.body_text()))?;
    let config = state.config.clone();
    let source = params.source;
    let valid_name = !source.is_empty()
        && source.len() <= 64
        && source
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && source.starts_with(|c: char| c.is_ascii_alphanumeric());
    if !valid_name {
        return Err(Error::invalid(
            "source",
            "1 to 64 letters, digits, `.`, `_` or `-`, starting with a letter or digit",
        ));
    }
    if config.source(&source).is_some_and(|s| s.is_directory()) {
        return Err(Error::invalid(
            "source",
            format!("`{source}` is a directory source: it is synced, not imported"),
        ));
    }
    let format = params.format.unwrap_or_else(|| Format::detect(&body));
    let opts = ImportOptions {
        source: source.clone(),
        kind: format.kind().into(),
        full: params.full.unwrap_or(false),
        dry_run: params.dry_run.unwrap_or(false),
        force: params.force.unwrap_or(false),
        max_delete_share: config.import.max_delete_share,
        mode: None,
        merge: config.merge.clone(),
    };
    // Its own task: a client that goes away (or the request timeout) does not cut a run short;
    // it finishes and is recorded.
    let pool = state.pool.clone();
    tokio::spawn(run(pool, config, body, format, opts))
        .await
        .map_err(|e| Error::Internal(e.into()))?
}

async fn run(
    pool: sqlx::PgPool,
    config: Arc<Config>,
    body: Bytes,
    format: Format,
    opts: ImportOptions,
) -> Result<Json<ImportResult>> {
    let columns = config
        .source(&opts.source)
        .map(|s| s.columns.clone())
        .unwrap_or_default();
    let phones = config.phones(Some(&opts.source))?;
    // Parsing and validating are CPU work: off the async workers.
    let (read, validated, seconds) = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let unreadable = |reason: String| Error::Input {
            path: "the uploaded file".into(),
            reason,
        };
        if body.is_empty() {
            return Err(unreadable("it is empty".into()));
        }
        let mut raw = file::parse(&body, Some(format), &columns).map_err(|e| match e {
            Error::Input { reason, .. } => unreadable(reason),
            e => e,
        })?;
        let read = (
            std::mem::take(&mut raw.format),
            std::mem::take(&mut raw.columns),
        );
        let removals = std::mem::take(&mut raw.removals);
        let (records, rejects) = sync::validate(raw, &phones);
        Ok::<_, Error>((
            read,
            sync::Validated {
                records,
                rejects,
                removals,
            },
            started.elapsed().as_secs_f64(),
        ))
    })
    .await
    .map_err(|e| Error::Internal(e.into()))??;
    let report =
        sync::import_validated(&pool, validated, seconds, &opts, &ProgressBar::hidden()).await?;
    let (format, columns) = read;
    let changes_total = report.changes.len();
    Ok(Json(ImportResult {
        format,
        columns: columns
            .into_iter()
            .map(|(header, field)| ColumnUse {
                header,
                field: field.map(str::to_string),
            })
            .collect(),
        run_id: report.run_id,
        dry_run: report.dry_run,
        counts: report.counts,
        changes: report.changes.into_iter().take(MAX_CHANGES).collect(),
        changes_total,
        rejects: report.rejects,
        warnings: report.warnings,
    }))
}
