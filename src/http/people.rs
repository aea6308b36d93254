//! `/api/v1/people`: search and lookup.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::auth::ReturnedPeople;
use super::AppState;
use crate::access::{PersonField, Principal};
use crate::db::people;
use crate::domain::{Person, PersonSummary};
use crate::error::{Error, Result};
use crate::search::query::{self, Filters};
use crate::search::{Facets, SearchRequest};

pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;
/// Longer queries are refused: nobody types more, and it bounds the work per request.
pub const MAX_QUERY_LEN: usize = 256;

/// Over `MAX_QUERY_LEN` characters (counted only when the bytes could be that many).
fn too_long(text: &str) -> bool {
    text.len() > MAX_QUERY_LEN
        && (text.len() > 4 * MAX_QUERY_LEN || text.chars().count() > MAX_QUERY_LEN)
}
/// Paging stops here; narrow the query instead.
pub const MAX_OFFSET: usize = 10_000;

pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(search_people))
        .routes(routes!(get_person))
        .routes(routes!(get_people_by_phone))
}

fn returned(items: &[PersonSummary]) -> Extension<ReturnedPeople> {
    Extension(ReturnedPeople(items.iter().map(|p| p.id).collect()))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// What was typed: words of names, emails, titles, departments, or a phone number in any
    /// format. The last word matches as a prefix. Empty lists everyone alphabetically.
    #[param(max_length = 256)]
    pub q: Option<String>,
    /// Results per page, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    #[param(pattern = "^o(10000|[0-9]{1,4})$")]
    pub cursor: Option<String>,
    /// Only people of this department (exact value, as in `facets`).
    #[param(max_length = 256)]
    pub department: Option<String>,
    /// Only people at this location (exact value, as in `facets`).
    #[param(max_length = 256)]
    pub location: Option<String>,
    /// Only people of this organisation unit (exact value, as in `facets`).
    #[param(max_length = 256)]
    pub org_unit: Option<String>,
    /// Only people who can (`true`) or cannot (`false`) be reached by presence-aware channels;
    /// for now: who have at least one IM handle.
    pub has_presence: Option<bool>,
    /// Only people available right now (`true`: live presence says available), or everyone
    /// else (`false`). With `facets=true`, `facets.available` counts the matches available now.
    pub available: Option<bool>,
    /// A location whose people rank first among equally good matches (the caller's own site).
    #[param(max_length = 256)]
    pub near: Option<String>,
    /// Also return facet counts over all matches (default false).
    pub facets: Option<bool>,
    /// Also search partners' directories (`[[federation.peers]]`): `all`, or peer names
    /// separated by commas. Their results come in `peers`, below ours, within the peers'
    /// timeout.
    #[param(max_length = 256)]
    pub peers: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchResponse {
    pub items: Vec<PersonSummary>,
    /// How many people match in all, or with `total_exact` false, at least how many: counting
    /// stops at 1,000 (or just past the page asked for) to keep searches fast.
    pub total: usize,
    /// False when `total` is a lower bound.
    pub total_exact: bool,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// True when matches with typos or that only sound alike are included, ranked after every
    /// exact and prefix match (which did not fill the page).
    #[serde(default)]
    pub approximate: bool,
    /// Counts per department, location, organisation unit and presence over all matches; only
    /// with `facets=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facets: Option<Facets>,
    /// What partners' directories answered, with `peers=…`: each labelled, or a note of why not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peers: Option<Vec<crate::federation::PeerResults>>,
}

/// Who owns a phone number.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PhoneOwnersResponse {
    /// The digits looked up (E.164 without `+`, national, or extension).
    pub digits: Vec<String>,
    pub items: Vec<PersonSummary>,
}

/// A cursor is `o` and the offset of the page it starts (at most `MAX_OFFSET`).
fn decode_cursor(cursor: &str) -> Result<usize> {
    let bad = || Error::invalid("cursor", "not a cursor returned by this API");
    cursor
        .strip_prefix('o')
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse().ok())
        .filter(|n| *n <= MAX_OFFSET)
        .ok_or_else(bad)
}

fn encode_cursor(offset: usize) -> String {
    format!("o{offset}")
}

