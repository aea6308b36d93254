//! What a principal may see: which people (scope), which of their attributes (fields), and how
//! much of their presence. One function, [`Policy::person`] / [`Policy::summary`], applies it on
//! every surface; the scope is also a filter inside the search ([`Policy::within`]), so totals,
//! facets and pages count only people in scope.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{Consent, Person, PersonSummary, Phone, PhoneKind};
use crate::presence::Presence;
use crate::search::query::{Searchable, Within};

/// An attribute a policy may show. The display name is always shown.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PersonField {
    GivenName,
    FamilyName,
    Title,
    Department,
    OrgUnit,
    Location,
    Manager,
    /// Work numbers and internal extensions.
    WorkPhone,
    Mobile,
    HomePhone,
    Fax,
    Email,
    Im,
    Photo,
    /// Which sources the person came from, under which ids.
    Sources,
    /// Absence notes and status messages kept in Switchboard.
    Notes,
}

impl PersonField {
    pub const ALL: [PersonField; 16] = [
        PersonField::GivenName,
        PersonField::FamilyName,
        PersonField::Title,
        PersonField::Department,
        PersonField::OrgUnit,
        PersonField::Location,
        PersonField::Manager,
        PersonField::WorkPhone,
        PersonField::Mobile,
        PersonField::HomePhone,
        PersonField::Fax,
        PersonField::Email,
        PersonField::Im,
        PersonField::Photo,
        PersonField::Sources,
        PersonField::Notes,
    ];

    fn of_phone(kind: PhoneKind) -> PersonField {
        match kind {
            PhoneKind::Work | PhoneKind::Extension => PersonField::WorkPhone,
            PhoneKind::Mobile => PersonField::Mobile,
            PhoneKind::Home => PersonField::HomePhone,
            PhoneKind::Fax => PersonField::Fax,
        }
    }
}

/// How much presence a policy shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PresenceLevel {
    /// Everything: availability, activity, status text, each channel.
    #[default]
    Full,
    /// Availability and until when only: no status text, no channels.
    Coarse,
    /// None at all.
    None,
}

/// Which people: every listed attribute must match one of its values; an empty list allows all.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    #[serde(default)]
    pub department: Vec<String>,
    #[serde(default)]
    pub location: Vec<String>,
    #[serde(default)]
    pub org_unit: Vec<String>,
    /// People's own choice about being shown (partners): everyone who has not opted out, or
    /// only those who opted in. Absent: their choice does not matter (staff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<Consent>,
}

impl Scope {
    pub fn is_everyone(&self) -> bool {
        self.department.is_empty()
            && self.location.is_empty()
            && self.org_unit.is_empty()
            && self.consent.is_none()
    }

    fn admits(
        &self,
        department: Option<&str>,
        location: Option<&str>,
        org_unit: Option<&str>,
        sharing: Option<bool>,
    ) -> bool {
        let ok = |allowed: &[String], value: Option<&str>| {
            allowed.is_empty() || value.is_some_and(|v| allowed.iter().any(|a| a == v))
        };
        ok(&self.department, department)
            && ok(&self.location, location)
            && ok(&self.org_unit, org_unit)
            && self.consent.is_none_or(|c| c.admits(sharing))
    }
}

/// Scope, fields and presence level: one type for every principal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub scope: Scope,
    #[serde(default = "all_fields")]
    pub fields: BTreeSet<PersonField>,
    #[serde(default)]
    pub presence: PresenceLevel,
}

fn all_fields() -> BTreeSet<PersonField> {
    PersonField::ALL.into_iter().collect()
}

impl Policy {
    /// Everyone, everything.
    pub fn everything() -> Policy {
        Policy {
            scope: Scope::default(),
            fields: all_fields(),
            presence: PresenceLevel::Full,
        }
    }

    /// The staff default: everyone, everything but home numbers.
    pub fn staff_default() -> Policy {
        let mut policy = Policy::everything();
        policy.fields.remove(&PersonField::HomePhone);
        policy
    }

    pub fn shows(&self, field: PersonField) -> bool {
        self.fields.contains(&field)
    }

    /// The scope as a search filter.
    pub fn within(&self) -> Within {
        Within {
            departments: self.scope.department.clone(),
            locations: self.scope.location.clone(),
            org_units: self.scope.org_unit.clone(),
            consent: self.scope.consent,
        }
    }

    /// What a partner may find people by: only words of what it may see (names always; emails,
    /// handles, titles and departments when shown). Numbers only as a whole query, checked
    /// against the numbers it may see (`http::shared`).
    pub fn searchable(&self) -> Searchable {
        Searchable {
            emails: self.shows(PersonField::Email),
            im: self.shows(PersonField::Im),
            org: [
                PersonField::Title,
                PersonField::Department,
                PersonField::OrgUnit,
                PersonField::Location,
            ]
            .iter()
            .all(|f| self.shows(*f)),
            phones: false,
        }
    }

    pub fn admits_summary(&self, p: &PersonSummary) -> bool {
        self.scope.admits(
            p.department.as_deref(),
            p.location.as_deref(),
            p.org_unit.as_deref(),
            p.partner_sharing,
        )
    }

