//! The receptionist's console: its page, scripts and styles, embedded in the binary at build time
//! (`build.rs` lists `src/web/assets`), so it needs no CDN and no files beside the binary.
//!
//! `[http] web_dir` (`SWITCHBOARD_HTTP__WEB_DIR=src/web/assets`) serves them from disk instead,
//! read at each request: for working on the console without rebuilding.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::http::AppState;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/assets.rs"));
}

/// The page and its files: open to anyone (the page asks for sign-in; the API it calls checks
/// every request).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{*name}", get(asset))
}

/// The embedded file `name`, or (with `[http] web_dir`) the file on disk.
fn file(state: &AppState, name: &str) -> Option<std::borrow::Cow<'static, [u8]>> {
    if let Some(dir) = &state.config.http.web_dir {
        if name.contains(['\\', ':'])
            || name
                .split('/')
                .any(|part| part.is_empty() || part.starts_with('.'))
        {
            return None;
        }
        return std::fs::read(dir.join(name)).ok().map(Into::into);
    }
    embedded::ASSETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, bytes)| std::borrow::Cow::Borrowed(*bytes))
}

/// Every embedded file's name (the tests check each is served with its type).
pub fn names() -> impl Iterator<Item = &'static str> {
    embedded::ASSETS.iter().map(|(name, _)| *name)
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn serve(state: &AppState, name: &str) -> Response {
    match file(state, name) {
        Some(bytes) => (
            [
                (header::CONTENT_TYPE, content_type(name)),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            match bytes {
                std::borrow::Cow::Borrowed(b) => axum::body::Body::from(b),
                std::borrow::Cow::Owned(v) => axum::body::Body::from(v),
            },
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn index(State(state): State<AppState>) -> Response {
    serve(&state, "index.html")
}

async fn asset(State(state): State<AppState>, Path(name): Path<String>) -> Response {
    if name == "index.html" {
        return StatusCode::NOT_FOUND.into_response();
    }
    serve(&state, &name)
}
