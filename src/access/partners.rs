//! Partner companies that read the shared directory: `switchboard partner add NAME …` prints an
//! API key once. Each partner has a [`Policy`] (scope, fields, presence, and whether people's
//! opt-out or opt-in decides), a rate and a daily quota, and ids of its own for our people.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use chrono::{DateTime, NaiveDate, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{secret, PersonField, Policy, PresenceLevel, Scope};
use crate::domain::Consent;
use crate::error::{Error, Result};

/// Partner keys start so: recognisable in logs and secret scanners, and told apart from
/// service tokens without a lookup.
pub const PREFIX: &str = "sbp_";

/// `[partners]`: what every partner gets unless its own settings say otherwise.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PartnersConfig {
    /// Whose people partners see: everyone who has not opted out (`opt_out`), or only those
    /// who opted in (`opt_in`). A partner's own `consent` overrides it.
    pub consent: Consent,
    /// Shortest query a partner may send (characters).
    pub min_query_chars: usize,
    /// Most people one query returns; there is no next page.
    pub max_results: usize,
    /// A new partner's rate (`10/s`, `600/min`) and daily quota (`5000/day`).
    pub rate: String,
    pub quota: String,
    /// How long a rotated-out key keeps working by default (`24h`).
    pub rotate_grace: String,
    /// A partner whose queries start with this many distinct prefixes within `sweep_window`
    /// looks like it is listing the directory: logged and counted in `/metrics`.
    pub sweep_prefixes: usize,
    pub sweep_window: String,
    /// Our company's name, as partners' results and federation label it.
    pub organization: String,
}

impl Default for PartnersConfig {
    fn default() -> Self {
        PartnersConfig {
            consent: Consent::OptOut,
            min_query_chars: 3,
            max_results: 20,
            rate: "10/s".into(),
            quota: "5000/day".into(),
            rotate_grace: "24h".into(),
            sweep_prefixes: 200,
            sweep_window: "10m".into(),
            organization: "Switchboard".into(),
        }
    }
}

impl PartnersConfig {
    pub fn check(&self) -> Result<()> {
        parse_rate(&self.rate).map_err(|e| Error::Config(format!("partners.rate: {e}")))?;
        parse_quota(&self.quota).map_err(|e| Error::Config(format!("partners.quota: {e}")))?;
        for (key, value) in [
            ("partners.rotate_grace", &self.rotate_grace),
            ("partners.sweep_window", &self.sweep_window),
        ] {
            humantime::parse_duration(value)
                .map_err(|_| Error::Config(format!("{key}: `{value}` is not a duration")))?;
        }
        if self.min_query_chars == 0 || self.max_results == 0 {
            return Err(Error::Config(
                "partners.min_query_chars and partners.max_results must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// What a partner may be given: never managers (they would name people out of scope), home
/// numbers, photos or our sources. `name` is given and family name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SharedField {
    Name,
    GivenName,
    FamilyName,
    Title,
    Department,
    OrgUnit,
    Location,
    WorkPhone,
    Mobile,
    Fax,
    Email,
    Im,
    /// Absence notes ("at the dentist, back 14:00").
    Notes,
}

impl SharedField {
    fn person_fields(self) -> &'static [PersonField] {
        match self {
            SharedField::Name => &[PersonField::GivenName, PersonField::FamilyName],
            SharedField::GivenName => &[PersonField::GivenName],
            SharedField::FamilyName => &[PersonField::FamilyName],
            SharedField::Title => &[PersonField::Title],
            SharedField::Department => &[PersonField::Department],
            SharedField::OrgUnit => &[PersonField::OrgUnit],
            SharedField::Location => &[PersonField::Location],
            SharedField::WorkPhone => &[PersonField::WorkPhone],
            SharedField::Mobile => &[PersonField::Mobile],
            SharedField::Fax => &[PersonField::Fax],
            SharedField::Email => &[PersonField::Email],
            SharedField::Im => &[PersonField::Im],
            SharedField::Notes => &[PersonField::Notes],
        }
    }
}

/// The policy's fields of these.
pub fn fields_of(shared: &[SharedField]) -> BTreeSet<PersonField> {
    shared
        .iter()
        .flat_map(|f| f.person_fields().iter().copied())
        .collect()
}

/// `--fields name,title,work_phone,email`.
pub fn parse_fields(list: &str) -> Result<Vec<SharedField>> {
    list.split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(|word| {
            serde_json::from_value(serde_json::Value::String(word.into())).map_err(|_| {
                Error::invalid(
                    "fields",
                    format!("`{word}` is not a field partners may be given (name, title, department, org_unit, location, work_phone, mobile, fax, email, im, notes; never managers, home numbers, photos or sources)"),
                )
            })
        })
        .collect()
}

/// Which people a partner sees: each listed attribute must have one of its values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeSettings {
    #[serde(default)]
    #[schema(schema_with = scope_values)]
    pub department: Vec<String>,
    #[serde(default)]
    #[schema(schema_with = scope_values)]
    pub location: Vec<String>,
    #[serde(default)]
    #[schema(schema_with = scope_values)]
    pub org_unit: Vec<String>,
}

/// Values as a directory has them: text without control characters.
const SCOPE_VALUE: &str = r"^[^\u0000-\u001f\u007f-\u009f]+$";

fn scope_values() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(SCOPE_VALUE))
                .max_length(Some(256)),
        )
        .max_items(Some(100))
        .build()
}

