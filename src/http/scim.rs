//! `/scim/v2`: the shared directory as a read-only SCIM 2.0 service provider (RFC 7643/7644)
//! for partners' identity tools. The same policy as `/shared/v1` (and the same ids): scope and
//! consent inside the search, fields projected, people out of scope absent from results and
//! from `totalResults`. Partners search, they do not list: `GET /Users` needs a filter, whose
//! values are at least `[partners] min_query_chars` long, and answers at most
//! `[partners] max_results` people. Writes are methods these paths do not have: 405, as a
//! SCIM error.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::ReturnedPeople;
use super::AppState;
use crate::access::partners::Partner;
use crate::access::{PersonField, Principal};
use crate::domain::{PersonSummary, PhoneKind};
use crate::search::query::Filters;
use crate::search::SearchRequest;

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
const CONTENT_TYPE: &str = "application/scim+json";

pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(list_users))
        .routes(routes!(search_users))
        .routes(routes!(get_user))
        .routes(routes!(service_provider_config))
        .routes(routes!(resource_types))
        .routes(routes!(resource_type))
        .routes(routes!(schemas))
        .routes(routes!(schema))
}

/// A SCIM response: `application/scim+json`.
fn scim(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        body.to_string(),
    )
        .into_response()
}

/// A SCIM error (RFC 7644 §3.12).
pub fn error(status: StatusCode, scim_type: Option<&str>, detail: &str) -> Response {
    let mut body = json!({
        "schemas": [ERROR],
        "status": status.as_u16().to_string(),
        "detail": detail,
    });
    if let Some(t) = scim_type {
        body["scimType"] = json!(t);
    }
    scim(status, body)
}

/// Answers every other refusal on SCIM paths (the guard's 401, 403, 405, 429, 503 as
/// problem+json) as SCIM errors, which is what SCIM clients read; headers such as
/// `Retry-After` and `Allow` stay.
pub async fn errors_as_scim(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let scim_path = request.uri().path().starts_with("/scim/v2");
    // The service is read-only: a write is refused (405) without its body being read, and a
    // connection whose request body was not read to the end is closed after the answer, which a
    // client reusing it may find closed under its next request. Read small bodies first.
    let request = if scim_path && request.method() != axum::http::Method::GET {
        let (parts, body) = request.into_parts();
        match axum::body::to_bytes(body, 64 * 1024).await {
            Ok(bytes) => axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes)),
            Err(_) => {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    None,
                    "request body too large",
                )
            }
        }
    } else {
        request
    };
    let response = next.run(request).await;
    let already = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(CONTENT_TYPE.as_bytes()));
    if !scim_path
        || already
        || !(response.status().is_client_error() || response.status().is_server_error())
    {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let detail = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v["detail"].as_str().map(str::to_string))
        .unwrap_or_else(|| {
            parts
                .status
                .canonical_reason()
                .unwrap_or("refused")
                .to_string()
        });
    let rewritten = error(parts.status, None, &detail);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(CONTENT_TYPE),
    );
    let (_, body) = rewritten.into_parts();
    Response::from_parts(parts, body)
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, None, "no such resource")
}

/// Where this server is reached, for `meta.location`: `public_url`, else the request's Host.
fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.access.config.public_url {
        return format!("{}/scim/v2", url.trim_end_matches('/'));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if state.access.secure_cookies() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}/scim/v2")
}

