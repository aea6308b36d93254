//! A read-only CardDAV global address book (RFC 6352) for phones and mail clients:
//! `/.well-known/carddav` (RFC 6764) leads to `/carddav/`, which is the principal and the
//! address book home; `/carddav/directory/` is the one address book, each person a card at
//! `/carddav/directory/<id>.vcf` with an ETag. PROPFIND, GET, REPORT (addressbook-multiget,
//! addressbook-query, sync-collection per RFC 6578 over the change log); writes are refused.
//! HTTP Basic as a device or a person: their policy decides who and what each card shows.

use std::collections::HashSet;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Extension, Router};
use quick_xml::escape::escape;
use quick_xml::events::Event;
use uuid::Uuid;

use super::vcard::{self, Version};
use crate::access::Principal;
use crate::audit::AuditEvent;
use crate::domain::Person;
use crate::error::Result;
use crate::http::AppState;

const ROOT: &str = "/carddav/";
const BOOK: &str = "/carddav/directory/";
/// The most cards the address book lists (a larger directory is searched over LDAP instead).
pub const MAX_CARDS: usize = 100_000;
/// Request bodies up to this size (a multiget names many cards).
pub const MAX_DAV_BODY: usize = 8 * 1024 * 1024;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/.well-known/carddav", any(well_known))
        .route("/carddav", any(well_known))
        .route(ROOT, any(dav))
        .route("/carddav/directory", any(dav))
        .route(BOOK, any(dav))
        .route("/carddav/directory/{card}", any(dav))
        .route_layer(axum::middleware::from_fn_with_state(state, authenticate))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_DAV_BODY))
}

/// Every CardDAV request carries Basic credentials of a device or a person (or the server is
/// open); otherwise 401 asking for them.
async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let address = crate::http::auth::client_address(request.extensions());
    let principal = match state.access.open_principal() {
        Some(open) => Some(open.clone()),
        None => match crate::http::auth::basic(request.headers()) {
            Some((account, password)) => {
                match crate::http::auth::basic_login(&state, &account, &password, address).await {
                    Ok(p) => p,
                    Err(e) => return e.into_response(),
                }
            }
            None => None,
        },
    };
    let Some(principal) = principal else {
        return (
            StatusCode::UNAUTHORIZED,
            [
                (
                    header::WWW_AUTHENTICATE,
                    "Basic realm=\"Switchboard\", charset=\"UTF-8\"",
                ),
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            ],
            "the address book needs a device's or a person's name and password\n",
        )
            .into_response();
    };
    if principal.partner.is_some() {
        // A partner's key reads the shared directory (and the LDAP server), capped per query;
        // a CardDAV collection would hand over everyone in its scope at once.
        return crate::error::Error::Forbidden(
            "a partner key reaches the shared directory only (/shared/v1, /scim/v2, LDAP)".into(),
        )
        .into_response();
    }
    if let Err(retry_after) = state.access.rate(&principal.name) {
        return crate::error::Error::TooManyRequests {
            retry_after,
            what: format!("requests from {}", principal.name),
        }
        .into_response();
    }
    request.extensions_mut().insert(principal);
    next.run(request).await
}

async fn well_known() -> Response {
    (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, ROOT)]).into_response()
}

/// What a request addresses.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Resource {
    Root,
    Book,
    Card(Uuid),
}

fn resource_at(path: &str) -> Option<Resource> {
    match path {
        "/carddav/" => Some(Resource::Root),
        "/carddav/directory" | "/carddav/directory/" => Some(Resource::Book),
        _ => path
            .strip_prefix(BOOK)
            .and_then(|f| f.strip_suffix(".vcf"))
            .and_then(|id| Uuid::parse_str(id).ok())
            .map(Resource::Card),
    }
}

fn card_href(id: &Uuid) -> String {
    format!("{BOOK}{id}.vcf")
}

