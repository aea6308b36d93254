//! Who may call what. Every operation declares its requirement in its OpenAPI `security`
//! (so the committed spec says exactly what the server enforces); [`Rules`] reads them from the
//! generated document and [`guard`] enforces them on every route. An operation that declares
//! nothing is refused to everyone: closed by default, and the route-table test fails.
//!
//! Also here: sign-in (local accounts and directory binds by form, OpenID Connect by redirect),
//! sessions, sign-out, and the audit records of requests.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, MatchedPath, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Json};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AppState;
use crate::access::sessions::{SignedIn, COOKIE};
use crate::access::{Principal, PrincipalKind, Role, SignInMethods};
use crate::audit::AuditEvent;
use crate::error::{Error, Result};

/// The header that carries a session's CSRF token on every state-changing request.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Binds an OpenID Connect sign-in to the browser that started it.
const OIDC_STATE_COOKIE: &str = "switchboard_oidc";

/// What a route asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Anyone.
    Public,
    /// A session or service token of at least this role.
    Role(Role),
    /// Anyone signed in when it concerns themselves (`self`), else at least this role: the
    /// guard lets every principal through and the handler decides.
    SelfOr(Role),
    /// A presence webhook backend's own bearer token (checked by the handler).
    Webhook,
    /// Any service token, an admin, or an address in `access.metrics_allow`.
    Metrics,
    /// A partner's API key (the shared directory); nobody else.
    Partner,
    /// The operation declares nothing: refused to everyone.
    Undeclared,
}

impl Requirement {
    /// Reads an operation's `security` array: `[{}]` is public; `webhook` is the presence
    /// webhook's; `bearer: ["metrics"]` is metrics; otherwise the role named in its scopes.
    pub fn of_operation(op: &serde_json::Value) -> Requirement {
        let Some(alternatives) = op.get("security").and_then(|s| s.as_array()) else {
            return Requirement::Undeclared;
        };
        let mut role = None;
        let mut own = false;
        for alternative in alternatives {
            let Some(schemes) = alternative.as_object() else {
                continue;
            };
            if schemes.is_empty() {
                return Requirement::Public;
            }
            for (scheme, scopes) in schemes {
                if scheme == "webhook" {
                    return Requirement::Webhook;
                }
                if scheme == "partner" {
                    return Requirement::Partner;
                }
                for scope in scopes
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.as_str())
                {
                    if scope == "metrics" {
                        return Requirement::Metrics;
                    }
                    own |= scope == "self";
                    if let Ok(r) = Role::parse(scope) {
                        role = Some(role.map_or(r, |old: Role| old.min(r)));
                    }
                }
            }
        }
        match (role, own) {
            (Some(r), true) => Requirement::SelfOr(r),
            (Some(r), false) => Requirement::Role(r),
            (None, _) => Requirement::Undeclared,
        }
    }
}

/// Every documented operation's requirement, by method and path template; and the operations
/// that take HTTP Basic (address books: phones and mail clients know nothing else).
#[derive(Debug, Default, Clone)]
pub struct Rules(
    HashMap<(Method, String), Requirement>,
    HashSet<(Method, String)>,
);

