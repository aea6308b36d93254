//! LDAP and Active Directory.
//!
//! A full read is a paged search (RFC 2696), so any size of directory reads under server size
//! limits. Incremental reads use what each server offers: RFC 4533 content synchronization
//! (refreshOnly with a stored cookie) against OpenLDAP, `uSNChanged` polling plus the Deleted
//! Objects container against Active Directory. Identity is the server's stable id (`entryUUID`,
//! `objectGUID`), never the DN, so renames and moves are updates.
//!
//! Nothing here decides what to delete: a read either completes, or fails with an error and the
//! sync engine changes nothing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ldap3::adapters::PagedResults;
use ldap3::controls::{
    parse_syncinfo, ControlType, EntryState, RawControl, RefreshMode, SyncDone, SyncInfo,
    SyncRequest, SyncState,
};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, ResultEntry, Scope, SearchEntry};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::SourceConfig;
use crate::db::runs::Reject;
use crate::domain::{normalize_dn, PhoneKind, SourceRecord};
use crate::error::{Error, Result};

/// OID of the Sync Request control; a server that lists it in `supportedControl` does RFC 4533.
const SYNC_REQUEST_OID: &str = "1.3.6.1.4.1.4203.1.9.1.1";
/// Active Directory's "show deleted objects" control.
const SHOW_DELETED_OID: &str = "1.2.840.113556.1.4.417";
/// `e-syncRefreshRequired`: the server cannot serve changes since this cookie.
const SYNC_REFRESH_REQUIRED: u32 = 4096;
/// `userAccountControl` bit of a disabled account.
const ACCOUNT_DISABLE: i64 = 0x2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    OpenLdap,
    ActiveDirectory,
}

/// A Switchboard field a directory attribute can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    ExternalId,
    GivenName,
    FamilyName,
    DisplayName,
    Title,
    Department,
    OrgUnit,
    Location,
    Email,
    Phone,
    Mobile,
    HomePhone,
    Fax,
    Extension,
    Manager,
    Photo,
    Im,
    /// `c` (ISO 3166 code) or `co` (its name): where the person's national numbers belong.
    Country,
    /// Names the person goes by: no standard attribute, so none unless configured. (A
    /// `displayName` that calls them otherwise than `givenName` says so too: see
    /// `SourceRecord::nicknames`.)
    Nicknames,
    /// Whether partner companies may see the person (yes/no, TRUE/FALSE): no standard
    /// attribute, so none unless configured.
    PartnerSharing,
}

impl Field {
    const ALL: [(&'static str, Field); 20] = [
        ("external_id", Field::ExternalId),
        ("given_name", Field::GivenName),
        ("family_name", Field::FamilyName),
        ("display_name", Field::DisplayName),
        ("title", Field::Title),
        ("department", Field::Department),
        ("org_unit", Field::OrgUnit),
        ("location", Field::Location),
        ("email", Field::Email),
        ("phone", Field::Phone),
        ("mobile", Field::Mobile),
        ("home_phone", Field::HomePhone),
        ("fax", Field::Fax),
        ("extension", Field::Extension),
        ("manager", Field::Manager),
        ("photo", Field::Photo),
        ("im", Field::Im),
        ("country", Field::Country),
        ("nicknames", Field::Nicknames),
        ("partner_sharing", Field::PartnerSharing),
    ];

    pub fn from_name(name: &str) -> Option<Field> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("", |(n, _)| n)
    }
}

/// Which attributes fill which field, each with fallbacks in order of preference.
#[derive(Debug, Clone)]
pub struct Mapping(BTreeMap<Field, Vec<String>>);

impl Mapping {
    pub fn defaults(flavor: Flavor) -> Mapping {
        let common: &[(Field, &str)] = &[
            (Field::GivenName, "givenName"),
            (Field::FamilyName, "sn"),
            (Field::DisplayName, "displayName,cn"),
            (Field::Title, "title"),
            (Field::Email, "mail"),
            (Field::Phone, "telephoneNumber"),
            (Field::Mobile, "mobile"),
            (Field::HomePhone, "homePhone"),
            (Field::Fax, "facsimileTelephoneNumber"),
            (Field::Manager, "manager"),
            (Field::Country, "c,co,countryCode"),
        ];
        let specific: &[(Field, &str)] = match flavor {
            Flavor::OpenLdap => &[
                (Field::ExternalId, "entryUUID"),
                (Field::Department, "ou,departmentNumber"),
                (Field::Location, "l,roomNumber,physicalDeliveryOfficeName"),
                (Field::Photo, "jpegPhoto"),
            ],
            Flavor::ActiveDirectory => &[
                (Field::ExternalId, "objectGUID"),
                (Field::Department, "department"),
                (Field::OrgUnit, "company"),
                (Field::Location, "physicalDeliveryOfficeName,l"),
                (Field::Extension, "ipPhone"),
                (Field::Photo, "thumbnailPhoto,jpegPhoto"),
                (Field::Im, "msRTCSIP-PrimaryUserAddress"),
            ],
        };
        Mapping(
            common
                .iter()
                .chain(specific)
                .map(|(f, attrs)| (*f, split_attrs(attrs)))
                .collect(),
        )
    }

