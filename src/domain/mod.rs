//! Pure types of the directory: no I/O here.

pub mod country;
pub mod numbering;
pub mod phone;
pub mod record;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub use phone::{Phone, PhoneKind, PhoneNormalizer, PhoneParser, PrivateParser, RegionRules};
pub use record::{normalize_dn, NormalizedRecord, Photo, RecordError, SourceRecord};

/// A person as the API returns them: everything a caller needs to reach them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Person {
    pub id: Uuid,
    pub display_name: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// Names they go by ("Peggy"), as their sources give them; search finds them by these.
    #[serde(default)]
    pub nicknames: Vec<String>,
    pub title: Option<String>,
    pub department: Option<String>,
    pub org_unit: Option<String>,
    pub location: Option<String>,
    pub manager: Option<PersonRef>,
    pub phones: Vec<Phone>,
    pub emails: Vec<String>,
    /// IM handles as URIs: `xmpp:`, `matrix:`, `sip:`, `msteams:`, `slack:`.
    pub im: Vec<String>,
    pub photo_url: Option<String>,
    /// Where this person came from.
    pub sources: Vec<SourceRef>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Live presence merged over the person's IM channels (when presence backends are configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence: Option<crate::presence::Presence>,
    /// Why they cannot be reached, and until when ("at the dentist, back 14:00"), set by them or
    /// by reception; absent when none is in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absence: Option<Note>,
    /// A status message set in Switchboard by them or by reception.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Note>,
    /// Whether they are shown to partner companies: `true` opted in, `false` opted out (by a
    /// source or by themselves); absent: the server's `[partners] consent` default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_sharing: Option<bool>,
}

/// A note about a person's availability, kept by Switchboard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Note {
    pub text: String,
    /// When it stops applying; absent: until removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    /// Who set it (a principal).
    pub set_by: String,
    pub set_at: DateTime<Utc>,
}

/// A person as a search hit: what a result list shows, served from the index alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PersonSummary {
    pub id: Uuid,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// Names they go by ("Peggy").
    #[serde(default)]
    pub nicknames: Vec<String>,
    pub title: Option<String>,
    pub department: Option<String>,
    pub org_unit: Option<String>,
    pub location: Option<String>,
    pub phones: Vec<Phone>,
    pub emails: Vec<String>,
    pub im: Vec<String>,
    pub photo_url: Option<String>,
    /// Live presence merged over the person's IM channels (when presence backends are configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence: Option<crate::presence::Presence>,
    /// Whether they are shown to partner companies (as on `Person`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_sharing: Option<bool>,
    /// Why they cannot be reached, and until when, when a note is in force (as on `Person`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub absence: Option<Note>,
}

impl From<&Person> for PersonSummary {
    fn from(p: &Person) -> Self {
        PersonSummary {
            id: p.id,
            display_name: p.display_name.clone(),
            given_name: p.given_name.clone(),
            family_name: p.family_name.clone(),
            nicknames: p.nicknames.clone(),
            title: p.title.clone(),
            department: p.department.clone(),
            org_unit: p.org_unit.clone(),
            location: p.location.clone(),
            phones: p.phones.clone(),
            emails: p.emails.clone(),
            im: p.im.clone(),
            photo_url: p.photo_url.clone(),
            presence: p.presence.clone(),
            partner_sharing: p.partner_sharing,
            absence: p.absence.clone(),
        }
    }
}

/// A search hit as a person: what the index holds (no manager, sources or notes), for what is
/// built from hits alone (LDAP entries, phone books) without a round trip to PostgreSQL.
impl From<PersonSummary> for Person {
    fn from(hit: PersonSummary) -> Person {
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        Person {
            id: hit.id,
            display_name: hit.display_name,
            given_name: hit.given_name,
            family_name: hit.family_name,
            nicknames: hit.nicknames,
            title: hit.title,
            department: hit.department,
            org_unit: hit.org_unit,
            location: hit.location,
            manager: None,
            phones: hit.phones,
            emails: hit.emails,
            im: hit.im,
            photo_url: hit.photo_url,
            sources: Vec::new(),
            created_at: epoch,
            updated_at: epoch,
            presence: hit.presence,
            absence: None,
            status: None,
            partner_sharing: hit.partner_sharing,
        }
    }
}

/// Which people partners may see by their own choice (or their sources'): everyone who has not
/// opted out, or only those who opted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Consent {
    OptOut,
    OptIn,
}

impl Consent {
    /// Whether a person whose `partner_sharing` is this may be shown.
    pub fn admits(self, sharing: Option<bool>) -> bool {
        match self {
            Consent::OptOut => sharing != Some(false),
            Consent::OptIn => sharing == Some(true),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PersonRef {
    pub id: Uuid,
    pub display_name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SourceRef {
    pub source: String,
    pub external_id: String,
}

/// IM URI schemes Switchboard understands.
pub const IM_SCHEMES: &[&str] = &["xmpp", "matrix", "sip", "msteams", "slack", "tel"];
