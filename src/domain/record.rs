//! A contact as a source delivers it, and its validated, normalized form.

use std::sync::Arc;

use serde::Serialize;

#[cfg(test)]
use super::phone::PhoneNormalizer;
use super::phone::{Phone, PhoneKind, PhoneParser};
use super::IM_SCHEMES;

/// A contact as read from a source, before validation. Empty strings mean "absent".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourceRecord {
    pub external_id: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub display_name: Option<String>,
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
}

/// A validated contact, ready to store. Its `content_hash` decides whether a re-import changes anything.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NormalizedRecord {
    pub external_id: String,
    pub display_name: String,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
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
    /// Stored by digest; `photo_url` names it, so the digest covers the bytes.
    #[serde(skip)]
    pub photo: Option<Arc<Photo>>,
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

    fn full_name(&self) -> Option<String> {
        clean(self.display_name.clone()).or_else(|| {
            let parts: Vec<String> = [&self.given_name, &self.family_name]
                .into_iter()
                .filter_map(|p| clean(p.clone()))
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        })
    }

    pub fn normalize(self, phones: &impl PhoneParser) -> Result<NormalizedRecord, RecordError> {
        let external_id = self.identity();
        let fail = |reason: String| RecordError {
            external_id: external_id.clone(),
            reason,
        };

        let display_name = self.full_name().ok_or_else(|| fail("no name".into()))?;
        let id = external_id.clone().ok_or_else(|| fail("no id".into()))?;

        let mut emails = Vec::with_capacity(self.emails.len());
        for raw in self.emails.iter().filter(|e| !e.trim().is_empty()) {
            let email = normalize_email(raw).map_err(|e| fail(format!("invalid email: {e}")))?;
            if !emails.contains(&email) {
                emails.push(email);
            }
        }
        let mut normalized_phones: Vec<Phone> = Vec::with_capacity(self.phones.len());
        for (kind, raw) in self.phones.iter().filter(|(_, raw)| !raw.trim().is_empty()) {
            let phone = phones
                .parse(*kind, raw)
                .map_err(|e| fail(format!("invalid phone: {e}")))?;
            let duplicate = normalized_phones.iter().any(|p| {
                p.kind == phone.kind && p.e164 == phone.e164 && p.extension == phone.extension
            });
            if !duplicate {
                normalized_phones.push(phone);
            }
        }
        let photo = self
            .photo
            .filter(|bytes| !bytes.is_empty())
            .map(|bytes| Arc::new(Photo::new(bytes)));
        let mut im = Vec::with_capacity(self.im.len());
        for raw in self.im.iter().filter(|h| !h.trim().is_empty()) {
            let handle = normalize_im(raw).map_err(|e| fail(format!("invalid IM handle: {e}")))?;
            if !im.contains(&handle) {
                im.push(handle);
            }
        }
        Ok(NormalizedRecord {
            external_id: id,
            display_name,
            given_name: clean(self.given_name),
            family_name: clean(self.family_name),
            title: clean(self.title),
            department: clean(self.department),
            org_unit: clean(self.org_unit),
            location: clean(self.location),
            manager_ref: clean(self.manager_ref).map(|m| normalize_email(&m).unwrap_or(m)),
            phones: normalized_phones,
            emails,
            im,
            photo_url: photo
                .as_ref()
                .map(|p| p.url())
                .or_else(|| clean(self.photo_url)),
            dn: self.dn.as_deref().map(normalize_dn),
            photo,
        })
    }
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
    fn a_record_without_a_name_is_refused() {
        let rec = SourceRecord {
            emails: vec!["x@example.com".into()],
            ..Default::default()
        };
        let err = rec.normalize(&normalizer()).expect_err("no name");
        assert_eq!(err.reason, "no name");
        assert_eq!(err.external_id.as_deref(), Some("x@example.com"));
    }

    #[test]
    fn bad_email_phone_and_im_are_refused_with_reasons() {
        let mut rec = jane();
        rec.emails = vec!["not-an-email".into()];
        assert!(rec
            .normalize(&normalizer())
            .expect_err("email")
            .reason
            .contains("not-an-email"));
        let mut rec = jane();
        rec.phones = vec![(PhoneKind::Mobile, "12-ab".into())];
        assert!(rec
            .normalize(&normalizer())
            .expect_err("phone")
            .reason
            .starts_with("invalid phone"));
        let mut rec = jane();
        rec.im = vec!["icq:12345".into()];
        assert!(rec
            .normalize(&normalizer())
            .expect_err("im")
            .reason
            .starts_with("invalid IM"));
    }

    proptest::proptest! {
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
}
