//! Who is calling, and what they may see. Principals prove themselves with a session cookie
//! (staff, signed in by OpenID Connect, an LDAP/AD bind or a local account) or a bearer token
//! (service tokens); each gets a role and a [`Policy`]. `http::auth` asks [`Access`] to resolve
//! every request and checks the route's requirement; handlers apply the policy.

pub mod app_passwords;
pub mod devices;
pub mod directory;
pub mod oidc;
pub mod partners;
pub mod policy;
pub mod secret;
pub mod sessions;
pub mod throttle;
pub mod tokens;
pub mod users;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::presence::Clock;
pub use policy::{PersonField, Policy, PresenceLevel, Scope};

/// What a staff member or a service token may do. Ordered: each role can do what the ones
/// before it can.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Search people, look them up, see their presence.
    Viewer,
    /// A viewer who also keeps absence notes for others.
    Receptionist,
    /// Everything: sync runs, tokens, audit, health detail.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Receptionist => "receptionist",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Role> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "receptionist" => Ok(Role::Receptionist),
            "admin" => Ok(Role::Admin),
            other => Err(Error::invalid(
                "role",
                format!("`{other}` is not a role (viewer, receptionist, admin)"),
            )),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// A person signed in to the console (session cookie).
    Staff,
    /// A script or integration (bearer token).
    Service,
    /// Nobody in particular: the server runs open (`demo --open`, `access.open`).
    Open,
    /// A desk phone or mail client reading the address book (`switchboard device add`), or an
    /// anonymous LDAP client where anonymous binds are allowed.
    Device,
    /// A partner company (`switchboard partner add`): the shared directory only.
    Partner,
}

/// Who is calling, as the request handlers see them.
#[derive(Debug, Clone)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// `local:NAME`, `ldap:SOURCE:DN`, `oidc:ISSUER#SUB`, `token:NAME`, `open`.
    pub name: String,
    pub display_name: String,
    pub role: Role,
    /// The person this principal is, when known (by email): they may edit their own absence.
    pub person_id: Option<Uuid>,
    pub policy: Arc<Policy>,
    /// The partner company behind a partner key: its ids, rate and quota.
    pub partner: Option<Arc<partners::Partner>>,
}

impl Principal {
    pub fn is_staff(&self) -> bool {
        matches!(self.kind, PrincipalKind::Staff | PrincipalKind::Open)
    }
}

/// Roles from group names (an OIDC groups claim, LDAP/AD group membership). A group matches by
/// its whole name or DN, or by its first RDN value (`cn=sb-admins,ou=groups,…` matches
/// `sb-admins`), without regard to case. The highest matching role wins.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleGroups {
    #[serde(default)]
    pub admin: Vec<String>,
    #[serde(default)]
    pub receptionist: Vec<String>,
    #[serde(default)]
    pub viewer: Vec<String>,
    /// The role of someone in none of these groups; absent: they cannot sign in.
    #[serde(default)]
    pub default_role: Option<Role>,
}

impl RoleGroups {
    pub fn role_of<S: AsRef<str>>(&self, groups: &[S]) -> Option<Role> {
        let matches = |wanted: &[String]| {
            groups.iter().any(|g| {
                let g = g.as_ref();
                let rdn = g
                    .split(',')
                    .next()
                    .and_then(|r| r.split_once('='))
                    .map(|(_, v)| v.trim());
                wanted.iter().any(|w| {
                    w.eq_ignore_ascii_case(g.trim())
                        || rdn.is_some_and(|v| w.eq_ignore_ascii_case(v))
                })
            })
        };
        if matches(&self.admin) {
            Some(Role::Admin)
        } else if matches(&self.receptionist) {
            Some(Role::Receptionist)
        } else if matches(&self.viewer) {
            Some(Role::Viewer)
        } else {
            self.default_role
        }
    }
}