    /// Whether this person is in scope (and, for partners, shared).
    pub fn admits_person(&self, p: &Person) -> bool {
        self.scope.admits(
            p.department.as_deref(),
            p.location.as_deref(),
            p.org_unit.as_deref(),
            p.partner_sharing,
        )
    }

    /// One person as this policy shows them; `None` when out of scope (to be answered exactly as
    /// a person who does not exist).
    pub fn person(&self, mut p: Person) -> Option<Person> {
        if !self.admits_person(&p) {
            return None;
        }
        let keep = |field, value: &mut Option<String>| {
            if !self.shows(field) {
                *value = None;
            }
        };
        keep(PersonField::GivenName, &mut p.given_name);
        keep(PersonField::FamilyName, &mut p.family_name);
        keep(PersonField::Title, &mut p.title);
        keep(PersonField::Department, &mut p.department);
        keep(PersonField::OrgUnit, &mut p.org_unit);
        keep(PersonField::Location, &mut p.location);
        keep(PersonField::Photo, &mut p.photo_url);
        if !self.shows(PersonField::Manager) {
            p.manager = None;
        }
        if !self.shows(PersonField::Sources) {
            p.sources.clear();
        }
        if !self.shows(PersonField::Notes) {
            p.absence = None;
            p.status = None;
        }
        self.contact(&mut p.phones, &mut p.emails, &mut p.im);
        p.presence = self.presence(p.presence.take());
        Some(p)
    }

    /// A search hit as this policy shows it; `None` when out of scope.
    pub fn summary(&self, mut p: PersonSummary) -> Option<PersonSummary> {
        if !self.admits_summary(&p) {
            return None;
        }
        let keep = |field, value: &mut Option<String>| {
            if !self.shows(field) {
                *value = None;
            }
        };
        keep(PersonField::GivenName, &mut p.given_name);
        keep(PersonField::FamilyName, &mut p.family_name);
        keep(PersonField::Title, &mut p.title);
        keep(PersonField::Department, &mut p.department);
        keep(PersonField::OrgUnit, &mut p.org_unit);
        keep(PersonField::Location, &mut p.location);
        keep(PersonField::Photo, &mut p.photo_url);
        if !self.shows(PersonField::Notes) {
            p.absence = None;
        }
        self.contact(&mut p.phones, &mut p.emails, &mut p.im);
        p.presence = self.presence(p.presence.take());
        Some(p)
    }

    /// Whether this phone number may be shown (and so found by its number).
    pub fn shows_phone(&self, phone: &Phone) -> bool {
        self.shows(PersonField::of_phone(phone.kind))
    }

    fn contact(&self, phones: &mut Vec<Phone>, emails: &mut Vec<String>, im: &mut Vec<String>) {
        phones.retain(|phone| self.shows_phone(phone));
        if !self.shows(PersonField::Email) {
            emails.clear();
        }
        if !self.shows(PersonField::Im) {
            im.clear();
        }
    }

