//! LDIF files (RFC 2849) as `slapcat`, `ldapsearch -L` and AD's `ldifde` write them: base64
//! values (`attr:: …`), continuation lines, comments, `jpegPhoto`. Entries are mapped exactly
//! as an LDAP sync maps them (OpenLDAP's attributes, or AD's when the file has AD's).

use std::collections::{BTreeMap, HashMap};

use ldap3::SearchEntry;

use crate::db::runs::Reject;
use crate::domain::normalize_dn;
use crate::sources::ldap::{is_disabled, stable_id, Field, Flavor, Mapping};
use crate::sources::vcard::base64_bytes;
use crate::sync::RawBatch;

/// Attributes whose values are bytes, not text.
const BINARY: &[&str] = &[
    "jpegphoto",
    "thumbnailphoto",
    "objectguid",
    "objectsid",
    "usercertificate",
];

/// Object classes of people (AD's `user` and `contact`, LDAP's person classes).
const PEOPLE: &[&str] = &[
    "person",
    "organizationalperson",
    "inetorgperson",
    "user",
    "contact",
];

/// Whether `text` is an LDIF file: its first line that is not a comment is `version:` or `dn:`.
pub fn looks_like(text: &str) -> bool {
    text.lines()
        .map(str::trim_start)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .is_some_and(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("version:") || l.starts_with("dn:")
        })
}

/// One entry as written: its first line and its attribute lines, unfolded.
struct Written {
    line: u64,
    lines: Vec<String>,
}