/// A person (projected by the partner's policy) as a SCIM User.
fn user(p: &PersonSummary, partner: &Partner, policy_email: bool, base: &str) -> Value {
    let id = partner.public_id(p.id).to_string();
    // The user name is the work email where the partner may see it, else their id for them.
    let user_name = p
        .emails
        .first()
        .filter(|_| policy_email)
        .cloned()
        .unwrap_or_else(|| id.clone());
    let mut u = Map::new();
    u.insert("schemas".into(), json!([USER, ENTERPRISE]));
    u.insert("id".into(), json!(id));
    u.insert("userName".into(), json!(user_name));
    u.insert("displayName".into(), json!(p.display_name));
    let mut name = Map::new();
    name.insert("formatted".into(), json!(p.display_name));
    if let Some(f) = &p.family_name {
        name.insert("familyName".into(), json!(f));
    }
    if let Some(g) = &p.given_name {
        name.insert("givenName".into(), json!(g));
    }
    u.insert("name".into(), Value::Object(name));
    if let Some(nick) = p.nicknames.first() {
        u.insert("nickName".into(), json!(nick));
    }
    if let Some(t) = &p.title {
        u.insert("title".into(), json!(t));
    }
    u.insert("active".into(), json!(true));
    if !p.emails.is_empty() {
        let emails: Vec<Value> = p
            .emails
            .iter()
            .enumerate()
            .map(|(i, e)| json!({"value": e, "type": "work", "primary": i == 0}))
            .collect();
        u.insert("emails".into(), json!(emails));
    }
    let phones: Vec<Value> = p
        .phones
        .iter()
        .filter_map(|phone| {
            let value = crate::addressbook::entry::dialable(phone);
            let kind = match phone.kind {
                PhoneKind::Work | PhoneKind::Extension => "work",
                PhoneKind::Mobile => "mobile",
                PhoneKind::Home => "home",
                PhoneKind::Fax => "fax",
            };
            (!value.is_empty()).then(|| json!({"value": value, "type": kind}))
        })
        .collect();
    if !phones.is_empty() {
        u.insert("phoneNumbers".into(), json!(phones));
    }
    if !p.im.is_empty() {
        let ims: Vec<Value> =
            p.im.iter()
                .map(|handle| {
                    let kind = handle.split(':').next().unwrap_or("other");
                    json!({"value": handle, "type": kind})
                })
                .collect();
        u.insert("ims".into(), json!(ims));
    }
    if let Some(location) = &p.location {
        u.insert(
            "addresses".into(),
            json!([{"type": "work", "locality": location, "formatted": location}]),
        );
    }
    let mut enterprise = Map::new();
    if let Some(d) = &p.department {
        enterprise.insert("department".into(), json!(d));
    }
    if let Some(o) = &p.org_unit {
        enterprise.insert("division".into(), json!(o));
    }
    if !enterprise.is_empty() {
        u.insert(ENTERPRISE.into(), Value::Object(enterprise));
    }
    u.insert(
        "meta".into(),
        json!({"resourceType": "User", "location": format!("{base}/Users/{id}")}),
    );
    Value::Object(u)
}

// ---- filters (RFC 7644 §3.4.2.2) ----

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Compare(String, Op, Value),
    Present(String),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Lt,
    Ge,
    Le,
}

/// Longest filter read, in characters, and deepest nesting of parentheses and `not`.
const MAX_FILTER_CHARS: usize = 1024;
const MAX_DEPTH: usize = 16;

/// Reads a filter; the error says what is wrong and where.
pub fn parse_filter(text: &str) -> std::result::Result<Filter, String> {
    if text.chars().count() > MAX_FILTER_CHARS {
        return Err(format!("longer than {MAX_FILTER_CHARS} characters"));
    }
    let tokens = tokenize(text)?;
    // Nesting is recursion: bounded before any is done.
    let mut depth = 0usize;
    for token in &tokens {
        match token {
            Token::Open => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(format!("nested deeper than {MAX_DEPTH}"));
                }
            }
            Token::Close => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    let nots = tokens
        .iter()
        .filter(|t| matches!(t, Token::Word(w) if w.eq_ignore_ascii_case("not")))
        .count();
    if nots > MAX_DEPTH {
        return Err(format!("more than {MAX_DEPTH} `not`s"));
    }
    let mut pos = 0;
    let filter = parse_or(&tokens, &mut pos)?;
    if pos != tokens.len() {
        return Err(format!("unexpected `{}`", tokens[pos].text()));
    }
    Ok(filter)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Open,
    Close,
}

impl Token {
    fn text(&self) -> String {
        match self {
            Token::Word(w) => w.clone(),
            Token::Str(s) => format!("\"{s}\""),
            Token::Open => "(".into(),
            Token::Close => ")".into(),
        }
    }
}

fn tokenize(text: &str) -> std::result::Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                tokens.push(Token::Open);
            }
            ')' => {
                chars.next();
                tokens.push(Token::Close);
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('\\') => match chars.next() {
                            Some(e) => s.push(e),
                            None => return Err("a string ends in a backslash".into()),
                        },
                        Some('"') => break,
                        Some(c) => s.push(c),
                        None => return Err("a string is not closed".into()),
                    }
                }
                tokens.push(Token::Str(s));
            }
            _ => {
                let mut w = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '(' || c == ')' || c == '"' {
                        break;
                    }
                    w.push(c);
                    chars.next();
                }
                tokens.push(Token::Word(w));
            }
        }
    }
    if tokens.is_empty() {
        return Err("the filter is empty".into());
    }
    Ok(tokens)
}

