//! A person as a vCard: 4.0 (RFC 6350) for most clients, 3.0 (RFC 2426) for Apple's, which
//! read 3.0 best. Lines folded at 75 octets, values escaped.

use crate::domain::{Person, PhoneKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V3,
    V4,
}

impl Version {
    /// 3.0 for Apple's contacts (iOS, macOS), 4.0 otherwise.
    pub fn for_client(user_agent: &str) -> Version {
        let apple = [
            "iOS",
            "iPhone",
            "iPad",
            "Mac OS",
            "macOS",
            "dataaccessd",
            "AddressBook",
        ];
        if apple.iter().any(|a| user_agent.contains(a)) {
            Version::V3
        } else {
            Version::V4
        }
    }
}

/// Escapes a text value (RFC 6350 §3.4): backslash, comma, semicolon, newline.
fn text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ',' => out.push_str("\\,"),
            ';' => out.push_str("\\;"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Appends a content line, folded so that no line is longer than 75 octets (never inside a
/// character).
fn line(out: &mut String, content: &str) {
    let mut width = 0;
    for c in content.chars() {
        let len = c.len_utf8();
        if width + len > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += len;
    }
    out.push_str("\r\n");
}

/// The vCard of a person already shown through the caller's policy.
pub fn render(person: &Person, version: Version) -> String {
    let mut out = String::with_capacity(512);
    line(&mut out, "BEGIN:VCARD");
    line(
        &mut out,
        match version {
            Version::V3 => "VERSION:3.0",
            Version::V4 => "VERSION:4.0",
        },
    );
    if version == Version::V4 {
        line(&mut out, "PRODID:-//Switchboard//Directory//EN");
    }
    line(
        &mut out,
        &match version {
            Version::V4 => format!("UID:urn:uuid:{}", person.id),
            Version::V3 => format!("UID:{}", person.id),
        },
    );
    line(&mut out, &format!("FN:{}", text(&person.display_name)));
    line(
        &mut out,
        &format!(
            "N:{};{};;;",
            text(person.family_name.as_deref().unwrap_or_default()),
            text(person.given_name.as_deref().unwrap_or_default())
        ),
    );
    if !person.nicknames.is_empty() {
        let names: Vec<String> = person.nicknames.iter().map(|n| text(n)).collect();
        line(&mut out, &format!("NICKNAME:{}", names.join(",")));
    }
    if person.org_unit.is_some() || person.department.is_some() {
        line(
            &mut out,
            &format!(
                "ORG:{};{}",
                text(person.org_unit.as_deref().unwrap_or_default()),
                text(person.department.as_deref().unwrap_or_default())
            ),
        );
    }
    if let Some(title) = &person.title {
        line(&mut out, &format!("TITLE:{}", text(title)));
    }
    for phone in &person.phones {
        let number = super::entry::dialable(phone);
        if number.is_empty() {
            continue;
        }
        let (v4, v3) = match phone.kind {
            PhoneKind::Work => ("work,voice", "WORK,VOICE"),
            PhoneKind::Mobile => ("cell", "CELL"),
            PhoneKind::Home => ("home,voice", "HOME,VOICE"),
            PhoneKind::Fax => ("work,fax", "WORK,FAX"),
            PhoneKind::Extension => ("work,voice", "WORK,VOICE"),
        };
        let content = match version {
            Version::V4 => {
                // A tel: URI (RFC 3966); an internal extension is a local number.
                let uri = match (&phone.e164, &phone.extension) {
                    (Some(e164), Some(ext)) => format!("tel:{e164};ext={ext}"),
                    (Some(e164), None) => format!("tel:{e164}"),
                    (None, _) => format!("tel:{number};phone-context=switchboard"),
                };
                format!("TEL;VALUE=uri;TYPE=\"{v4}\":{uri}")
            }
            Version::V3 => {
                let shown = match (&phone.e164, &phone.extension) {
                    (Some(e164), Some(ext)) => format!("{e164} x{ext}"),
                    _ => number,
                };
                format!("TEL;TYPE={v3}:{}", text(&shown))
            }
        };
        line(&mut out, &content);
    }
    for email in &person.emails {
        let content = match version {
            Version::V4 => format!("EMAIL;TYPE=work:{}", text(email)),
            Version::V3 => format!("EMAIL;TYPE=INTERNET,WORK:{}", text(email)),
        };
        line(&mut out, &content);
    }
    for handle in &person.im {
        line(&mut out, &format!("IMPP:{handle}"));
    }
    if let Some(location) = &person.location {
        line(
            &mut out,
            &format!(
                "ADR;TYPE={}:;{};;;;;",
                match version {
                    Version::V4 => "work",
                    Version::V3 => "WORK",
                },
                text(location)
            ),
        );
    }
    if let Some(presence) = super::entry::presence_text(person) {
        line(&mut out, &format!("NOTE:{}", text(&presence)));
    }
    line(
        &mut out,
        &format!("REV:{}", person.updated_at.format("%Y%m%dT%H%M%SZ")),
    );
    line(&mut out, "END:VCARD");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_fold_between_characters_at_75_octets() {
        let mut out = String::new();
        line(&mut out, &format!("NOTE:{}", "ü".repeat(60)));
        for l in out.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(l.len() <= 75, "{} octets: {l}", l.len());
        }
        let unfolded = out.replace("\r\n ", "");
        assert_eq!(unfolded, format!("NOTE:{}\r\n", "ü".repeat(60)));
    }

    #[test]
    fn values_are_escaped() {
        assert_eq!(
            text("Smith, Jones; Co\\\nx"),
            "Smith\\, Jones\\; Co\\\\\\nx"
        );
    }

    #[test]
    fn apple_clients_get_3_0() {
        assert_eq!(
            Version::for_client("iOS/17.4 (21E219) dataaccessd/1.0"),
            Version::V3
        );
        assert_eq!(
            Version::for_client("macOS/14.4 (23E214) AddressBookCore/2452.500.1"),
            Version::V3
        );
        assert_eq!(Version::for_client("vdirsyncer/0.19.3"), Version::V4);
    }
}
