//! A contact as a source delivers it, and its validated, normalized form.

use std::sync::Arc;

use serde::Serialize;

use super::country::region_of_country;
use super::phone::{region_of_e164, Phone, PhoneKind, PhoneParser};
#[cfg(test)]
use super::phone::{PhoneNormalizer, RegionRules};
use super::IM_SCHEMES;

/// A contact as read from a source, before validation. Empty strings mean "absent".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceRecord {
    pub external_id: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub display_name: Option<String>,
    /// Names the person goes by ("Peggy"), as the source lists them (commas separate several).
    pub nicknames: Vec<String>,
    pub title: Option<String>,
    pub department: Option<String>,
    pub org_unit: Option<String>,
    pub location: Option<String>,
    /// The manager's email or external id in the same source.
    pub manager_ref: Option<String>,
    pub emails: Vec<String>,
    pub phones: Vec<(PhoneKind, String)>,
    pub im: Vec<String>,
    pub photo_url: Option<String>,
    /// The photo itself, when the source holds it (a directory's `jpegPhoto`).
    pub photo: Option<Vec<u8>>,
    /// Where the record lives in a directory (its DN); identity stays `external_id`.
    pub dn: Option<String>,
    /// The person's country as the source gives it (an ISO 3166 code or an English name): the
    /// region their numbers written without a country code belong to.
    pub country: Option<String>,
    /// What the source could not read of this record (a value that is not base64…): kept as
    /// warnings on the person.
    pub read_warnings: Vec<String>,
    /// Whether the person may be shown to partner companies, as the source writes it (`yes`,
    /// `no`, `true`, `opt-in`…).
    pub partner_sharing: Option<String>,
}

/// A validated contact, ready to store. Its `content_hash` decides whether a re-import changes anything.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NormalizedRecord {
    pub external_id: String,
    pub display_name: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// Names the person goes by: from the source, or read off a display name that calls them
    /// otherwise than their given name. Left out of the digest when empty, so records without
    /// any keep the digest they had.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nicknames: Vec<String>,
    pub title: Option<String>,
    pub department: Option<String>,
    pub org_unit: Option<String>,
    pub location: Option<String>,
    pub manager_ref: Option<String>,
    pub phones: Vec<Phone>,
    pub emails: Vec<String>,
    pub im: Vec<String>,
    pub photo_url: Option<String>,
    /// Normalized DN (see [`normalize_dn`]); part of the digest, so a rename is an update.
    pub dn: Option<String>,
    /// Whether partners may see them, as the source says; left out of the digest when the
    /// source says nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner_sharing: Option<bool>,
    /// Stored by digest; `photo_url` names it, so the digest covers the bytes.
    #[serde(skip)]
    pub photo: Option<Arc<Photo>>,
    /// What was odd about the record but did not cost the person (a number kept as written, an
    /// email that is not one, a field cut): reported by line or DN.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// A yes or a no about partners, as sources write it: `yes`/`no`, `true`/`false`, `1`/`0`,
/// `y`/`n`, `ja`/`nein`, `oui`/`non`, `opt-in`/`opt-out`, `shared`/`hidden`, `visible`. `None`:
/// neither.
pub fn sharing_of(value: &str) -> Option<bool> {
    let v: String = value
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect();
    match v.as_str() {
        "yes" | "true" | "1" | "y" | "ja" | "j" | "oui" | "si" | "optin" | "optedin" | "shared"
        | "share" | "visible" | "public" | "on" => Some(true),
        "no" | "false" | "0" | "n" | "nein" | "non" | "optout" | "optedout" | "hidden"
        | "private" | "off" | "noshare" => Some(false),
        _ => None,
    }
}

/// The longest value kept in a text field (names, title, department…); longer is cut, with a
/// warning.
pub const MAX_FIELD_CHARS: usize = 512;

/// Most names one person is listed as going by.
const MAX_NICKNAMES: usize = 8;