    /// The record an entry maps to (its `external_id` is left for the caller: see [`stable_id`]).
    pub fn record(&self, entry: &SearchEntry) -> SourceRecord {
        let first = |field: Field| -> Option<String> {
            self.attrs(field)
                .iter()
                .find_map(|a| text_values(entry, a).into_iter().next())
        };
        let all = |field: Field| -> Vec<String> {
            self.attrs(field)
                .iter()
                .flat_map(|a| text_values(entry, a))
                .collect()
        };
        let mut phones = Vec::new();
        for (field, kind) in [
            (Field::Phone, PhoneKind::Work),
            (Field::Mobile, PhoneKind::Mobile),
            (Field::HomePhone, PhoneKind::Home),
            (Field::Fax, PhoneKind::Fax),
            (Field::Extension, PhoneKind::Extension),
        ] {
            phones.extend(all(field).into_iter().map(|p| (kind, p)));
        }
        let photo = self.attrs(Field::Photo).iter().find_map(|a| {
            entry
                .bin_attrs
                .get(a)
                .and_then(|v| v.first().cloned())
                .or_else(|| {
                    entry
                        .attrs
                        .get(a)
                        .and_then(|v| v.first().map(|s| s.as_bytes().to_vec()))
                })
        });
        SourceRecord {
            external_id: None,
            given_name: first(Field::GivenName),
            family_name: first(Field::FamilyName),
            display_name: first(Field::DisplayName),
            title: first(Field::Title),
            department: first(Field::Department),
            org_unit: first(Field::OrgUnit),
            location: first(Field::Location),
            manager_ref: first(Field::Manager),
            emails: all(Field::Email),
            phones,
            im: all(Field::Im),
            photo_url: None,
            photo,
            dn: Some(entry.dn.clone()),
            country: first(Field::Country),
            nicknames: all(Field::Nicknames),
            partner_sharing: first(Field::PartnerSharing),
            read_warnings: Vec::new(),
        }
    }

    /// The field an attribute fills, if any.
    pub fn field_of(&self, attr: &str) -> Option<Field> {
        self.0
            .iter()
            .find(|(_, attrs)| attrs.iter().any(|a| a.eq_ignore_ascii_case(attr)))
            .map(|(f, _)| *f)
    }

    pub fn attrs(&self, field: Field) -> &[String] {
        self.0.get(&field).map_or(&[], Vec::as_slice)
    }

    /// Every attribute to ask the server for.
    fn requested(&self, flavor: Flavor) -> Vec<String> {
        let mut attrs: Vec<String> = self.0.values().flatten().cloned().collect();
        if flavor == Flavor::ActiveDirectory {
            attrs.push("userAccountControl".into());
        }
        attrs.sort();
        attrs.dedup();
        attrs
    }
}

fn split_attrs(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(String::from)
        .collect()
}