    pub fn presence(&self, presence: Option<Presence>) -> Option<Presence> {
        match self.presence {
            // Each channel names a handle (`msteams:…`, `tel:…`): shown only with the handles.
            PresenceLevel::Full if !self.shows(PersonField::Im) => presence.map(|mut p| {
                p.channels.clear();
                p
            }),
            PresenceLevel::Full => presence,
            PresenceLevel::None => None,
            PresenceLevel::Coarse => presence.map(|p| Presence {
                availability: p.availability,
                until: p.until,
                ..Presence::unknown()
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presence::Availability;

    fn phone(kind: PhoneKind, digits: &str) -> Phone {
        Phone {
            kind,
            e164: Some(format!("+44{digits}")),
            display: digits.into(),
            extension: None,
            raw: digits.into(),
            valid: true,
        }
    }

    fn person() -> Person {
        let now = chrono::DateTime::UNIX_EPOCH;
        Person {
            id: uuid::Uuid::from_u128(7),
            display_name: "Jane Smith".into(),
            given_name: Some("Jane".into()),
            family_name: Some("Smith".into()),
            nicknames: vec!["Janie".into()],
            title: Some("Engineer".into()),
            department: Some("Engineering".into()),
            org_unit: Some("Platform".into()),
            location: Some("London".into()),
            manager: Some(crate::domain::PersonRef {
                id: uuid::Uuid::from_u128(8),
                display_name: "Boss".into(),
            }),
            phones: vec![
                phone(PhoneKind::Work, "2079460018"),
                phone(PhoneKind::Mobile, "7700900461"),
                phone(PhoneKind::Home, "1632960001"),
            ],
            emails: vec!["jane@example.com".into()],
            im: vec!["xmpp:jane@example.com".into()],
            photo_url: Some("/api/v1/photos/00".into()),
            sources: vec![crate::domain::SourceRef {
                source: "corp".into(),
                external_id: "1".into(),
            }],
            created_at: now,
            updated_at: now,
            presence: Some(Presence {
                availability: Availability::Busy,
                status_message: Some("at the dentist".into()),
                ..Presence::unknown()
            }),
            absence: Some(crate::domain::Note {
                text: "back 14:00".into(),
                until: None,
                set_by: "local:rita".into(),
                set_at: now,
            }),
            status: None,
            partner_sharing: None,
        }
    }

    fn kinds(p: &Person) -> Vec<PhoneKind> {
        p.phones.iter().map(|p| p.kind).collect()
    }

    #[test]
    fn the_staff_default_hides_home_numbers_only() {
        let shown = Policy::staff_default().person(person()).expect("in scope");
        assert_eq!(kinds(&shown), vec![PhoneKind::Work, PhoneKind::Mobile]);
        let mut expected = person();
        expected.phones.truncate(2);
        assert_eq!(shown, expected);
        assert_eq!(
            kinds(&Policy::everything().person(person()).expect("p")),
            vec![PhoneKind::Work, PhoneKind::Mobile, PhoneKind::Home]
        );
    }

    #[test]
    fn each_field_left_out_is_absent_and_the_others_stay() {
        for field in PersonField::ALL {
            let mut policy = Policy::everything();
            policy.fields.remove(&field);
            let shown = policy.person(person()).expect("in scope");
            let full = person();
            let cleared = |a: bool, b: bool| (a, b);
            let (gone, other_kept) = match field {
                PersonField::GivenName => {
                    cleared(shown.given_name.is_none(), shown.family_name.is_some())
                }
                PersonField::FamilyName => {
                    cleared(shown.family_name.is_none(), shown.given_name.is_some())
                }
                PersonField::Title => cleared(shown.title.is_none(), shown.department.is_some()),
                PersonField::Department => {
                    cleared(shown.department.is_none(), shown.title.is_some())
                }
                PersonField::OrgUnit => cleared(shown.org_unit.is_none(), shown.location.is_some()),
                PersonField::Location => {
                    cleared(shown.location.is_none(), shown.org_unit.is_some())
                }
                PersonField::Manager => cleared(shown.manager.is_none(), shown.title.is_some()),
                PersonField::WorkPhone => cleared(
                    !kinds(&shown).contains(&PhoneKind::Work),
                    kinds(&shown).contains(&PhoneKind::Mobile),
                ),
                PersonField::Mobile => cleared(
                    !kinds(&shown).contains(&PhoneKind::Mobile),
                    kinds(&shown).contains(&PhoneKind::Work),
                ),
                PersonField::HomePhone => cleared(
                    !kinds(&shown).contains(&PhoneKind::Home),
                    kinds(&shown).contains(&PhoneKind::Work),
                ),
                PersonField::Fax => cleared(shown.phones.len() == 3, true),
                PersonField::Email => cleared(shown.emails.is_empty(), !shown.im.is_empty()),
                PersonField::Im => cleared(shown.im.is_empty(), !shown.emails.is_empty()),
                PersonField::Photo => cleared(shown.photo_url.is_none(), shown.title.is_some()),
                PersonField::Sources => cleared(shown.sources.is_empty(), !shown.emails.is_empty()),
                PersonField::Notes => cleared(shown.absence.is_none(), !shown.sources.is_empty()),
            };
            assert!(gone, "{field:?} still shown");
            assert!(other_kept, "{field:?} took another field with it");
            assert_eq!(shown.display_name, full.display_name);
            let summary = policy
                .summary(PersonSummary::from(&person()))
                .expect("in scope");
            let summary_json = serde_json::to_value(&summary).expect("json");
            let person_json = serde_json::to_value(PersonSummary::from(&shown)).expect("json");
            assert_eq!(
                summary_json, person_json,
                "{field:?}: summary and person disagree"
            );
        }
    }

    #[test]
    fn out_of_scope_people_are_none_and_every_listed_attribute_must_match() {
        let mut policy = Policy::everything();
        policy.scope.department = vec!["Sales".into(), "Engineering".into()];
        assert!(policy.person(person()).is_some());
        policy.scope.location = vec!["Berlin".into()];
        assert!(policy.person(person()).is_none(), "location not allowed");
        assert!(policy.summary(PersonSummary::from(&person())).is_none());
        let mut no_department = person();
        no_department.department = None;
        let mut sales_only = Policy::everything();
        sales_only.scope.department = vec!["Sales".into()];
        assert!(
            sales_only.person(no_department).is_none(),
            "no value is not in scope"
        );
    }

    #[test]
    fn presence_levels() {
        let mut policy = Policy::everything();
        policy.presence = PresenceLevel::Coarse;
        let coarse = policy
            .person(person())
            .expect("p")
            .presence
            .expect("presence");
        assert_eq!(coarse.availability, Availability::Busy);
        assert_eq!(coarse.status_message, None);
        policy.presence = PresenceLevel::None;
        assert_eq!(policy.person(person()).expect("p").presence, None);
        policy.presence = PresenceLevel::Full;
        let full = policy
            .person(person())
            .expect("p")
            .presence
            .expect("presence");
        assert_eq!(full.status_message.as_deref(), Some("at the dentist"));
    }
}