/// The name a display name calls a person by instead of their given name: "Peggy Smith" or
/// `Margaret "Peggy" Smith` for Margaret Smith give "Peggy". Not initials ("M. Smith"), not the
/// given name with middle names ("Margaret Anne Smith"), not a name written family first.
fn called_in_display(display: &str, given: &str, family: &str) -> Option<String> {
    // Nearly every record: "Jane Smith" for Jane Smith.
    if display
        .strip_prefix(given)
        .and_then(|r| r.strip_prefix(' '))
        == Some(family)
    {
        return None;
    }
    // In double quotes: what the person is called, wherever it stands. (Not brackets: "Jane
    // Smith (Contractor)" is a note; not single quotes: O'Brien.)
    for (open, close) in [('"', '"'), ('“', '”')] {
        if let Some((_, rest)) = display.split_once(open) {
            if let Some((inside, _)) = rest.split_once(close) {
                let inside = inside.trim();
                if !inside.is_empty() && !inside.contains(',') {
                    return Some(inside.to_string());
                }
            }
        }
    }
    let lower = display.to_lowercase();
    let family = family.to_lowercase();
    let before = lower.strip_suffix(&family)?;
    if !before.ends_with(' ') {
        return None;
    }
    let called = display.get(..before.len())?.trim();
    let given_lower = given.to_lowercase();
    let called_lower = called.to_lowercase();
    let initials = called
        .split_whitespace()
        .all(|w| w.trim_end_matches('.').chars().count() <= 1);
    let plain = |s: &str| any_ascii::any_ascii(s).to_lowercase();
    if called.is_empty()
        || initials
        || called.contains(',')
        || called.split_whitespace().count() > 2
        || called_lower == given_lower
        || plain(called) == plain(given)
        || called_lower.starts_with(&format!("{given_lower} "))
        || given_lower.starts_with(&format!("{called_lower} "))
    {
        return None;
    }
    Some(called.to_string())
}

/// A picture read from a source, stored once per digest.
#[derive(Debug, PartialEq, Eq)]
pub struct Photo {
    pub digest: String,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

impl Photo {
    pub fn new(bytes: Vec<u8>) -> Photo {
        let digest = format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&bytes));
        let content_type = if bytes.starts_with(b"\x89PNG") {
            "image/png"
        } else if bytes.starts_with(b"GIF8") {
            "image/gif"
        } else {
            "image/jpeg"
        };
        Photo {
            digest,
            content_type,
            bytes,
        }
    }

    pub fn url(&self) -> String {
        Photo::url_of(&self.digest)
    }

    pub fn url_of(digest: &str) -> String {
        format!("/api/v1/photos/{digest}")
    }
}

/// A DN in one canonical spelling, so that DNs written by different servers or tools compare:
/// lower case, no spaces around separators (escaped characters are left as they are).
pub fn normalize_dn(dn: &str) -> String {
    let mut out = String::with_capacity(dn.len());
    let mut chars = dn.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                if let Some(next) = chars.next() {
                    out.extend(next.to_lowercase());
                }
            }
            ',' | '=' | '+' => {
                while out.ends_with(' ') {
                    out.pop();
                }
                out.push(c);
                while chars.peek() == Some(&' ') {
                    chars.next();
                }
            }
            _ => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// Why a record was refused. `external_id` is set when the record could still be identified, so a
/// full import keeps the person it refers to instead of deleting them.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordError {
    pub external_id: Option<String>,
    /// Where it lives in a directory, to report it by.
    pub dn: Option<String>,
    pub reason: String,
}

fn clean(value: Option<String>) -> Option<String> {
    let value = value?;
    if is_clean(&value) {
        // Nearly every value of a real export: kept as it is, without the copies of `collapse`.
        return (!value.is_empty()).then_some(value);
    }
    collapse(&value)
}

/// Whitespace runs become one space, control characters go (a NUL from a broken export, say,
/// never means anything in a directory); `None` when nothing is left.
fn collapse(value: &str) -> Option<String> {
    let collapsed: String = value
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    (!collapsed.is_empty()).then_some(collapsed)
}

/// Whether `clean` would return `value` unchanged: no control characters, and words separated
/// by single plain spaces, none at either end.
fn is_clean(value: &str) -> bool {
    let mut after_space = true;
    for c in value.chars() {
        if c.is_control() || (c.is_whitespace() && (c != ' ' || after_space)) {
            return false;
        }
        after_space = c == ' ';
    }
    !after_space || value.is_empty()
}