fn keyword(tokens: &[Token], pos: usize, word: &str) -> bool {
    matches!(tokens.get(pos), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
}

fn parse_or(tokens: &[Token], pos: &mut usize) -> std::result::Result<Filter, String> {
    let mut left = parse_and(tokens, pos)?;
    while keyword(tokens, *pos, "or") {
        *pos += 1;
        let right = parse_and(tokens, pos)?;
        left = Filter::Or(Box::new(left), Box::new(right));
    }
    Ok(left)
}

fn parse_and(tokens: &[Token], pos: &mut usize) -> std::result::Result<Filter, String> {
    let mut left = parse_not(tokens, pos)?;
    while keyword(tokens, *pos, "and") {
        *pos += 1;
        let right = parse_not(tokens, pos)?;
        left = Filter::And(Box::new(left), Box::new(right));
    }
    Ok(left)
}

fn parse_not(tokens: &[Token], pos: &mut usize) -> std::result::Result<Filter, String> {
    if keyword(tokens, *pos, "not") {
        *pos += 1;
        return Ok(Filter::Not(Box::new(parse_atom(tokens, pos)?)));
    }
    parse_atom(tokens, pos)
}

fn parse_atom(tokens: &[Token], pos: &mut usize) -> std::result::Result<Filter, String> {
    match tokens.get(*pos) {
        Some(Token::Open) => {
            *pos += 1;
            let inner = parse_or(tokens, pos)?;
            if tokens.get(*pos) != Some(&Token::Close) {
                return Err("a `(` is not closed".into());
            }
            *pos += 1;
            Ok(inner)
        }
        Some(Token::Word(path)) => {
            *pos += 1;
            let op = match tokens.get(*pos) {
                Some(Token::Word(op)) => op.to_ascii_lowercase(),
                other => {
                    return Err(format!(
                        "`{path}` needs an operator, not {}",
                        other.map_or("the end".into(), Token::text)
                    ))
                }
            };
            *pos += 1;
            let op = match op.as_str() {
                "pr" => return Ok(Filter::Present(path.clone())),
                "eq" => Op::Eq,
                "ne" => Op::Ne,
                "co" => Op::Co,
                "sw" => Op::Sw,
                "ew" => Op::Ew,
                "gt" => Op::Gt,
                "lt" => Op::Lt,
                "ge" => Op::Ge,
                "le" => Op::Le,
                other => return Err(format!("`{other}` is not an operator")),
            };
            let value = match tokens.get(*pos) {
                Some(Token::Str(s)) => json!(s),
                Some(Token::Word(w)) if w == "true" => json!(true),
                Some(Token::Word(w)) if w == "false" => json!(false),
                Some(Token::Word(w)) if w == "null" => Value::Null,
                Some(Token::Word(w)) => match w.parse::<f64>() {
                    Ok(n) => json!(n),
                    Err(_) => return Err(format!("`{w}` is not a value (quote strings)")),
                },
                _ => return Err(format!("`{path} {op:?}` needs a value")),
            };
            *pos += 1;
            Ok(Filter::Compare(path.clone(), op, value))
        }
        Some(other) => Err(format!("unexpected `{}`", other.text())),
        None => Err("the filter ends too soon".into()),
    }
}

/// The values of an attribute path in a User (`name.familyName`, `emails.value`, `emails`,
/// the enterprise extension's URN-qualified names).
fn values_at<'a>(user: &'a Value, path: &str) -> Vec<&'a Value> {
    let lower = path.to_ascii_lowercase();
    let enterprise = format!("{}:", ENTERPRISE.to_ascii_lowercase());
    let (root, rest): (&Value, &str) = match lower.strip_prefix(&enterprise) {
        Some(rest) => (user.get(ENTERPRISE).unwrap_or(&Value::Null), rest),
        None => (
            user,
            lower
                .strip_prefix(&format!("{}:", USER.to_ascii_lowercase()))
                .unwrap_or(&lower),
        ),
    };
    let mut parts = rest.split('.');
    let first = parts.next().unwrap_or_default();
    let sub = parts.next();
    let get = |v: &'a Value, name: &str| -> Option<&'a Value> {
        v.as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let Some(top) = get(root, first) else {
        return Vec::new();
    };
    let items: Vec<&Value> = match top {
        Value::Array(a) => a.iter().collect(),
        v => vec![v],
    };
    items
        .into_iter()
        .filter_map(|item| match (sub, item) {
            (Some(s), v) => get(v, s),
            (None, Value::Object(_)) => get(item, "value"),
            (None, v) => Some(v),
        })
        .collect()
}

fn compare(value: &Value, op: Op, wanted: &Value, case_exact: bool) -> bool {
    match (value, wanted) {
        (Value::String(v), Value::String(w)) => {
            let (v, w) = if case_exact {
                (v.clone(), w.clone())
            } else {
                (v.to_lowercase(), w.to_lowercase())
            };
            match op {
                Op::Eq => v == w,
                Op::Ne => v != w,
                Op::Co => v.contains(&w),
                Op::Sw => v.starts_with(&w),
                Op::Ew => v.ends_with(&w),
                Op::Gt => v > w,
                Op::Lt => v < w,
                Op::Ge => v >= w,
                Op::Le => v <= w,
            }
        }
        (Value::Bool(v), Value::Bool(w)) => match op {
            Op::Eq => v == w,
            Op::Ne => v != w,
            _ => false,
        },
        _ => false,
    }
}

