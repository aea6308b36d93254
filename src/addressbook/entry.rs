//! A person as an address book entry: the `inetOrgPerson` attributes that desk phones and mail
//! clients ask for, with presence in attributes a phone can display.

use crate::domain::{Person, Phone, PhoneKind};
use crate::presence::{Availability, Presence};

/// One attribute of an entry: its values as shown; for a phone number also every reading of
/// its digits, which is what filters compare.
#[derive(Debug, Clone, PartialEq)]
pub struct Attribute {
    pub name: &'static str,
    pub values: Vec<String>,
    pub phone_keys: Vec<Vec<String>>,
}

impl Attribute {
    /// The values as filters compare them, per value: folded text (in its other spellings
    /// too), lower case, or a number's digit readings. Computed when a filter asks: most
    /// searches look at two or three attributes of each entry.
    pub fn keys(&self) -> Vec<Vec<String>> {
        match attribute(self.name).map(|(_, syntax)| syntax) {
            Some(Syntax::Phone) => self.phone_keys.clone(),
            Some(Syntax::Text) => self.values.iter().map(|v| text_keys(v)).collect(),
            _ => self.values.iter().map(|v| vec![v.to_lowercase()]).collect(),
        }
    }
}

/// An entry: its DN and its attributes, in a fixed order.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub dn: String,
    pub attributes: Vec<Attribute>,
    /// The digest of the person's photo (`/api/v1/photos/{digest}`), sent as `jpegPhoto` or
    /// `thumbnailPhoto` to clients that ask for one by name.
    pub photo: Option<String>,
}

/// What kind of values an attribute holds, which says how a filter compares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// Names, titles, addresses: compared without regard to case, accents or punctuation.
    Text,
    /// Phone numbers: compared by their digits, in any format (`+44 20…`, `020…`, `4711`).
    Phone,
    /// Object classes and ids: compared without regard to case.
    Exact,
}

/// Every attribute a person entry can have: its name, how it compares, its OID, its other
/// standard names, and other names clients use for it.
type AttributeDef = (
    &'static str,
    Syntax,
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
);

const ATTRIBUTES: &[AttributeDef] = &[
    ("objectClass", Syntax::Exact, "2.5.4.0", &[], &[]),
    // Active Directory's, which AD-minded clients (Cisco Jabber, Outlook) filter on.
    (
        "objectCategory",
        Syntax::Exact,
        "1.2.840.113556.1.4.782",
        &[],
        &[],
    ),
    (
        "uid",
        Syntax::Exact,
        "0.9.2342.19200300.100.1.1",
        &["userid"],
        &["entryUUID"],
    ),
    ("cn", Syntax::Text, "2.5.4.3", &["commonName"], &[]),
    (
        "displayName",
        Syntax::Text,
        "2.16.840.1.113730.3.1.241",
        &[],
        &["name"],
    ),
    ("givenName", Syntax::Text, "2.5.4.42", &["gn"], &[]),
    ("sn", Syntax::Text, "2.5.4.4", &["surname"], &[]),
    ("nickname", Syntax::Text, OWN_NICKNAME, &[], &[]),
    (
        "mail",
        Syntax::Text,
        "0.9.2342.19200300.100.1.3",
        &["rfc822Mailbox"],
        &["email"],
    ),
    (
        "telephoneNumber",
        Syntax::Phone,
        "2.5.4.20",
        &[],
        &["phone"],
    ),
    (
        "mobile",
        Syntax::Phone,
        "0.9.2342.19200300.100.1.41",
        &["mobileTelephoneNumber"],
        &[],
    ),
    (
        "homePhone",
        Syntax::Phone,
        "0.9.2342.19200300.100.1.20",
        &["homeTelephoneNumber"],
        &[],
    ),
    (
        "facsimileTelephoneNumber",
        Syntax::Phone,
        "2.5.4.23",
        &[],
        &["fax", "facsimile"],
    ),
    // Active Directory's, which phones and Outlook ask for.
    ("ipPhone", Syntax::Phone, "1.2.840.113556.1.4.721", &[], &[]),
    ("title", Syntax::Text, "2.5.4.12", &[], &[]),
    (
        "ou",
        Syntax::Text,
        "2.5.4.11",
        &["organizationalUnitName"],
        &[],
    ),
    (
        "department",
        Syntax::Text,
        "1.2.840.113556.1.2.141",
        &[],
        &[],
    ),
    (
        "o",
        Syntax::Text,
        "2.5.4.10",
        &["organizationName"],
        &["company"],
    ),
    ("l", Syntax::Text, "2.5.4.7", &["localityName"], &[]),
    (
        "physicalDeliveryOfficeName",
        Syntax::Text,
        "2.5.4.19",
        &[],
        &[],
    ),
    (
        "manager",
        Syntax::Exact,
        "0.9.2342.19200300.100.1.10",
        &[],
        &[],
    ),
    ("description", Syntax::Text, "2.5.4.13", &[], &[]),
    ("switchboardPresence", Syntax::Exact, OWN_PRESENCE, &[], &[]),
];