/// A deliberately small check: one `@`, a non-empty local part, a dotted domain, no spaces.
pub fn normalize_email(raw: &str) -> Result<String, String> {
    let email = raw.trim().to_lowercase();
    let bad = || format!("`{}` is not an email address", raw.trim());
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    let domain_ok = domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && local
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '@' && c != '"');
    if domain_ok && local_ok {
        Ok(email)
    } else {
        Err(bad())
    }
}

/// IM handles are URIs with a known scheme; a bare Matrix id (`@alice:example.org`) is accepted too.
pub fn normalize_im(raw: &str) -> Result<String, String> {
    let handle = raw.trim();
    if let Some(mxid) = handle.strip_prefix('@') {
        if mxid.contains(':') && !mxid.contains(char::is_whitespace) {
            return Ok(format!("matrix:u/{mxid}"));
        }
    }
    match handle.split_once(':') {
        Some((scheme, rest))
            if IM_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str())
                && !rest.is_empty()
                && !rest.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Ok(format!("{}:{rest}", scheme.to_ascii_lowercase()))
        }
        _ => Err(format!(
            "`{handle}` is not an IM handle (expected a URI such as xmpp:alice@example.org; schemes: {})",
            IM_SCHEMES.join(", ")
        )),
    }
}

impl SourceRecord {
    /// The id this record has in its source: the explicit id, else the first email, else the name.
    pub fn identity(&self) -> Option<String> {
        if let Some(id) = clean(self.external_id.clone()) {
            return Some(id);
        }
        if let Some(email) = self.emails.iter().find_map(|e| normalize_email(e).ok()) {
            return Some(email);
        }
        self.full_name()
            .map(|name| format!("name:{}", name.to_lowercase()))
    }

    /// The name as its owner writes it: the source's display name; else given and family name,
    /// family name first and without a space for a name in Chinese, Japanese or Korean script,
    /// family name first for a person the source places in Hungary.
    fn full_name(&self) -> Option<String> {
        clean(self.display_name.clone()).or_else(|| {
            let given = clean(self.given_name.clone());
            let family = clean(self.family_name.clone());
            match (given, family) {
                (Some(given), Some(family)) if is_cjk_name(&given) && is_cjk_name(&family) => {
                    Some(format!("{family}{given}"))
                }
                (Some(given), Some(family)) if self.family_name_first() => {
                    Some(format!("{family} {given}"))
                }
                (Some(given), Some(family)) => Some(format!("{given} {family}")),
                (one, other) => one.or(other),
            }
        })
    }

    /// Whether names are written family name first where the person lives (Hungary).
    fn family_name_first(&self) -> bool {
        self.country.as_deref().and_then(region_of_country) == Some(phonenumber::country::Id::HU)
    }

    /// The names the person goes by: the source's (split at commas), and the one their display
    /// name calls them by; none that is their given or display name, each once.
    fn nicknames(&self, display_name: &str, warnings: &mut Vec<String>) -> Vec<String> {
        let given = clean(self.given_name.clone());
        let family = clean(self.family_name.clone());
        let from_display = match (&given, &family) {
            (Some(given), Some(family)) => called_in_display(display_name, given, family),
            _ => None,
        };
        let same = |a: &str, b: &str| a.to_lowercase() == b.to_lowercase();
        let mut out: Vec<String> = Vec::new();
        let listed = self.nicknames.iter().flat_map(|n| n.split(','));
        for name in listed.map(str::to_string).chain(from_display) {
            let Some(name) = cut("nickname", clean(Some(name)), warnings) else {
                continue;
            };
            let known = same(&name, display_name)
                || given.as_deref().is_some_and(|g| same(&name, g))
                || out.iter().any(|n| same(n, &name));
            if !known && out.len() < MAX_NICKNAMES {
                out.push(name);
            }
        }
        out
    }