/// The parts of a WebDAV request body we act on.
#[derive(Debug, Default)]
struct DavBody {
    /// The root element's local name (`propfind`, `addressbook-multiget`, …).
    root: String,
    /// Requested properties, by local name; empty with `allprop` (or no body).
    props: Vec<String>,
    allprop: bool,
    hrefs: Vec<String>,
    sync_token: Option<String>,
    /// `address-data` asked for vCard 4.0 (`version="4.0"`) or 3.0.
    version: Option<Version>,
    /// `addressbook-query` text matches: (property, text, match type, negate).
    matches: Vec<(String, String, String, bool)>,
    /// `anyof` (default) or `allof` for the query's property filters.
    allof: bool,
}

fn parse_body(body: &[u8]) -> std::result::Result<DavBody, String> {
    let mut parsed = DavBody::default();
    if body.iter().all(u8::is_ascii_whitespace) {
        parsed.allprop = true;
        return Ok(parsed);
    }
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut path: Vec<String> = Vec::new();
    let mut buf = Vec::new();
    let mut text = String::new();
    let mut current_prop_filter = String::new();
    let mut match_type = String::new();
    let mut negate = false;
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("not XML: {e}"))?;
        let empty = matches!(event, Event::Empty(_));
        match event {
            Event::Start(e) | Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if path.is_empty() {
                    parsed.root = name.clone();
                }
                let attr = |key: &str| {
                    e.attributes().flatten().find_map(|a| {
                        (a.key.local_name().as_ref() == key.as_bytes())
                            .then(|| String::from_utf8_lossy(&a.value).into_owned())
                    })
                };
                let parent = path.last().map(String::as_str).unwrap_or_default();
                match name.as_str() {
                    "allprop" => parsed.allprop = true,
                    "address-data" => {
                        parsed.version = match attr("version").as_deref() {
                            Some("3.0") => Some(Version::V3),
                            Some("4.0") => Some(Version::V4),
                            _ => None,
                        };
                        parsed.props.push(name.clone());
                    }
                    "filter" if parsed.root == "addressbook-query" => {
                        parsed.allof = attr("test").as_deref() == Some("allof");
                    }
                    "prop-filter" => {
                        current_prop_filter = attr("name").unwrap_or_default().to_uppercase();
                    }
                    "text-match" => {
                        match_type = attr("match-type").unwrap_or_else(|| "contains".into());
                        negate = attr("negate-condition").as_deref() == Some("yes");
                    }
                    _ if parent == "prop" => parsed.props.push(name.clone()),
                    _ => {}
                }
                if !empty {
                    path.push(name);
                }
                text.clear();
            }
            Event::Text(t) => {
                text.push_str(&t.decode().map_err(|e| e.to_string())?);
            }
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(c) => c,
                    None => match r.decode().map_err(|e| e.to_string())?.as_ref() {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => return Err(format!("unknown entity &{other};")),
                    },
                };
                text.push(c);
            }
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                match name.as_str() {
                    "href" if path.last().map(String::as_str) != Some("prop") => {
                        parsed.hrefs.push(text.trim().to_string())
                    }
                    "sync-token" => parsed.sync_token = Some(text.trim().to_string()),
                    "text-match" => parsed.matches.push((
                        current_prop_filter.clone(),
                        text.trim().to_string(),
                        match_type.clone(),
                        negate,
                    )),
                    _ => {}
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(parsed)
}

/// One response element of a multistatus: found properties, and those we do not have.
fn response(href: &str, found: &[(String, String)], missing: &[String]) -> String {
    let mut out = format!("<D:response><D:href>{}</D:href>", escape(href));
    if !found.is_empty() {
        out.push_str("<D:propstat><D:prop>");
        for (name, value) in found {
            out.push_str(&format!("<{name}>{value}</{name}>"));
        }
        out.push_str("</D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat>");
    }
    if !missing.is_empty() {
        out.push_str("<D:propstat><D:prop>");
        for name in missing {
            out.push_str(&format!("<{name}/>"));
        }
        out.push_str("</D:prop><D:status>HTTP/1.1 404 Not Found</D:status></D:propstat>");
    }
    out.push_str("</D:response>");
    out
}