/// Our own attributes' OIDs, under a UUID arc (ITU-T X.667: no registration needed).
const OWN_PRESENCE: &str = "2.25.230962452836402436377437546301196563713.1";
const OWN_NICKNAME: &str = "2.25.230962452836402436377437546301196563713.2";

/// The schema's attribute type descriptions (RFC 4512 §4.1.2) of every attribute entries have.
pub fn attribute_types() -> Vec<String> {
    ATTRIBUTES
        .iter()
        .map(|(name, syntax, oid, standard, _)| {
            let names = std::iter::once(name)
                .chain(standard.iter())
                .map(|n| format!("'{n}'"))
                .collect::<Vec<_>>()
                .join(" ");
            let rules = match (*name, syntax) {
                ("objectClass", _) | ("objectCategory", _) => {
                    "EQUALITY objectIdentifierMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.38"
                }
                ("manager", _) => {
                    "EQUALITY distinguishedNameMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.12"
                }
                (_, Syntax::Phone) => {
                    "EQUALITY telephoneNumberMatch SUBSTR telephoneNumberSubstringsMatch \
                     SYNTAX 1.3.6.1.4.1.1466.115.121.1.50"
                }
                _ => {
                    "EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch \
                     SYNTAX 1.3.6.1.4.1.1466.115.121.1.15"
                }
            };
            format!("( {oid} NAME ( {names} ) {rules} )")
        })
        .collect()
}

/// The attribute a client's name stands for, and how its values compare; `None` for an
/// attribute people entries do not have (a filter item on it is Undefined).
pub fn attribute(name: &str) -> Option<(&'static str, Syntax)> {
    ATTRIBUTES
        .iter()
        .find_map(|(canonical, syntax, _, standard, other)| {
            (canonical.eq_ignore_ascii_case(name)
                || standard
                    .iter()
                    .chain(other.iter())
                    .any(|a| a.eq_ignore_ascii_case(name)))
            .then_some((*canonical, *syntax))
        })
}

/// Text as filters compare it: folded words (case, accents, punctuation gone) joined by spaces.
pub fn fold_text(text: &str) -> String {
    crate::search::fold(text).join(" ")
}

/// A text value as filters may spell it: folded ("muller" for Müller), and with each word in
/// its other spelling where it has one ("mueller", "ivanova" for Иванова).
fn text_keys(value: &str) -> Vec<String> {
    let folded = fold_text(value);
    if value.is_ascii() {
        return vec![folded];
    }
    let spelled: Vec<String> = value
        .split_whitespace()
        .map(|word| {
            crate::search::names::spellings(word)
                .into_iter()
                .next()
                .unwrap_or_else(|| fold_text(word))
        })
        .collect();
    let spelled = spelled.join(" ");
    if spelled == folded {
        vec![folded]
    } else {
        vec![folded, spelled]
    }
}

/// The DN of a person under `base`.
pub fn person_dn(id: &uuid::Uuid, base: &str) -> String {
    format!("uid={id},{base}")
}

