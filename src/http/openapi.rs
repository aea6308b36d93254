//! The OpenAPI document, generated from the handlers as they are registered (`http::api`).
//! Committed as `openapi/openapi.json`; `tests/openapi.rs` fails when the two differ
//! (`switchboard openapi > openapi/openapi.json`).

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard",
        description = "Self-hosted business directory with live presence: who is this person, and how do I reach them right now?\n\nEvery operation names who may call it in `security`: `session` (the console's cookie, after `POST /api/v1/auth/login` or single sign-on; state-changing requests also send the session's `X-CSRF-Token`) or `bearer` (a service token from `switchboard token add`), with the least role as the scope (`viewer` < `receptionist` < `admin`). An empty requirement (`{}`) means anyone. People outside the caller's policy answer as people who do not exist.",
        license(name = "Apache-2.0")
    ),
    modifiers(&SecuritySchemes),
    components(schemas(super::notes::NoteKind)),
    tags(
        (name = "people", description = "Search and look up people"),
        (name = "sync", description = "Import and directory sync runs: counts, who changed, what was refused"),
        (name = "health", description = "Liveness and readiness"),
        (name = "presence", description = "Live presence merged from IM systems"),
        (name = "auth", description = "Sign-in, sessions and sign-out"),
        (name = "audit", description = "The tamper-evident audit trail")
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::access::sessions::COOKIE,
                "The console's session cookie. Requests other than GET, HEAD and OPTIONS made with it must also send the session's CSRF token as `X-CSRF-Token` (from `GET /api/v1/auth/session` or the sign-in response).",
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A service token (`sbt_…`) from `switchboard token add NAME --role ROLE`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "webhook",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The `token` of a configured webhook presence backend.",
                    ))
                    .build(),
            ),
        );
    }
}

pub fn spec() -> utoipa::openapi::OpenApi {
    super::api().into_openapi()
}

pub fn spec_json() -> String {
    let mut json = spec().to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}