/// Whether an `ldap://` URL names this machine.
fn is_loopback_url(url: &str) -> bool {
    let rest = url.trim_start_matches("ldap://");
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A directory source, as configured.
#[derive(Debug, Clone)]
pub struct LdapSettings {
    pub name: String,
    pub flavor: Flavor,
    pub url: String,
    pub starttls: bool,
    pub ca_file: Option<PathBuf>,
    pub bind_dn: Option<String>,
    pub base_dn: String,
    pub filter: String,
    pub page_size: i32,
    pub timeout: Duration,
    pub mapping: Mapping,
    config: SourceConfig,
}

impl LdapSettings {
    /// Checks a `[[sources]]` entry of kind `ldap` or `active_directory`. Reads no secrets.
    pub fn from_config(source: &SourceConfig) -> Result<LdapSettings> {
        let bad = |reason: String| Error::Config(format!("source {}: {reason}", source.name));
        let flavor = match source.kind.as_str() {
            "ldap" => Flavor::OpenLdap,
            "active_directory" => Flavor::ActiveDirectory,
            other => return Err(bad(format!("`{other}` is not a directory kind"))),
        };
        let url = source
            .url
            .clone()
            .ok_or_else(|| bad("`url` is required".into()))?;
        if !(url.starts_with("ldap://") || url.starts_with("ldaps://")) {
            return Err(bad(format!(
                "url `{url}` must start with ldap:// or ldaps://"
            )));
        }
        if source.starttls && url.starts_with("ldaps://") {
            return Err(bad("starttls applies to ldap:// URLs only".into()));
        }
        if source.bind_dn.is_some()
            && url.starts_with("ldap://")
            && !source.starttls
            && !source.allow_plaintext
            && !is_loopback_url(&url)
        {
            return Err(bad(format!(
                "the bind password would cross the network in clear to {url}: use ldaps://, \
                 starttls = true, or allow_plaintext = true"
            )));
        }
        let base_dn = source
            .base_dn
            .clone()
            .ok_or_else(|| bad("`base_dn` is required".into()))?;
        let filter = source.filter.clone().unwrap_or_else(|| {
            match flavor {
                Flavor::OpenLdap => "(objectClass=inetOrgPerson)",
                Flavor::ActiveDirectory => "(&(objectCategory=person)(objectClass=user))",
            }
            .to_string()
        });
        ldap3::parse_filter(&filter).map_err(|_| bad(format!("filter `{filter}` is not valid")))?;
        let mut mapping = Mapping::defaults(flavor);
        for (field, attrs) in &source.mapping {
            let f = Field::from_name(field).ok_or_else(|| {
                bad(format!(
                    "unknown field `{field}` in mapping (known: {})",
                    Field::ALL.map(|(n, _)| n).join(", ")
                ))
            })?;
            mapping.0.insert(f, split_attrs(attrs));
        }
        if mapping.attrs(Field::ExternalId).is_empty() {
            return Err(bad("mapping.external_id cannot be empty".into()));
        }
        let page_size = source.page_size.unwrap_or(500);
        if page_size == 0 || page_size > 100_000 {
            return Err(bad("page_size must be between 1 and 100000".into()));
        }
        Ok(LdapSettings {
            name: source.name.clone(),
            flavor,
            url,
            starttls: source.starttls,
            ca_file: source.ca_file.clone(),
            bind_dn: source.bind_dn.clone(),
            base_dn,
            filter,
            page_size: page_size as i32,
            timeout: source.timeout()?,
            mapping,
            config: source.clone(),
        })
    }

    fn err(&self, reason: impl std::fmt::Display) -> Error {
        Error::Directory {
            source_name: self.name.clone(),
            reason: reason.to_string(),
        }
    }

    fn ldap_err(&self, e: LdapError) -> Error {
        match e {
            LdapError::LdapResult { result } if result.rc == 49 => Error::DirectoryAuth {
                source_name: self.name.clone(),
                reason: format!("invalid credentials ({})", result.text.trim()),
            },
            LdapError::LdapResult { result } => self.err(format!(
                "{} (result code {}{})",
                result_name(result.rc),
                result.rc,
                if result.text.trim().is_empty() {
                    String::new()
                } else {
                    format!(": {}", result.text.trim())
                }
            )),
            other => self.err(other),
        }
    }

    /// Connects and binds (anonymously when no `bind_dn` is set).
    pub(crate) async fn connect(&self) -> Result<Ldap> {
        let mut ldap = self.open().await?;
        if let Some(dn) = &self.bind_dn {
            let password = self.config.bind_password()?.unwrap_or_default();
            if password.is_empty() {
                return Err(Error::Config(format!(
                    "source {}: bind_dn is set but no bind_password or bind_password_file",
                    self.name
                )));
            }
            ldap.with_timeout(self.timeout)
                .simple_bind(dn, &password)
                .await
                .and_then(|r| r.success())
                .map_err(|e| self.ldap_err(e))?;
        }
        Ok(ldap)
    }

    /// Whether `dn` binds with `password`, on a connection of its own. An empty password is
    /// never tried: servers take it as an unauthenticated bind that succeeds (RFC 4513 §5.1.2).
    pub(crate) async fn check_password(&self, dn: &str, password: &str) -> Result<bool> {
        if password.is_empty() {
            return Ok(false);
        }
        let mut ldap = self.open().await?;
        let result = ldap
            .with_timeout(self.timeout)
            .simple_bind(dn, password)
            .await
            .and_then(|r| r.success());
        let _ = ldap.unbind().await;
        match result {
            Ok(_) => Ok(true),
            Err(LdapError::LdapResult { result }) if result.rc == 49 => Ok(false),
            Err(e) => Err(self.ldap_err(e)),
        }
    }

    /// Searches `base` (subtree) and returns the entries; for small answers (a login, groups).
    pub(crate) async fn search_entries(
        &self,
        ldap: &mut Ldap,
        base: &str,
        filter: &str,
        attrs: Vec<&str>,
    ) -> Result<Vec<SearchEntry>> {
        let (entries, _) = ldap
            .with_timeout(self.timeout)
            .search(base, Scope::Subtree, filter, attrs)
            .await
            .and_then(|r| r.success())
            .map_err(|e| self.ldap_err(e))?;
        Ok(entries.into_iter().map(SearchEntry::construct).collect())
    }

    /// A connection, not yet bound.
    async fn open(&self) -> Result<Ldap> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_starttls(self.starttls);
        if let Some(ca) = &self.ca_file {
            let config = crate::tls::client_config(Some(ca))
                .map_err(|e| Error::Config(format!("source {}: {e}", self.name)))?;
            settings = settings.set_config(Arc::new(config));
        }
        let (conn, ldap) = LdapConnAsync::with_settings(settings, &self.url)
            .await
            .map_err(|e| self.err(format!("cannot connect to {}: {e}", self.url)))?;
        ldap3::drive!(conn);
        Ok(ldap)
    }

    /// The root DSE attributes we care about.
    async fn root_dse(
        &self,
        ldap: &mut Ldap,
        attrs: &[&str],
    ) -> Result<HashMap<String, Vec<String>>> {
        let (entries, _) = ldap
            .with_timeout(self.timeout)
            .search("", Scope::Base, "(objectClass=*)", attrs.to_vec())
            .await
            .and_then(|r| r.success())
            .map_err(|e| self.ldap_err(e))?;
        Ok(entries
            .into_iter()
            .next()
            .map(|e| SearchEntry::construct(e).attrs)
            .unwrap_or_default())
    }

    /// Reads every entry with a paged search, handing them to `on_entries` a few thousand at a
    /// time as they arrive. Returns how many there were.
    async fn paged(
        &self,
        ldap: &mut Ldap,
        base: &str,
        filter: &str,
        attrs: Vec<String>,
        controls: Vec<RawControl>,
        on_entries: &mut (dyn FnMut(Vec<SearchEntry>) + Send),
    ) -> Result<usize> {
        const CHUNK: usize = 2_000;
        let mut entries = Vec::with_capacity(CHUNK);
        let mut count = 0;
        if !controls.is_empty() {
            ldap.with_controls(controls);
        }
        let mut stream = ldap
            .with_timeout(self.timeout)
            .streaming_search_with(
                PagedResults::new(self.page_size),
                base,
                Scope::Subtree,
                filter,
                attrs,
            )
            .await
            .map_err(|e| self.ldap_err(e))?;
        loop {
            match stream.next().await {
                Ok(Some(entry)) => {
                    if entry.is_ref() || entry.is_intermediate() {
                        continue;
                    }
                    entries.push(SearchEntry::construct(entry));
                    count += 1;
                    if entries.len() == CHUNK {
                        on_entries(std::mem::replace(&mut entries, Vec::with_capacity(CHUNK)));
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(self.err(format!("the read failed after {count} entries: {e}")))
                }
            }
        }
        let result = stream.finish().await;
        // A paged search ends with success; "no such object" under a base that does not exist
        // is an error too, not an empty directory.
        result.success().map_err(|e| self.ldap_err(e))?;
        if !entries.is_empty() {
            on_entries(entries);
        }
        Ok(count)
    }
}

/// Marks a control critical: a server that does not know it must refuse the operation.
trait CriticalControl {
    fn critical_control(self) -> RawControl;
}

impl CriticalControl for RawControl {
    fn critical_control(mut self) -> RawControl {
        self.crit = true;
        self
    }
}

fn result_name(rc: u32) -> &'static str {
    match rc {
        3 => "time limit exceeded",
        4 => "size limit exceeded",
        11 => "administrative limit exceeded",
        12 => "unavailable critical extension",
        32 => "no such object",
        34 => "invalid DN syntax",
        49 => "invalid credentials",
        50 => "insufficient access rights",
        51 => "server busy",
        52 => "server unavailable",
        53 => "server unwilling to perform",
        80 => "other error",
        SYNC_REFRESH_REQUIRED => "sync refresh required",
        _ => "error",
    }
}