fn gone(href: &str) -> String {
    format!(
        "<D:response><D:href>{}</D:href><D:status>HTTP/1.1 404 Not Found</D:status></D:response>",
        escape(href)
    )
}

fn multistatus(responses: &[String], sync_token: Option<&str>) -> Response {
    let mut body = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:multistatus xmlns:D=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:carddav\" xmlns:CS=\"http://calendarserver.org/ns/\">",
    );
    for r in responses {
        body.push_str(r);
    }
    if let Some(token) = sync_token {
        body.push_str(&format!("<D:sync-token>{}</D:sync-token>", escape(token)));
    }
    body.push_str("</D:multistatus>\n");
    (
        StatusCode::MULTI_STATUS,
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        body,
    )
        .into_response()
}

fn dav_error(status: StatusCode, condition: &str, why: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<D:error xmlns:D=\"DAV:\" xmlns:C=\"urn:ietf:params:xml:ns:carddav\"><{condition}/><D:responsedescription>{}</D:responsedescription></D:error>\n",
            escape(why)
        ),
    )
        .into_response()
}

/// Property names as they are written in responses, by local name.
fn qualified(local: &str) -> String {
    match local {
        "addressbook-home-set"
        | "address-data"
        | "addressbook-description"
        | "supported-address-data"
        | "max-resource-size" => format!("C:{local}"),
        "getctag" => format!("CS:{local}"),
        _ => format!("D:{local}"),
    }
}

fn sync_token(seq: i64) -> String {
    format!("urn:switchboard:sync:{seq}")
}

fn parse_sync_token(token: &str) -> Option<i64> {
    token.strip_prefix("urn:switchboard:sync:")?.parse().ok()
}

/// A card as shown to this caller: the person, its vCard and its ETag.
struct Card {
    id: Uuid,
    text: String,
    etag: String,
}

impl Card {
    fn of(person: &Person, version: Version) -> Card {
        let text = vcard::render(person, version);
        let etag = format!("\"{:016x}\"", xxhash_rust::xxh3::xxh3_64(text.as_bytes()));
        Card {
            id: person.id,
            text,
            etag,
        }
    }
}

/// The context of one request.
struct Dav<'a> {
    state: &'a AppState,
    principal: &'a Principal,
    version: Version,
}