/// `department=Sales`, `location=London`, `org_unit=…`: added to `scope`.
pub fn add_scope(scope: &mut ScopeSettings, item: &str) -> Result<()> {
    let (key, value) = item
        .split_once('=')
        .map(|(k, v)| (k.trim(), v.trim()))
        .filter(|(_, v)| !v.is_empty())
        .ok_or_else(|| Error::invalid("scope", format!("`{item}` is not ATTRIBUTE=VALUE")))?;
    let list = match key {
        "department" => &mut scope.department,
        "location" => &mut scope.location,
        "org_unit" => &mut scope.org_unit,
        other => {
            return Err(Error::invalid(
                "scope",
                format!("`{other}` is not department, location or org_unit"),
            ))
        }
    };
    if !list.iter().any(|v| v == value) {
        list.push(value.to_string());
    }
    Ok(())
}

/// How long a query is, for `min_query_chars`: its letters and digits, a Chinese, Japanese or
/// Korean character counting two (王伟 is a whole name, as specific as "Wang Wei").
pub fn query_length(q: &str) -> usize {
    q.chars()
        .filter(|c| c.is_alphanumeric())
        .map(|c| {
            let cjk = matches!(u32::from(c),
                0x1100..=0x11FF | 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF
                | 0xAC00..=0xD7AF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F);
            if cjk {
                2
            } else {
                1
            }
        })
        .sum()
}