/// `[access]`: how people sign in and what each role sees.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// Serve without sign-in: every request acts as an admin. Off unless set; `demo --open` sets
    /// it for loopback only.
    pub open: bool,
    /// A session unused this long ends (`8h`).
    pub session_idle: String,
    /// A session ends this long after sign-in, however busy (`7d`).
    pub session_absolute: String,
    /// The URL people reach Switchboard at (`https://directory.example.com`): the OpenID Connect
    /// redirect is built from it, and session cookies are `Secure` when it is https.
    pub public_url: Option<String>,
    /// Addresses (or `addr/prefix` networks) that may read `/metrics` without a token.
    pub metrics_allow: Vec<String>,
    /// Policy per staff role (and service tokens of that role). Default: everyone, everything
    /// but home numbers for viewers and receptionists; everything for admins.
    pub policies: HashMap<Role, Policy>,
    /// Failed sign-ins allowed per account and per address within `throttle_window`.
    pub throttle_per_account: usize,
    pub throttle_per_address: usize,
    pub throttle_window: String,
    pub oidc: Option<oidc::OidcConfig>,
    pub ldap: Option<directory::LdapLoginConfig>,
    /// Presence streams (SSE) one principal may hold open at once; more are refused with 429.
    pub max_streams_per_principal: usize,
    /// Requests per second each principal may make, on average (0: no limit); past it, 429
    /// with `Retry-After`.
    pub rate_per_second: f64,
    /// How many requests a principal may make at once before the rate applies.
    pub rate_burst: f64,
    /// Reverse proxies (addresses or networks) whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<String>,
    /// Host names (with port, if not the default) requests may be addressed to, besides the
    /// host of `public_url`. With neither set, any Host is accepted.
    pub allowed_hosts: Vec<String>,
}

impl Default for AccessConfig {
    fn default() -> Self {
        let limits = throttle::Limits::default();
        AccessConfig {
            open: false,
            session_idle: "8h".into(),
            session_absolute: "7d".into(),
            public_url: None,
            metrics_allow: Vec::new(),
            policies: HashMap::new(),
            throttle_per_account: limits.per_account,
            throttle_per_address: limits.per_address,
            throttle_window: "15m".into(),
            oidc: None,
            ldap: None,
            max_streams_per_principal: 16,
            rate_per_second: 100.0,
            rate_burst: 200.0,
            trusted_proxies: Vec::new(),
            allowed_hosts: Vec::new(),
        }
    }
}

/// `[audit]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Also record every lookup by staff (partners' and services' are always recorded).
    pub staff_lookups: bool,
}

fn duration(key: &str, value: &str) -> Result<std::time::Duration> {
    humantime::parse_duration(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| Error::Config(format!("{key}: `{value}` is not a duration like 8h or 7d")))
}

/// A network for `metrics_allow`: an address, or `address/prefix`.
#[derive(Debug, Clone, Copy)]
struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    fn parse(s: &str) -> Result<Network> {
        let bad = || {
            Error::Config(format!(
                "access.metrics_allow: `{s}` is not an address or network"
            ))
        };
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        Ok(Network { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let plain = |ip: IpAddr| match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        let (net, addr, len) = match (plain(self.addr), plain(ip)) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                (u128::from(u32::from(a)), u128::from(u32::from(b)), 32)
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
            _ => return false,
        };
        let prefix = u32::from(self.prefix);
        if prefix == 0 {
            return true;
        }
        (net >> (len - prefix)) == (addr >> (len - prefix))
    }
}

/// The Host values of `public_url` and `allowed_hosts`.
fn allowed_hosts(config: &AccessConfig) -> Result<Vec<String>> {
    let mut hosts = config.allowed_hosts.clone();
    if let Some(url) = &config.public_url {
        let authority = url
            .split_once("://")
            .map(|(_, rest)| rest)
            .and_then(|rest| rest.split('/').next())
            .filter(|a| !a.is_empty())
            .ok_or_else(|| {
                Error::Config(format!("access.public_url `{url}` is not an http(s) URL"))
            })?;
        hosts.push(authority.to_string());
        // Clients may write the scheme's default port in Host, or leave it out.
        let default = if url.starts_with("https://") {
            ":443"
        } else {
            ":80"
        };
        match authority.strip_suffix(default) {
            Some(bare) => hosts.push(bare.to_string()),
            None if !authority.contains(':') || authority.ends_with(']') => {
                hosts.push(format!("{authority}{default}"))
            }
            None => {}
        }
    }
    Ok(hosts)
}