impl Rules {
    pub fn from_spec(spec: &utoipa::openapi::OpenApi) -> Rules {
        let json = serde_json::to_value(spec).unwrap_or_default();
        let mut rules = HashMap::new();
        let mut basic = HashSet::new();
        for (path, item) in json["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                let Ok(method) = method.to_uppercase().parse::<Method>() else {
                    continue;
                };
                let takes_basic = op["security"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|alternative| alternative.get("basic").is_some());
                if takes_basic {
                    basic.insert((method.clone(), path.clone()));
                }
                rules.insert((method, path.clone()), Requirement::of_operation(op));
            }
        }
        Rules(rules, basic)
    }

    /// The key an operation is filed under: HEAD is GET's.
    fn key(method: &Method, path: &str) -> (Method, String) {
        let method = if method == Method::HEAD {
            Method::GET
        } else {
            method.clone()
        };
        (method, path.to_string())
    }

    pub fn get(&self, method: &Method, path: &str) -> Requirement {
        self.0
            .get(&Self::key(method, path))
            .copied()
            .unwrap_or(Requirement::Undeclared)
    }

    /// The methods the spec declares for `path` (HEAD with GET), in a stable order.
    pub fn methods(&self, path: &str) -> Vec<Method> {
        let mut methods: Vec<Method> = self
            .0
            .keys()
            .filter(|(_, p)| p == path)
            .map(|(m, _)| m.clone())
            .collect();
        if methods.contains(&Method::GET) {
            methods.push(Method::HEAD);
        }
        methods.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        methods
    }

    /// Whether the operation takes HTTP Basic credentials.
    pub fn takes_basic(&self, method: &Method, path: &str) -> bool {
        self.1.contains(&Self::key(method, path))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&(Method, String), &Requirement)> {
        self.0.iter()
    }
}

/// People a response showed, for the audit trail (set by handlers as a response extension).
#[derive(Debug, Clone, Default)]
pub struct ReturnedPeople(pub Vec<Uuid>);

/// The client's address, when the server knows it.
pub fn client_address(request_extensions: &axum::http::Extensions) -> Option<SocketAddr> {
    request_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

/// The client's address as an extractor (absent in tests that call the router directly).
pub struct ClientAddr(pub Option<SocketAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> std::result::Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_address(&parts.extensions)))
    }
}

/// HTTP Basic credentials (RFC 7617): the name and the password.
pub(crate) fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (name, password) = text.split_once(':')?;
    Some((name.to_string(), password.to_string()))
}

/// HTTP Basic credentials checked as console sign-ins are: throttled, and failures audited.
pub(crate) async fn basic_login(
    state: &AppState,
    account: &str,
    password: &str,
    address: Option<SocketAddr>,
) -> Result<Option<Principal>> {
    let ip = address.map_or_else(|| "unknown".to_string(), |a| a.ip().to_string());
    if state.access.throttled(account, &ip).is_err() {
        return Ok(None);
    }
    match state.access.password_principal(account, password).await? {
        Some(p) => {
            state.access.sign_in_succeeded(account);
            Ok(Some(p))
        }
        None => {
            state.access.sign_in_failed(account, &ip);
            state.audit.record(
                AuditEvent::new(
                    state.access.now(),
                    &format!("anonymous:{account}"),
                    "basic_auth_failed",
                )
                .status(401)
                .address(Some(ip)),
            );
            Ok(None)
        }
    }
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Who a request comes from: a principal (with its session's CSRF token), or
/// why there is none.
enum Resolved {
    Principal(Principal, Option<String>),
    Nobody,
    /// A bearer token we do not know (or revoked).
    BadToken,
}

async fn resolve(
    state: &AppState,
    headers: &HeaderMap,
    jar: &CookieJar,
    takes_basic: bool,
    address: Option<SocketAddr>,
) -> Result<Resolved> {
    if let Some(open) = state.access.open_principal() {
        return Ok(Resolved::Principal(open.clone(), None));
    }
    // Basic only where the route says so: a browser resends Basic credentials on its own, so
    // elsewhere they would work like a cookie without CSRF protection.
    if let Some((account, password)) = basic(headers).filter(|_| takes_basic) {
        return Ok(
            match basic_login(state, &account, &password, address).await? {
                Some(p) => Resolved::Principal(p, None),
                None => Resolved::BadToken,
            },
        );
    }
    if let Some(token) = bearer(headers) {
        if token.starts_with(crate::access::partners::PREFIX) {
            return Ok(match state.access.partner_of_key(token).await? {
                Some(p) => Resolved::Principal(p, None),
                None => Resolved::BadToken,
            });
        }
        return Ok(match state.access.principal_of_token(token).await? {
            Some(p) => Resolved::Principal(p, None),
            None => Resolved::BadToken,
        });
    }
    if let Some(cookie) = jar.get(COOKIE) {
        if let Some(session) = state.access.session(cookie.value()).await? {
            let principal = state.access.principal_of_session(&session);
            return Ok(Resolved::Principal(principal, Some(session.csrf_token)));
        }
    }
    Ok(Resolved::Nobody)
}

/// Before routing: a request addressed to a host that is not ours is refused (421; health
/// checks excepted), and behind
/// a trusted proxy the client's address is taken from `X-Forwarded-For`.
pub async fn edge(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()));
    // Health checks come from probes that address the machine, not the public name.
    let probe = matches!(request.uri().path(), "/healthz" | "/readyz");
    if !probe && !state.access.host_allowed(host) {
        return Error::MisdirectedRequest(format!(
            "this server does not answer for host {}",
            host.unwrap_or("(none)")
        ))
        .into_response();
    }
    if let Some(peer) = client_address(request.extensions()) {
        let forwarded = request
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok());
        let ip = state.access.client_ip(peer.ip(), forwarded);
        if ip != peer.ip() {
            request
                .extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(ip, 0)));
        }
    }
    next.run(request).await
}