/// `10/s`, `600/min`, `36000/h`: requests per second.
pub fn parse_rate(s: &str) -> std::result::Result<f64, String> {
    let (n, per) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}` is not a rate like 10/s"))?;
    let n: f64 = n
        .trim()
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n > 0.0)
        .ok_or_else(|| format!("`{s}`: not a positive number of requests"))?;
    let seconds = match per.trim() {
        "s" | "sec" | "second" => 1.0,
        "m" | "min" | "minute" => 60.0,
        "h" | "hour" => 3600.0,
        other => return Err(format!("`{other}` is not s, min or h")),
    };
    Ok(n / seconds)
}

/// `5000/day`: requests per day (UTC).
pub fn parse_quota(s: &str) -> std::result::Result<u32, String> {
    let (n, per) = s
        .split_once('/')
        .ok_or_else(|| format!("`{s}` is not a quota like 5000/day"))?;
    if !matches!(per.trim(), "day" | "d") {
        return Err(format!("`{s}`: quotas are per day"));
    }
    n.trim()
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("`{s}`: not a positive number of requests"))
}

/// A partner as stored, without its keys.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Partner {
    pub name: String,
    pub policy: Policy,
    pub rate_per_second: f64,
    pub quota_per_day: u32,
    /// The SHA-256 (hex) of the client certificate its key must come with (mutual TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_sha256: Option<String>,
    #[serde(skip)]
    #[schema(ignore)]
    id_key: [u8; 16],
    pub created_at: DateTime<Utc>,
    /// Set when revoked: every key is refused from then on.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Partner {
    /// Our person id as this partner knows it: the id encrypted with the partner's own key
    /// (one AES block is exactly a UUID), so ids are stable for a partner and unrelated across
    /// partners.
    pub fn public_id(&self, id: Uuid) -> Uuid {
        let cipher = aes::Aes128::new(&self.id_key.into());
        let mut block = (*id.as_bytes()).into();
        cipher.encrypt_block(&mut block);
        Uuid::from_bytes(block.into())
    }

    /// Our person id from this partner's id for them.
    pub fn our_id(&self, public: Uuid) -> Uuid {
        let cipher = aes::Aes128::new(&self.id_key.into());
        let mut block = (*public.as_bytes()).into();
        cipher.decrypt_block(&mut block);
        Uuid::from_bytes(block.into())
    }

    pub fn principal_name(&self) -> String {
        format!("partner:{}", self.name)
    }
}

/// A key of a partner, for `partner show` (never the key itself).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyInfo {
    /// The first characters of its digest, to tell keys apart.
    pub fingerprint: String,
    pub created_at: DateTime<Utc>,
    /// When a rotated-out key stops working; absent: the current key.
    pub expires_at: Option<DateTime<Utc>>,
}

/// What `partner add` and `partner set` change; what is left out stays (or takes the
/// `[partners]` default).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartnerSettings {
    /// What the partner sees of each person (besides the display name).
    pub fields: Option<Vec<SharedField>>,
    pub presence: Option<PresenceLevel>,
    /// Which people; replaces the scope when given.
    pub scope: Option<ScopeSettings>,
    /// Whose people it sees: `opt_out` (everyone who has not opted out) or `opt_in`.
    pub consent: Option<Consent>,
    /// Requests per second, minute or hour: `10/s`, `600/min`.
    #[schema(pattern = r"^[1-9][0-9]{0,6}/(s|min|h)$")]
    pub rate: Option<String>,
    /// Requests per day (UTC): `5000/day`.
    #[schema(pattern = r"^[1-9][0-9]{0,8}/day$")]
    pub quota: Option<String>,
    /// The SHA-256 (hex) of a client certificate its key must come with (mutual TLS, when
    /// Switchboard serves HTTPS with `[tls] client_certificates`); empty: none.
    #[schema(pattern = r"^([0-9a-fA-F]{64})?$")]
    pub certificate_sha256: Option<String>,
}

impl PartnerSettings {
    /// The pin to store: `Some(None)` removes it, `None` leaves it.
    fn certificate(&self) -> Result<Option<Option<Vec<u8>>>> {
        let Some(hex) = self.certificate_sha256.as_deref().map(str::trim) else {
            return Ok(None);
        };
        if hex.is_empty() {
            return Ok(Some(None));
        }
        let bytes: Option<Vec<u8>> = (hex.len() == 64
            && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| {
            (0..32)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
                .collect()
        })
        .flatten();
        bytes.map(|b| Some(Some(b))).ok_or_else(|| {
            Error::invalid(
                "certificate_sha256",
                "the SHA-256 of a certificate is 64 hex digits",
            )
        })
    }

    fn apply(&self, policy: &mut Policy, rate: &mut f64, quota: &mut u32) -> Result<()> {
        if let Some(fields) = &self.fields {
            policy.fields = fields_of(fields);
        }
        if let Some(presence) = self.presence {
            policy.presence = presence;
        }
        if let Some(scope) = &self.scope {
            let all = scope
                .department
                .iter()
                .chain(&scope.location)
                .chain(&scope.org_unit);
            for value in all {
                if value.is_empty()
                    || value.chars().count() > 256
                    || value.chars().any(char::is_control)
                {
                    return Err(Error::invalid(
                        "scope",
                        "values are 1 to 256 characters without control characters",
                    ));
                }
            }
            let clean = |values: &[String]| -> Vec<String> {
                let mut kept: Vec<String> = Vec::new();
                for v in values.iter().map(|v| v.trim()).filter(|v| !v.is_empty()) {
                    if !kept.iter().any(|k| k == v) {
                        kept.push(v.to_string());
                    }
                }
                kept
            };
            policy.scope = Scope {
                department: clean(&scope.department),
                location: clean(&scope.location),
                org_unit: clean(&scope.org_unit),
                consent: policy.scope.consent,
            };
        }
        if let Some(consent) = self.consent {
            policy.scope.consent = Some(consent);
        }
        if let Some(r) = &self.rate {
            *rate = parse_rate(r).map_err(|e| Error::invalid("rate", e))?;
        }
        if let Some(q) = &self.quota {
            *quota = parse_quota(q).map_err(|e| Error::invalid("quota", e))?;
        }
        Ok(())
    }
}

type PartnerRow = (
    String,
    Json<Policy>,
    f64,
    i32,
    Vec<u8>,
    Option<Vec<u8>>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

const COLUMNS: &str = "name, policy, rate_per_second, quota_per_day, id_key, \
    certificate_sha256, created_at, revoked_at";

fn of_row(row: PartnerRow) -> Partner {
    let (name, policy, rate, quota, key, certificate, created_at, revoked_at) = row;
    let mut id_key = [0u8; 16];
    let n = key.len().min(16);
    id_key[..n].copy_from_slice(&key[..n]);
    Partner {
        name,
        policy: policy.0,
        rate_per_second: rate,
        quota_per_day: u32::try_from(quota).unwrap_or(0),
        certificate_sha256: certificate.map(|d| secret::hex(&d)),
        id_key,
        created_at,
        revoked_at,
    }
}

/// Creates a partner with its first key, and returns both: the only time the key is seen.
pub async fn add(
    pool: &PgPool,
    config: &PartnersConfig,
    name: &str,
    settings: &PartnerSettings,
) -> Result<(Partner, String)> {
    super::tokens::check_name(name)?;
    let mut policy = Policy {
        scope: Scope {
            consent: Some(config.consent),
            ..Scope::default()
        },
        fields: fields_of(&parse_fields(
            "name,title,department,location,work_phone,email",
        )?),
        presence: PresenceLevel::Coarse,
    };
    let mut rate = parse_rate(&config.rate).map_err(Error::Config)?;
    let mut quota = parse_quota(&config.quota).map_err(Error::Config)?;
    settings.apply(&mut policy, &mut rate, &mut quota)?;
    let certificate = settings.certificate()?.flatten();
    let mut id_key = [0u8; 16];
    rand::rng().fill_bytes(&mut id_key);
    let key = secret::random_token(PREFIX);
    let mut tx = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO partners (name, policy, rate_per_second, quota_per_day, id_key, certificate_sha256) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(name)
    .bind(Json(&policy))
    .bind(rate)
    .bind(i32::try_from(quota).unwrap_or(i32::MAX))
    .bind(&id_key[..])
    .bind(certificate)
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {}
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => {
            return Err(Error::Conflict(format!("a partner named `{name}` exists")))
        }
        Err(e) => return Err(e.into()),
    }
    sqlx::query("INSERT INTO partner_keys (digest, partner) VALUES ($1, $2)")
        .bind(&secret::digest(&key)[..])
        .bind(name)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let partner = get(pool, name)
        .await?
        .ok_or(Error::NotFound { what: "partner" })?;
    Ok((partner, key))
}

pub async fn get(pool: &PgPool, name: &str) -> Result<Option<Partner>> {
    let row: Option<PartnerRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM partners WHERE name = $1"))
            .bind(name)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(of_row))
}

pub async fn list(pool: &PgPool) -> Result<Vec<Partner>> {
    let rows: Vec<PartnerRow> =
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM partners ORDER BY name"))
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().map(of_row).collect())
}

pub async fn keys(pool: &PgPool, name: &str) -> Result<Vec<KeyInfo>> {
    type KeyRow = (Vec<u8>, DateTime<Utc>, Option<DateTime<Utc>>);
    let rows: Vec<KeyRow> = sqlx::query_as(
        "SELECT digest, created_at, expires_at FROM partner_keys WHERE partner = $1 \
         ORDER BY created_at DESC",
    )
    .bind(name)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(digest, created_at, expires_at)| KeyInfo {
            fingerprint: secret::hex(&digest[..digest.len().min(4)]),
            created_at,
            expires_at,
        })
        .collect())
}

/// Changes a partner's policy, rate or quota.
pub async fn set(pool: &PgPool, name: &str, settings: &PartnerSettings) -> Result<Partner> {
    let mut partner = get(pool, name)
        .await?
        .filter(|p| p.revoked_at.is_none())
        .ok_or(Error::NotFound { what: "partner" })?;
    let mut quota = partner.quota_per_day;
    settings.apply(
        &mut partner.policy,
        &mut partner.rate_per_second,
        &mut quota,
    )?;
    partner.quota_per_day = quota;
    let certificate = settings.certificate()?;
    sqlx::query(
        "UPDATE partners SET policy = $2, rate_per_second = $3, quota_per_day = $4, \
         certificate_sha256 = CASE WHEN $5 THEN $6 ELSE certificate_sha256 END WHERE name = $1",
    )
    .bind(name)
    .bind(Json(&partner.policy))
    .bind(partner.rate_per_second)
    .bind(i32::try_from(quota).unwrap_or(i32::MAX))
    .bind(certificate.is_some())
    .bind(certificate.flatten())
    .execute(pool)
    .await?;
    get(pool, name)
        .await?
        .ok_or(Error::NotFound { what: "partner" })
}

/// A new key; the current ones keep working until `now + grace`, then are refused.
pub async fn rotate(
    pool: &PgPool,
    name: &str,
    now: DateTime<Utc>,
    grace: chrono::Duration,
) -> Result<String> {
    let key = secret::random_token(PREFIX);
    let mut tx = pool.begin().await?;
    let live: Option<(Option<DateTime<Utc>>,)> =
        sqlx::query_as("SELECT revoked_at FROM partners WHERE name = $1 FOR UPDATE")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
    match live {
        None => return Err(Error::NotFound { what: "partner" }),
        // Revoked is gone for good (its name stays taken, for the audit trail's sake).
        Some((Some(_),)) => return Err(Error::NotFound { what: "partner" }),
        Some((None,)) => {}
    }
    sqlx::query(
        "UPDATE partner_keys SET expires_at = LEAST(COALESCE(expires_at, $2), $2) WHERE partner = $1",
    )
    .bind(name)
    .bind(
        now.checked_add_signed(grace)
            .ok_or_else(|| Error::invalid("grace", "too long"))?,
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO partner_keys (digest, partner) VALUES ($1, $2)")
        .bind(&secret::digest(&key)[..])
        .bind(name)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(key)
}

/// Revokes a partner: all its keys are refused from then on. False when it was not live.
pub async fn revoke(pool: &PgPool, name: &str) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE partners SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL",
    )
    .bind(name)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The live partner whose key has this digest, if the key is current or still in its grace.
pub async fn find(pool: &PgPool, digest: &[u8; 32], now: DateTime<Utc>) -> Result<Option<Partner>> {
    let row: Option<PartnerRow> = sqlx::query_as(&format!(
        "SELECT {} FROM partner_keys k JOIN partners p ON p.name = k.partner \
         WHERE k.digest = $1 AND p.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > $2)",
        COLUMNS
            .split(", ")
            .map(|c| format!("p.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .bind(&digest[..])
    .bind(now)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(of_row))
}

/// Per partner: queries counted per day, and the distinct query starts seen lately.
#[derive(Default)]
pub struct Usage {
    days: Mutex<HashMap<String, (NaiveDate, u32)>>,
    prefixes: Mutex<HashMap<String, Sweep>>,
    alerts: Mutex<HashMap<String, u64>>,
}

#[derive(Default)]
struct Sweep {
    /// (first seen, prefix), oldest first.
    seen: VecDeque<(DateTime<Utc>, String)>,
    distinct: HashMap<String, usize>,
    alerted_at: Option<DateTime<Utc>>,
}

impl Usage {
    /// Counts one request against `partner`'s daily quota; `Err(seconds until midnight UTC)`
    /// when the quota is spent.
    pub fn take(&self, partner: &Partner, now: DateTime<Utc>) -> std::result::Result<(), u64> {
        let today = now.date_naive();
        let mut days = lock(&self.days);
        let (day, used) = days.entry(partner.name.clone()).or_insert((today, 0));
        if *day != today {
            (*day, *used) = (today, 0);
        }
        if *used >= partner.quota_per_day {
            let midnight = today
                .succ_opt()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc())
                .unwrap_or(now);
            return Err((midnight - now).num_seconds().max(1) as u64);
        }
        *used += 1;
        Ok(())
    }

    /// Notes the start of a query; true (once per window) when `partner`'s recent queries
    /// start with more distinct prefixes than `limit`: they look like a sweep.
    pub fn sweeping(
        &self,
        partner: &str,
        query: &str,
        now: DateTime<Utc>,
        window: chrono::Duration,
        limit: usize,
    ) -> bool {
        let prefix: String = query.trim().to_lowercase().chars().take(3).collect();
        let mut all = lock(&self.prefixes);
        let sweep = all.entry(partner.to_string()).or_default();
        while let Some((at, _)) = sweep.seen.front() {
            if now - *at < window {
                break;
            }
            if let Some((_, old)) = sweep.seen.pop_front() {
                if let Some(n) = sweep.distinct.get_mut(&old) {
                    *n -= 1;
                    if *n == 0 {
                        sweep.distinct.remove(&old);
                    }
                }
            }
        }
        *sweep.distinct.entry(prefix.clone()).or_default() += 1;
        sweep.seen.push_back((now, prefix));
        let over = sweep.distinct.len() > limit;
        let quiet = sweep.alerted_at.is_none_or(|at| now - at >= window);
        if over && quiet {
            sweep.alerted_at = Some(now);
            *lock(&self.alerts).entry(partner.to_string()).or_default() += 1;
            return true;
        }
        false
    }

    /// Prometheus lines: queries today and sweep alerts per partner.
    pub fn metrics(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP switchboard_partner_requests_today Requests counted against each partner's daily quota.\n");
        out.push_str("# TYPE switchboard_partner_requests_today gauge\n");
        let mut days: Vec<(String, u32)> = lock(&self.days)
            .iter()
            .map(|(name, (_, used))| (name.clone(), *used))
            .collect();
        days.sort();
        for (name, used) in days {
            out.push_str(&format!(
                "switchboard_partner_requests_today{{partner=\"{}\"}} {used}\n",
                escape_label(&name)
            ));
        }
        out.push_str("# HELP switchboard_partner_sweep_alerts_total Times a partner's queries looked like a sweep of the directory.\n");
        out.push_str("# TYPE switchboard_partner_sweep_alerts_total counter\n");
        let mut alerts: Vec<(String, u64)> = lock(&self.alerts)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        alerts.sort();
        for (name, n) in alerts {
            out.push_str(&format!(
                "switchboard_partner_sweep_alerts_total{{partner=\"{}\"}} {n}\n",
                escape_label(&name)
            ));
        }
        out
    }
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A resolved key, kept briefly (as tokens are).
pub(crate) type Cache = Mutex<HashMap<[u8; 32], (Option<Arc<Partner>>, DateTime<Utc>)>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn partner(key: u8) -> Partner {
        Partner {
            name: "acme".into(),
            policy: Policy::everything(),
            rate_per_second: 10.0,
            quota_per_day: 2,
            certificate_sha256: None,
            id_key: [key; 16],
            created_at: DateTime::UNIX_EPOCH,
            revoked_at: None,
        }
    }

    #[test]
    fn ids_are_stable_per_partner_reversible_and_differ_across_partners() {
        let ours = Uuid::from_u128(0x1234);
        let (a, b) = (partner(1), partner(2));
        assert_eq!(a.public_id(ours), a.public_id(ours));
        assert_ne!(a.public_id(ours), b.public_id(ours));
        assert_ne!(a.public_id(ours), ours);
        assert_eq!(a.our_id(a.public_id(ours)), ours);
        assert_ne!(b.our_id(a.public_id(ours)), ours);
    }

    #[test]
    fn rates_quotas_and_fields_parse_with_clear_errors() {
        assert_eq!(parse_rate("10/s"), Ok(10.0));
        assert_eq!(parse_rate("600/min"), Ok(10.0));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("0/s").is_err());
        assert_eq!(parse_quota("5000/day"), Ok(5000));
        assert!(parse_quota("5000/h").is_err());
        let fields = fields_of(&parse_fields("name,title,work_phone,email").expect("fields"));
        assert!(fields.contains(&PersonField::GivenName) && fields.contains(&PersonField::Email));
        assert!(!fields.contains(&PersonField::Mobile));
        let home = parse_fields("name,home_phone").expect_err("home numbers are never shared");
        assert!(home.to_string().contains("home_phone"), "{home}");
        assert!(parse_fields("name,manager").is_err());
        assert!(parse_fields("name,salary").is_err());
        let mut scope = ScopeSettings::default();
        add_scope(&mut scope, "department=Sales").expect("scope");
        add_scope(&mut scope, "location = London").expect("scope");
        assert_eq!(scope.department, ["Sales"]);
        assert_eq!(scope.location, ["London"]);
        assert!(add_scope(&mut scope, "salary=high").is_err());
        assert!(add_scope(&mut scope, "department").is_err());
    }

    #[test]
    fn cjk_characters_count_double_toward_the_minimum_query() {
        assert_eq!(query_length("smi"), 3);
        assert_eq!(query_length("..."), 0);
        assert_eq!(query_length("王伟"), 4);
        assert_eq!(query_length("김"), 2);
    }

    #[test]
    fn the_quota_resets_at_midnight_utc() {
        let usage = Usage::default();
        let p = partner(1);
        let evening = "2026-12-01T23:59:00Z".parse::<DateTime<Utc>>().expect("t");
        assert!(usage.take(&p, evening).is_ok());
        assert!(usage.take(&p, evening).is_ok());
        assert_eq!(usage.take(&p, evening), Err(60), "a minute to midnight");
        let morning = "2026-12-02T00:00:01Z".parse::<DateTime<Utc>>().expect("t");
        assert!(usage.take(&p, morning).is_ok());
    }

    #[test]
    fn many_distinct_starts_look_like_a_sweep_once_per_window() {
        let usage = Usage::default();
        let t0 = DateTime::<Utc>::UNIX_EPOCH;
        let window = chrono::Duration::minutes(10);
        let mut alerts = 0;
        for (i, q) in ["smi", "smith", "smy"].iter().enumerate() {
            let at = t0 + chrono::Duration::seconds(i as i64);
            alerts += usize::from(usage.sweeping("acme", q, at, window, 1));
        }
        assert_eq!(
            alerts, 1,
            "two distinct starts over a limit of one, alerted once"
        );
        // A partner that keeps asking for the same people is no sweep.
        for i in 0..50 {
            let at = t0 + chrono::Duration::seconds(i);
            assert!(!usage.sweeping("beta", "smith", at, window, 1));
        }
        // Old prefixes leave the window.
        let later = t0 + chrono::Duration::minutes(30);
        assert!(!usage.sweeping("acme", "abc", later, window, 1));
        assert!(usage
            .metrics()
            .contains("switchboard_partner_sweep_alerts_total{partner=\"acme\"} 1"));
    }
}
