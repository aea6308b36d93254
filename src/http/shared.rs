//! `/shared/v1`: the shared directory for partner companies. The same search as staff get,
//! with the partner's policy inside it (scope and people's consent as filters, fields and
//! presence projected by `Policy`), ids of the partner's own, and limits against listing
//! the directory: a minimum query length, a result cap with no next page, a rate and a daily
//! quota (in the guard), and a logged alert when queries look like a sweep.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::ReturnedPeople;
use super::AppState;
use crate::access::partners::Partner;
use crate::access::{PersonField, Principal};
use crate::domain::{Person, PersonSummary, Phone};
use crate::error::{Error, Result};
use crate::presence::Presence;
use crate::search::query::Filters;
use crate::search::SearchRequest;

pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(search))
        .routes(routes!(person))
}

/// One of our people as a partner sees them.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SharedPerson {
    /// This person's id for you: stable, and unlike the id any other partner has for them.
    pub id: Uuid,
    /// The company they work for.
    pub organization: String,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nicknames: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default)]
    pub phones: Vec<Phone>,
    #[serde(default)]
    pub emails: Vec<String>,
    #[serde(default)]
    pub im: Vec<String>,
    /// Live presence at the level your agreement allows (availability only when coarse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence: Option<Presence>,
    /// Why they cannot be reached and until when, when your agreement includes notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absence: Option<SharedNote>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SharedNote {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

impl SharedPerson {
    /// A search hit already projected by the partner's policy.
    pub fn of_summary(p: PersonSummary, partner: &Partner, organization: &str) -> SharedPerson {
        SharedPerson {
            id: partner.public_id(p.id),
            organization: organization.to_string(),
            display_name: p.display_name,
            given_name: p.given_name,
            family_name: p.family_name,
            nicknames: p.nicknames,
            title: p.title,
            department: p.department,
            org_unit: p.org_unit,
            location: p.location,
            phones: p.phones,
            emails: p.emails,
            im: p.im,
            presence: p.presence,
            absence: None,
        }
    }

    /// A person already projected by the partner's policy.
    pub fn of_person(p: Person, partner: &Partner, organization: &str) -> SharedPerson {
        let absence = p.absence.clone().map(|n| SharedNote {
            text: n.text,
            until: n.until,
        });
        let summary = PersonSummary::from(&p);
        SharedPerson {
            absence,
            ..SharedPerson::of_summary(summary, partner, organization)
        }
    }
}

/// Only these: there is no cursor, offset or filter to page or list with.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SharedSearchParams {
    /// What was typed: a name (typos and accents forgiven), an email, a title, or a phone
    /// number. At least `[partners] min_query_chars` characters (3 by default).
    #[param(min_length = 1, max_length = 256)]
    pub q: Option<String>,
    /// Results, at most `[partners] max_results` (20 by default). There is no next page:
    /// narrow the query instead.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SharedSearchResponse {
    pub items: Vec<SharedPerson>,
    /// True when more people match than were returned: narrow the query.
    pub more: bool,
}

/// Search our people as you type.
#[utoipa::path(
    get,
    path = "/shared/v1/people",
    tag = "shared",
    params(SharedSearchParams),
    security(("partner" = [])),
    responses(
        (status = 200, description = "Matching people, best first, at most the cap", body = SharedSearchResponse),
        (status = 400, description = "No query, a query shorter than the minimum, or a limit over the cap", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a partner key", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn search(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(partner): Extension<Arc<Partner>>,
    params: std::result::Result<Query<SharedSearchParams>, QueryRejection>,
) -> Result<(Extension<ReturnedPeople>, Json<SharedSearchResponse>)> {
    let Query(params) = params.map_err(|e| Error::invalid("query", e.body_text()))?;
    let config = &state.access.partners;
    let q = params.q.unwrap_or_default();
    let typed = q.trim();
    // Letters and digits: "..." is no query (it would list everyone alphabetically).
    let chars = crate::access::partners::query_length(typed);
    if chars < config.min_query_chars {
        return Err(Error::invalid(
            "q",
            format!(
                "type at least {} characters: the shared directory is searched, not listed",
                config.min_query_chars
            ),
        ));
    }
    if typed.chars().count() > super::people::MAX_QUERY_LEN {
        return Err(Error::invalid(
            "q",
            format!("longer than {} characters", super::people::MAX_QUERY_LEN),
        ));
    }
    let cap = config.max_results;
    let limit = params.limit.unwrap_or(cap);
    if limit == 0 || limit > cap {
        return Err(Error::invalid(
            "limit",
            format!("must be between 1 and {cap}"),
        ));
    }
    state
        .access
        .note_partner_query(&partner, typed, "/shared/v1");
    let policy = &principal.policy;
    // One more than asked for: whether there are more, without saying how many.
    let request = SearchRequest {
        q: typed.to_string(),
        limit: limit + 1,
        offset: 0,
        filters: Filters {
            within: policy.within(),
            searchable: policy.searchable(),
            ..Filters::default()
        },
        near: None,
        facets: false,
    };
    let mut results = state.index.search_with(&request)?;
    state.presence.decorate_summaries(&mut results.hits);
    // A number finds its owner only through a number the partner may see.
    let readings = crate::search::query::phone_candidates(typed);
    let mut hits: Vec<PersonSummary> = results
        .hits
        .into_iter()
        .filter_map(|hit| policy.summary(hit))
        .filter(|hit| {
            readings
                .as_ref()
                .is_none_or(|r| shown_number_has(&hit.phones, r))
        })
        .collect();
    let more = hits.len() > limit;
    hits.truncate(limit);
    let returned = ReturnedPeople(hits.iter().map(|p| p.id).collect());
    let items = hits
        .into_iter()
        .map(|p| SharedPerson::of_summary(p, &partner, &config.organization))
        .collect();
    Ok((
        Extension(returned),
        Json(SharedSearchResponse { items, more }),
    ))
}

/// Whether one of these (already projected) numbers contains one of the readings of the typed
/// digits (`query::phone_candidates`: without a trunk 0, and as typed).
fn shown_number_has(phones: &[Phone], readings: &[String]) -> bool {
    phones.iter().any(|phone| {
        let raw: String = phone.raw.chars().filter(char::is_ascii_digit).collect();
        let e164: String = phone
            .e164
            .as_deref()
            .unwrap_or_default()
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        [raw, e164]
            .into_iter()
            .chain(phone.search_keys())
            .chain(phone.extension.clone())
            .any(|k| readings.iter().any(|digits| k.contains(digits.as_str())))
    })
}

/// How a person is asked for: JSON, a vCard 4 (`text/vcard`, or the id followed by `.vcf`),
/// or a jCard (`application/vcard+json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    VCard,
    JCard,
}