fn entries(text: &str) -> Vec<Written> {
    let mut out: Vec<Written> = Vec::new();
    let mut current: Option<Written> = None;
    for (n, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            out.extend(current.take());
            continue;
        }
        if let Some(rest) = line.strip_prefix(' ') {
            if let Some(last) = current.as_mut().and_then(|w| w.lines.last_mut()) {
                last.push_str(rest);
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        current
            .get_or_insert_with(|| Written {
                line: n as u64 + 1,
                lines: Vec::new(),
            })
            .lines
            .push(line.to_string());
    }
    out.extend(current);
    out
}

/// Parses one `attr: value`, `attr:: base64` or `attr:< url` line. The name loses its options
/// (`jpegPhoto;binary`).
fn attribute(line: &str) -> Result<(String, Value), String> {
    let (name, rest) = line
        .split_once(':')
        .ok_or_else(|| format!("`{}` is not an attribute line", cut(line)))?;
    let name = name.split(';').next().unwrap_or(name).trim().to_string();
    let value = if let Some(b64) = rest.strip_prefix(':') {
        let bytes = base64_bytes(b64).ok_or_else(|| format!("{name}: the value is not base64"))?;
        Value::Bytes(bytes)
    } else if rest.starts_with('<') {
        return Err(format!("{name}: values read from URLs are not supported"));
    } else {
        Value::Text(rest.trim_start().to_string())
    };
    Ok((name, value))
}

enum Value {
    Text(String),
    Bytes(Vec<u8>),
}

fn cut(line: &str) -> String {
    line.chars().take(60).collect()
}

/// Reads every person entry of a file. Other entries (containers, groups) are skipped; a line
/// that cannot be read costs its attribute, reported by the entry's DN.
pub fn parse(text: &str) -> RawBatch {
    let written = entries(text);
    let ad = written.iter().flat_map(|w| &w.lines).any(|line| {
        line.get(..15)
            .is_some_and(|name| name.eq_ignore_ascii_case("sAMAccountName:"))
    });
    let flavor = if ad {
        Flavor::ActiveDirectory
    } else {
        Flavor::OpenLdap
    };
    let mapping = Mapping::defaults(flavor);
    let mut used: BTreeMap<String, Option<&'static str>> = BTreeMap::new();
    let mut batch = RawBatch::default();
    for entry in written {
        let mut dn = None;
        let mut attrs: HashMap<String, Vec<String>> = HashMap::new();
        let mut bin_attrs: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
        let mut problems = Vec::new();
        for line in &entry.lines {
            match attribute(line) {
                Ok((name, value)) if name.eq_ignore_ascii_case("dn") => {
                    dn = Some(match value {
                        Value::Text(t) => t,
                        Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
                    });
                }
                Ok((name, _)) if name.eq_ignore_ascii_case("version") => {}
                Ok((name, value)) => {
                    let binary = BINARY.contains(&name.to_ascii_lowercase().as_str());
                    match value {
                        Value::Bytes(b) if binary => bin_attrs.entry(name).or_default().push(b),
                        Value::Bytes(b) => match String::from_utf8(b) {
                            Ok(t) => attrs.entry(name).or_default().push(t),
                            Err(e) => bin_attrs.entry(name).or_default().push(e.into_bytes()),
                        },
                        Value::Text(t) => attrs.entry(name).or_default().push(t),
                    }
                }
                Err(e) => problems.push(e),
            }
        }
        let Some(dn) = dn else {
            if attrs.is_empty() && bin_attrs.is_empty() && problems.is_empty() {
                continue; // `version: 1` alone
            }
            batch.rejects.push(Reject {
                line: Some(entry.line),
                external_id: None,
                dn: None,
                reason: "entry has no `dn:` line".into(),
            });
            continue;
        };
        let classes: Vec<String> = attrs
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("objectClass"))
            .flat_map(|(_, v)| v.iter().map(|c| c.to_ascii_lowercase()))
            .collect();
        let is_person = if classes.is_empty() {
            ["cn", "sn", "mail", "displayName"]
                .iter()
                .any(|a| attrs.keys().any(|k| k.eq_ignore_ascii_case(a)))
        } else {
            classes.iter().any(|c| PEOPLE.contains(&c.as_str()))
                && !classes.iter().any(|c| c == "computer")
        };
        if !is_person {
            continue;
        }
        let search_entry = SearchEntry {
            dn: dn.clone(),
            attrs,
            bin_attrs,
        };
        if flavor == Flavor::ActiveDirectory && is_disabled(&search_entry) {
            continue;
        }
        for name in search_entry
            .attrs
            .keys()
            .chain(search_entry.bin_attrs.keys())
        {
            used.entry(name.clone())
                .or_insert_with(|| mapping.field_of(name).map(Field::name));
        }
        let mut record = mapping.record(&search_entry);
        // Exports often leave out operational attributes (entryUUID): the account name or
        // uid is the id then, else the email (as for any file).
        record.external_id = stable_id(&search_entry, mapping.attrs(Field::ExternalId))
            .or_else(|| stable_id(&search_entry, &["sAMAccountName".into(), "uid".into()]));
        record.read_warnings = problems;
        batch.records.push((Some(entry.line), record));
    }
    // Managers are named by DN: point them at the id of the entry with that DN, as a sync does.
    let ids_by_dn: HashMap<String, String> = batch
        .records
        .iter()
        .filter_map(|(_, r)| Some((normalize_dn(r.dn.as_deref()?), r.identity()?)))
        .collect();
    for (_, record) in &mut batch.records {
        if let Some(id) = record
            .manager_ref
            .as_deref()
            .and_then(|dn| ids_by_dn.get(&normalize_dn(dn)))
        {
            record.manager_ref = Some(id.clone());
        }
    }
    batch.columns = used.into_iter().collect();
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slapcat_style_entries_with_base64_and_folding() {
        let text = "version: 1\n\n# people\ndn: ou=people,dc=example,dc=com\nobjectClass: organizationalUnit\nou: people\n\n\
                    dn: uid=jmuller,ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: jmuller\n\
                    cn:: SsO8cmdlbiBNw7xsbGVy\nsn:: TcO8bGxlcg==\ngivenName: J\n ürgen\nmail: j.muller@example.com\n\
                    telephoneNumber: +49 30 901820\nmobile: 0151 23456789\nc: DE\nou: Sales\n\
                    jpegPhoto:: /9j/4AAQ\nentryUUID: 4fbe8971-0bc3-424c-9c26-36c3e1eff6b1\n";
        let batch = parse(text);
        assert!(batch.rejects.is_empty(), "{:?}", batch.rejects);
        assert_eq!(batch.records.len(), 1, "the container is not a person");
        let (line, r) = &batch.records[0];
        assert_eq!(*line, Some(8));
        assert_eq!(r.display_name.as_deref(), Some("Jürgen Müller"));
        assert_eq!(r.given_name.as_deref(), Some("Jürgen"));
        assert_eq!(
            r.external_id.as_deref(),
            Some("4fbe8971-0bc3-424c-9c26-36c3e1eff6b1")
        );
        assert_eq!(r.country.as_deref(), Some("DE"));
        assert_eq!(r.department.as_deref(), Some("Sales"));
        assert_eq!(
            r.photo.as_deref(),
            Some(&[0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10][..])
        );
        assert_eq!(
            r.dn.as_deref(),
            Some("uid=jmuller,ou=people,dc=example,dc=com")
        );
        let mapped: BTreeMap<_, _> = batch.columns.iter().cloned().collect();
        assert_eq!(mapped["mobile"], Some("mobile"));
        assert_eq!(mapped["uid"], None);
    }

    #[test]
    fn ldifde_output_uses_the_ad_mapping() {
        let text = "dn: CN=Ana Lima,OU=Staff,DC=corp,DC=example,DC=com\nchangetype: add\nobjectClass: top\n\
                    objectClass: person\nobjectClass: organizationalPerson\nobjectClass: user\ncn: Ana Lima\n\
                    sAMAccountName: alima\ndepartment: Finance\nphysicalDeliveryOfficeName: London\n\
                    objectGUID:: cYm+TzsLTEKcJjbD4e/2sQ==\nuserAccountControl: 512\n\n\
                    dn: CN=Old,OU=Staff,DC=corp,DC=example,DC=com\nobjectClass: user\ncn: Old\n\
                    sAMAccountName: old\nuserAccountControl: 514\n\n\
                    dn: CN=Bad,OU=Staff,DC=corp,DC=example,DC=com\nobjectClass: user\ncn: Bad\nmail:: ***\n";
        let batch = parse(text);
        let names: Vec<_> = batch
            .records
            .iter()
            .map(|(_, r)| r.display_name.clone().unwrap_or_default())
            .collect();
        assert_eq!(
            names,
            ["Ana Lima", "Bad"],
            "the disabled account is left out"
        );
        let ana = &batch.records[0].1;
        assert_eq!(ana.department.as_deref(), Some("Finance"));
        assert_eq!(ana.location.as_deref(), Some("London"));
        assert_eq!(
            ana.external_id.as_deref(),
            Some("4fbe8971-0b3b-424c-9c26-36c3e1eff6b1")
        );
        let bad = &batch.records[1].1;
        assert_eq!(
            bad.dn.as_deref(),
            Some("CN=Bad,OU=Staff,DC=corp,DC=example,DC=com")
        );
        assert!(
            bad.read_warnings[0].contains("mail"),
            "{:?}",
            bad.read_warnings
        );
    }
}