impl Dav<'_> {
    /// The cards of these people, as the caller may see them (out of scope: absent).
    async fn cards(&self, ids: &[Uuid], version: Version) -> Result<Vec<Card>> {
        let people = crate::db::people::get_many(&self.state.pool, ids).await?;
        Ok(people
            .into_iter()
            .filter_map(|p| self.principal.policy.person(p))
            .map(|p| Card::of(&p, version))
            .collect())
    }

    /// Every card of the address book (up to `MAX_CARDS`), in id order.
    async fn all_cards(&self, version: Version) -> Result<Vec<Card>> {
        let mut conn = self.state.pool.acquire().await?;
        let mut after = Uuid::nil();
        let mut cards = Vec::new();
        while cards.len() < MAX_CARDS {
            let rows = crate::db::people::active_after(&mut conn, after, 5_000).await?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            for row in rows {
                if let Some(person) = self.principal.policy.person(row.into_person(Vec::new())) {
                    cards.push(Card::of(&person, version));
                }
            }
        }
        cards.truncate(MAX_CARDS);
        Ok(cards)
    }

    async fn current_token(&self) -> Result<String> {
        let mut conn = self.state.pool.acquire().await?;
        Ok(sync_token(
            crate::db::people::latest_change(&mut conn).await?,
        ))
    }

    /// The properties of a resource: those asked for we have, and those we do not.
    async fn props(
        &self,
        resource: Resource,
        card: Option<&Card>,
        wanted: &DavBody,
    ) -> Result<(Vec<(String, String)>, Vec<String>)> {
        let all: &[&str] = match resource {
            Resource::Root => &[
                "resourcetype",
                "displayname",
                "current-user-principal",
                "principal-URL",
                "addressbook-home-set",
                "current-user-privilege-set",
            ],
            Resource::Book => &[
                "resourcetype",
                "displayname",
                "addressbook-description",
                "current-user-principal",
                "getctag",
                "sync-token",
                "supported-report-set",
                "supported-address-data",
                "current-user-privilege-set",
            ],
            Resource::Card(_) => &["resourcetype", "getetag", "getcontenttype"],
        };
        let names: Vec<String> = if wanted.allprop || wanted.props.is_empty() {
            all.iter().map(|s| s.to_string()).collect()
        } else {
            wanted.props.clone()
        };
        let mut found = Vec::new();
        let mut missing = Vec::new();
        let token = if matches!(resource, Resource::Book)
            && names.iter().any(|n| n == "getctag" || n == "sync-token")
        {
            Some(self.current_token().await?)
        } else {
            None
        };
        let href = |h: &str| format!("<D:href>{h}</D:href>");
        let read_only = "<D:privilege><D:read/></D:privilege>".to_string();
        for name in names {
            let value = match (resource, name.as_str()) {
                (Resource::Root, "resourcetype") => Some("<D:collection/>".to_string()),
                (Resource::Book, "resourcetype") => {
                    Some("<D:collection/><C:addressbook/>".to_string())
                }
                (Resource::Card(_), "resourcetype") => Some(String::new()),
                (Resource::Root, "displayname") => Some("Switchboard".to_string()),
                (Resource::Book, "displayname") => Some("Company directory".to_string()),
                (Resource::Book, "addressbook-description") => {
                    Some("Everyone in the company directory (read-only)".to_string())
                }
                (Resource::Root | Resource::Book, "current-user-principal")
                | (Resource::Root, "principal-URL")
                | (Resource::Root, "addressbook-home-set") => Some(href(ROOT)),
                (Resource::Root | Resource::Book, "current-user-privilege-set") => {
                    Some(read_only.clone())
                }
                (Resource::Book, "getctag" | "sync-token") => token.as_deref().map(|t| escape(t).into_owned()),
                (Resource::Book, "supported-report-set") => Some(
                    ["C:addressbook-multiget", "C:addressbook-query", "D:sync-collection"]
                        .iter()
                        .map(|r| format!("<D:supported-report><D:report><{r}/></D:report></D:supported-report>"))
                        .collect(),
                ),
                (Resource::Book, "supported-address-data") => Some(
                    "<C:address-data-type content-type=\"text/vcard\" version=\"3.0\"/><C:address-data-type content-type=\"text/vcard\" version=\"4.0\"/>"
                        .to_string(),
                ),
                (Resource::Card(_), "getetag") => card.map(|c| escape(&c.etag).into_owned()),
                (Resource::Card(_), "getcontenttype") => {
                    Some("text/vcard; charset=utf-8".to_string())
                }
                (Resource::Card(_), "address-data") => {
                    card.map(|c| escape(&c.text).into_owned())
                }
                _ => None,
            };
            match value {
                Some(v) => found.push((qualified(&name), v)),
                None => missing.push(qualified(&name)),
            }
        }
        Ok((found, missing))
    }

    fn audit(
        &self,
        action: String,
        people: Vec<Uuid>,
        status: StatusCode,
        address: Option<SocketAddr>,
    ) {
        if !self.state.audits_lookups_of(self.principal) {
            return;
        }
        let mut event = AuditEvent::new(self.state.access.now(), &self.principal.name, &action)
            .status(status.as_u16())
            .address(address.map(|a| a.ip().to_string()));
        event.people = people;
        self.state.audit.record(event);
    }
}