/// Where the next incremental read resumes, stored with the source after a successful run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SyncCursor {
    /// RFC 4533 cookie (base64 of the server's opaque bytes).
    ContentSync { url: String, cookie: String },
    /// Active Directory: everything up to this `uSNChanged` on this domain controller is read.
    Usn {
        url: String,
        server: String,
        usn: i64,
    },
}

/// What a directory read produced.
#[derive(Debug, Default)]
pub struct DirectoryRead {
    /// Entries as records, unless they were sent as they arrived (see [`LdapSettings::read`]);
    /// the DN travels in `SourceRecord::dn`, a manager as the DN the directory names.
    pub records: Vec<SourceRecord>,
    /// Normalized DN → stable id of every entry read, to resolve managers named by DN.
    pub ids_by_dn: HashMap<String, String>,
    /// How many entries the server sent.
    pub entries: usize,
    /// Entries that could not become records (no stable id, say).
    pub rejects: Vec<Reject>,
    /// Ids of entries the server reported deleted or disabled (incremental reads).
    pub deleted: Vec<String>,
    /// RFC 4533 present phase: the ids of every entry still there. Whoever the store holds for
    /// the source and is neither here nor in `records` is gone.
    pub present: Option<HashSet<String>>,
    /// The read lists the whole source (a full read).
    pub complete: bool,
    /// Where the next incremental read resumes; `None` when the server offers no way.
    pub cursor: Option<SyncCursor>,
    /// Why an incremental read became a full one.
    pub fell_back: Option<String>,
}

