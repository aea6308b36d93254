//! The receptionist's console: its page, scripts and styles, embedded in the binary at build time
//! (`build.rs` lists `src/web/assets`), so it needs no CDN and no files beside the binary.
//!
//! `SWITCHBOARD_WEB_DIR=src/web/assets` serves them from disk instead, read at each request:
//! for working on the console without rebuilding.

use axum::extract::Path;
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

/// The embedded file `name`, or (with `SWITCHBOARD_WEB_DIR`) the file on disk.
fn file(name: &str) -> Option<std::borrow::Cow<'static, [u8]>> {
    if let Some(dir) = std::env::var_os("SWITCHBOARD_WEB_DIR") {
        if name.split('/').any(|part| part == ".." || part.is_empty()) {
            return None;
        }
        return std::fs::read(std::path::Path::new(&dir).join(name))
            .ok()
            .map(Into::into);
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

fn serve(name: &str) -> Response {
    match file(name) {
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

async fn index() -> Response {
    serve("index.html")
}

async fn asset(Path(name): Path<String>) -> Response {
    if name == "index.html" {
        return StatusCode::NOT_FOUND.into_response();
    }
    serve(&name)
}