/// Whether a User matches.
pub fn matches(filter: &Filter, user: &Value) -> bool {
    match filter {
        Filter::And(a, b) => matches(a, user) && matches(b, user),
        Filter::Or(a, b) => matches(a, user) || matches(b, user),
        Filter::Not(a) => !matches(a, user),
        // A complex attribute (`name`) is present when it is there at all.
        Filter::Present(path)
            if !path.contains('.') && user.get(path.as_str()).is_some_and(Value::is_object) =>
        {
            true
        }
        Filter::Present(path) => values_at(user, path)
            .iter()
            .any(|v| !v.is_null() && v.as_str() != Some("")),
        Filter::Compare(path, Op::Ne, wanted) => !values_at(user, path)
            .iter()
            .any(|v| compare(v, Op::Eq, wanted, path.eq_ignore_ascii_case("id"))),
        Filter::Compare(path, op, wanted) => {
            let case_exact = path.eq_ignore_ascii_case("id");
            values_at(user, path)
                .iter()
                .any(|v| compare(v, *op, wanted, case_exact))
        }
    }
}

/// What to search for to find every User the filter can match, or `None` when the filter
/// could match anyone (`pr`, `ne`, `not`): then it is refused.
fn candidates(filter: &Filter) -> Option<Vec<String>> {
    match filter {
        Filter::Compare(_, Op::Eq | Op::Co | Op::Sw | Op::Ew, Value::String(s)) => {
            Some(vec![s.clone()])
        }
        Filter::And(a, b) => match (candidates(a), candidates(b)) {
            (Some(x), Some(y)) => Some(if x.len() <= y.len() { x } else { y }),
            (x, y) => x.or(y),
        },
        Filter::Or(a, b) => {
            let mut all = candidates(a)?;
            all.extend(candidates(b)?);
            all.dedup();
            Some(all)
        }
        _ => None,
    }
}

// ---- Users ----

/// Most values one filter may compare with (each is a search).
const MAX_CANDIDATES: usize = 10;

#[derive(Debug, Default, Deserialize, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    /// Required: `userName eq "jane@example.com"`, `name.familyName sw "Smi"`,
    /// `emails.value co "jane"`, combined with `and`/`or`.
    #[param(max_length = 1024)]
    pub filter: Option<String>,
    /// 1-based index of the first result (default 1).
    #[param(minimum = 1)]
    pub start_index: Option<i64>,
    /// Results per page (default and at most `[partners] max_results`).
    #[param(minimum = 0)]
    pub count: Option<i64>,
    /// Only these attributes (comma-separated), besides `id` and `schemas`.
    #[param(max_length = 1024)]
    pub attributes: Option<String>,
    /// Every attribute but these (comma-separated).
    #[param(max_length = 1024)]
    pub excluded_attributes: Option<String>,
}