/// What a phone shows for someone's presence: "Busy · at the dentist · back 14:00 UTC".
pub fn presence_text(person: &Person) -> Option<String> {
    let presence = person.presence.as_ref();
    let mut parts: Vec<String> = Vec::new();
    if let Some(p) = presence.filter(|p| p.availability != Availability::Unknown) {
        parts.push(availability_label(p).to_string());
        if let Some(message) = p.status_message.as_deref().filter(|m| !m.is_empty()) {
            parts.push(message.to_string());
        }
    }
    let back = match &person.absence {
        Some(note) => {
            parts.push(note.text.clone());
            note.until
        }
        None => presence.and_then(|p| p.until),
    };
    if let Some(until) = back {
        parts.push(format!("back {}", until.format("%H:%M UTC")));
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

fn availability_label(p: &Presence) -> &'static str {
    if p.out_of_office {
        return "Out of office";
    }
    match p.availability {
        Availability::Available => "Available",
        Availability::Busy => "Busy",
        Availability::DoNotDisturb => "Do not disturb",
        Availability::BeRightBack => "Be right back",
        Availability::Away => "Away",
        Availability::Offline => "Offline",
        Availability::Unknown => "Unknown",
    }
}

/// How a number is given to a device: E.164 when known (dialable from anywhere), else the
/// extension, else its digits as written.
pub fn dialable(phone: &Phone) -> String {
    if let Some(e164) = &phone.e164 {
        return e164.clone();
    }
    if let Some(extension) = &phone.extension {
        return extension.clone();
    }
    phone
        .raw
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect()
}

impl Entry {
    /// The entry of a person already shown through the caller's policy.
    pub fn of(person: &Person, base: &str) -> Entry {
        let mut entry = Entry {
            dn: person_dn(&person.id, base),
            attributes: Vec::with_capacity(24),
            photo: person
                .photo_url
                .as_deref()
                .and_then(|u| u.strip_prefix("/api/v1/photos/"))
                .map(str::to_string),
        };
        entry.put(
            "objectClass",
            // `user` as Active Directory has it, for clients that filter on it.
            [
                "top",
                "person",
                "organizationalPerson",
                "inetOrgPerson",
                "user",
            ]
            .map(String::from)
            .to_vec(),
        );
        entry.put("objectCategory", vec!["person".into()]);
        entry.put("uid", vec![person.id.to_string()]);
        entry.put("cn", vec![person.display_name.clone()]);
        entry.put("displayName", vec![person.display_name.clone()]);
        entry.put("givenName", person.given_name.clone().into_iter().collect());
        // `person` requires a surname: the display name stands in when there is none.
        let sn = person
            .family_name
            .clone()
            .unwrap_or_else(|| person.display_name.clone());
        entry.put("sn", vec![sn]);
        entry.put("nickname", person.nicknames.clone());
        entry.put("mail", person.emails.clone());
        let phones = |kind: PhoneKind| -> Vec<&Phone> {
            person.phones.iter().filter(|p| p.kind == kind).collect()
        };
        for (name, kind) in [
            ("telephoneNumber", PhoneKind::Work),
            ("mobile", PhoneKind::Mobile),
            ("homePhone", PhoneKind::Home),
            ("facsimileTelephoneNumber", PhoneKind::Fax),
        ] {
            entry.put_phones(name, &phones(kind));
        }
        // Internal extensions: their own, and those of work numbers (`+44 20 7946 0018 x12`).
        let mut extensions: Vec<&Phone> = phones(PhoneKind::Extension);
        let with_extension: Vec<Phone> = person
            .phones
            .iter()
            .filter(|p| p.kind != PhoneKind::Extension && p.extension.is_some())
            .map(|p| Phone {
                e164: None,
                ..p.clone()
            })
            .collect();
        extensions.extend(with_extension.iter());
        entry.put_phones("ipPhone", &extensions);
        entry.put("title", person.title.clone().into_iter().collect());
        entry.put("ou", person.department.clone().into_iter().collect());
        entry.put(
            "department",
            person.department.clone().into_iter().collect(),
        );
        entry.put("o", person.org_unit.clone().into_iter().collect());
        entry.put("l", person.location.clone().into_iter().collect());
        entry.put(
            "physicalDeliveryOfficeName",
            person.location.clone().into_iter().collect(),
        );
        entry.put(
            "manager",
            person
                .manager
                .as_ref()
                .map(|m| person_dn(&m.id, base))
                .into_iter()
                .collect(),
        );
        entry.put("description", presence_text(person).into_iter().collect());
        entry.put(
            "switchboardPresence",
            person
                .presence
                .as_ref()
                .map(|p| p.availability.as_str().to_string())
                .into_iter()
                .collect(),
        );
        entry
    }

    fn put(&mut self, name: &'static str, values: Vec<String>) {
        self.attributes.push(Attribute {
            name,
            values,
            phone_keys: Vec::new(),
        });
    }

    fn put_phones(&mut self, name: &'static str, phones: &[&Phone]) {
        let mut values = Vec::with_capacity(phones.len());
        let mut keys = Vec::with_capacity(phones.len());
        for phone in phones {
            let value = dialable(phone);
            if value.is_empty() || values.contains(&value) {
                continue;
            }
            values.push(value);
            keys.push(phone.search_keys());
        }
        self.attributes.push(Attribute {
            name,
            values,
            phone_keys: keys,
        });
    }

    /// The attribute called `name` (its canonical name).
    pub fn get(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_names_for_attributes_are_understood() {
        assert_eq!(attribute("CN"), Some(("cn", Syntax::Text)));
        assert_eq!(attribute("surname"), Some(("sn", Syntax::Text)));
        assert_eq!(
            attribute("telephonenumber"),
            Some(("telephoneNumber", Syntax::Phone))
        );
        assert_eq!(attribute("company"), Some(("o", Syntax::Text)));
        assert_eq!(attribute("jpegPhotoX"), None);
    }

    #[test]
    fn text_folds_as_search_does() {
        assert_eq!(fold_text("José  Müller"), "jose muller");
        assert_eq!(
            fold_text("jane.smith@example.com"),
            "jane smith example com"
        );
    }
}