/// The route layer: resolves the caller, enforces the route's requirement and CSRF, and
/// records the request in the audit trail when it must be.
pub async fn guard(
    State((state, rules)): State<(AppState, Arc<Rules>)>,
    matched: Option<MatchedPath>,
    jar: CookieJar,
    mut request: Request,
    next: Next,
) -> Response {
    let path = matched.as_ref().map(|m| m.as_str()).unwrap_or_default();
    let requirement = rules.get(request.method(), path);
    if requirement == Requirement::Undeclared {
        let declared = rules.methods(path);
        if !declared.is_empty() {
            // A method this path does not have (TRACE, say): 405, naming the ones it has.
            let allow: Vec<&str> = declared.iter().map(Method::as_str).collect();
            let mut response = crate::http::error::Problem::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{} is not supported here", request.method()),
            )
            .into_response();
            if let Ok(value) = allow.join(", ").parse() {
                response
                    .headers_mut()
                    .insert(axum::http::header::ALLOW, value);
            }
            return response;
        }
        tracing::error!(path, method = %request.method(), "route declares no access requirement; refused");
        return Error::Forbidden("this route declares no access requirement".into())
            .into_response();
    }
    if requirement == Requirement::Webhook {
        return next.run(request).await;
    }
    let address = client_address(request.extensions());
    let takes_basic = rules.takes_basic(request.method(), path);
    let resolved = match resolve(&state, request.headers(), &jar, takes_basic, address).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let (principal, csrf) = match resolved {
        Resolved::Principal(p, csrf) => (Some(p), csrf),
        Resolved::Nobody => (None, None),
        Resolved::BadToken if requirement == Requirement::Public => (None, None),
        Resolved::BadToken if takes_basic => {
            return ask_for_basic(
                Error::Unauthorized("wrong name or password".into()).into_response(),
            );
        }
        Resolved::BadToken => {
            return Error::Unauthorized("unknown or revoked token".into()).into_response();
        }
    };
    // A partner whose key must come with its client certificate (mutual TLS).
    if let Some(pin) = principal
        .as_ref()
        .and_then(|p| p.partner.as_ref())
        .and_then(|partner| partner.certificate_sha256.as_deref())
    {
        let presented = request.extensions().get::<crate::tls::ClientCertificate>();
        if presented.is_none_or(|c| !c.0.eq_ignore_ascii_case(pin)) {
            return Error::Unauthorized(
                "this partner's key works only with its client certificate (mutual TLS)".into(),
            )
            .into_response();
        }
    }
    let allowed = match (requirement, &principal) {
        (Requirement::Public, _) => Ok(()),
        (Requirement::Partner, Some(p)) if p.kind == PrincipalKind::Partner => Ok(()),
        (Requirement::Partner, Some(p)) => Err(Error::Forbidden(format!(
            "the shared directory is for partners' keys; {} is not a partner (staff use /api/v1)",
            p.name
        ))),
        (_, Some(p)) if p.kind == PrincipalKind::Partner => Err(Error::Forbidden(
            "a partner key reaches the shared directory only (/shared/v1, /scim/v2)".into(),
        )),
        (Requirement::Metrics, _) if state.access.metrics_allowed(address.map(|a| a.ip())) => {
            Ok(())
        }
        (Requirement::Metrics, Some(p))
            if p.kind == PrincipalKind::Service || p.role == Role::Admin =>
        {
            Ok(())
        }
        (Requirement::Metrics, Some(_)) => Err(Error::Forbidden(
            "metrics need a service token, an admin, or an allowed address".into(),
        )),
        (Requirement::Role(min), Some(p)) if p.role >= min => Ok(()),
        (Requirement::SelfOr(_), Some(_)) => Ok(()),
        (Requirement::Role(min), Some(p)) => Err(Error::Forbidden(format!(
            "this needs the {min} role; {} has {}",
            p.name, p.role
        ))),
        (Requirement::Partner, None) => Err(Error::Unauthorized(
            "send the partner key as `Authorization: Bearer <key>`".into(),
        )),
        (Requirement::Metrics | Requirement::Role(_) | Requirement::SelfOr(_), None) => Err(
            Error::Unauthorized("sign in, or send `Authorization: Bearer <token>`".into()),
        ),
        (Requirement::Webhook | Requirement::Undeclared, _) => {
            Err(Error::Forbidden("no requirement to check".into()))
        }
    };
    if let Err(e) = allowed {
        if let Some(p) = &principal {
            state
                .audit
                .record(request_event(&state, p, &request, path, address).status(403));
        }
        let response = e.into_response();
        if takes_basic && response.status() == axum::http::StatusCode::UNAUTHORIZED {
            return ask_for_basic(response);
        }
        return response;
    }
    if let Some(p) = &principal {
        // Everyone is the same principal on an open server: there, each address has a bucket.
        let key = match (p.kind, address) {
            (PrincipalKind::Open, Some(a)) => format!("open:{}", a.ip()),
            _ => p.name.clone(),
        };
        let limited = match &p.partner {
            // A partner's own rate, its daily quota, and its refusals audited like its requests.
            Some(partner) => state
                .access
                .rate_with(&key, partner.rate_per_second, partner.rate_per_second)
                .map_err(|retry_after| Error::TooManyRequests {
                    retry_after,
                    what: format!("requests from {} (its rate)", p.name),
                })
                .and_then(|()| {
                    state
                        .access
                        .partner_usage
                        .take(partner, state.access.now())
                        .map_err(|retry_after| Error::TooManyRequests {
                            retry_after,
                            what: format!("requests from {} today (its daily quota)", p.name),
                        })
                }),
            None => state
                .access
                .rate(&key)
                .map_err(|retry_after| Error::TooManyRequests {
                    retry_after,
                    what: format!("requests from {}", p.name),
                }),
        };
        if let Err(e) = limited {
            if p.partner.is_some() {
                state
                    .audit
                    .record(request_event(&state, p, &request, path, address).status(429));
            }
            return e.into_response();
        }
    }
    // A state change made with a cookie must carry the session's CSRF token: another site can
    // make a browser send the cookie, not read the token.
    // (Public routes do not act for the session: sign-in may replace it.)
    if let Some(expected) = csrf.as_ref().filter(|_| requirement != Requirement::Public) {
        if !is_safe(request.method()) {
            let sent = request
                .headers()
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok());
            if sent != Some(expected.as_str()) {
                return Error::Csrf.into_response();
            }
        }
    }
    let Some(principal) = principal else {
        return next.run(request).await;
    };
    let audited = match requirement {
        Requirement::Role(Role::Admin) => true,
        _ => state.audits_lookups_of(&principal),
    };
    let event = audited.then(|| request_event(&state, &principal, &request, path, address));
    if let Some(partner) = principal.partner.clone() {
        request.extensions_mut().insert(partner);
    }
    request.extensions_mut().insert(principal);
    let response = next.run(request).await;
    if let Some(mut event) = event {
        event.people = response
            .extensions()
            .get::<ReturnedPeople>()
            .map(|p| p.0.clone())
            .unwrap_or_default();
        state.audit.record(event.status(response.status().as_u16()));
    }
    response
}