/// The filtered Users, as a ListResponse.
async fn query_users(
    state: &AppState,
    principal: &Principal,
    partner: &Partner,
    headers: &HeaderMap,
    params: ListParams,
) -> std::result::Result<(ReturnedPeople, Value), Response> {
    let config = &state.access.partners;
    let bad = |t: &str, d: String| error(StatusCode::BAD_REQUEST, Some(t), &d);
    let Some(text) = params.filter.as_deref().filter(|f| !f.trim().is_empty()) else {
        return Err(bad(
            "tooMany",
            "partners search the directory, they do not list it: send a filter (userName eq \"…\", name.familyName sw \"…\")".into(),
        ));
    };
    let filter = parse_filter(text).map_err(|e| bad("invalidFilter", e))?;
    let Some(mut queries) = candidates(&filter) else {
        return Err(bad(
            "tooMany",
            "this filter could match everyone: compare an attribute with eq, sw, co or ew".into(),
        ));
    };
    let min = config.min_query_chars;
    if queries
        .iter()
        .any(|q| crate::access::partners::query_length(q) < min)
    {
        return Err(bad(
            "tooMany",
            format!("compare with values of at least {min} characters"),
        ));
    }
    queries.dedup();
    if queries.len() > MAX_CANDIDATES {
        return Err(bad(
            "tooMany",
            format!("at most {MAX_CANDIDATES} values in one filter"),
        ));
    }
    // Each value is a query, as on /shared/v1: counted for sweep detection.
    for q in &queries {
        state.access.note_partner_query(partner, q, "scim");
    }
    let cap = config.max_results;
    let base = base_url(state, headers);
    let policy = &principal.policy;
    let shows_email = policy.shows(PersonField::Email);
    let mut seen = HashSet::new();
    let mut found: Vec<(Uuid, Value)> = Vec::new();
    'queries: for q in queries {
        // A candidate page: what the search finds for the value, in scope (a filter inside
        // the search), then the filter decides exactly.
        let request = SearchRequest {
            q: q.replace('@', " "),
            limit: (cap * 4).max(50),
            offset: 0,
            filters: Filters {
                within: policy.within(),
                searchable: policy.searchable(),
                ..Filters::default()
            },
            near: None,
            facets: false,
        };
        let hits = state
            .index
            .search_with(&request)
            .map_err(IntoResponse::into_response)?
            .hits;
        for hit in hits {
            if !seen.insert(hit.id) {
                continue;
            }
            let Some(shown) = policy.summary(hit) else {
                continue;
            };
            let resource = user(&shown, partner, shows_email, &base);
            if matches(&filter, &resource) {
                found.push((shown.id, resource));
                if found.len() >= cap {
                    break 'queries;
                }
            }
        }
    }
    let total = found.len();
    let start = usize::try_from(params.start_index.unwrap_or(1).max(1) - 1).unwrap_or(0);
    let count = usize::try_from(params.count.unwrap_or(cap as i64).max(0)).unwrap_or(0);
    let page: Vec<(Uuid, Value)> = found.into_iter().skip(start).take(count).collect();
    let returned = ReturnedPeople(page.iter().map(|(id, _)| *id).collect());
    let resources: Vec<Value> = page
        .into_iter()
        .map(|(_, u)| {
            project(
                u,
                params.attributes.as_deref(),
                params.excluded_attributes.as_deref(),
            )
        })
        .collect();
    let mut body = json!({
        "schemas": [LIST],
        "totalResults": total,
        "startIndex": start + 1,
        "itemsPerPage": resources.len(),
    });
    if !resources.is_empty() {
        body["Resources"] = json!(resources);
    }
    Ok((returned, body))
}

/// `attributes` / `excludedAttributes` (RFC 7644 §3.4.2.5): `id` and `schemas` always stay.
fn project(user: Value, attributes: Option<&str>, excluded: Option<&str>) -> Value {
    let Value::Object(map) = user else {
        return user;
    };
    let names = |list: &str| -> Vec<String> {
        list.split(',')
            .map(|a| a.trim().to_ascii_lowercase())
            .filter(|a| !a.is_empty())
            .map(|a| {
                a.strip_prefix(&format!("{}:", USER.to_ascii_lowercase()))
                    .map(str::to_string)
                    .unwrap_or(a)
            })
            .collect()
    };
    let top = |a: &str| a.split('.').next().unwrap_or_default().to_string();
    let always = |k: &str| k == "id" || k == "schemas";
    let kept: Map<String, Value> = match (attributes, excluded) {
        (Some(list), _) if !list.trim().is_empty() => {
            let wanted = names(list);
            map.into_iter()
                .filter(|(k, _)| {
                    let k = k.to_ascii_lowercase();
                    always(&k)
                        || wanted
                            .iter()
                            .any(|w| top(w) == k || w.starts_with(&format!("{k}:")))
                })
                .collect()
        }
        (_, Some(list)) if !list.trim().is_empty() => {
            let unwanted = names(list);
            map.into_iter()
                .filter(|(k, _)| {
                    let k = k.to_ascii_lowercase();
                    always(&k) || !unwanted.contains(&k)
                })
                .collect()
        }
        _ => map,
    };
    Value::Object(kept)
}

