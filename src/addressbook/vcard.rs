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

/// A vCard 4.0 as jCard (RFC 7095): the same properties, so the two never disagree. Reads
/// what [`render`] writes: unfolds lines, splits parameters and structured values, and gives
/// each property its value type.
pub fn jcard(vcard: &str) -> serde_json::Value {
    use serde_json::{json, Map, Value};
    let unfolded = vcard.replace("\r\n ", "");
    let mut properties = Vec::new();
    for content in unfolded.split("\r\n").filter(|l| !l.is_empty()) {
        let Some((head, value)) = split_unquoted(content, ':') else {
            continue;
        };
        let mut parts = split_all_unquoted(head, ';').into_iter();
        let name = parts.next().unwrap_or_default().to_ascii_lowercase();
        if name == "begin" || name == "end" {
            continue;
        }
        let mut params = Map::new();
        let mut kind = match name.as_str() {
            "uid" | "impp" | "url" | "photo" => "uri",
            "rev" => "timestamp",
            _ => "text",
        };
        for param in parts {
            let Some((key, v)) = param.split_once('=') else {
                continue;
            };
            let key = key.to_ascii_lowercase();
            let v = v.trim_matches('"');
            if key == "value" {
                kind = if v.eq_ignore_ascii_case("uri") {
                    "uri"
                } else {
                    "text"
                };
                continue;
            }
            let values: Vec<Value> = v.split(',').map(|x| Value::String(x.to_string())).collect();
            params.insert(
                key,
                if values.len() == 1 {
                    values.into_iter().next().unwrap_or(Value::Null)
                } else {
                    Value::Array(values)
                },
            );
        }
        let mut property = vec![json!(name), Value::Object(params), json!(kind)];
        match name.as_str() {
            "n" | "adr" | "org" => {
                let components: Vec<Value> = split_escaped(value, ';')
                    .iter()
                    .map(|c| json!(unescape(c)))
                    .collect();
                property.push(Value::Array(components));
            }
            "nickname" => {
                property.extend(split_escaped(value, ',').iter().map(|v| json!(unescape(v))));
            }
            "rev" => property.push(json!(extended_timestamp(value))),
            _ if kind == "uri" => property.push(json!(value)),
            _ => property.push(json!(unescape(value))),
        }
        properties.push(Value::Array(property));
    }
    json!(["vcard", properties])
}

/// `20261201T103000Z` as jCard writes it: `2026-12-01T10:30:00Z`.
fn extended_timestamp(basic: &str) -> String {
    let b = basic.as_bytes();
    if b.len() == 16 && b[8] == b'T' {
        format!(
            "{}-{}-{}T{}:{}:{}Z",
            &basic[0..4],
            &basic[4..6],
            &basic[6..8],
            &basic[9..11],
            &basic[11..13],
            &basic[13..15]
        )
    } else {
        basic.to_string()
    }
}

/// Splits at the first `sep` outside double quotes.
fn split_unquoted(s: &str, sep: char) -> Option<(&str, &str)> {
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == sep && !quoted => return Some((&s[..i], &s[i + 1..])),
            _ => {}
        }
    }
    None
}

fn split_all_unquoted(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some((head, tail)) = split_unquoted(rest, sep) {
        out.push(head);
        rest = tail;
    }
    out.push(rest);
    out
}

/// Splits at every `sep` not escaped by a backslash (escapes kept, for `unescape`).
fn split_escaped(s: &str, sep: char) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let last = out.last_mut().expect("one part at least");
                last.push(c);
                if let Some(next) = chars.next() {
                    last.push(next);
                }
            }
            c if c == sep => out.push(String::new()),
            c => out.last_mut().expect("one part at least").push(c),
        }
    }
    out
}

/// Undoes `text`: `\\n` is a newline, `\\x` is `x`.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') | Some('N') => out.push('\n'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jcard_carries_the_vcard_properties_with_their_types() {
        let card =
            "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:urn:uuid:00000000-0000-0000-0000-000000000007\r\n\
            FN:Smith\\, Jane\r\nN:Smith;Jane;;;\r\nNICKNAME:Janie,JJ\r\n\
            TEL;VALUE=uri;TYPE=\"work,voice\":tel:+442079460018;ext=12\r\n\
            EMAIL;TYPE=work:jane@example.com\r\nREV:20261201T103000Z\r\nEND:VCARD\r\n";
        let j = jcard(card);
        let props = j[1].as_array().expect("properties");
        let find = |name: &str| props.iter().find(|p| p[0] == name).cloned().expect(name);
        assert_eq!(j[0], "vcard");
        assert_eq!(find("version")[3], "4.0");
        assert_eq!(find("uid")[2], "uri");
        assert_eq!(find("fn")[3], "Smith, Jane");
        assert_eq!(
            find("n")[3],
            serde_json::json!(["Smith", "Jane", "", "", ""])
        );
        assert_eq!(
            find("nickname").as_array().map(Vec::len),
            Some(5),
            "two values"
        );
        let tel = find("tel");
        assert_eq!(tel[1]["type"], serde_json::json!(["work", "voice"]));
        assert_eq!(tel[2], "uri");
        assert_eq!(tel[3], "tel:+442079460018;ext=12");
        assert_eq!(find("email")[1]["type"], "work");
        assert_eq!(find("rev")[3], "2026-12-01T10:30:00Z");
    }

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
