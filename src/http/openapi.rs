//! The OpenAPI document, generated from the handlers. Committed as `openapi/openapi.json`;
//! `tests/openapi.rs` fails when the two differ (`switchboard openapi > openapi/openapi.json`).

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard",
        description = "Self-hosted business directory with live presence: who is this person, and how do I reach them right now?",
        license(name = "Apache-2.0")
    ),
    paths(
        super::people::search_people,
        super::people::get_person,
        super::people::get_people_by_phone,
        super::photos::get_photo,
        super::sync::list_runs,
        super::sync::get_run,
        super::health::healthz,
        super::health::readyz,
        super::presence::get_presence,
        super::presence::post_presence_events,
        super::presence::stream_presence
    ),
    tags(
        (name = "people", description = "Search and look up people"),
        (name = "sync", description = "Import and directory sync runs: counts, who changed, what was refused"),
        (name = "health", description = "Liveness and readiness"),
        (name = "presence", description = "Live presence merged from IM systems")
    )
)]
pub struct ApiDoc;

pub fn spec_json() -> String {
    let mut json = ApiDoc::openapi().to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}
