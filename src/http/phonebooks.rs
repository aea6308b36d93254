//! `/phonebooks/{vendor}`: remote XML phone books for desk phones (Cisco, Yealink, Snom, Polycom,
//! Grandstream), from the same search and through the same policy as the API. Phones
//! authenticate with HTTP Basic as a device (`switchboard device add`).

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Extension;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::ReturnedPeople;
use super::AppState;
use crate::access::Principal;
use crate::addressbook::phonebook::{self, Vendor};
use crate::domain::Person;
use crate::error::{Error, Result};
use crate::search::query::Filters;
use crate::search::SearchRequest;

pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new().routes(routes!(get_phonebook, post_phonebook))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PhonebookParams {
    /// A name or number as typed on the phone (as the search API takes it); empty lists
    /// everyone alphabetically, a page at a time.
    #[param(max_length = 256)]
    pub q: Option<String>,
    /// The page, from 1 (Cisco: 32 entries a page, others 500).
    #[param(minimum = 1, maximum = 10000)]
    pub page: Option<usize>,
}

/// A remote phone book in a desk phone vendor's XML format.
#[utoipa::path(
    get,
    path = "/phonebooks/{vendor}",
    tag = "address books",
    params(
        ("vendor" = inline(Vendor), Path, description = "The phone's format"),
        PhonebookParams,
    ),
    security(("basic" = ["viewer"]), ("bearer" = ["viewer"]), ("session" = ["viewer"])),
    responses(
        (status = 200, description = "The phone book page, in the vendor's XML", content_type = "text/xml"),
        (status = 400, description = "Invalid parameter", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong credentials", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_phonebook(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: axum::http::HeaderMap,
    vendor: std::result::Result<Path<Vendor>, PathRejection>,
    params: std::result::Result<Query<PhonebookParams>, QueryRejection>,
) -> Result<impl IntoResponse> {
    phonebook(state, principal, host_of(&headers), vendor, params).await
}

/// The same phone book, for phones that fetch it with POST (Snom's remote XML directory does).
#[utoipa::path(
    post,
    path = "/phonebooks/{vendor}",
    tag = "address books",
    params(
        ("vendor" = inline(Vendor), Path, description = "The phone's format"),
        PhonebookParams,
    ),
    security(("basic" = ["viewer"]), ("bearer" = ["viewer"]), ("session" = ["viewer"])),
    responses(
        (status = 200, description = "The phone book page, in the vendor's XML", content_type = "text/xml"),
        (status = 400, description = "Invalid parameter", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or wrong credentials", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing CSRF token (with a session cookie)", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn post_phonebook(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: axum::http::HeaderMap,
    vendor: std::result::Result<Path<Vendor>, PathRejection>,
    params: std::result::Result<Query<PhonebookParams>, QueryRejection>,
) -> Result<impl IntoResponse> {
    phonebook(state, principal, host_of(&headers), vendor, params).await
}

/// The address the phone used (the server checks it against its public names).
fn host_of(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && !h.contains(['/', ' ', '\\']))
        .map(str::to_string)
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

async fn phonebook(
    state: AppState,
    principal: Principal,
    host: Option<String>,
    vendor: std::result::Result<Path<Vendor>, PathRejection>,
    params: std::result::Result<Query<PhonebookParams>, QueryRejection>,
) -> Result<impl IntoResponse> {
    let Path(vendor) = vendor.map_err(|_| {
        Error::invalid(
            "vendor",
            "one of cisco, yealink, snom, polycom, grandstream",
        )
    })?;
    let Query(params) = params.map_err(|e| Error::invalid("query", e.body_text()))?;
    let q = params.q.unwrap_or_default();
    if q.chars().count() > super::people::MAX_QUERY_LEN {
        return Err(Error::invalid("q", "longer than 256 characters"));
    }
    let size = vendor.page_size();
    let page = params.page.unwrap_or(1);
    if !(1..=10_000).contains(&page) {
        return Err(Error::invalid("page", "from 1 to 10000"));
    }
    let offset = (page - 1) * size;
    if offset > super::people::MAX_OFFSET {
        // Paging stops where search paging stops: an empty page, not an error.
        let body = phonebook::render(vendor, &[], offset + 1, 0);
        return Ok((
            Extension(ReturnedPeople::default()),
            [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            body,
        )
            .into_response());
    }
    let request = SearchRequest {
        q,
        limit: size,
        offset,
        filters: Filters {
            within: principal.policy.within(),
            ..Filters::default()
        },
        ..SearchRequest::default()
    };
    // Names and numbers are in the index: the hits make the page, projected by the policy.
    let results = state.index.search_with(&request)?;
    let people: Vec<Person> = results
        .hits
        .into_iter()
        .filter_map(|hit| principal.policy.summary(hit))
        .map(Person::from)
        .collect();
    let body = phonebook::render(vendor, &people, offset + 1, results.total);
    let mut response = (
        Extension(ReturnedPeople(people.iter().map(|p| p.id).collect())),
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        body,
    )
        .into_response();
    // Cisco phones page through a directory by the `Refresh` header (their Next key follows
    // it), to an absolute address.
    if vendor == Vendor::Cisco && results.total > offset + size {
        if let Some(host) = host {
            let scheme = if state.config.tls.is_some() {
                "https"
            } else {
                "http"
            };
            let next = format!(
                "0; url={scheme}://{host}/phonebooks/cisco?q={}&page={}",
                encode_query(&request.q),
                page + 1
            );
            if let Ok(value) = header::HeaderValue::from_str(&next) {
                response.headers_mut().insert(header::REFRESH, value);
            }
        }
    }
    Ok(response)
}