fn format_of(id: &str, headers: &HeaderMap) -> (String, Format) {
    if let Some(bare) = id.strip_suffix(".vcf") {
        return (bare.to_string(), Format::VCard);
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let format = if accept.contains("application/vcard+json") {
        Format::JCard
    } else if accept.contains("text/vcard") || accept.contains("text/x-vcard") {
        Format::VCard
    } else {
        Format::Json
    };
    (id.to_string(), format)
}

/// One person, by your id for them: as JSON, or as a vCard or jCard by `Accept`, or as a vCard
/// at `…/{id}.vcf`. Someone outside your agreement answers exactly as someone who does not exist.
#[utoipa::path(
    get,
    path = "/shared/v1/people/{id}",
    tag = "shared",
    params(("id" = String, Path, description = "Your id for the person (from a search), optionally followed by `.vcf` for their vCard", pattern = "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{32})(\\.vcf)?$", max_length = 40)),
    security(("partner" = [])),
    responses(
        (status = 200, description = "The person", content(
            (SharedPerson = "application/json"),
            (String = "text/vcard"),
            (serde_json::Value = "application/vcard+json"),
        )),
        (status = 400, description = "Not an id", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a partner key", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such person (or none you may see)", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn person(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(partner): Extension<Arc<Partner>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response> {
    let (id, format) = format_of(&id, &headers);
    let public =
        Uuid::parse_str(&id).map_err(|_| Error::invalid("id", format!("`{id}` is not an id")))?;
    let ours = partner.our_id(public);
    let not_found = || Error::NotFound { what: "person" };
    let mut person = crate::db::people::get_person(&state.pool, ours)
        .await?
        .ok_or_else(not_found)?;
    // Decided before anything else is read about them.
    if !principal.policy.admits_person(&person) {
        return Err(not_found());
    }
    state.presence.decorate_person(&mut person);
    if principal.policy.shows(PersonField::Notes) {
        (person.absence, person.status) =
            super::notes::in_force(&state.pool, person.id, state.access.now()).await?;
    }
    let person = principal.policy.person(person).ok_or_else(not_found)?;
    let returned = Extension(ReturnedPeople(vec![person.id]));
    let organization = &state.access.partners.organization;
    Ok(match format {
        Format::Json => (
            returned,
            Json(SharedPerson::of_person(person, &partner, organization)),
        )
            .into_response(),
        Format::VCard | Format::JCard => {
            let card = vcard_of(person, &partner, organization);
            if format == Format::VCard {
                (
                    returned,
                    [(header::CONTENT_TYPE, "text/vcard; charset=utf-8")],
                    card,
                )
                    .into_response()
            } else {
                (
                    returned,
                    [(header::CONTENT_TYPE, "application/vcard+json")],
                    crate::addressbook::vcard::jcard(&card).to_string(),
                )
                    .into_response()
            }
        }
    })
}

/// The vCard 4 of a projected person, under the partner's id for them, with our company as
/// the organization.
pub fn vcard_of(mut person: Person, partner: &Partner, organization: &str) -> String {
    person.id = partner.public_id(person.id);
    // The ORG line names the company first, then the department (RFC 6350 §6.6.4).
    person.org_unit = Some(organization.to_string());
    person.photo_url = None;
    crate::addressbook::vcard::render(&person, crate::addressbook::vcard::Version::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_comes_from_the_suffix_or_accept() {
        let mut headers = HeaderMap::new();
        assert_eq!(format_of("abc", &headers), ("abc".into(), Format::Json));
        assert_eq!(
            format_of("abc.vcf", &headers),
            ("abc".into(), Format::VCard)
        );
        headers.insert(header::ACCEPT, "application/vcard+json".parse().expect("h"));
        assert_eq!(format_of("abc", &headers).1, Format::JCard);
        headers.insert(header::ACCEPT, "text/vcard;version=4.0".parse().expect("h"));
        assert_eq!(format_of("abc", &headers).1, Format::VCard);
    }
}