/// A resolved session or token, remembered briefly so that a busy console does not cost a
/// database round trip per keystroke.
#[derive(Clone)]
struct Cached<T> {
    value: Option<T>,
    fetched: DateTime<Utc>,
}

/// How long a looked-up session or token is trusted before it is read again: sign-out and
/// revocation in another process take effect within this long (in this one, at once).
const CACHE_FOR: chrono::Duration = chrono::Duration::seconds(5);

/// The access layer's state: configuration, stores, caches, throttling.
pub struct Access {
    pub config: AccessConfig,
    pub(crate) pool: PgPool,
    pub(crate) clock: Clock,
    policies: HashMap<Role, Arc<Policy>>,
    open_principal: Option<Principal>,
    metrics_allow: Vec<Network>,
    pub(crate) session_idle: chrono::Duration,
    pub(crate) session_absolute: chrono::Duration,
    sessions: Mutex<HashMap<[u8; 32], Cached<sessions::Session>>>,
    tokens: Mutex<HashMap<[u8; 32], Cached<Principal>>>,
    throttle: Mutex<throttle::Throttle>,
    pub(crate) oidc: Option<oidc::Oidc>,
    pub(crate) ldap: Option<directory::LdapLogin>,
    streams: Arc<Mutex<HashMap<String, usize>>>,
    /// Token buckets per principal: tokens left, and when they were counted.
    buckets: Mutex<HashMap<String, (f64, DateTime<Utc>)>>,
    trusted_proxies: Vec<Network>,
    allowed_hosts: Vec<String>,
    /// The server terminates TLS itself.
    served_over_tls: bool,
    /// `[partners]`: defaults and limits of the shared directory.
    pub partners: partners::PartnersConfig,
    partner_keys: partners::Cache,
    /// Partners' daily counts and sweep detection.
    pub partner_usage: partners::Usage,
    /// `partners.sweep_window`, read once.
    sweep_window: chrono::Duration,
}

/// One open presence stream of a principal; the count goes down when it is dropped (the
/// stream ended or the client went away).
pub struct StreamSlot {
    streams: Arc<Mutex<HashMap<String, usize>>>,
    principal: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut streams = lock(&self.streams);
        if let Some(n) = streams.get_mut(&self.principal) {
            *n -= 1;
            if *n == 0 {
                streams.remove(&self.principal);
            }
        }
    }
}

impl Access {
    /// Checks the configuration; reads secrets (OIDC client secret, LDAP bind password) lazily.
    pub fn new(
        config: &AccessConfig,
        sources: &[crate::config::SourceConfig],
        pool: PgPool,
        clock: Clock,
    ) -> Result<Access> {
        let idle = duration("access.session_idle", &config.session_idle)?;
        let absolute = duration("access.session_absolute", &config.session_absolute)?;
        let window = duration("access.throttle_window", &config.throttle_window)?;
        let mut policies = HashMap::new();
        for role in [Role::Viewer, Role::Receptionist, Role::Admin] {
            let policy = config.policies.get(&role).cloned().unwrap_or_else(|| {
                if role == Role::Admin {
                    Policy::everything()
                } else {
                    Policy::staff_default()
                }
            });
            policies.insert(role, Arc::new(policy));
        }
        let metrics_allow = config
            .metrics_allow
            .iter()
            .map(|s| Network::parse(s))
            .collect::<Result<Vec<_>>>()?;
        let open_principal = config.open.then(|| Principal {
            kind: PrincipalKind::Open,
            name: "open".into(),
            display_name: "Anyone (open server)".into(),
            role: Role::Admin,
            person_id: None,
            policy: Arc::new(Policy::everything()),
            partner: None,
        });
        let oidc = config
            .oidc
            .as_ref()
            .map(|c| oidc::Oidc::new(c, config.public_url.as_deref()))
            .transpose()?;
        let ldap = config
            .ldap
            .as_ref()
            .map(|c| directory::LdapLogin::new(c, sources))
            .transpose()?;
        Ok(Access {
            config: config.clone(),
            pool,
            clock,
            policies,
            open_principal,
            metrics_allow,
            session_idle: chrono::Duration::from_std(idle).unwrap_or(chrono::Duration::hours(8)),
            session_absolute: chrono::Duration::from_std(absolute)
                .unwrap_or(chrono::Duration::days(7)),
            sessions: Mutex::default(),
            tokens: Mutex::default(),
            throttle: Mutex::new(throttle::Throttle::new(throttle::Limits {
                per_account: config.throttle_per_account.max(1),
                per_address: config.throttle_per_address.max(1),
                window,
            })),
            oidc,
            ldap,
            streams: Arc::default(),
            buckets: Mutex::default(),
            trusted_proxies: config
                .trusted_proxies
                .iter()
                .map(|s| Network::parse(s))
                .collect::<Result<Vec<_>>>()?,
            allowed_hosts: allowed_hosts(config)?,
            served_over_tls: false,
            partners: partners::PartnersConfig::default(),
            partner_keys: Mutex::default(),
            partner_usage: partners::Usage::default(),
            sweep_window: chrono::Duration::minutes(10),
        })
    }