/// Every method on every CardDAV resource.
async fn dav(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    request_extensions: axum::http::Extensions,
    body: Bytes,
) -> Response {
    let address = crate::http::auth::client_address(&request_extensions);
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let dav = Dav {
        state: &state,
        principal: &principal,
        version: Version::for_client(user_agent),
    };
    let Some(resource) = resource_at(uri.path()) else {
        return (StatusCode::NOT_FOUND, "no such resource\n").into_response();
    };
    let action = format!("carddav.{} {}", method.as_str(), uri.path());
    let mut returned = Vec::new();
    let response = match handle(&dav, resource, &method, &headers, &body, &mut returned).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    if method != Method::OPTIONS {
        dav.audit(action, returned, response.status(), address);
    }
    response
}

async fn handle(
    dav: &Dav<'_>,
    resource: Resource,
    method: &Method,
    headers: &HeaderMap,
    body: &[u8],
    returned: &mut Vec<Uuid>,
) -> Result<Response> {
    match method.as_str() {
        "OPTIONS" => Ok((
            StatusCode::OK,
            [
                ("DAV", "1, 3, addressbook"),
                ("Allow", "OPTIONS, GET, HEAD, PROPFIND, REPORT"),
            ],
        )
            .into_response()),
        "GET" | "HEAD" => {
            let Resource::Card(id) = resource else {
                return Ok((
                    StatusCode::OK,
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    "Switchboard's address book: add it to a CardDAV client.\n",
                )
                    .into_response());
            };
            let Some(card) = dav.cards(&[id], dav.version).await?.pop() else {
                return Ok((StatusCode::NOT_FOUND, "no such card\n").into_response());
            };
            returned.push(card.id);
            let unchanged = headers
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split(',').any(|t| t.trim() == card.etag));
            if unchanged {
                return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, card.etag)]).into_response());
            }
            let body = if method == Method::HEAD {
                String::new()
            } else {
                card.text
            };
            Ok((
                StatusCode::OK,
                [
                    (
                        header::CONTENT_TYPE,
                        "text/vcard; charset=utf-8".to_string(),
                    ),
                    (header::ETAG, card.etag),
                ],
                body,
            )
                .into_response())
        }
        "PROPFIND" => {
            let request = match parse_body(body) {
                Ok(r) => r,
                Err(why) => {
                    return Ok(dav_error(
                        StatusCode::BAD_REQUEST,
                        "D:propfind-finite-depth",
                        &why,
                    ))
                }
            };
            let depth = headers
                .get("depth")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("infinity");
            let mut responses = Vec::new();
            match resource {
                Resource::Card(id) => {
                    let Some(card) = dav.cards(&[id], dav.version).await?.pop() else {
                        return Ok((StatusCode::NOT_FOUND, "no such card\n").into_response());
                    };
                    let (found, missing) = dav.props(resource, Some(&card), &request).await?;
                    responses.push(response(&card_href(&id), &found, &missing));
                }
                Resource::Root => {
                    let (found, missing) = dav.props(resource, None, &request).await?;
                    responses.push(response(ROOT, &found, &missing));
                    if depth != "0" {
                        let (found, missing) = dav.props(Resource::Book, None, &request).await?;
                        responses.push(response(BOOK, &found, &missing));
                    }
                }
                Resource::Book => {
                    let (found, missing) = dav.props(resource, None, &request).await?;
                    responses.push(response(BOOK, &found, &missing));
                    if depth != "0" {
                        for card in dav.all_cards(dav.version).await? {
                            let (found, missing) = dav
                                .props(Resource::Card(card.id), Some(&card), &request)
                                .await?;
                            if request.props.iter().any(|p| p == "address-data") {
                                returned.push(card.id);
                            }
                            responses.push(response(&card_href(&card.id), &found, &missing));
                        }
                    }
                }
            }
            Ok(multistatus(&responses, None))
        }
        "REPORT" => {
            if resource != Resource::Book {
                return Ok(dav_error(
                    StatusCode::FORBIDDEN,
                    "D:supported-report",
                    "reports are answered by the address book, /carddav/directory/",
                ));
            }
            let request = match parse_body(body) {
                Ok(r) => r,
                Err(why) => {
                    return Ok(dav_error(
                        StatusCode::BAD_REQUEST,
                        "D:supported-report",
                        &why,
                    ))
                }
            };
            let version = request.version.unwrap_or(dav.version);
            let with_data = request.props.iter().any(|p| p == "address-data");
            let mut responses = Vec::new();
            let mut item = |card: &Card,
                            responses: &mut Vec<String>,
                            found: Vec<(String, String)>,
                            missing: Vec<String>| {
                if with_data {
                    returned.push(card.id);
                }
                responses.push(response(&card_href(&card.id), &found, &missing));
            };
            match request.root.as_str() {
                "addressbook-multiget" => {
                    let ids: Vec<(String, Option<Uuid>)> = request
                        .hrefs
                        .iter()
                        .map(|h| {
                            let path = h.split_once("://").map_or(h.as_str(), |(_, rest)| {
                                rest.find('/').map_or("", |i| &rest[i..])
                            });
                            let id = match resource_at(path) {
                                Some(Resource::Card(id)) => Some(id),
                                _ => None,
                            };
                            (h.clone(), id)
                        })
                        .collect();
                    let wanted: Vec<Uuid> = ids.iter().filter_map(|(_, id)| *id).collect();
                    let cards = dav.cards(&wanted, version).await?;
                    for (href, id) in ids {
                        match id.and_then(|id| cards.iter().find(|c| c.id == id)) {
                            Some(card) => {
                                let (found, missing) = dav
                                    .props(Resource::Card(card.id), Some(card), &request)
                                    .await?;
                                item(card, &mut responses, found, missing);
                            }
                            None => responses.push(gone(&href)),
                        }
                    }
                    Ok(multistatus(&responses, None))
                }
                "addressbook-query" => {
                    for card in dav.all_cards(version).await? {
                        if !query_matches(&request, &card.text) {
                            continue;
                        }
                        let (found, missing) = dav
                            .props(Resource::Card(card.id), Some(&card), &request)
                            .await?;
                        item(&card, &mut responses, found, missing);
                    }
                    Ok(multistatus(&responses, None))
                }
                "sync-collection" => {
                    let token = dav.current_token().await?;
                    let since =
                        match request.sync_token.as_deref().filter(|t| !t.is_empty()) {
                            None => None,
                            Some(t) => match parse_sync_token(t) {
                                Some(seq) => Some(seq),
                                None => return Ok(dav_error(
                                    StatusCode::FORBIDDEN,
                                    "D:valid-sync-token",
                                    "not a sync token of this address book: sync from the start",
                                )),
                            },
                        };
                    match since {
                        None => {
                            for card in dav.all_cards(version).await? {
                                let (found, missing) = dav
                                    .props(Resource::Card(card.id), Some(&card), &request)
                                    .await?;
                                item(&card, &mut responses, found, missing);
                            }
                        }
                        Some(seq) => {
                            let changed: Vec<Uuid> = sqlx::query_scalar(
                                "SELECT DISTINCT person_id FROM change_log WHERE seq > $1 LIMIT $2",
                            )
                            .bind(seq)
                            .bind(MAX_CARDS as i64)
                            .fetch_all(&dav.state.pool)
                            .await?;
                            let cards = dav.cards(&changed, version).await?;
                            let present: HashSet<Uuid> = cards.iter().map(|c| c.id).collect();
                            for card in &cards {
                                let (found, missing) = dav
                                    .props(Resource::Card(card.id), Some(card), &request)
                                    .await?;
                                item(card, &mut responses, found, missing);
                            }
                            for id in changed.iter().filter(|id| !present.contains(id)) {
                                responses.push(gone(&card_href(id)));
                            }
                        }
                    }
                    Ok(multistatus(&responses, Some(&token)))
                }
                other => Ok(dav_error(
                    StatusCode::FORBIDDEN,
                    "D:supported-report",
                    &format!("report `{other}` is not supported"),
                )),
            }
        }
        "PUT" | "DELETE" | "MKCOL" | "PROPPATCH" | "MOVE" | "COPY" | "POST" | "LOCK" => {
            Ok(dav_error(
                StatusCode::FORBIDDEN,
                "D:need-privileges",
                "the directory is read-only: change people in their source",
            ))
        }
        _ => Ok((
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "OPTIONS, GET, HEAD, PROPFIND, REPORT")],
        )
            .into_response()),
    }
}