    /// Validates and normalizes. Refused only when it cannot be a person (no name and no
    /// email); anything else odd is a warning on the kept record.
    pub fn normalize(mut self, phones: &impl PhoneParser) -> Result<NormalizedRecord, RecordError> {
        let external_id = self.identity();
        let mut warnings = std::mem::take(&mut self.read_warnings);

        let mut emails = Vec::with_capacity(self.emails.len());
        for raw in self.emails.iter().filter(|e| !e.trim().is_empty()) {
            match normalize_email(raw) {
                Ok(email) if !emails.contains(&email) => emails.push(email),
                Ok(_) => {}
                Err(e) => warnings.push(format!("email not kept: {e}")),
            }
        }
        let display_name = match self.full_name() {
            Some(name) => name,
            None => {
                let Some(local) = emails.first().and_then(|e| e.split('@').next()) else {
                    return Err(RecordError {
                        external_id,
                        dn: self.dn.clone(),
                        reason: "no name and no email: not a person".into(),
                    });
                };
                warnings.push(format!("no name: shown as `{local}`, from the email"));
                local.to_string()
            }
        };
        let id = external_id.clone().ok_or_else(|| RecordError {
            external_id: None,
            dn: self.dn.clone(),
            reason: "no id".into(),
        })?;

        let normalized_phones = self.normalize_phones(phones, &mut warnings);
        let nicknames = self.nicknames(&display_name, &mut warnings);
        let partner_sharing = self
            .partner_sharing
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .and_then(|v| {
                let read = sharing_of(v);
                if read.is_none() {
                    warnings.push(format!(
                        "partner_sharing: `{v}` is neither yes nor no; the default applies"
                    ));
                }
                read
            });
        let photo = self
            .photo
            .filter(|bytes| !bytes.is_empty())
            .map(|bytes| Arc::new(Photo::new(bytes)));
        let mut im = Vec::with_capacity(self.im.len());
        for raw in self.im.iter().filter(|h| !h.trim().is_empty()) {
            match normalize_im(raw) {
                Ok(handle) if !im.contains(&handle) => im.push(handle),
                Ok(_) => {}
                Err(e) => warnings.push(format!("IM handle not kept: {e}")),
            }
        }
        let mut field = |name: &str, value: Option<String>| cut(name, clean(value), &mut warnings);
        let display_name = field("display_name", Some(display_name)).unwrap_or_default();
        let given_name = field("given_name", self.given_name);
        let family_name = field("family_name", self.family_name);
        let title = field("title", self.title);
        let department = field("department", self.department);
        let org_unit = field("org_unit", self.org_unit);
        let location = field("location", self.location);
        let manager_ref = field("manager", self.manager_ref);
        Ok(NormalizedRecord {
            external_id: id,
            display_name,
            given_name,
            family_name,
            nicknames,
            title,
            department,
            org_unit,
            location,
            manager_ref: manager_ref.map(|m| normalize_email(&m).unwrap_or(m)),
            phones: normalized_phones,
            emails,
            im,
            photo_url: photo
                .as_ref()
                .map(|p| p.url())
                .or_else(|| clean(self.photo_url)),
            dn: self.dn.as_deref().map(normalize_dn),
            partner_sharing,
            photo,
            warnings,
        })
    }
}

impl SourceRecord {
    /// Numbers with a country code first; then the national ones, read in the first region
    /// known: the person's country, the country of their numbers written internationally,
    /// then the source's, their office's or the company's (`RegionRules`). Kept in the order
    /// written, duplicates dropped.
    fn normalize_phones(
        &self,
        phones: &impl PhoneParser,
        warnings: &mut Vec<String>,
    ) -> Vec<Phone> {
        let written: Vec<&(PhoneKind, String)> = self
            .phones
            .iter()
            .filter(|(_, raw)| !raw.trim().is_empty())
            .collect();
        let mut parsed: Vec<Option<Result<Phone, String>>> = written
            .iter()
            .map(|(kind, raw)| {
                raw.trim_start()
                    .starts_with('+')
                    .then(|| phones.parse_in(*kind, raw, None))
            })
            .collect();
        if parsed.iter().any(Option::is_none) {
            let region = self
                .country
                .as_deref()
                .and_then(region_of_country)
                .or_else(|| {
                    parsed
                        .iter()
                        .flatten()
                        .find_map(|p| p.as_ref().ok()?.e164.as_deref().and_then(region_of_e164))
                })
                .or_else(|| phones.rules().fallback(self.location.as_deref()));
            for (slot, (kind, raw)) in parsed.iter_mut().zip(&written) {
                if slot.is_none() {
                    *slot = Some(phones.parse_in(*kind, raw, region));
                }
            }
        }
        let mut kept: Vec<Phone> = Vec::with_capacity(written.len());
        for (result, (kind, raw)) in parsed.into_iter().flatten().zip(&written) {
            let phone = result.unwrap_or_else(|e| {
                warnings.push(format!("phone kept as written: {e}"));
                Phone::as_written(*kind, raw)
            });
            let duplicate = kept.iter().any(|p| {
                p.kind == phone.kind
                    && p.e164 == phone.e164
                    && p.extension == phone.extension
                    && (p.valid || p.raw == phone.raw)
            });
            if !duplicate {
                kept.push(phone);
            }
        }
        kept
    }
}