/// Search Users (a filter is required).
#[utoipa::path(
    get,
    path = "/scim/v2/Users",
    tag = "scim",
    params(ListParams),
    security(("partner" = [])),
    responses(
        (status = 200, description = "A SCIM ListResponse of the matching Users (at most the cap)", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 400, description = "No filter, a filter that could match everyone, or an invalid one (SCIM error `tooMany`, `invalidFilter`)", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 403, description = "Not a partner key (SCIM error)", body = serde_json::Value, content_type = "application/scim+json"),
    )
)]
pub async fn list_users(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(partner): Extension<Arc<Partner>>,
    headers: HeaderMap,
    params: std::result::Result<Query<ListParams>, QueryRejection>,
) -> Response {
    let params = match params {
        Ok(Query(p)) => p,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                Some("invalidValue"),
                &e.body_text(),
            )
        }
    };
    match query_users(&state, &principal, &partner, &headers, params).await {
        Ok((returned, body)) => (Extension(returned), scim(StatusCode::OK, body)).into_response(),
        Err(response) => response,
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchBody {
    #[serde(default)]
    pub schemas: Vec<String>,
    pub filter: Option<String>,
    pub start_index: Option<i64>,
    pub count: Option<i64>,
    #[serde(default)]
    pub attributes: Vec<String>,
    #[serde(default)]
    pub excluded_attributes: Vec<String>,
}

/// Search Users with a SearchRequest body (RFC 7644 §3.4.3).
#[utoipa::path(
    post,
    path = "/scim/v2/Users/.search",
    tag = "scim",
    request_body(content = SearchBody, content_type = "application/scim+json"),
    security(("partner" = [])),
    responses(
        (status = 200, description = "A SCIM ListResponse", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 400, description = "No filter, or an invalid one", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 403, description = "Not a partner key (SCIM error)", body = serde_json::Value, content_type = "application/scim+json"),
    )
)]
pub async fn search_users(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(partner): Extension<Arc<Partner>>,
    headers: HeaderMap,
    body: std::result::Result<Json<SearchBody>, JsonRejection>,
) -> Response {
    let body = match body {
        Ok(Json(b)) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                Some("invalidSyntax"),
                &e.body_text(),
            )
        }
    };
    let params = ListParams {
        filter: body.filter,
        start_index: body.start_index,
        count: body.count,
        attributes: (!body.attributes.is_empty()).then(|| body.attributes.join(",")),
        excluded_attributes: (!body.excluded_attributes.is_empty())
            .then(|| body.excluded_attributes.join(",")),
    };
    match query_users(&state, &principal, &partner, &headers, params).await {
        Ok((returned, body)) => (Extension(returned), scim(StatusCode::OK, body)).into_response(),
        Err(response) => response,
    }
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct AttributeParams {
    #[param(max_length = 1024)]
    pub attributes: Option<String>,
    #[param(max_length = 1024)]
    pub excluded_attributes: Option<String>,
}

/// One User, by the partner's id for them; out of scope answers as unknown.
#[utoipa::path(
    get,
    path = "/scim/v2/Users/{id}",
    tag = "scim",
    params(("id" = String, Path, max_length = 64), AttributeParams),
    security(("partner" = [])),
    responses(
        (status = 200, description = "The User", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 403, description = "Not a partner key (SCIM error)", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 404, description = "No such User (SCIM error)", body = serde_json::Value, content_type = "application/scim+json"),
    )
)]
pub async fn get_user(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(partner): Extension<Arc<Partner>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    params: std::result::Result<Query<AttributeParams>, QueryRejection>,
) -> Response {
    let params = params.map(|Query(p)| p).unwrap_or_default();
    // Anything that is not one of the partner's ids is, to them, nobody.
    let Ok(public) = Uuid::parse_str(&id) else {
        return not_found();
    };
    let ours = partner.our_id(public);
    let person = match crate::db::people::get_person(&state.pool, ours).await {
        Ok(Some(p)) => p,
        Ok(None) => return not_found(),
        Err(e) => return e.into_response(),
    };
    let Some(mut shown) = principal.policy.person(person) else {
        return not_found();
    };
    shown.presence = None;
    let summary = PersonSummary::from(&shown);
    let base = base_url(&state, &headers);
    let resource = user(
        &summary,
        &partner,
        principal.policy.shows(PersonField::Email),
        &base,
    );
    let body = project(
        resource,
        params.attributes.as_deref(),
        params.excluded_attributes.as_deref(),
    );
    (
        Extension(ReturnedPeople(vec![shown.id])),
        scim(StatusCode::OK, body),
    )
        .into_response()
}

// ---- discovery ----

/// What this service provider supports.
#[utoipa::path(
    get,
    path = "/scim/v2/ServiceProviderConfig",
    tag = "scim",
    security(("partner" = [])),
    responses(
        (status = 200, description = "The ServiceProviderConfig", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 403, description = "Not a partner key (SCIM error)", body = serde_json::Value, content_type = "application/scim+json"),
    )
)]
pub async fn service_provider_config(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Response {
    let base = base_url(&state, &headers);
    scim(
        StatusCode::OK,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
            "documentationUri": format!("{}/api/v1/openapi.json", base.trim_end_matches("/scim/v2")),
            "patch": {"supported": false},
            "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
            "filter": {"supported": true, "maxResults": state.access.partners.max_results},
            "changePassword": {"supported": false},
            "sort": {"supported": false},
            "etag": {"supported": false},
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "Partner key",
                "description": "The key from `switchboard partner add`, as `Authorization: Bearer <key>`",
                "primary": true
            }],
            "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")}
        }),
    )
}

