//! Phone numbers: kept as typed, normalized to E.164 with the `phonenumber` crate.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub use phonenumber::country::Id as Region;
use phonenumber::metadata::Database;
use phonenumber::Mode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::numbering;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PhoneKind {
    Work,
    Mobile,
    Home,
    Fax,
    /// An internal extension with no public number.
    Extension,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Phone {
    pub kind: PhoneKind,
    /// E.164 form (`+442079460018`); absent for extension-only numbers and for numbers kept
    /// as written.
    pub e164: Option<String>,
    /// How to show it: national format in the default region, international elsewhere; as
    /// written when it could not be read.
    pub display: String,
    /// Internal extension, if any.
    pub extension: Option<String>,
    /// As the source wrote it.
    pub raw: String,
    /// `false`: the number did not parse, was not valid in its numbering plan (a range for
    /// fiction, one allocated after the plans were built, a typo) or had no known country; it is
    /// kept as written, found by its digits, and dialled as written. Absent means `true`.
    #[serde(default = "valid", skip_serializing_if = "is_valid")]
    #[schema(default = true)]
    pub valid: bool,
}

fn valid() -> bool {
    true
}

fn is_valid(valid: &bool) -> bool {
    *valid
}

/// The longest number kept as written (longer is cut).
pub const MAX_WRITTEN_CHARS: usize = 64;

impl Phone {
    /// A number kept as the source wrote it, because it could not be read as one.
    pub fn as_written(kind: PhoneKind, raw: &str) -> Phone {
        let raw: String = raw.trim().chars().take(MAX_WRITTEN_CHARS).collect();
        Phone {
            kind,
            e164: None,
            display: raw.clone(),
            extension: None,
            raw,
            valid: false,
        }
    }

    /// Digit strings a search for this number may start with: E.164 digits, the national
    /// significant number, and the extension; for a number kept as written, its digits (and
    /// without a national trunk `0`, as searches strip it).
    pub fn search_keys(&self) -> Vec<String> {
        let mut keys = Vec::with_capacity(3);
        if !self.valid {
            let digits: String = self.raw.chars().filter(char::is_ascii_digit).collect();
            if digits.len() >= 3 {
                let national = digits.trim_start_matches('0');
                if national.len() >= 3 && national.len() != digits.len() {
                    keys.push(national.to_string());
                }
                keys.push(digits);
            }
            return keys;
        }
        if let Some(e164) = &self.e164 {
            let digits: String = e164.chars().filter(char::is_ascii_digit).collect();
            keys.push(digits);
        }
        if let Some(national) = self.national_digits() {
            keys.push(national);
        }
        if let Some(ext) = &self.extension {
            keys.push(ext.clone());
        }
        keys.dedup();
        keys
    }

    /// The digits after the country calling code.
    fn national_digits(&self) -> Option<String> {
        split_e164(self.e164.as_deref()?).map(|(_, national)| national.to_string())
    }
}

/// An E.164 number's calling code and the digits after it. Calling codes are prefix-free, so
/// the first 1–3 digits that name a known code are it (cheaper than parsing the number again).
fn split_e164(e164: &str) -> Option<(u16, &str)> {
    let digits = e164.strip_prefix('+')?;
    (1..=3.min(digits.len())).find_map(|len| {
        let code: u16 = digits[..len].parse().ok()?;
        phonenumber::metadata::DATABASE.by_code(&code)?;
        Some((code, &digits[len..]))
    })
}

pub fn parse_region(code: &str) -> Result<Region, String> {
    code.trim()
        .to_ascii_uppercase()
        .parse::<Region>()
        .map_err(|_| format!("`{code}` is not an ISO 3166 region code"))
}

/// Where a person's numbers written without a country code belong when neither their own
/// country nor their other numbers say: the source's default, their office's (`[regions]`), the
/// company's (`default_region`). The first that is set wins.
#[derive(Debug, Clone, Default)]
pub struct RegionRules {
    pub source_default: Option<Region>,
    /// Office location (lower case) → region.
    pub by_location: HashMap<String, Region>,
    pub default: Option<Region>,
}

impl RegionRules {
    /// Reads the settings as written (ISO 3166 codes); an error names the one that is wrong.
    pub fn new(
        default: Option<&str>,
        by_location: &BTreeMap<String, String>,
        source_default: Option<&str>,
    ) -> Result<RegionRules, String> {
        let region = |setting: &str, code: Option<&str>| {
            code.map(|c| parse_region(c).map_err(|e| format!("{setting}: {e}")))
                .transpose()
        };
        let mut locations = HashMap::with_capacity(by_location.len());
        for (location, code) in by_location {
            let r = parse_region(code).map_err(|e| format!("regions.\"{location}\": {e}"))?;
            locations.insert(location.trim().to_lowercase(), r);
        }
        Ok(RegionRules {
            source_default: region("the source's default_region", source_default)?,
            by_location: locations,
            default: region("default_region", default)?,
        })
    }

    /// The region for someone at `location` whose own country is not known.
    pub fn fallback(&self, location: Option<&str>) -> Option<Region> {
        self.source_default
            .or_else(|| {
                let location = location?.trim().to_lowercase();
                self.by_location.get(&location).copied()
            })
            .or(self.default)
    }
}

/// The region whose numbering plan `e164` belongs to (the main region of its calling code).
pub fn region_of_e164(e164: &str) -> Option<Region> {
    let (code, _) = split_e164(e164)?;
    let plans = phonenumber::metadata::DATABASE.by_code(&code)?;
    plans.first()?.id().parse().ok()
}

/// Normalizes phone numbers: written with a country code, or read in a region the caller
/// infers ([`RegionRules`]); never in a region nobody named.
#[derive(Debug, Clone)]
pub struct PhoneNormalizer {
    rules: Arc<RegionRules>,
    /// The company's calling code: numbers with it are shown in national format.
    calling_code: Option<u16>,
}

/// The longest all-digit string treated as an internal extension rather than a public number.
const MAX_EXTENSION_DIGITS: usize = 6;

impl PhoneNormalizer {
    /// A normalizer whose default region is `region` (tests, tools).
    pub fn new(region: &str) -> Result<Self, String> {
        Self::with_rules(RegionRules::new(Some(region), &BTreeMap::new(), None)?)
    }

    pub fn with_rules(rules: RegionRules) -> Result<Self, String> {
        let calling_code = match rules.default {
            Some(region) => Some(
                phonenumber::metadata::DATABASE
                    .by_id(region.as_ref())
                    .map(|m| m.country_code())
                    .ok_or_else(|| format!("no numbering plan for region `{}`", region.as_ref()))?,
            ),
            None => None,
        };
        Ok(PhoneNormalizer {
            rules: Arc::new(rules),
            calling_code,
        })
    }

    /// Whether `raw` is a number to parse rather than an internal extension.
    fn is_extension(kind: PhoneKind, raw: &str) -> bool {
        let trimmed = raw.trim();
        let digits_only = !trimmed.is_empty() && trimmed.chars().all(|c| c.is_ascii_digit());
        kind == PhoneKind::Extension || (digits_only && trimmed.len() <= MAX_EXTENSION_DIGITS)
    }

    /// Runs `f` with a parser that has a private copy of the numbering plans ([`numbering`]),
    /// for bulk imports: phonenumber 0.3's own cache is one global mutex, so every thread of an
    /// import parses with its own.
    pub fn with_private_parser<R>(&self, f: impl FnOnce(&PrivateParser<'_>) -> R) -> R {
        numbering::with_private_database(|db| {
            f(&PrivateParser {
                normalizer: self,
                db,
            })
        })
    }

    /// Parses one number in the fallback region (no location known). Short all-digit strings
    /// are internal extensions.
    pub fn normalize(&self, kind: PhoneKind, raw: &str) -> Result<Phone, String> {
        let region = self.rules.fallback(None);
        self.normalize_with(numbering::shared_database(), kind, raw, region)
    }

    /// Parses one number with the numbering plans in `db` (a private copy, see [`numbering`]),
    /// reading a number without a country code in `region`.
    fn normalize_with(
        &self,
        db: &Database,
        kind: PhoneKind,
        raw: &str,
        region: Option<Region>,
    ) -> Result<Phone, String> {
        let trimmed = raw.trim();
        if Self::is_extension(kind, raw) {
            let ext: String = trimmed.chars().filter(|c| !c.is_whitespace()).collect();
            if ext.is_empty() || ext.len() > 10 || !ext.chars().all(|c| c.is_ascii_digit()) {
                return Err(format!("`{raw}` is not an extension (2 to 10 digits)"));
            }
            return Ok(Phone {
                kind: PhoneKind::Extension,
                e164: None,
                display: ext.clone(),
                extension: Some(ext),
                raw: trimmed.to_string(),
                valid: true,
            });
        }
        // A number written with its country code needs no region; giving one anyway makes
        // phonenumber 0.3 strip that region's trunk prefix (`+33 1 41…` loses its `1` for US).
        let region = if trimmed.starts_with('+') {
            None
        } else {
            region
        };
        if region.is_none() && !is_international(trimmed) {
            return Err(format!(
                "`{raw}` has no country code and no country is known for this person \
                 (add a country column, the source's `default_region`, a `[regions]` entry \
                 for their location, or `default_region`)"
            ));
        }
        let written;
        let text = match trimmed.strip_prefix("00") {
            Some(rest) if region.is_none() => {
                written = format!("+{rest}");
                written.as_str()
            }
            _ => trimmed,
        };
        let number = phonenumber::parse_with(db, region, text)
            .map_err(|e| format!("`{raw}` is not a phone number ({e})"))?;
        if !numbering::is_valid(&number) {
            return Err(format!("`{raw}` is not a valid phone number"));
        }
        // What the crate's E.164 formatter writes, without the format lookup it does first
        // (for the other modes).
        let e164 = format!("+{}{}", number.code().value(), number.national());
        let extension = number.extension().map(|e| e.to_string());
        let mode = if Some(number.code().value()) == self.calling_code {
            Mode::National
        } else {
            Mode::International
        };
        // The formatter writes the extension itself (" ext. 123").
        let display = number.format_with(db).mode(mode).to_string();
        Ok(Phone {
            kind,
            e164: Some(e164),
            display,
            extension,
            raw: trimmed.to_string(),
            valid: true,
        })
    }
}

/// Written with its country code: `+44…`, or `0044…` (the international prefix of most of the
/// world, assumed only where no region is known; a known region's own prefix is its plan's).
pub fn is_international(written: &str) -> bool {
    let written = written.trim_start();
    written.starts_with('+') || written.starts_with("00")
}

/// A parser with a private copy of the numbering plans (`PhoneNormalizer::with_private_parser`).
pub struct PrivateParser<'a> {
    normalizer: &'a PhoneNormalizer,
    db: &'a Database,
}

/// Something that turns a number as written into a `Phone`.
pub trait PhoneParser {
    /// Parses `raw`, reading a number without a country code in `region` (none: refused with
    /// a message that says which setting would give one).
    fn parse_in(&self, kind: PhoneKind, raw: &str, region: Option<Region>)
        -> Result<Phone, String>;

    /// Where numbers of someone at `location` belong when the person does not say.
    fn rules(&self) -> &RegionRules;

    /// Parses `raw` in the fallback region.
    fn parse(&self, kind: PhoneKind, raw: &str) -> Result<Phone, String> {
        self.parse_in(kind, raw, self.rules().fallback(None))
    }
}

impl PhoneParser for PhoneNormalizer {
    fn parse_in(
        &self,
        kind: PhoneKind,
        raw: &str,
        region: Option<Region>,
    ) -> Result<Phone, String> {
        self.normalize_with(numbering::shared_database(), kind, raw, region)
    }

    fn rules(&self) -> &RegionRules {
        &self.rules
    }
}

impl PhoneParser for PrivateParser<'_> {
    fn parse_in(
        &self,
        kind: PhoneKind,
        raw: &str,
        region: Option<Region>,
    ) -> Result<Phone, String> {
        self.normalizer.normalize_with(self.db, kind, raw, region)
    }

    fn rules(&self) -> &RegionRules {
        &self.normalizer.rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::numbering::tests::EXAMPLES;
    use proptest::prelude::*;

    /// The normalizer as it was before private databases and `numbering::is_valid`: nothing but
    /// the crate's own calls on its global database. The fast paths must agree with it.
    fn reference(n: &PhoneNormalizer, kind: PhoneKind, raw: &str) -> Result<Phone, String> {
        if PhoneNormalizer::is_extension(kind, raw) {
            return n.normalize(kind, raw);
        }
        let trimmed = raw.trim();
        let region = (!trimmed.starts_with('+'))
            .then_some(n.rules.default)
            .flatten();
        let number = phonenumber::parse(region, trimmed)
            .map_err(|e| format!("`{raw}` is not a phone number ({e})"))?;
        if !phonenumber::is_valid(&number) {
            return Err(format!("`{raw}` is not a valid phone number"));
        }
        let e164 = number.format().mode(Mode::E164).to_string();
        let extension = number.extension().map(|e| e.to_string());
        let mode = if Some(number.code().value()) == n.calling_code {
            Mode::National
        } else {
            Mode::International
        };
        let display = number.format().mode(mode).to_string();
        Ok(Phone {
            kind,
            e164: Some(e164),
            display,
            extension,
            raw: trimmed.to_string(),
            valid: true,
        })
    }

    const REGIONS: &[&str] = &["US", "GB", "DE", "FR", "IT", "JP", "BR", "IN", "AU", "CH"];

    /// A number as people write them: an example number of some region, its tail changed, with
    /// or without its calling code or the default region's trunk prefix, with separators,
    /// sometimes an extension; or something that is barely a number at all.
    fn written_number() -> impl Strategy<Value = String> {
        let from_example = (
            any::<prop::sample::Index>(),
            0usize..12,
            "[0-9]{0,6}",
            0u8..4,
            prop::option::of("[0-9]{1,5}"),
            prop::sample::select(vec!["", " ", "-", " (0) ", "."]),
        )
            .prop_map(|(pick, keep, tail, form, ext, sep)| {
                let (code, example) = &EXAMPLES[pick.index(EXAMPLES.len())];
                let digits = format!("{}{tail}", &example[..keep.min(example.len())]);
                let (head, rest) = digits.split_at(digits.len().min(3));
                let number = match form {
                    0 => format!("+{code}{digits}"),
                    1 => format!("+{code} {head}{sep}{rest}"),
                    2 => format!("0{head}{sep}{rest}"),
                    _ => format!("{head}{sep}{rest}"),
                };
                match ext {
                    Some(ext) => format!("{number} ext. {ext}"),
                    None => number,
                }
            });
        prop_oneof![4 => from_example, 1 => "[0-9+() x-]{0,16}"]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn bulk_and_single_parsing_agree_with_the_crate(
            region in prop::sample::select(REGIONS),
            raws in prop::collection::vec(written_number(), 1..40),
        ) {
            let n = PhoneNormalizer::new(region).expect("region");
            n.with_private_parser(|private| {
                for raw in &raws {
                    let expected = reference(&n, PhoneKind::Mobile, raw);
                    prop_assert_eq!(&private.parse(PhoneKind::Mobile, raw), &expected, "{}", raw);
                    prop_assert_eq!(&n.normalize(PhoneKind::Mobile, raw), &expected, "{}", raw);
                }
                Ok(())
            })?;
        }
    }

    fn gb() -> PhoneNormalizer {
        PhoneNormalizer::new("GB").expect("region")
    }

    #[test]
    fn national_and_international_forms_agree() {
        let a = gb()
            .normalize(PhoneKind::Work, "020 7946 0018")
            .expect("national");
        let b = gb()
            .normalize(PhoneKind::Work, "+44 20 7946 0018")
            .expect("international");
        assert_eq!(a.e164.as_deref(), Some("+442079460018"));
        assert_eq!(a.e164, b.e164);
        assert_eq!(a.display, "020 7946 0018");
    }

    #[test]
    fn foreign_numbers_display_internationally() {
        let p = gb()
            .normalize(PhoneKind::Mobile, "+49 151 23456789")
            .expect("de mobile");
        assert_eq!(p.e164.as_deref(), Some("+4915123456789"));
        assert!(p.display.starts_with("+49 "), "{}", p.display);
    }

    #[test]
    fn short_digit_strings_are_extensions() {
        let p = gb().normalize(PhoneKind::Work, "4711").expect("extension");
        assert_eq!(p.kind, PhoneKind::Extension);
        assert_eq!(p.e164, None);
        assert_eq!(p.extension.as_deref(), Some("4711"));
    }

    #[test]
    fn extensions_on_numbers_are_kept() {
        let p = PhoneNormalizer::new("US")
            .expect("region")
            .normalize(PhoneKind::Work, "+1 212 555 0100 ext. 1234")
            .expect("with extension");
        assert_eq!(p.extension.as_deref(), Some("1234"));
        assert_eq!(p.e164.as_deref(), Some("+12125550100"));
        assert!(p.search_keys().contains(&"1234".to_string()));
    }

    #[test]
    fn garbage_is_rejected_with_the_input_named() {
        let err = gb()
            .normalize(PhoneKind::Work, "call me maybe")
            .expect_err("garbage");
        assert!(err.contains("call me maybe"), "{err}");
        assert!(gb().normalize(PhoneKind::Work, "+44 1").is_err());
    }

    #[test]
    fn search_keys_cover_e164_and_national_digits() {
        let p = gb()
            .normalize(PhoneKind::Work, "020 7946 0018")
            .expect("parse");
        assert_eq!(
            p.search_keys(),
            vec!["442079460018".to_string(), "2079460018".to_string()]
        );
    }

    #[test]
    fn international_numbers_ignore_the_default_region_trunk_prefix() {
        let us = PhoneNormalizer::new("US").expect("region");
        let p = us
            .normalize(PhoneKind::Work, "+33 1 41 31 53 02")
            .expect("paris number");
        assert_eq!(p.e164.as_deref(), Some("+33141315302"));
        assert_eq!(p.search_keys()[1], "141315302");
    }

    #[test]
    fn bulk_parsing_agrees_with_one_by_one() {
        let n = gb();
        let raws = [
            (PhoneKind::Mobile, "+49 151 23456789"),
            (PhoneKind::Work, "020 7946 0018"),
            (PhoneKind::Work, "nope"),
            (PhoneKind::Work, "4711"),
        ];
        n.with_private_parser(|private| {
            for (kind, raw) in raws {
                assert_eq!(private.parse(kind, raw), n.normalize(kind, raw), "{raw}");
            }
        });
    }

    #[test]
    fn unknown_region_is_an_error() {
        assert!(PhoneNormalizer::new("XX").is_err());
    }
}
