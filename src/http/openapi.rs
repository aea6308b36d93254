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
        (name = "audit", description = "The tamper-evident audit trail"),
        (name = "address books", description = "The directory for desk phones and mail clients: XML phone books"),
        (name = "partners", description = "Partner companies that read the shared directory: keys, policies, limits (admins)"),
        (name = "shared", description = "The shared directory, for partner companies: search and look up our people as your agreement allows"),
        (name = "scim", description = "The shared directory as a read-only SCIM 2.0 service (RFC 7643/7644), for partners' identity tools")
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
            "basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "Address books only (phone books, CardDAV): a device's name and password from `switchboard device add NAME`, or a person's account.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "partner",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A partner company's API key (`sbp_…`) from `switchboard partner add NAME`: the shared directory only.",
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
    let mut spec = super::api().into_openapi();
    add_common_responses(&mut spec);
    spec
}

/// What any operation may answer besides its own responses: 429 past a rate limit and 503 when
/// the server is overloaded, a request times out or the database is unreachable (both
/// problem+json, with `Retry-After` where a wait helps); and 401 for an unknown token, wherever
/// a credential is asked for.
fn add_common_responses(spec: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let problem = || {
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("Problem")))
            .build()
    };
    let common = [
        ("429", "Too many requests: wait as `Retry-After` says (`rate_limited`)"),
        (
            "503",
            "Overloaded, timed out, or the database is unreachable: try again (`overloaded`, `timeout`, `unavailable`)",
        ),
    ];
    for (path, item) in spec.paths.paths.iter_mut() {
        // SCIM clients read SCIM errors: the refusals on its paths are answered as such.
        let scim = path.starts_with("/scim/");
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for operation in operations.into_iter().flatten() {
            let guarded = operation.security.as_ref().is_some_and(|alternatives| {
                !alternatives.is_empty()
                    && serde_json::to_value(alternatives)
                        .ok()
                        .and_then(|v| v.as_array().cloned())
                        .is_some_and(|a| {
                            a.iter()
                                .all(|r| r.as_object().is_some_and(|o| !o.is_empty()))
                        })
            });
            let unauthorized = (
                "401",
                "Not signed in, or an unknown, expired or revoked credential (`unauthorized`)",
            );
            for (code, description) in common.into_iter().chain(guarded.then_some(unauthorized)) {
                operation
                    .responses
                    .responses
                    .entry(code.to_string())
                    .or_insert_with(|| {
                        let response = ResponseBuilder::new().description(description);
                        RefOr::T(if scim {
                            response
                                .content("application/scim+json", ContentBuilder::new().build())
                                .build()
                        } else {
                            response
                                .content("application/problem+json", problem())
                                .build()
                        })
                    });
            }
        }
    }
}

pub fn spec_json() -> String {
    let mut json = spec().to_pretty_json().unwrap_or_default();
    json.push('\n');
    json
}