fn user_resource_type(base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": "User",
        "name": "User",
        "description": "A person of the directory, as your agreement shows them",
        "endpoint": "/Users",
        "schema": USER,
        "schemaExtensions": [{"schema": ENTERPRISE, "required": false}],
        "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User")}
    })
}

/// The resource types: Users.
#[utoipa::path(
    get,
    path = "/scim/v2/ResourceTypes",
    tag = "scim",
    security(("partner" = [])),
    responses(
        (status = 200, description = "A ListResponse of ResourceTypes", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 403, description = "Not a partner key (SCIM error)", body = serde_json::Value, content_type = "application/scim+json"),
    )
)]
pub async fn resource_types(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let base = base_url(&state, &headers);
    scim(
        StatusCode::OK,
        json!({"schemas": [LIST], "totalResults": 1, "startIndex": 1, "itemsPerPage": 1,
               "Resources": [user_resource_type(&base)]}),
    )
}

/// One resource type.
#[utoipa::path(
    get,
    path = "/scim/v2/ResourceTypes/{id}",
    tag = "scim",
    params(("id" = String, Path, max_length = 128)),
    security(("partner" = [])),
    responses(
        (status = 200, description = "The ResourceType", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 403, description = "Not a partner key (SCIM error)", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 404, description = "No such resource type", body = serde_json::Value, content_type = "application/scim+json"),
    )
)]
pub async fn resource_type(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if id != "User" {
        return not_found();
    }
    scim(
        StatusCode::OK,
        user_resource_type(&base_url(&state, &headers)),
    )
}

fn attribute(name: &str, kind: &str, description: &str) -> Value {
    json!({
        "name": name, "type": kind, "multiValued": false, "description": description,
        "required": false, "caseExact": false, "mutability": "readOnly",
        "returned": "default", "uniqueness": "none"
    })
}

fn multi(name: &str, description: &str, sub: Vec<Value>) -> Value {
    json!({
        "name": name, "type": "complex", "multiValued": true, "description": description,
        "required": false, "mutability": "readOnly", "returned": "default",
        "uniqueness": "none", "subAttributes": sub
    })
}

fn schema_documents(base: &str) -> Vec<Value> {
    let value = |d: &str| attribute("value", "string", d);
    let kind = |d: &str| attribute("type", "string", d);
    let mut id = attribute("id", "string", "Your id for the person");
    id["caseExact"] = json!(true);
    id["returned"] = json!("always");
    id["uniqueness"] = json!("server");
    let mut user_name = attribute(
        "userName",
        "string",
        "The work email, or your id for them when emails are not shared",
    );
    user_name["required"] = json!(true);
    user_name["uniqueness"] = json!("server");
    let name = json!({
        "name": "name", "type": "complex", "multiValued": false, "description": "Their name",
        "required": false, "mutability": "readOnly", "returned": "default", "uniqueness": "none",
        "subAttributes": [
            attribute("formatted", "string", "The full name"),
            attribute("familyName", "string", "Family name"),
            attribute("givenName", "string", "Given name"),
        ]
    });
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": USER,
        "name": "User",
        "description": "A person of the directory",
        "attributes": [
            id,
            user_name,
            name,
            attribute("displayName", "string", "The name to show"),
            attribute("nickName", "string", "The name they go by"),
            attribute("title", "string", "Job title"),
            attribute("active", "boolean", "Always true: removed people are not served"),
            multi("emails", "Email addresses", vec![
                value("The address"),
                kind("work"),
                attribute("primary", "boolean", "The first address"),
            ]),
            multi("phoneNumbers", "Phone numbers, dialable", vec![
                value("The number"),
                kind("work, mobile, fax"),
            ]),
            multi("ims", "Instant messaging handles as URIs", vec![
                value("The handle"),
                kind("xmpp, matrix, sip, msteams, slack"),
            ]),
            multi("addresses", "The office", vec![
                kind("work"),
                attribute("locality", "string", "The office location"),
                attribute("formatted", "string", "The office location"),
            ]),
        ],
        "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{USER}")}
    });
    let enterprise = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": ENTERPRISE,
        "name": "EnterpriseUser",
        "description": "Where in the company they work",
        "attributes": [
            attribute("department", "string", "Department"),
            attribute("division", "string", "Organisation unit"),
        ],
        "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{ENTERPRISE}")}
    });
    vec![user, enterprise]
}