    /// Says that the server terminates TLS itself (cookies then get `Secure`).
    pub fn served_over_tls(mut self, tls: bool) -> Access {
        self.served_over_tls = tls;
        self
    }

    /// The shared directory's settings (`[partners]`).
    pub fn with_partners(mut self, config: partners::PartnersConfig) -> Access {
        if let Some(window) = humantime::parse_duration(&config.sweep_window)
            .ok()
            .and_then(|d| chrono::Duration::from_std(d).ok())
        {
            self.sweep_window = window;
        }
        self.partners = config;
        self
    }

    /// Takes one request from `principal`'s bucket; `Err(seconds)` when it is empty.
    pub fn rate(&self, principal: &str) -> std::result::Result<(), u64> {
        self.rate_with(
            principal,
            self.config.rate_per_second,
            self.config.rate_burst.max(1.0),
        )
    }

    /// As `rate`, with a rate and burst of the principal's own (partners).
    pub fn rate_with(
        &self,
        principal: &str,
        rate: f64,
        burst: f64,
    ) -> std::result::Result<(), u64> {
        let burst = burst.max(1.0);
        if rate <= 0.0 {
            return Ok(());
        }
        let now = self.now();
        let mut buckets = lock(&self.buckets);
        if buckets.len() > 100_000 {
            // Full buckets are the same as none.
            buckets.retain(|_, (tokens, at)| {
                *tokens + (now - *at).num_milliseconds() as f64 / 1000.0 * rate < burst
            });
        }
        let (tokens, at) = buckets.entry(principal.to_string()).or_insert((burst, now));
        let elapsed = (now - *at).num_microseconds().unwrap_or(i64::MAX).max(0) as f64 / 1e6;
        *tokens = (*tokens + elapsed * rate).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil().max(1.0) as u64)
        }
    }

    /// The client's address: the peer, or, when the peer is a trusted proxy, the last address
    /// in `X-Forwarded-For` that is not itself a trusted proxy.
    pub fn client_ip(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        let trusted = |ip: IpAddr| self.trusted_proxies.iter().any(|n| n.contains(ip));
        if !trusted(peer) {
            return peer;
        }
        forwarded_for
            .into_iter()
            .flat_map(|v| v.rsplit(','))
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .find(|ip| !trusted(*ip))
            .unwrap_or(peer)
    }

    /// Whether a request addressed to `host` (its Host header) is for us.
    pub fn host_allowed(&self, host: Option<&str>) -> bool {
        if self.allowed_hosts.is_empty() {
            return true;
        }
        host.is_some_and(|h| {
            self.allowed_hosts
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(h.trim()))
        })
    }

    /// A slot for one more open presence stream of `principal`, or 429 past the cap.
    pub fn stream_slot(&self, principal: &str) -> Result<StreamSlot> {
        let mut streams = lock(&self.streams);
        let open = streams.entry(principal.to_string()).or_insert(0);
        if *open >= self.config.max_streams_per_principal.max(1) {
            return Err(Error::TooManyRequests {
                retry_after: 5,
                what: format!(
                    "open presence streams ({} at most per principal)",
                    self.config.max_streams_per_principal
                ),
            });
        }
        *open += 1;
        Ok(StreamSlot {
            streams: self.streams.clone(),
            principal: principal.to_string(),
        })
    }

    /// Checks `[access]` as `new` would, without a database.
    pub fn check(config: &AccessConfig, sources: &[crate::config::SourceConfig]) -> Result<()> {
        duration("access.session_idle", &config.session_idle)?;
        duration("access.session_absolute", &config.session_absolute)?;
        duration("access.throttle_window", &config.throttle_window)?;
        for s in config.metrics_allow.iter().chain(&config.trusted_proxies) {
            Network::parse(s)?;
        }
        allowed_hosts(config)?;
        if let Some(c) = &config.oidc {
            oidc::Oidc::new(c, config.public_url.as_deref())?;
        }
        if let Some(c) = &config.ldap {
            directory::LdapLogin::new(c, sources)?;
        }
        Ok(())
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    pub fn policy(&self, role: Role) -> Arc<Policy> {
        self.policies
            .get(&role)
            .cloned()
            .unwrap_or_else(|| Arc::new(Policy::staff_default()))
    }

    /// The principal of an open server, if it runs open.
    pub fn open_principal(&self) -> Option<&Principal> {
        self.open_principal.as_ref()
    }

    pub fn metrics_allowed(&self, ip: Option<IpAddr>) -> bool {
        ip.is_some_and(|ip| self.metrics_allow.iter().any(|n| n.contains(ip)))
    }

    /// Whether cookies get `Secure`: when people reach us over https.
    pub fn secure_cookies(&self) -> bool {
        self.served_over_tls
            || self
                .config
                .public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://"))
    }

    /// The service principal of a bearer token; `None` for an unknown or revoked one.
    pub async fn principal_of_token(&self, token: &str) -> Result<Option<Principal>> {
        let key = secret::digest(token);
        let now = self.now();
        if let Some(hit) = lock(&self.tokens).get(&key) {
            if now - hit.fetched < CACHE_FOR {
                return Ok(hit.value.clone());
            }
        }
        let found = tokens::find(&self.pool, &key).await?;
        let principal = found.map(|(name, role)| Principal {
            kind: PrincipalKind::Service,
            display_name: name.clone(),
            name: format!("token:{name}"),
            role,
            person_id: None,
            policy: self.policy(role),
            partner: None,
        });
        let mut cache = lock(&self.tokens);
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(
            key,
            Cached {
                value: principal.clone(),
                fetched: now,
            },
        );
        Ok(principal)
    }

    /// The partner of an API key, and its principal; `None` for an unknown key, a revoked
    /// partner or a key rotated out past its grace.
    pub async fn partner_of_key(&self, key: &str) -> Result<Option<Principal>> {
        if !key.starts_with(partners::PREFIX) {
            return Ok(None);
        }
        let digest = secret::digest(key);
        let now = self.now();
        let cached = lock(&self.partner_keys)
            .get(&digest)
            .filter(|(_, at)| now - *at < CACHE_FOR)
            .map(|(p, _)| p.clone());
        let partner = match cached {
            Some(p) => p,
            None => {
                let found = partners::find(&self.pool, &digest, now)
                    .await?
                    .map(Arc::new);
                let mut cache = lock(&self.partner_keys);
                if cache.len() > 10_000 {
                    cache.clear();
                }
                cache.insert(digest, (found.clone(), now));
                found
            }
        };
        Ok(partner.map(|p| self.partner_principal(p)))
    }

    /// Counts what a partner asked for (a query, a SCIM filter value, an LDAP search value) for
    /// sweep detection; the first time in a window its queries look like a sweep, says so in the
    /// log (and `/metrics` counts it).
    pub fn note_partner_query(&self, partner: &partners::Partner, query: &str, surface: &str) {
        let config = &self.partners;
        if self.partner_usage.sweeping(
            &partner.name,
            query,
            self.now(),
            self.sweep_window,
            config.sweep_prefixes,
        ) {
            tracing::warn!(
                partner = %partner.name,
                surface,
                window = %config.sweep_window,
                prefixes = config.sweep_prefixes,
                "partner's queries look like a sweep of the directory: more distinct starts than the limit within the window"
            );
        }
    }

    /// Forgets cached keys (after `partner set`, `rotate` or `revoke` in this process).
    pub fn forget_partner_keys(&self) {
        lock(&self.partner_keys).clear();
    }

    pub fn partner_principal(&self, partner: Arc<partners::Partner>) -> Principal {
        Principal {
            kind: PrincipalKind::Partner,
            name: partner.principal_name(),
            display_name: partner.name.clone(),
            // Never consulted: the guard keeps partners to the shared routes.
            role: Role::Viewer,
            person_id: None,
            policy: Arc::new(partner.policy.clone()),
            partner: Some(partner),
        }
    }

    /// The session of a cookie value, if it is live; touches its last use now and then.
    pub async fn session(&self, cookie: &str) -> Result<Option<sessions::Session>> {
        let key = secret::digest(cookie);
        let now = self.now();
        let cached = lock(&self.sessions)
            .get(&key)
            .filter(|hit| now - hit.fetched < CACHE_FOR)
            .cloned();
        let session = match cached {
            Some(hit) => hit.value,
            None => {
                let found = sessions::find(&self.pool, &key).await?;
                let mut cache = lock(&self.sessions);
                if cache.len() > 100_000 {
                    cache.clear();
                }
                cache.insert(
                    key,
                    Cached {
                        value: found.clone(),
                        fetched: now,
                    },
                );
                found
            }
        };
        let Some(mut session) = session else {
            return Ok(None);
        };
        if now >= session.expires_at || now - session.last_seen_at >= self.session_idle {
            self.forget_session(&key);
            sessions::delete(&self.pool, &key).await?;
            return Ok(None);
        }
        // Written at most once a minute per session: one small write, not one per keystroke.
        if now - session.last_seen_at >= chrono::Duration::minutes(1) {
            session.last_seen_at = now;
            sessions::touch(&self.pool, &key, now).await?;
            if let Some(hit) = lock(&self.sessions).get_mut(&key) {
                hit.value = Some(session.clone());
            }
        }
        Ok(Some(session))
    }

    pub fn principal_of_session(&self, session: &sessions::Session) -> Principal {
        Principal {
            kind: PrincipalKind::Staff,
            name: session.subject.clone(),
            display_name: session.display_name.clone(),
            role: session.role,
            person_id: session.person_id,
            policy: self.policy(session.role),
            partner: None,
        }
    }

    pub(crate) fn forget_session(&self, key: &[u8; 32]) {
        lock(&self.sessions).remove(key);
    }

    /// Forgets every cached session of `subject` (sign-out everywhere).
    pub(crate) fn forget_subject(&self, subject: &str) {
        lock(&self.sessions)
            .retain(|_, hit| hit.value.as_ref().is_none_or(|s| s.subject != subject));
    }

    /// The principal a name and password prove: a device (`switchboard device add`), a local
    /// account, an account of the LDAP sign-in source, an app password, or a partner (its name
    /// and key). For LDAP binds and HTTP Basic (address books); the caller throttles and audits.
    pub async fn password_principal(
        &self,
        account: &str,
        password: &str,
    ) -> Result<Option<Principal>> {
        if account.is_empty()
            || password.is_empty()
            || account.contains('\0')
            || password.contains('\0')
        {
            return Ok(None);
        }
        if password.starts_with(partners::PREFIX) {
            // A key proves its partner; the name must be that partner's. A partner whose key
            // must come with its client certificate cannot bind so (LDAP carries none here).
            return Ok(self.partner_of_key(password).await?.filter(|p| {
                p.display_name.eq_ignore_ascii_case(account)
                    && p.partner
                        .as_ref()
                        .is_some_and(|partner| partner.certificate_sha256.is_none())
            }));
        }
        if account.starts_with(app_passwords::PREFIX) {
            return Ok(app_passwords::verify(&self.pool, account, password)
                .await?
                .map(|(subject, display_name, role, person_id)| Principal {
                    kind: PrincipalKind::Staff,
                    name: subject,
                    display_name,
                    role,
                    person_id,
                    policy: self.policy(role),
                    partner: None,
                }));
        }
        if devices::verify(&self.pool, account, password).await? {
            return Ok(Some(
                self.device_principal(&format!("device:{account}"), account),
            ));
        }
        let mut signed_in = users::verify(&self.pool, account, password).await?;
        if signed_in.is_none() {
            if let Some(ldap) = &self.ldap {
                signed_in = ldap.authenticate(account, password).await?;
            }
        }
        Ok(signed_in.map(|who| Principal {
            kind: PrincipalKind::Staff,
            name: who.subject,
            display_name: who.display_name,
            role: who.role,
            person_id: None,
            policy: self.policy(who.role),
            partner: None,
        }))
    }

    /// A device, or an anonymous address book client: what a staff viewer sees.
    pub fn device_principal(&self, name: &str, display_name: &str) -> Principal {
        Principal {
            kind: PrincipalKind::Device,
            name: name.to_string(),
            display_name: display_name.to_string(),
            role: Role::Viewer,
            person_id: None,
            policy: self.policy(Role::Viewer),
            partner: None,
        }
    }

    /// `Err(seconds)` while `account` or `address` is throttled.
    pub fn throttled(&self, account: &str, address: &str) -> std::result::Result<(), u64> {
        lock(&self.throttle).check(account, address, self.now())
    }

    pub fn sign_in_failed(&self, account: &str, address: &str) {
        lock(&self.throttle).failed(account, address, self.now());
    }

    pub fn sign_in_succeeded(&self, account: &str) {
        lock(&self.throttle).succeeded(account);
    }

    /// Which sign-in methods this server offers.
    pub fn methods(&self) -> SignInMethods {
        SignInMethods {
            local: true,
            ldap: self.ldap.is_some(),
            oidc: self.oidc.is_some(),
            open: self.open_principal.is_some(),
        }
    }
}