impl LdapSettings {
    /// Reads the directory: incrementally from `cursor` when possible, else in full. A full read
    /// sends its records to `out`, if given, as pages arrive (so they can be validated while the
    /// server is still sending); every other read returns them in `records`. Nothing sent
    /// counts until the read has returned `Ok`.
    pub async fn read(
        &self,
        cursor: Option<&SyncCursor>,
        out: Option<&RecordSender>,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<DirectoryRead> {
        let mut ldap = self.connect().await?;
        let result = self.read_with(&mut ldap, cursor, out, progress).await;
        let _ = ldap.unbind().await;
        result
    }

    /// Reads the one person whose `uid`, `mail`, `sAMAccountName` or `cn` is `who` (escaped:
    /// `*` or `)` in it match themselves, never widen the search).
    pub async fn read_person(&self, who: &str) -> Result<DirectoryRead> {
        let mut ldap = self.connect().await?;
        let value = escape_filter_value(who.trim());
        let filter = format!(
            "(&{}(|(uid={value})(mail={value})(sAMAccountName={value})(cn={value})))",
            self.filter
        );
        let mut read = DirectoryRead::default();
        let result = self
            .paged(
                &mut ldap,
                &self.base_dn,
                &filter,
                self.mapping.requested(self.flavor),
                Vec::new(),
                &mut |entries| {
                    let records = self.convert(entries, false, &mut read);
                    read.records.extend(records);
                },
            )
            .await;
        let _ = ldap.unbind().await;
        result?;
        Ok(read)
    }

    async fn read_with(
        &self,
        ldap: &mut Ldap,
        cursor: Option<&SyncCursor>,
        out: Option<&RecordSender>,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<DirectoryRead> {
        let fell_back = match (self.flavor, cursor) {
            (_, None) => None,
            (Flavor::OpenLdap, Some(SyncCursor::ContentSync { url, cookie }))
                if *url == self.url =>
            {
                match self.read_content_sync(ldap, cookie, progress).await? {
                    Ok(read) => return Ok(read),
                    Err(reason) => Some(reason),
                }
            }
            (Flavor::ActiveDirectory, Some(SyncCursor::Usn { url, server, usn }))
                if *url == self.url =>
            {
                match self.read_usn_changes(ldap, server, *usn).await? {
                    Ok(read) => return Ok(read),
                    Err(reason) => Some(reason),
                }
            }
            (_, Some(_)) => Some("the stored sync state is for another server or kind".into()),
        };
        let mut read = self.read_full(ldap, out, progress).await?;
        read.fell_back = fell_back;
        Ok(read)
    }

    async fn read_full(
        &self,
        ldap: &mut Ldap,
        out: Option<&RecordSender>,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<DirectoryRead> {
        // The resume point is taken before the read, so a change made during it is read again
        // next time rather than missed.
        let cursor = match self.flavor {
            Flavor::OpenLdap => self.current_cookie(ldap).await?,
            Flavor::ActiveDirectory => {
                let dse = self
                    .root_dse(ldap, &["highestCommittedUSN", "dsServiceName"])
                    .await?;
                usn_cursor(&self.url, &dse)
            }
        };
        let mut read = DirectoryRead {
            complete: true,
            cursor,
            ..DirectoryRead::default()
        };
        let mut receiver_gone = false;
        self.paged(
            ldap,
            &self.base_dn,
            &self.filter,
            self.mapping.requested(self.flavor),
            Vec::new(),
            &mut |entries| {
                let records = self.convert(entries, true, &mut read);
                progress(read.entries);
                match out {
                    Some(out) => receiver_gone |= out.send(records).is_err(),
                    None => read.records.extend(records),
                }
            },
        )
        .await?;
        if receiver_gone {
            return Err(self.err("the reader of this sync went away"));
        }
        Ok(read)
    }

    /// The server's current RFC 4533 cookie, got with a sync request that matches nothing.
    async fn current_cookie(&self, ldap: &mut Ldap) -> Result<Option<SyncCursor>> {
        let dse = self.root_dse(ldap, &["supportedControl"]).await?;
        let supported = dse
            .get("supportedControl")
            .is_some_and(|c| c.iter().any(|oid| oid == SYNC_REQUEST_OID));
        if !supported {
            return Ok(None);
        }
        let request = RawControl::from(SyncRequest {
            mode: RefreshMode::RefreshOnly,
            cookie: None,
            reload_hint: false,
        })
        .critical_control();
        let (_, result) = ldap
            .with_controls(vec![request])
            .with_timeout(self.timeout)
            .search(
                &self.base_dn,
                Scope::Base,
                "(objectClass=switchboardMatchesNothing)",
                vec!["1.1"],
            )
            .await
            .map_err(|e| self.ldap_err(e))?
            .success()
            .map_err(|e| self.ldap_err(e))?;
        let cookie = result
            .ctrls
            .iter()
            .find(|c| matches!(c.0, Some(ControlType::SyncDone)))
            .and_then(|c| c.1.val.as_ref().map(|_| c.1.parse::<SyncDone>()))
            .and_then(|done| done.cookie);
        Ok(cookie.map(|cookie| SyncCursor::ContentSync {
            url: self.url.clone(),
            cookie: base64_encode(&cookie),
        }))
    }

    /// RFC 4533 refreshOnly from a cookie. `Ok(Err(reason))` asks for a full read instead.
    async fn read_content_sync(
        &self,
        ldap: &mut Ldap,
        cookie: &str,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<std::result::Result<DirectoryRead, String>> {
        let Some(old_cookie) = base64_decode(cookie) else {
            return Ok(Err("the stored cookie is damaged".into()));
        };
        let request = RawControl::from(SyncRequest {
            mode: RefreshMode::RefreshOnly,
            cookie: Some(old_cookie.clone()),
            reload_hint: false,
        })
        .critical_control();
        let mut stream = ldap
            .with_controls(vec![request])
            .with_timeout(self.timeout)
            .streaming_search(
                &self.base_dn,
                Scope::Subtree,
                &self.filter,
                self.mapping.requested(self.flavor),
            )
            .await
            .map_err(|e| self.ldap_err(e))?;
        let mut changed: Vec<SearchEntry> = Vec::new();
        let mut deleted: HashSet<Vec<u8>> = HashSet::new();
        let mut present: HashSet<Vec<u8>> = HashSet::new();
        let mut new_cookie: Option<Vec<u8>> = None;
        loop {
            let entry = match stream.next().await {
                Ok(Some(entry)) => entry,
                Ok(None) => break,
                Err(e) => {
                    return Err(self.err(format!(
                        "the incremental read failed after {} changes: {e}",
                        changed.len()
                    )))
                }
            };
            if entry.is_intermediate() {
                match parse_syncinfo(entry) {
                    SyncInfo::NewCookie(c) => new_cookie = Some(c),
                    SyncInfo::RefreshDelete { cookie, .. }
                    | SyncInfo::RefreshPresent { cookie, .. } => {
                        if cookie.is_some() {
                            new_cookie = cookie;
                        }
                    }
                    SyncInfo::SyncIdSet {
                        cookie,
                        refresh_deletes,
                        sync_uuids,
                    } => {
                        if cookie.is_some() {
                            new_cookie = cookie;
                        }
                        if refresh_deletes {
                            deleted.extend(sync_uuids);
                        } else {
                            present.extend(sync_uuids);
                        }
                    }
                }
                continue;
            }
            if entry.is_ref() {
                continue;
            }
            let Some(state) = sync_state(&entry) else {
                return Ok(Err("the server sent an entry without a sync state".into()));
            };
            if let Some(c) = state.cookie {
                new_cookie = Some(c);
            }
            match state.state {
                EntryState::Add | EntryState::Modify => {
                    changed.push(SearchEntry::construct(entry));
                    progress(changed.len());
                }
                EntryState::Present => {
                    present.insert(state.entry_uuid);
                }
                EntryState::Delete => {
                    deleted.insert(state.entry_uuid);
                }
            }
        }
        let result = stream.finish().await;
        if result.rc == SYNC_REFRESH_REQUIRED {
            return Ok(Err(
                "the server no longer has the changes since the stored cookie".into(),
            ));
        }
        if matches!(result.rc, 12 | 53) {
            return Ok(Err(format!(
                "the server refused content synchronization ({})",
                result_name(result.rc)
            )));
        }
        let result = result.success().map_err(|e| self.ldap_err(e))?;
        let done = result
            .ctrls
            .iter()
            .find(|c| matches!(c.0, Some(ControlType::SyncDone)))
            .and_then(|c| c.1.val.as_ref().map(|_| c.1.parse::<SyncDone>()));
        let Some(done) = done else {
            return Ok(Err(
                "the server ended the sync without a Sync Done control".into()
            ));
        };
        if done.cookie.is_some() {
            new_cookie = done.cookie;
        }
        let mut read = DirectoryRead::default();
        read.records = self.convert(changed, false, &mut read);
        read.deleted
            .extend(deleted.iter().filter_map(|u| uuid_text(u)));
        // refreshDeletes FALSE: the server used the present phase, so anyone not mentioned is gone.
        if !done.refresh_deletes {
            read.present = Some(present.iter().filter_map(|u| uuid_text(u)).collect());
        }
        read.cursor = Some(SyncCursor::ContentSync {
            url: self.url.clone(),
            // No new cookie means nothing changed: resume from the same point.
            cookie: base64_encode(&new_cookie.unwrap_or(old_cookie)),
        });
        Ok(Ok(read))
    }

    /// Active Directory: entries with `uSNChanged` above the cursor, and deleted objects.
    async fn read_usn_changes(
        &self,
        ldap: &mut Ldap,
        server: &str,
        usn: i64,
    ) -> Result<std::result::Result<DirectoryRead, String>> {
        let dse = self
            .root_dse(
                ldap,
                &[
                    "highestCommittedUSN",
                    "dsServiceName",
                    "defaultNamingContext",
                ],
            )
            .await?;
        let Some(cursor) = usn_cursor(&self.url, &dse) else {
            return Ok(Err("the server does not publish highestCommittedUSN".into()));
        };
        let SyncCursor::Usn {
            server: ref now_server,
            ..
        } = cursor
        else {
            return Ok(Err("unexpected cursor".into()));
        };
        if now_server != server {
            return Ok(Err(format!(
                "another domain controller answered ({now_server}); its USNs are not comparable"
            )));
        }
        let since = format!("(uSNChanged>={})", usn.saturating_add(1));
        let filter = format!("(&{}{since})", self.filter);
        let mut read = DirectoryRead::default();
        self.paged(
            ldap,
            &self.base_dn,
            &filter,
            self.mapping.requested(self.flavor),
            Vec::new(),
            &mut |entries| {
                let records = self.convert(entries, false, &mut read);
                read.records.extend(records);
            },
        )
        .await?;
        // Deleted objects keep their objectGUID and move to the Deleted Objects container.
        let naming_context = dse
            .get("defaultNamingContext")
            .and_then(|v| v.first())
            .cloned()
            .unwrap_or_else(|| self.base_dn.clone());
        let show_deleted = RawControl {
            ctype: SHOW_DELETED_OID.into(),
            crit: true,
            val: None,
        };
        let id_attr = self
            .mapping
            .attrs(Field::ExternalId)
            .first()
            .cloned()
            .unwrap_or_else(|| "objectGUID".into());
        let id_attrs = std::slice::from_ref(&id_attr);
        let mut tombstones = Vec::new();
        self.paged(
            ldap,
            &naming_context,
            &format!("(&(isDeleted=TRUE)(objectClass=user){since})"),
            vec![id_attr.clone()],
            vec![show_deleted],
            &mut |entries| {
                tombstones.extend(entries.iter().filter_map(|e| stable_id(e, id_attrs)));
            },
        )
        .await?;
        read.deleted.extend(tombstones);
        read.cursor = Some(cursor);
        Ok(Ok(read))
    }

    /// Turns entries into records; disabled AD accounts become deletions (in a partial read;
    /// a full read just leaves them out), entries without a stable id refusals. Notes every
    /// entry's DN in `read.ids_by_dn`.
    fn convert(
        &self,
        entries: Vec<SearchEntry>,
        complete: bool,
        read: &mut DirectoryRead,
    ) -> Vec<SourceRecord> {
        let id_attrs = self.mapping.attrs(Field::ExternalId);
        let mut records = Vec::with_capacity(entries.len());
        read.entries += entries.len();
        for entry in entries {
            let Some(id) = stable_id(&entry, id_attrs) else {
                read.rejects.push(Reject {
                    line: None,
                    external_id: None,
                    dn: Some(entry.dn.clone()),
                    reason: format!(
                        "entry `{}` has no {} (the stable id), so it cannot be tracked",
                        entry.dn,
                        id_attrs.join("/")
                    ),
                });
                continue;
            };
            read.ids_by_dn.insert(normalize_dn(&entry.dn), id.clone());
            if self.flavor == Flavor::ActiveDirectory && is_disabled(&entry) {
                if !complete {
                    read.deleted.push(id);
                }
                continue;
            }
            let mut record = self.mapping.record(&entry);
            record.external_id = Some(id);
            records.push(record);
        }
        records
    }
}

/// Values of an attribute as text, whatever case the server spelled its name in.
fn text_values(entry: &SearchEntry, attr: &str) -> Vec<String> {
    entry
        .attrs
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(attr))
        .map(|(_, values)| values.clone())
        .unwrap_or_default()
}

/// The entry's stable id: a textual UUID (`entryUUID`), a binary GUID (`objectGUID`), or any
/// other attribute's text.
pub fn stable_id(entry: &SearchEntry, attrs: &[String]) -> Option<String> {
    attrs.iter().find_map(|attr| {
        if let Some(v) = text_values(entry, attr).into_iter().next() {
            let v = v.trim().to_string();
            return Some(match Uuid::parse_str(&v) {
                Ok(u) => u.to_string(),
                Err(_) => v,
            })
            .filter(|v| !v.is_empty());
        }
        let bytes = entry
            .bin_attrs
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(attr))
            .and_then(|(_, v)| v.first())?;
        // objectGUID is 16 bytes in Microsoft's mixed-endian layout.
        Some(match <[u8; 16]>::try_from(bytes.as_slice()) {
            Ok(raw) => Uuid::from_bytes_le(raw).to_string(),
            Err(_) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
        })
    })
}

pub fn is_disabled(entry: &SearchEntry) -> bool {
    text_values(entry, "userAccountControl")
        .first()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .is_some_and(|flags| flags & ACCOUNT_DISABLE != 0)
}

fn sync_state(entry: &ResultEntry) -> Option<SyncState> {
    entry
        .1
        .iter()
        .find(|c| matches!(c.0, Some(ControlType::SyncState)))
        .filter(|c| c.1.val.is_some())
        .map(|c| c.1.parse::<SyncState>())
}

fn uuid_text(bytes: &[u8]) -> Option<String> {
    Uuid::from_slice(bytes).ok().map(|u| u.to_string())
}

fn usn_cursor(url: &str, dse: &HashMap<String, Vec<String>>) -> Option<SyncCursor> {
    let usn = dse
        .get("highestCommittedUSN")?
        .first()?
        .trim()
        .parse::<i64>()
        .ok()?;
    let server = dse
        .get("dsServiceName")
        .and_then(|v| v.first())
        .cloned()
        .unwrap_or_default();
    Some(SyncCursor::Usn {
        url: url.to_string(),
        server,
        usn,
    })
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()
        .filter(|b| !b.is_empty())
}

/// Where a full read sends records as they arrive.
pub type RecordSender = tokio::sync::mpsc::UnboundedSender<Vec<SourceRecord>>;

/// Escapes a value for use inside an LDAP filter (RFC 4515).
pub fn escape_filter_value(value: &str) -> String {
    ldap3::ldap_escape(value).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(attrs: &[(&str, &[&str])]) -> SearchEntry {
        SearchEntry {
            dn: "uid=jdoe,ou=People,dc=example,dc=com".into(),
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
            bin_attrs: HashMap::new(),
        }
    }

    fn settings(kind: &str) -> LdapSettings {
        LdapSettings::from_config(&SourceConfig {
            name: "corp".into(),
            kind: kind.into(),
            default_region: None,
            url: Some("ldap://127.0.0.1:3890".into()),
            base_dn: Some("dc=example,dc=com".into()),
            ..Default::default()
        })
        .expect("valid")
    }

    #[test]
    fn filter_values_are_escaped() {
        assert_eq!(escape_filter_value("a*(b)\\c\0"), "a\\2a\\28b\\29\\5cc\\00");
    }

    #[test]
    fn object_guids_read_in_microsoft_order() {
        let mut e = entry(&[]);
        e.bin_attrs.insert(
            "objectGUID".into(),
            vec![vec![
                0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
                0xee, 0xff,
            ]],
        );
        assert_eq!(
            stable_id(&e, &["objectGUID".into()]).as_deref(),
            Some("00112233-4455-6677-8899-aabbccddeeff")
        );
    }

    #[test]
    fn inet_org_person_maps_to_a_record() {
        let s = settings("ldap");
        let e = entry(&[
            ("entryUUID", &["6A0B2C4E-1111-2222-3333-444455556666"]),
            ("cn", &["John Doe"]),
            ("givenName", &["John"]),
            ("sn", &["Doe"]),
            ("mail", &["john@example.com", "jd@example.com"]),
            ("telephoneNumber", &["+1 212 555 0100", "+1 212 555 0101"]),
            ("mobile", &["+1 917 555 0100"]),
            ("departmentNumber", &["Sales"]),
            ("roomNumber", &["B 2.14"]),
        ]);
        let mut read = DirectoryRead::default();
        let records = s.convert(vec![e], true, &mut read);
        assert!(read.rejects.is_empty());
        let r = &records[0];
        assert_eq!(
            r.external_id.as_deref(),
            Some("6a0b2c4e-1111-2222-3333-444455556666")
        );
        assert_eq!(r.display_name.as_deref(), Some("John Doe"));
        assert_eq!(r.emails.len(), 2);
        assert_eq!(r.phones.len(), 3);
        assert_eq!(r.department.as_deref(), Some("Sales"));
        assert_eq!(r.location.as_deref(), Some("B 2.14"));
    }

    #[test]
    fn a_display_name_other_than_the_given_name_is_a_nickname() {
        let s = settings("ldap");
        let e = entry(&[
            ("entryUUID", &["6A0B2C4E-1111-2222-3333-444455556667"]),
            ("cn", &["Margaret Hughes"]),
            ("displayName", &["Peggy Hughes"]),
            ("givenName", &["Margaret"]),
            ("sn", &["Hughes"]),
        ]);
        let mut read = DirectoryRead::default();
        let record = s.convert(vec![e], true, &mut read).remove(0);
        let phones = crate::domain::PhoneNormalizer::new("GB").expect("region");
        let rec = record.normalize(&phones).expect("kept");
        assert_eq!(rec.display_name, "Peggy Hughes");
        assert_eq!(rec.nicknames, ["Peggy"]);
    }

    #[test]
    fn a_mapped_attribute_says_whether_partners_see_someone() {
        let mut config = SourceConfig {
            name: "corp".into(),
            kind: "ldap".into(),
            url: Some("ldap://127.0.0.1:3890".into()),
            base_dn: Some("dc=example,dc=com".into()),
            ..Default::default()
        };
        config
            .mapping
            .insert("partner_sharing".into(), "sbShareWithPartners".into());
        let s = LdapSettings::from_config(&config).expect("valid");
        let phones = crate::domain::PhoneNormalizer::new("GB").expect("region");
        let shared = |value: &[&str]| {
            let mut attrs = vec![
                ("entryUUID", &["6A0B2C4E-1111-2222-3333-444455556667"][..]),
                ("cn", &["Margaret Hughes"][..]),
            ];
            if !value.is_empty() {
                attrs.push(("sbShareWithPartners", value));
            }
            let mut read = DirectoryRead::default();
            let record = s.convert(vec![entry(&attrs)], true, &mut read).remove(0);
            record.normalize(&phones).expect("kept, whatever the value")
        };
        assert_eq!(shared(&["FALSE"]).partner_sharing, Some(false));
        assert_eq!(shared(&["TRUE"]).partner_sharing, Some(true));
        assert_eq!(shared(&[]).partner_sharing, None);
        let odd = shared(&["perhaps"]);
        assert_eq!(odd.partner_sharing, None);
        assert!(
            odd.warnings.iter().any(|w| w.contains("partner_sharing")),
            "{:?}",
            odd.warnings
        );
    }

    #[test]
    fn disabled_ad_accounts_are_deletions_not_records() {
        let s = settings("active_directory");
        let mut e = entry(&[("cn", &["Gone"]), ("userAccountControl", &["514"])]);
        e.bin_attrs.insert("objectGUID".into(), vec![vec![7; 16]]);
        let mut read = DirectoryRead::default();
        assert!(s.convert(vec![e], false, &mut read).is_empty());
        assert_eq!(read.deleted.len(), 1);
    }

    #[test]
    fn an_entry_without_a_stable_id_is_refused() {
        let s = settings("ldap");
        let mut read = DirectoryRead::default();
        assert!(s
            .convert(vec![entry(&[("cn", &["No Id"])])], true, &mut read)
            .is_empty());
        assert!(read.rejects[0].reason.contains("entryUUID"));
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut c = SourceConfig {
            name: "corp".into(),
            kind: "ldap".into(),
            default_region: None,
            url: Some("http://x".into()),
            base_dn: Some("dc=x".into()),
            ..Default::default()
        };
        assert!(LdapSettings::from_config(&c).is_err());
        c.url = Some("ldap://x".into());
        c.filter = Some("(broken".into());
        assert!(LdapSettings::from_config(&c).is_err());
        c.filter = None;
        c.mapping.insert("nickname".into(), "x".into());
        assert!(LdapSettings::from_config(&c).is_err());
    }
}