/// The schemas of Users.
#[utoipa::path(
    get,
    path = "/scim/v2/Schemas",
    tag = "scim",
    security(("partner" = [])),
    responses(
        (status = 200, description = "A ListResponse of Schemas", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 403, description = "Not a partner key (SCIM error)", body = serde_json::Value, content_type = "application/scim+json"),
    )
)]
pub async fn schemas(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let documents = schema_documents(&base_url(&state, &headers));
    scim(
        StatusCode::OK,
        json!({"schemas": [LIST], "totalResults": documents.len(), "startIndex": 1,
               "itemsPerPage": documents.len(), "Resources": documents}),
    )
}

/// One schema, by its URN.
#[utoipa::path(
    get,
    path = "/scim/v2/Schemas/{id}",
    tag = "scim",
    params(("id" = String, Path, max_length = 128)),
    security(("partner" = [])),
    responses(
        (status = 200, description = "The Schema", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 403, description = "Not a partner key (SCIM error)", body = serde_json::Value, content_type = "application/scim+json"),
        (status = 404, description = "No such schema", body = serde_json::Value, content_type = "application/scim+json"),
    )
)]
pub async fn schema(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    schema_documents(&base_url(&state, &headers))
        .into_iter()
        .find(|d| d["id"] == id.as_str())
        .map_or_else(not_found, |d| scim(StatusCode::OK, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jane() -> Value {
        json!({
            "schemas": [USER], "id": "abc", "userName": "jane.smith@example.com",
            "name": {"familyName": "Smith", "givenName": "Jane"},
            "emails": [{"value": "jane.smith@example.com", "type": "work"}],
            ENTERPRISE: {"department": "Sales"}
        })
    }

    #[test]
    fn filters_parse_and_match_as_rfc_7644_says() {
        let f = parse_filter(r#"userName eq "JANE.smith@example.com""#).expect("parse");
        assert!(matches(&f, &jane()), "case-insensitive");
        let f = parse_filter(r#"name.familyName sw "smi" and emails.value co "example""#)
            .expect("parse");
        assert!(matches(&f, &jane()));
        let f = parse_filter(r#"(name.familyName sw "jo") or (emails co "smith")"#).expect("parse");
        assert!(matches(&f, &jane()));
        let f = parse_filter(&format!("{ENTERPRISE}:department eq \"Sales\"")).expect("parse");
        assert!(matches(&f, &jane()));
        assert!(
            matches(&parse_filter("name pr").expect("parse"), &jane()),
            "complex: present"
        );
        assert!(matches(&parse_filter("emails pr").expect("parse"), &jane()));
        assert!(!matches(&parse_filter("title pr").expect("parse"), &jane()));
        let f = parse_filter(r#"externalId eq "42""#).expect("parse");
        assert!(!matches(&f, &jane()), "no externalId");
        assert!(matches(
            &parse_filter("title pr")
                .map(|f| Filter::Not(Box::new(f)))
                .expect("p"),
            &jane()
        ));
        for bad in [
            "",
            "userName",
            "userName eq",
            "userName zz \"x\"",
            "(userName eq \"x\"",
            "userName eq jane",
        ] {
            assert!(parse_filter(bad).is_err(), "{bad}");
        }
        // Deep nesting is refused before any recursion.
        let deep = format!(
            "{}userName eq \"x\"{}",
            "(".repeat(60_000),
            ")".repeat(60_000)
        );
        assert!(parse_filter(&deep).is_err());
        let nested = format!("{}userName eq \"x\"{}", "(".repeat(10), ")".repeat(10));
        assert!(parse_filter(&nested).is_ok());
        assert!(parse_filter(&"not ".repeat(100)).is_err());
    }

    #[test]
    fn only_filters_that_name_values_find_candidates() {
        let some = |t: &str| candidates(&parse_filter(t).expect("parse"));
        assert_eq!(
            some(r#"userName eq "jane""#),
            Some(vec!["jane".to_string()])
        );
        assert_eq!(
            some(r#"userName eq "jane" or name.familyName sw "smi""#),
            Some(vec!["jane".to_string(), "smi".to_string()])
        );
        assert_eq!(
            some(r#"title pr and userName eq "jane""#),
            Some(vec!["jane".to_string()])
        );
        assert_eq!(some("title pr"), None, "could be everyone");
        assert_eq!(some(r#"userName ne "jane""#), None);
        assert_eq!(some(r#"title pr or userName eq "jane""#), None);
    }

    #[test]
    fn attributes_keep_id_and_schemas() {
        let only = project(jane(), Some("userName"), None);
        let keys: Vec<&String> = only.as_object().expect("o").keys().collect();
        assert_eq!(keys.len(), 3, "{keys:?}");
        let without = project(jane(), None, Some("emails,name"));
        assert!(without.get("emails").is_none() && without.get("name").is_none());
        assert!(without.get("userName").is_some());
        let sub = project(jane(), Some("name.familyName"), None);
        assert!(sub.get("name").is_some());
    }
}