/// Search people as you type.
#[utoipa::path(
    get,
    path = "/api/v1/people",
    tag = "people",
    params(SearchParams),
    security(("session" = ["viewer"]), ("bearer" = ["viewer"])),
    responses(
        (status = 200, description = "Matching people, best first", body = SearchResponse),
        (status = 400, description = "Invalid parameter", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn search_people(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    params: std::result::Result<Query<SearchParams>, QueryRejection>,
) -> Result<(Extension<ReturnedPeople>, Json<SearchResponse>)> {
    let Query(params) = params.map_err(|e| Error::invalid("query", e.body_text()))?;
    let q = params.q.unwrap_or_default();
    if too_long(&q) {
        return Err(Error::invalid(
            "q",
            format!("longer than {MAX_QUERY_LEN} characters"),
        ));
    }
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::invalid(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let offset = params
        .cursor
        .as_deref()
        .map(decode_cursor)
        .transpose()?
        .unwrap_or(0);
    let policy = &principal.policy;
    // Filtering by a field the caller may not see would reveal it.
    let text = |name: &'static str, value: Option<String>| -> Result<Option<String>> {
        let field = match name {
            "department" => Some(PersonField::Department),
            "location" => Some(PersonField::Location),
            "org_unit" => Some(PersonField::OrgUnit),
            _ => None,
        };
        match value {
            Some(v) if !v.is_empty() && field.is_some_and(|f| !policy.shows(f)) => {
                Err(Error::invalid(name, "not a filter you may use"))
            }
            Some(v) if too_long(&v) => Err(Error::invalid(
                name,
                format!("longer than {MAX_QUERY_LEN} characters"),
            )),
            Some(v) if v.is_empty() => Ok(None),
            v => Ok(v),
        }
    };
    // Live presence is a field too: a policy that shows none may not filter or count by it.
    let presence_hidden = policy.presence == crate::access::policy::PresenceLevel::None;
    if params.available.is_some() && presence_hidden {
        return Err(Error::invalid("available", "not a filter you may use"));
    }
    let request = SearchRequest {
        q,
        limit,
        offset,
        filters: Filters {
            department: text("department", params.department)?,
            location: text("location", params.location)?,
            org_unit: text("org_unit", params.org_unit)?,
            has_presence: params.has_presence,
            available: params.available,
            within: policy.within(),
            searchable: Default::default(),
        },
        near: text("near", params.near)?,
        facets: params.facets.unwrap_or(false),
    };
    if params.peers.as_deref().is_some_and(too_long) {
        return Err(Error::invalid(
            "peers",
            format!("longer than {MAX_QUERY_LEN} characters"),
        ));
    }
    // Partners are asked while we search: their answers (or timeouts) are awaited after ours.
    let federated = params
        .peers
        .as_deref()
        .filter(|p| !p.trim().is_empty())
        .map(|which| {
            let (peers, unknown) = state.federation.select(which);
            let federation = state.federation.clone();
            let (q, limit) = (request.q.clone(), limit);
            tokio::spawn(async move {
                let mut answers = federation.search(&peers, &q, limit).await;
                answers.extend(
                    unknown
                        .into_iter()
                        .map(crate::federation::Federation::unknown),
                );
                answers
            })
        });
    // On this thread: a search takes well under a millisecond (it stops reading once the page
    // is settled, and a query has at most 8 words), less than handing it to another thread.
    // Facet counts read every match (milliseconds for a first letter among a million people),
    // and live filters may first build a segment's set: those go to the blocking pool, so
    // that they never hold up the plain searches typed meanwhile.
    let mut results = if request.facets || request.filters.available.is_some() {
        let index = state.index.clone();
        tokio::task::spawn_blocking(move || index.search_with(&request))
            .await
            .map_err(|e| Error::Internal(e.into()))??
    } else {
        state.index.search_with(&request)?
    };
    state.presence.decorate_summaries(&mut results.hits);
    let shown = results.hits.len();
    // The scope was a filter inside the search; this projects the fields.
    results.hits = std::mem::take(&mut results.hits)
        .into_iter()
        .filter_map(|hit| policy.summary(hit))
        .collect();
    super::notes::decorate(&state, &principal, &mut results.hits).await?;
    if let Some(facets) = results.facets.as_mut() {
        for (field, counts) in [
            (PersonField::Department, &mut facets.department),
            (PersonField::Location, &mut facets.location),
            (PersonField::OrgUnit, &mut facets.org_unit),
        ] {
            if !policy.shows(field) {
                counts.clear();
            }
        }
        if presence_hidden {
            facets.available = 0;
        }
    }
    let next = offset + shown;
    let next_cursor =
        (shown == limit && next < results.total && next <= MAX_OFFSET).then(|| encode_cursor(next));
    Ok((
        returned(&results.hits),
        Json(SearchResponse {
            items: results.hits,
            total: results.total,
            total_exact: results.total_exact,
            next_cursor,
            approximate: results.approximate,
            facets: results.facets,
            peers: match federated {
                Some(task) => Some(task.await.map_err(|e| Error::Internal(e.into()))?),
                None => None,
            },
        }),
    ))
}

/// Who owns a phone number, written in any format: international (`+44 20 7946 0018`),
/// national (`020 7946 0018`), digits only, or an internal extension.
#[utoipa::path(
    get,
    path = "/api/v1/people/by-phone/{number}",
    tag = "people",
    params(("number" = String, Path, description = "A phone number in any format (at least three digits), or an extension (`x4711`)", max_length = 64, pattern = r"^(?:(?:x|ext\.?|extension|#) *[0-9]{1,20}|[ +()./-]*(?:[0-9][ +()./-]*){3,40})$")),
    security(("session" = ["viewer"]), ("bearer" = ["viewer"])),
    responses(
        (status = 200, description = "The people who own the number", body = PhoneOwnersResponse),
        (status = 400, description = "Not a phone number", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Nobody owns the number", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_people_by_phone(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(number): Path<String>,
) -> Result<(Extension<ReturnedPeople>, Json<PhoneOwnersResponse>)> {
    let not_a_number = || {
        Error::invalid(
            "number",
            "not a phone number: digits with optional + - ( ) . / and spaces, or an extension",
        )
    };
    if number.len() > 64 {
        return Err(not_a_number());
    }
    let digits = query::phone_candidates(&number).ok_or_else(not_a_number)?;
    let index = state.index.clone();
    let lookup = digits.clone();
    let items = tokio::task::spawn_blocking(move || index.by_phone(&lookup))
        .await
        .map_err(|e| Error::Internal(e.into()))??;
    // An owner is found only through a number the caller may see.
    let policy = &principal.policy;
    let items: Vec<PersonSummary> = items
        .into_iter()
        .filter(|p| {
            p.phones.iter().any(|phone| {
                policy.shows_phone(phone) && phone.search_keys().iter().any(|k| digits.contains(k))
            })
        })
        .filter_map(|p| policy.summary(p))
        .collect();
    if items.is_empty() {
        return Err(Error::NotFound {
            what: "owner of this phone number",
        });
    }
    Ok((
        returned(&items),
        Json(PhoneOwnersResponse { digits, items }),
    ))
}

/// Everything about one person.
#[utoipa::path(
    get,
    path = "/api/v1/people/{id}",
    tag = "people",
    params(("id" = uuid::Uuid, Path, description = "Person id")),
    security(("session" = ["viewer"]), ("bearer" = ["viewer"])),
    responses(
        (status = 200, description = "The person", body = Person),
        (status = 400, description = "Not a UUID", body = super::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such person, or deleted", body = super::error::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn get_person(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<(Extension<ReturnedPeople>, Json<Person>)> {
    let id =
        Uuid::parse_str(&id).map_err(|_| Error::invalid("id", format!("`{id}` is not a UUID")))?;
    let mut person = people::get_person(&state.pool, id)
        .await?
        .ok_or(Error::NotFound { what: "person" })?;
    state.presence.decorate_person(&mut person);
    (person.absence, person.status) =
        super::notes::in_force(&state.pool, person.id, state.access.now()).await?;
    let person = principal
        .policy
        .person(person)
        .ok_or(Error::NotFound { what: "person" })?;
    Ok((Extension(ReturnedPeople(vec![person.id])), Json(person)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        assert_eq!(decode_cursor(&encode_cursor(40)).expect("cursor"), 40);
        assert!(decode_cursor("!!").is_err());
        assert!(decode_cursor("o").is_err());
        assert!(decode_cursor("o+4").is_err());
        assert!(
            decode_cursor("o10001").is_err(),
            "past the last page allowed"
        );
        assert_eq!(decode_cursor("o10000").expect("last"), 10_000);
    }
}
