//! vCard files (2.1, 3.0 and 4.0: RFC 2426, RFC 6350) as Apple Contacts, iCloud, Google,
//! Outlook and Thunderbird export them: several cards per file, folded lines, quoted-printable
//! and base64 values, `TEL;TYPE=work,voice`, `ORG`, `TITLE`, `PHOTO`.

use base64::Engine;

use crate::db::runs::Reject;
use crate::domain::{PhoneKind, SourceRecord};
use crate::sync::RawBatch;

/// One property of a card: its name (upper case), parameters (names upper case) and value.
#[derive(Debug)]
struct Property {
    name: String,
    params: Vec<(String, String)>,
    value: String,
}

impl Property {
    /// Parses an unfolded content line: `[group.]NAME[;PARAM[=VALUE]…]:value`.
    fn parse(line: &str) -> Option<Property> {
        let colon = value_start(line)?;
        let (head, value) = (&line[..colon], &line[colon + 1..]);
        let mut parts = split_unquoted(head, ';').into_iter();
        let name = parts.next()?;
        let name = name
            .rsplit('.')
            .next()
            .unwrap_or(name)
            .trim()
            .to_uppercase();
        let params = parts
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (
                    k.trim().to_uppercase(),
                    v.trim().trim_matches('"').to_string(),
                ),
                // vCard 2.1: `TEL;WORK;VOICE:` — bare types.
                None => ("TYPE".to_string(), p.trim().to_string()),
            })
            .collect();
        Some(Property {
            name,
            params,
            value: value.to_string(),
        })
    }

    fn param<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.params
            .iter()
            .filter(move |(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
    }

    fn has_type(&self, wanted: &str) -> bool {
        self.param("TYPE").any(|t| t.eq_ignore_ascii_case(wanted))
    }

    fn encoding(&self) -> Option<String> {
        self.param("ENCODING").next().map(str::to_ascii_uppercase)
    }

    /// The value's bytes: quoted-printable and base64 decoded.
    fn bytes(&self) -> Vec<u8> {
        match self.encoding().as_deref() {
            Some("QUOTED-PRINTABLE") => quoted_printable(&self.value),
            Some("B" | "BASE64") => base64_bytes(&self.value).unwrap_or_default(),
            _ => self.value.as_bytes().to_vec(),
        }
    }

    /// The value as text. A quoted-printable or base64 value's bytes are in its `CHARSET`
    /// (UTF-8 when absent); a plain value was decoded with the file.
    fn text(&self) -> String {
        if self.encoding().is_none() {
            return self.value.clone();
        }
        let bytes = self.bytes();
        match self
            .param("CHARSET")
            .next()
            .and_then(|c| encoding_rs::Encoding::for_label(c.as_bytes()))
        {
            Some(encoding) => encoding.decode_without_bom_handling(&bytes).0.into_owned(),
            None => String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// A structured value's components (`N`, `ORG`, `ADR`), each unescaped.
    fn components(&self) -> Vec<String> {
        split_unescaped(&self.text(), ';')
            .into_iter()
            .map(|c| unescape(&c))
            .collect()
    }
}

/// Where a property's value starts: the first `:` outside a quoted parameter value.
fn value_start(line: &str) -> Option<usize> {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ':' if !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

fn split_unquoted(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Splits at `sep` not preceded by a backslash (the escapes stay, for [`unescape`]).
fn split_unescaped(text: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        let part = parts.last_mut().expect("one part");
        match c {
            '\\' => {
                part.push(c);
                if let Some(next) = chars.next() {
                    part.push(next);
                }
            }
            c if c == sep => parts.push(String::new()),
            c => part.push(c),
        }
    }
    parts
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out.trim().to_string()
}

fn quoted_printable(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Base64 with or without padding, line breaks and spaces ignored.
pub fn base64_bytes(text: &str) -> Option<Vec<u8>> {
    use base64::engine::{general_purpose, DecodePaddingMode, GeneralPurpose};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        general_purpose::PAD.with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    LENIENT.decode(compact).ok()
}

/// Content lines unfolded, each with the line it starts on: a line starting with a space or tab
/// continues the one before (RFC 6350 §3.2); a quoted-printable line ending in `=` continues
/// on the next (vCard 2.1).
fn unfold(text: &str) -> Vec<(u64, String)> {
    let mut lines: Vec<(u64, String)> = Vec::new();
    let mut soft_break = false;
    for (n, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let number = n as u64 + 1;
        match lines.last_mut() {
            Some((_, last)) if soft_break => {
                last.pop(); // the `=`
                last.push_str(line.trim_start());
            }
            Some((_, last)) if line.starts_with([' ', '\t']) => last.push_str(&line[1..]),
            _ => {
                if !line.trim().is_empty() {
                    lines.push((number, line.to_string()));
                }
            }
        }
        soft_break = lines.last().is_some_and(|(_, l)| {
            l.ends_with('=') && l.to_ascii_uppercase().contains("QUOTED-PRINTABLE")
        });
    }
    lines
}

/// Whether `text` is a vCard file (its first content line opens a card).
pub fn looks_like(text: &str) -> bool {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| l.trim().eq_ignore_ascii_case("BEGIN:VCARD"))
}

/// Reads every card of a file; a card without an end or with nothing of a person in it is
/// refused by the line it begins on.
pub fn parse(text: &str) -> RawBatch {
    let mut batch = RawBatch::default();
    let mut card: Option<(u64, SourceRecord)> = None;
    for (line, content) in unfold(text) {
        let Some(property) = Property::parse(&content) else {
            if card.is_some() {
                continue; // a stray line inside a card: nothing to read
            }
            batch.rejects.push(Reject {
                line: Some(line),
                external_id: None,
                dn: None,
                reason: "not a vCard line (expected BEGIN:VCARD)".into(),
            });
            continue;
        };
        match property.name.as_str() {
            "BEGIN" if property.value.trim().eq_ignore_ascii_case("VCARD") => {
                if let Some((start, _)) = card.take() {
                    batch.rejects.push(unterminated(start));
                }
                card = Some((line, SourceRecord::default()));
            }
            "END" if property.value.trim().eq_ignore_ascii_case("VCARD") => {
                if let Some((start, record)) = card.take() {
                    batch.records.push((Some(start), record));
                }
            }
            _ => {
                if let Some((_, record)) = card.as_mut() {
                    apply(record, &property);
                }
            }
        }
    }
    if let Some((start, _)) = card {
        batch.rejects.push(unterminated(start));
    }
    batch
}

fn unterminated(line: u64) -> Reject {
    Reject {
        line: Some(line),
        external_id: None,
        dn: None,
        reason: "card has no END:VCARD".into(),
    }
}

fn set(slot: &mut Option<String>, value: String) {
    if slot.is_none() && !value.is_empty() {
        *slot = Some(value);
    }
}

fn apply(record: &mut SourceRecord, p: &Property) {
    match p.name.as_str() {
        "FN" => set(&mut record.display_name, unescape(&p.text())),
        // A list: commas separate the names (RFC 6350 §6.2.3).
        "NICKNAME" => record.nicknames.push(unescape(&p.text())),
        "N" => {
            let parts = p.components();
            set(
                &mut record.family_name,
                parts.first().cloned().unwrap_or_default(),
            );
            set(
                &mut record.given_name,
                parts.get(1).cloned().unwrap_or_default(),
            );
        }
        "UID" => set(
            &mut record.external_id,
            unescape(&p.text())
                .trim_start_matches("urn:uuid:")
                .to_string(),
        ),
        "EMAIL" => record.emails.push(unescape(&p.text())),
        "TEL" => {
            let kind = if p.has_type("cell") {
                PhoneKind::Mobile
            } else if p.has_type("fax") {
                PhoneKind::Fax
            } else if p.has_type("home") && !p.has_type("work") {
                PhoneKind::Home
            } else {
                PhoneKind::Work
            };
            let number = unescape(&p.text());
            // vCard 4 writes `tel:+44…;ext=12` URIs.
            let number = match number.strip_prefix("tel:") {
                Some(uri) => uri.replace(";ext=", " ext. "),
                None => number,
            };
            record.phones.push((kind, number));
        }
        "TITLE" => set(&mut record.title, unescape(&p.text())),
        "ORG" => {
            // Organization;Unit;Sub-unit…: the first unit is the department.
            let parts = p.components();
            set(
                &mut record.department,
                parts.get(1).cloned().unwrap_or_default(),
            );
            set(
                &mut record.org_unit,
                parts.get(2).cloned().unwrap_or_default(),
            );
        }
        "ADR" if p.has_type("work") || record.country.is_none() => {
            // PO box;extended;street;locality;region;postal code;country
            let parts = p.components();
            if p.has_type("work") {
                record.country = None;
            }
            set(
                &mut record.country,
                parts.get(6).cloned().unwrap_or_default(),
            );
        }
        "X-MS-OFFICE" | "X-OFFICE" => set(&mut record.location, unescape(&p.text())),
        "IMPP" | "X-JABBER" | "X-MS-IMADDRESS" | "X-SIP" => {
            let handle = unescape(&p.text());
            record.im.push(match p.name.as_str() {
                "X-JABBER" if !handle.contains(':') => format!("xmpp:{handle}"),
                "X-SIP" if !handle.contains(':') => format!("sip:{handle}"),
                _ => handle,
            });
        }
        "PHOTO" => {
            let value = p.value.trim();
            if let Some(data) = value.strip_prefix("data:") {
                // vCard 4: `data:image/jpeg;base64,…`
                if let Some((_, b64)) = data.split_once(";base64,") {
                    record.photo = base64_bytes(b64);
                }
            } else if p.encoding().is_some() {
                record.photo = Some(p.bytes()).filter(|b| !b.is_empty());
            } else if value.starts_with("http://") || value.starts_with("https://") {
                set(&mut record.photo_url, value.to_string());
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_quoted_printable_and_typed_values_are_read() {
        let text = "BEGIN:VCARD\r\nVERSION:2.1\r\nN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:M=C3=BCller;J=\r\n=C3=BCrgen\r\n\
                    TEL;WORK;VOICE:+49 30 901820\r\nTEL;CELL:0151 23456789\r\nEND:VCARD\r\n\
                    BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Ana Lima\r\nN:Lima;Ana;;;\r\nORG:Example Ltd;Sales\\, EMEA;Key Accounts\r\n\
                    TITLE:Account Manager\r\nEMAIL;TYPE=INTERNET,WORK:ana@exam\r\n ple.com\r\n\
                    TEL;TYPE=work,voice:+44 20 7946 0018\r\nADR;TYPE=WORK:;;1 Main St;London;;EC1;United Kingdom\r\n\
                    item1.IMPP;X-SERVICE-TYPE=Jabber:xmpp:ana@chat.example.com\r\nEND:VCARD\r\n";
        let batch = parse(text);
        assert!(batch.rejects.is_empty(), "{:?}", batch.rejects);
        let (line, first) = &batch.records[0];
        assert_eq!(*line, Some(1));
        assert_eq!(first.family_name.as_deref(), Some("Müller"));
        assert_eq!(first.given_name.as_deref(), Some("Jürgen"));
        assert_eq!(first.phones[1], (PhoneKind::Mobile, "0151 23456789".into()));
        let (line, ana) = &batch.records[1];
        assert_eq!(*line, Some(8));
        assert_eq!(ana.display_name.as_deref(), Some("Ana Lima"));
        assert_eq!(ana.department.as_deref(), Some("Sales, EMEA"));
        assert_eq!(ana.org_unit.as_deref(), Some("Key Accounts"));
        assert_eq!(ana.emails, ["ana@example.com"]);
        assert_eq!(ana.phones, [(PhoneKind::Work, "+44 20 7946 0018".into())]);
        assert_eq!(ana.country.as_deref(), Some("United Kingdom"));
        assert_eq!(ana.im, ["xmpp:ana@chat.example.com"]);
    }

    #[test]
    fn vcard4_uris_and_photos() {
        let text =
            "BEGIN:VCARD\nVERSION:4.0\nUID:urn:uuid:4fbe8971-0bc3-424c-9c26-36c3e1eff6b1\nFN:Kim\n\
                    TEL;VALUE=uri;TYPE=\"voice,work\":tel:+44-20-7946-0018;ext=12\n\
                    PHOTO:data:image/png;base64,iVBORw0KGgo=\nEND:VCARD\n";
        let batch = parse(text);
        let kim = &batch.records[0].1;
        assert_eq!(
            kim.external_id.as_deref(),
            Some("4fbe8971-0bc3-424c-9c26-36c3e1eff6b1")
        );
        assert_eq!(kim.phones[0].1, "+44-20-7946-0018 ext. 12");
        assert!(kim
            .photo
            .as_deref()
            .is_some_and(|p| p.starts_with(b"\x89PNG")));
    }

    #[test]
    fn an_unterminated_card_is_refused_by_its_first_line() {
        let batch = parse("BEGIN:VCARD\nFN:A\nBEGIN:VCARD\nFN:B\nEND:VCARD\nBEGIN:VCARD\nFN:C\n");
        let names: Vec<_> = batch
            .records
            .iter()
            .map(|(_, r)| r.display_name.clone().unwrap_or_default())
            .collect();
        assert_eq!(names, ["B"]);
        let lines: Vec<_> = batch.rejects.iter().map(|r| r.line).collect();
        assert_eq!(lines, [Some(1), Some(6)]);
    }
}