/// The audit record of a request by `principal` to the route `path`, before its outcome.
fn request_event(
    state: &AppState,
    principal: &Principal,
    request: &Request,
    path: &str,
    address: Option<SocketAddr>,
) -> AuditEvent {
    let mut event = AuditEvent::new(
        state.access.now(),
        &principal.name,
        &format!("{} {path}", request.method()),
    )
    .address(address.map(|a| a.ip().to_string()));
    event.query = request.uri().query().map(str::to_string);
    event
}

/// A 401 that tells an address book client to send Basic credentials (RFC 7617).
fn ask_for_basic(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Basic realm=\"Switchboard\", charset=\"UTF-8\""),
    );
    response
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(sign_in))
        .routes(routes!(sign_out))
        .routes(routes!(sign_out_everywhere))
        .routes(routes!(get_session))
        .routes(routes!(get_methods))
        .routes(routes!(oidc_login))
        .routes(routes!(oidc_callback))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SignInRequest {
    /// A local account's name, or a directory login (uid, sAMAccountName or email): up to 256
    /// characters, spaces around it ignored.
    #[schema(max_length = 256, pattern = r"\S")]
    pub username: String,
    /// Up to 1024 characters.
    #[schema(min_length = 1, max_length = 1024)]
    pub password: String,
}