/// The sign-in methods a server offers (for the sign-in page).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SignInMethods {
    /// Local accounts (`switchboard user add`).
    pub local: bool,
    /// A bind against the configured directory, with the same form.
    pub ldap: bool,
    /// Single sign-on: `GET /api/v1/auth/oidc/login`.
    pub oidc: bool,
    /// The server runs open: no sign-in needed.
    pub open: bool,
}

/// A poisoned lock here only means another request panicked mid-update of a cache.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_map_to_the_highest_role() {
        let groups = RoleGroups {
            admin: vec!["sb-admins".into()],
            receptionist: vec!["cn=Reception,ou=groups,dc=example,dc=com".into()],
            viewer: vec![],
            default_role: Some(Role::Viewer),
        };
        assert_eq!(groups.role_of(&["staff", "SB-Admins"]), Some(Role::Admin));
        assert_eq!(
            groups.role_of(&["cn=sb-admins,ou=groups,dc=example,dc=com"]),
            Some(Role::Admin),
            "by first RDN"
        );
        assert_eq!(
            groups.role_of(&["CN=Reception,OU=Groups,DC=example,DC=com"]),
            Some(Role::Receptionist)
        );
        assert_eq!(groups.role_of::<&str>(&[]), Some(Role::Viewer));
        let strict = RoleGroups {
            default_role: None,
            ..groups
        };
        assert_eq!(strict.role_of(&["nobody"]), None);
    }

    #[test]
    fn metrics_networks() {
        let net = Network::parse("10.1.0.0/16").expect("net");
        assert!(net.contains("10.1.200.3".parse().expect("ip")));
        assert!(!net.contains("10.2.0.1".parse().expect("ip")));
        let one = Network::parse("127.0.0.1").expect("addr");
        assert!(one.contains("127.0.0.1".parse().expect("ip")));
        assert!(
            one.contains("::ffff:127.0.0.1".parse().expect("ip")),
            "v4-mapped"
        );
        assert!(!one.contains("127.0.0.2".parse().expect("ip")));
        let v6 = Network::parse("fd00::/8").expect("v6");
        assert!(v6.contains("fd12::1".parse().expect("ip")));
        assert!(!v6.contains("fe80::1".parse().expect("ip")));
        assert!(Network::parse("10.0.0.0/33").is_err());
        assert!(Network::parse("nope").is_err());
    }
}