/// Chinese characters, kana and Hangul: scripts whose names are written family name first,
/// without spaces.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF // hiragana, katakana
        | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF // CJK ideographs
        | 0xAC00..=0xD7AF // Hangul syllables
    )
}

fn is_cjk_name(name: &str) -> bool {
    name.chars().all(|c| is_cjk(c) || c == '\u{30FB}')
}

/// `value` cut to [`MAX_FIELD_CHARS`], with a warning naming the field when it was longer.
fn cut(name: &str, value: Option<String>, warnings: &mut Vec<String>) -> Option<String> {
    let value = value?;
    if value.len() <= MAX_FIELD_CHARS {
        return Some(value);
    }
    let chars = value.chars().count();
    if chars <= MAX_FIELD_CHARS {
        return Some(value);
    }
    warnings.push(format!(
        "{name} cut to {MAX_FIELD_CHARS} of its {chars} characters"
    ));
    Some(value.chars().take(MAX_FIELD_CHARS).collect())
}

impl NormalizedRecord {
    /// A stable 64-bit digest of everything the source said about this person.
    pub fn content_hash(&self) -> i64 {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        i64::from_ne_bytes(xxhash_rust::xxh3::xxh3_64(&bytes).to_ne_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalizer() -> PhoneNormalizer {
        PhoneNormalizer::new("GB").expect("region")
    }

    fn jane() -> SourceRecord {
        SourceRecord {
            given_name: Some(" Jane ".into()),
            family_name: Some("Smith".into()),
            emails: vec!["Jane.Smith@Example.COM".into()],
            phones: vec![(PhoneKind::Work, "020 7946 0018".into())],
            im: vec![
                "XMPP:jane@chat.example.com".into(),
                "@jane:example.com".into(),
            ],
            ..Default::default()
        }
    }

    fn e164s(rec: &NormalizedRecord) -> Vec<Option<&str>> {
        rec.phones.iter().map(|p| p.e164.as_deref()).collect()
    }

    #[test]
    fn national_numbers_are_read_in_the_first_region_known() {
        use std::collections::BTreeMap;
        let offices = BTreeMap::from([("Berlin".to_string(), "DE".to_string())]);
        let rules = |source: Option<&str>, default: Option<&str>| {
            PhoneNormalizer::with_rules(RegionRules::new(default, &offices, source).expect("rules"))
                .expect("normalizer")
        };
        let person =
            |country: Option<&str>, location: Option<&str>, phones: &[&str]| SourceRecord {
                display_name: Some("Kim".into()),
                country: country.map(str::to_string),
                location: location.map(str::to_string),
                phones: phones
                    .iter()
                    .map(|p| (PhoneKind::Work, p.to_string()))
                    .collect(),
                ..Default::default()
            };
        let none = rules(None, None);
        let us = rules(None, Some("US"));

        // The person's country column wins over everything else.
        let r = person(Some("Deutschland"), Some("London"), &["030 901820"])
            .normalize(&rules(Some("GB"), Some("US")))
            .expect("kept");
        assert_eq!(e164s(&r), [Some("+4930901820")]);
        // Then their other numbers written with a country code, in any order.
        let r = person(None, None, &["020 7946 0018", "+44 7400 123456"])
            .normalize(&us)
            .expect("kept");
        assert_eq!(e164s(&r), [Some("+442079460018"), Some("+447400123456")]);
        // Then the source's default, before the office's.
        let r = person(None, Some("Berlin"), &["020 7946 0018"])
            .normalize(&rules(Some("GB"), None))
            .expect("kept");
        assert_eq!(e164s(&r), [Some("+442079460018")]);
        // Then the office (any case), then the company's default.
        let r = person(None, Some(" berlin"), &["030 901820"])
            .normalize(&us)
            .expect("kept");
        assert_eq!(e164s(&r), [Some("+4930901820")]);
        let r = person(None, Some("Paris"), &["(212) 555-0100"])
            .normalize(&us)
            .expect("kept");
        assert_eq!(e164s(&r), [Some("+12125550100")]);
        // 0044… needs no region.
        let r = person(None, None, &["0044 20 7946 0018"])
            .normalize(&none)
            .expect("kept");
        assert_eq!(e164s(&r), [Some("+442079460018")]);

        // None known: kept as written, and the warning says what to set. Never read as US.
        let r = person(None, Some("Paris"), &["07700 900461"])
            .normalize(&none)
            .expect("kept");
        assert_eq!(e164s(&r), [None]);
        assert!(!r.phones[0].valid);
        assert!(
            r.warnings[0].contains("default_region") && r.warnings[0].contains("[regions]"),
            "{:?}",
            r.warnings
        );
    }

    #[test]
    fn names_emails_and_handles_are_normalized() {
        let r = jane().normalize(&normalizer()).expect("valid");
        assert_eq!(r.display_name, "Jane Smith");
        assert_eq!(r.given_name.as_deref(), Some("Jane"));
        assert_eq!(r.emails, vec!["jane.smith@example.com"]);
        assert_eq!(r.external_id, "jane.smith@example.com");
        assert_eq!(
            r.im,
            vec!["xmpp:jane@chat.example.com", "matrix:u/jane:example.com"]
        );
    }

    #[test]
    fn only_a_record_that_cannot_be_a_person_is_refused() {
        let rec = SourceRecord {
            phones: vec![(PhoneKind::Work, "020 7946 0018".into())],
            title: Some("Nobody".into()),
            ..Default::default()
        };
        let err = rec.normalize(&normalizer()).expect_err("no name, no email");
        assert!(
            err.reason.contains("no name and no email"),
            "{}",
            err.reason
        );

        // An email and no name: kept under the address's local part, with a warning.
        let rec = SourceRecord {
            emails: vec!["x.lee@example.com".into()],
            ..Default::default()
        };
        let kept = rec.normalize(&normalizer()).expect("kept");
        assert_eq!(kept.display_name, "x.lee");
        assert_eq!(kept.external_id, "x.lee@example.com");
        assert!(kept.warnings[0].contains("no name"), "{:?}", kept.warnings);
    }

    #[test]
    fn bad_email_phone_and_im_are_warnings_on_a_kept_person() {
        let mut rec = jane();
        rec.emails = vec!["not-an-email".into(), "jane@example.com".into()];
        rec.phones = vec![
            (PhoneKind::Mobile, "07700 900461 x".into()),
            (PhoneKind::Work, "12-ab".into()),
            (PhoneKind::Work, "020 7946 0018".into()),
        ];
        rec.im = vec!["icq:12345".into(), "xmpp:jane@chat.example.com".into()];
        let kept = rec.normalize(&normalizer()).expect("kept");
        assert_eq!(kept.emails, vec!["jane@example.com"]);
        assert_eq!(kept.im, vec!["xmpp:jane@chat.example.com"]);
        let kept_as_written: Vec<&str> = kept
            .phones
            .iter()
            .filter(|p| !p.valid)
            .map(|p| p.display.as_str())
            .collect();
        assert_eq!(kept_as_written, vec!["07700 900461 x", "12-ab"]);
        assert!(kept
            .phones
            .iter()
            .filter(|p| !p.valid)
            .all(|p| p.e164.is_none()));
        assert_eq!(kept.phones[2].e164.as_deref(), Some("+442079460018"));
        let warnings = kept.warnings.join("\n");
        for needle in ["not-an-email", "07700 900461 x", "12-ab", "icq:12345"] {
            assert!(warnings.contains(needle), "{needle}: {warnings}");
        }
        // Kept as written, found by its digits (with and without the trunk 0).
        let keys = kept.phones[0].search_keys();
        assert_eq!(
            keys,
            vec!["7700900461".to_string(), "07700900461".to_string()]
        );
    }

    #[test]
    fn an_over_long_field_is_cut_and_reported() {
        let mut rec = jane();
        rec.family_name = Some("S".repeat(10 * 1024 * 1024));
        let kept = rec.normalize(&normalizer()).expect("kept");
        assert_eq!(
            kept.family_name.as_deref().map(str::len),
            Some(MAX_FIELD_CHARS)
        );
        assert!(
            kept.warnings
                .iter()
                .any(|w| w.starts_with("family_name cut to 512")),
            "{:?}",
            kept.warnings
        );
    }

    proptest::proptest! {
        /// Whatever digits (and phone punctuation) a number holds, in whatever region or none,
        /// the person is kept: the number parses to a valid E.164, is an extension, or is kept
        /// as written, flagged, with a warning, and found by its digits.
        #[test]
        fn every_number_is_read_or_kept_as_written(
            raw in "[+]?[0-9][0-9 ()./-]{0,20}",
            region in proptest::sample::select(vec![None, Some("GB"), Some("US"), Some("DE"), Some("JP")]),
        ) {
            let phones = PhoneNormalizer::with_rules(
                RegionRules::new(region, &Default::default(), None).expect("rules"),
            )
            .expect("normalizer");
            let rec = SourceRecord {
                display_name: Some("Kim".into()),
                phones: vec![(PhoneKind::Work, raw.clone())],
                ..Default::default()
            };
            let kept = rec.normalize(&phones).expect("a person is never refused for a number");
            proptest::prop_assert_eq!(kept.phones.len(), 1);
            let phone = &kept.phones[0];
            if phone.valid {
                proptest::prop_assert!(
                    phone.e164.as_deref().is_some_and(|e| e.starts_with('+'))
                        || phone.kind == PhoneKind::Extension,
                    "{:?}", phone
                );
                proptest::prop_assert!(kept.warnings.is_empty());
            } else {
                proptest::prop_assert_eq!(phone.e164.as_deref(), None);
                proptest::prop_assert_eq!(&phone.raw, raw.trim());
                proptest::prop_assert_eq!(kept.warnings.len(), 1);
                let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
                if digits.len() >= 3 {
                    proptest::prop_assert!(phone.search_keys().contains(&digits));
                }
            }
        }

        #[test]
        fn the_clean_shortcut_changes_nothing(value in "[a-zé \t\n\u{a0}\u{0}\u{2003}]{0,12}") {
            proptest::prop_assert_eq!(clean(Some(value.clone())), collapse(&value));
        }
    }

    #[test]
    fn emails_are_checked() {
        for good in [
            "a@b.co",
            "first.last+tag@sub.example.org",
            "josé@exämple.de",
        ] {
            assert!(normalize_email(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "@b.com",
            "a@-b.com",
            "a@b..com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_hash_changes_with_content_only() {
        let a = jane().normalize(&normalizer()).expect("valid");
        let b = jane().normalize(&normalizer()).expect("valid");
        assert_eq!(a.content_hash(), b.content_hash());
        let mut changed = jane();
        changed.title = Some("CFO".into());
        assert_ne!(
            a.content_hash(),
            changed
                .normalize(&normalizer())
                .expect("valid")
                .content_hash()
        );
    }

    fn named(
        given: &str,
        family: &str,
        display: Option<&str>,
        country: Option<&str>,
    ) -> SourceRecord {
        SourceRecord {
            given_name: Some(given.into()),
            family_name: Some(family.into()),
            display_name: display.map(str::to_string),
            country: country.map(str::to_string),
            emails: vec![format!("{}@example.com", given.to_lowercase())],
            ..Default::default()
        }
    }

    #[test]
    fn nicknames_come_from_the_source_and_from_a_display_name_that_says_so() {
        let called = |display: &str| {
            named("Margaret", "Smith", Some(display), None)
                .normalize(&normalizer())
                .expect("kept")
                .nicknames
        };
        assert_eq!(called("Peggy Smith"), ["Peggy"]);
        assert_eq!(called("Margaret \"Peggy\" Smith"), ["Peggy"]);
        assert_eq!(called("MARGARET SMITH"), Vec::<String>::new());
        assert_eq!(called("Margaret Smith"), Vec::<String>::new());
        assert_eq!(
            called("Margaret Anne Smith"),
            Vec::<String>::new(),
            "a middle name"
        );
        assert_eq!(called("M. Smith"), Vec::<String>::new(), "an initial");
        assert_eq!(called("Smith, Margaret"), Vec::<String>::new());
        assert_eq!(called("Margaret Smith (Contractor)"), Vec::<String>::new());
        assert_eq!(
            called("Maggie O'Brien-Smith"),
            Vec::<String>::new(),
            "another family name"
        );
        let accent = named("José", "Lima", Some("Jose Lima"), None);
        assert!(accent
            .normalize(&normalizer())
            .expect("kept")
            .nicknames
            .is_empty());

        let mut listed = named("Richard", "Roe", None, None);
        listed.nicknames = vec![
            "Dick, Rick".into(),
            " rick ".into(),
            "Richard".into(),
            String::new(),
        ];
        let rec = listed.normalize(&normalizer()).expect("kept");
        assert_eq!(
            rec.nicknames,
            ["Dick", "Rick"],
            "split, cleaned, each once, not the given name"
        );
        assert_eq!(rec.display_name, "Richard Roe");
    }

    #[test]
    fn sources_say_yes_or_no_to_partners_in_their_own_words() {
        for yes in ["yes", "TRUE", "1", "Y", "ja", "opt-in", "Shared", "visible"] {
            assert_eq!(sharing_of(yes), Some(true), "{yes}");
        }
        for no in [
            "no", "FALSE", "0", "n", "Nein", "opt out", "hidden", "private",
        ] {
            assert_eq!(sharing_of(no), Some(false), "{no}");
        }
        assert_eq!(sharing_of("maybe"), None);
        // Saying nothing keeps the digest records had before the attribute existed.
        let before = jane().normalize(&normalizer()).expect("kept");
        assert!(!serde_json::to_string(&before)
            .expect("json")
            .contains("partner_sharing"));
        let mut no = jane();
        no.partner_sharing = Some("no".into());
        let after = no.normalize(&normalizer()).expect("kept");
        assert_eq!(after.partner_sharing, Some(false));
        assert_ne!(before.content_hash(), after.content_hash());
    }

    #[test]
    fn records_without_nicknames_keep_their_digest() {
        let rec = jane().normalize(&normalizer()).expect("kept");
        let json = serde_json::to_string(&rec).expect("json");
        assert!(!json.contains("nicknames"), "{json}");
        let mut called = jane();
        called.nicknames = vec!["Janie".into()];
        let other = called.normalize(&normalizer()).expect("kept");
        assert_ne!(rec.content_hash(), other.content_hash());
    }

    #[test]
    fn names_are_composed_in_their_owners_order() {
        let name = |given, family, country| {
            named(given, family, None, country)
                .normalize(&normalizer())
                .expect("kept")
                .display_name
        };
        assert_eq!(name("芳", "王", None), "王芳");
        assert_eq!(name("Péter", "Nagy", Some("HU")), "Nagy Péter");
        assert_eq!(name("Péter", "Nagy", Some("Hungary")), "Nagy Péter");
        assert_eq!(name("Péter", "Nagy", Some("AT")), "Péter Nagy");
        assert_eq!(name("Péter", "Nagy", None), "Péter Nagy");
        let shown = named("Péter", "Nagy", Some("Peter Nagy"), Some("HU"));
        assert_eq!(
            shown.normalize(&normalizer()).expect("kept").display_name,
            "Peter Nagy"
        );
    }
}