/// The signed-in caller.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionResponse {
    /// `local:NAME`, `ldap:SOURCE:DN`, `oidc:ISSUER#SUB`, `token:NAME` or `open`.
    pub principal: String,
    pub display_name: String,
    pub role: Role,
    pub kind: PrincipalKind,
    /// Send as `X-CSRF-Token` on every state-changing request made with the session cookie.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
    /// When the session ends at the latest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The person this is, when known (by email).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_id: Option<Uuid>,
    /// True when the server runs open (no sign-in): the page shows a banner.
    pub open: bool,
    /// Partners' directories this server can search too (`peers=` on the search).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
}

fn session_cookie(state: &AppState, value: String) -> Cookie<'static> {
    Cookie::build((COOKIE, value))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.access.secure_cookies())
        .build()
}

fn removal(name: &'static str) -> Cookie<'static> {
    Cookie::build((name, "")).path("/").build()
}

async fn start_session(
    state: &AppState,
    jar: CookieJar,
    who: &SignedIn,
    address: Option<SocketAddr>,
) -> Result<(CookieJar, SessionResponse)> {
    let previous = jar.get(COOKIE).map(|c| c.value().to_string());
    let (cookie, session) = state.access.start_session(who, previous.as_deref()).await?;
    state.audit.record(
        AuditEvent::new(state.access.now(), &who.subject, "sign_in")
            .query(format!("method={} role={}", who.method, who.role))
            .status(200)
            .address(address.map(|a| a.ip().to_string())),
    );
    let response = SessionResponse {
        principal: session.subject.clone(),
        display_name: session.display_name.clone(),
        role: session.role,
        kind: PrincipalKind::Staff,
        csrf_token: Some(session.csrf_token.clone()),
        expires_at: Some(session.expires_at),
        person_id: session.person_id,
        open: false,
        peers: state.federation.names(),
    };
    Ok((jar.add(session_cookie(state, cookie)), response))
}

/// Sign in with a local account or, when `[access.ldap]` is configured, a directory account.
/// Sets the session cookie (`HttpOnly`, `SameSite=Lax`, `Secure` behind https). Failed attempts
/// are throttled per account and per address (429 with `Retry-After`).
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = SignInRequest,
    security(()),
    responses(
        (status = 200, description = "Signed in; the session cookie is set", body = SessionResponse),
        (status = 400, description = "Malformed body", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Wrong name or password", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many failed attempts", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn sign_in(
    State(state): State<AppState>,
    jar: CookieJar,
    ClientAddr(address): ClientAddr,
    body: std::result::Result<Json<SignInRequest>, JsonRejection>,
) -> Result<(CookieJar, Json<SessionResponse>)> {
    let Json(request) = body.map_err(super::error::json_body)?;
    let ip = address.map_or_else(|| "unknown".to_string(), |a| a.ip().to_string());
    let account = request.username.trim().to_string();
    if account.is_empty()
        || request.password.is_empty()
        || account.chars().count() > 256
        || request.password.chars().count() > 1024
    {
        return Err(Error::invalid("username", "give a name and a password"));
    }
    // No account has a NUL in its name or password (nor can PostgreSQL store one).
    let impossible = account.contains('\0') || request.password.contains('\0');
    state
        .access
        .throttled(&account, &ip)
        .map_err(|retry_after| Error::TooManyRequests {
            retry_after,
            what: "failed sign-ins".into(),
        })?;
    let mut who = if impossible {
        None
    } else {
        crate::access::users::verify(&state.pool, &account, &request.password).await?
    };
    if who.is_none() && !impossible {
        if let Some(ldap) = &state.access.ldap {
            who = ldap.authenticate(&account, &request.password).await?;
        }
    }
    let Some(who) = who else {
        state.access.sign_in_failed(&account, &ip);
        state.audit.record(
            AuditEvent::new(
                state.access.now(),
                &format!("anonymous:{account}"),
                "sign_in_failed",
            )
            .status(401)
            .address(Some(ip)),
        );
        return Err(Error::Unauthorized("wrong name or password".into()));
    };
    state.access.sign_in_succeeded(&account);
    let (jar, response) = start_session(&state, jar, &who, address).await?;
    Ok((jar, Json(response)))
}

/// Sign out: ends this session.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    security(("session" = ["viewer"]), ("bearer" = ["viewer"])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "Not signed in", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing or wrong CSRF token", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn sign_out(
    State(state): State<AppState>,
    jar: CookieJar,
) -> Result<(CookieJar, StatusCode)> {
    if let Some(cookie) = jar.get(COOKIE) {
        state.access.end_session(cookie.value()).await?;
    }
    Ok((jar.remove(removal(COOKIE)), StatusCode::NO_CONTENT))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SignedOut {
    /// Sessions ended.
    pub sessions: u64,
}

/// Sign out everywhere: ends every session of the signed-in person, on every device.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout-all",
    tag = "auth",
    security(("session" = ["viewer"]), ("bearer" = ["viewer"])),
    responses(
        (status = 200, description = "Every session ended", body = SignedOut),
        (status = 401, description = "Not signed in", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing or wrong CSRF token, or a service token (which has no sessions)", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn sign_out_everywhere(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    jar: CookieJar,
) -> Result<(CookieJar, Json<SignedOut>)> {
    if principal.kind != PrincipalKind::Staff {
        return Err(Error::Forbidden(
            "only a signed-in person has sessions; a service token has none".into(),
        ));
    }
    let sessions = state.access.end_all_sessions(&principal.name).await?;
    state.audit.record(
        AuditEvent::new(state.access.now(), &principal.name, "sign_out_everywhere")
            .query(format!("sessions={sessions}"))
            .status(200),
    );
    Ok((jar.remove(removal(COOKIE)), Json(SignedOut { sessions })))
}

/// Who is signed in, with the CSRF token the page must send back.
#[utoipa::path(
    get,
    path = "/api/v1/auth/session",
    tag = "auth",
    security(("session" = ["viewer"]), ("bearer" = ["viewer"])),
    responses(
        (status = 200, description = "The caller", body = SessionResponse),
        (status = 401, description = "Not signed in", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_session(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    jar: CookieJar,
) -> Result<Json<SessionResponse>> {
    let session = match (principal.kind, jar.get(COOKIE)) {
        (PrincipalKind::Staff, Some(cookie)) => state.access.session(cookie.value()).await?,
        _ => None,
    };
    Ok(Json(SessionResponse {
        principal: principal.name.clone(),
        display_name: principal.display_name.clone(),
        role: principal.role,
        kind: principal.kind,
        csrf_token: session.as_ref().map(|s| s.csrf_token.clone()),
        expires_at: session.as_ref().map(|s| s.expires_at),
        person_id: principal.person_id,
        open: principal.kind == PrincipalKind::Open,
        peers: state.federation.names(),
    }))
}

/// How one can sign in here.
#[utoipa::path(
    get,
    path = "/api/v1/auth/methods",
    tag = "auth",
    security(()),
    responses(
        (status = 200, description = "Sign-in methods", body = SignInMethods),
        (status = 404, description = "Never: documented for symmetry", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_methods(State(state): State<AppState>) -> Json<SignInMethods> {
    Json(state.access.methods())
}

/// Single sign-on: redirects to the OpenID Connect provider (authorization code + PKCE).
#[utoipa::path(
    get,
    path = "/api/v1/auth/oidc/login",
    tag = "auth",
    security(()),
    responses(
        (status = 303, description = "To the provider's sign-in page"),
        (status = 404, description = "Single sign-on is not configured", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 503, description = "The provider cannot be reached", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn oidc_login(
    State(state): State<AppState>,
    jar: CookieJar,
) -> Result<(CookieJar, Redirect)> {
    let oidc = state.access.oidc.as_ref().ok_or(Error::NotFound {
        what: "single sign-on",
    })?;
    let (url, csrf_state) = oidc.begin(&state.pool, state.access.now()).await?;
    let cookie = Cookie::build((OIDC_STATE_COOKIE, csrf_state))
        .path("/api/v1/auth/oidc")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.access.secure_cookies())
        .build();
    Ok((jar.add(cookie), Redirect::to(&url)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    /// Set by the provider when sign-in failed there.
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// Where the provider sends people back: checks the state against the browser's cookie,
/// exchanges the code, verifies the ID token, starts a session and goes to the console.
#[utoipa::path(
    get,
    path = "/api/v1/auth/oidc/callback",
    tag = "auth",
    params(CallbackParams),
    security(()),
    responses(
        (status = 303, description = "Signed in: to the console"),
        (status = 400, description = "No code or state", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Sign-in refused", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Single sign-on is not configured", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn oidc_callback(
    State(state): State<AppState>,
    jar: CookieJar,
    ClientAddr(address): ClientAddr,
    params: std::result::Result<Query<CallbackParams>, QueryRejection>,
) -> Result<(CookieJar, Redirect)> {
    let oidc = state.access.oidc.as_ref().ok_or(Error::NotFound {
        what: "single sign-on",
    })?;
    let Query(params) = params.map_err(|e| Error::invalid("query", e.body_text()))?;
    let fail = |why: String| {
        state.audit.record(
            AuditEvent::new(state.access.now(), "anonymous:oidc", "sign_in_failed")
                .query(why.clone())
                .status(401)
                .address(address.map(|a| a.ip().to_string())),
        );
        Error::Unauthorized(why)
    };
    if let Some(error) = params.error {
        return Err(fail(format!(
            "the provider refused the sign-in: {error} {}",
            params.error_description.unwrap_or_default()
        )));
    }
    let (Some(code), Some(csrf_state)) = (params.code, params.state) else {
        return Err(Error::invalid(
            "code",
            "the provider sent no code and state",
        ));
    };
    if jar.get(OIDC_STATE_COOKIE).map(|c| c.value()) != Some(csrf_state.as_str()) {
        return Err(fail("this sign-in was not started in this browser".into()));
    }
    let who = match oidc
        .finish(&state.pool, &code, &csrf_state, state.access.now())
        .await
    {
        Ok(who) => who,
        Err(Error::Unauthorized(why)) => return Err(fail(why)),
        Err(e) => return Err(e),
    };
    let jar = jar.remove(
        Cookie::build((OIDC_STATE_COOKIE, ""))
            .path("/api/v1/auth/oidc")
            .build(),
    );
    let (jar, _) = start_session(&state, jar, &who, address).await?;
    Ok((jar, Redirect::to("/")))
}