/// Whether a card passes an `addressbook-query` filter's text matches (on FN, N, NICKNAME,
/// EMAIL, TEL, ORG, TITLE; case- and accent-insensitive; numbers by their digits).
fn query_matches(request: &DavBody, card: &str) -> bool {
    if request.matches.is_empty() {
        return true;
    }
    let unfolded = card.replace("\r\n ", "");
    let values = |property: &str| -> Vec<String> {
        unfolded
            .lines()
            .filter_map(|l| {
                let (name, value) = l.split_once(':')?;
                let name = name.split(';').next()?;
                name.eq_ignore_ascii_case(property)
                    .then(|| value.to_string())
            })
            .collect()
    };
    let test = |(property, text, match_type, negate): &(String, String, String, bool)| {
        let phone = property == "TEL";
        let norm = |s: &str| {
            if phone {
                s.chars().filter(char::is_ascii_digit).collect::<String>()
            } else {
                super::entry::fold_text(s)
            }
        };
        let wanted = norm(text);
        let hit = values(property).iter().any(|v| {
            let v = norm(v);
            match match_type.as_str() {
                "equals" => v == wanted,
                "starts-with" => v.starts_with(&wanted),
                "ends-with" => v.ends_with(&wanted),
                _ => v.contains(&wanted),
            }
        });
        hit != *negate
    };
    if request.allof {
        request.matches.iter().all(test)
    } else {
        request.matches.iter().any(test)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bodies_are_read_for_what_we_act_on() {
        let body = br#"<?xml version="1.0"?>
            <C:addressbook-multiget xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">
              <prop><getetag/><C:address-data version="3.0"/></prop>
              <href>/carddav/directory/a.vcf</href><href>/carddav/directory/b.vcf</href>
            </C:addressbook-multiget>"#;
        let parsed = parse_body(body).expect("parsed");
        assert_eq!(parsed.root, "addressbook-multiget");
        assert_eq!(parsed.props, ["getetag", "address-data"]);
        assert_eq!(parsed.hrefs.len(), 2);
        assert_eq!(parsed.version, Some(Version::V3));
        let sync = br#"<D:sync-collection xmlns:D="DAV:"><D:sync-token>urn:switchboard:sync:42</D:sync-token><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>"#;
        let parsed = parse_body(sync).expect("parsed");
        assert_eq!(
            parsed.sync_token.as_deref().and_then(parse_sync_token),
            Some(42)
        );
        assert!(parse_body(b"<unclosed").is_err() || parse_body(b"<a></b>").is_err());
        assert!(parse_body(b"  ").expect("empty").allprop);
    }

    #[test]
    fn paths_name_resources() {
        assert_eq!(resource_at("/carddav/"), Some(Resource::Root));
        assert_eq!(resource_at("/carddav/directory/"), Some(Resource::Book));
        let id = Uuid::from_u128(5);
        assert_eq!(resource_at(&card_href(&id)), Some(Resource::Card(id)));
        assert_eq!(resource_at("/carddav/directory/x.vcf"), None);
    }
}
