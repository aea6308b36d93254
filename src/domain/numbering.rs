//! The `phonenumber` crate's numbering plans, used without its one shared regex cache.
//!
//! phonenumber 0.3 looks every pattern up by its source text in one global, mutex-guarded LRU
//! cache of 100 compiled regexes: each use hashes and compares a pattern that can run to
//! thousands of characters, and no two threads can parse at once. What is here avoids that
//! without changing a single result:
//!
//! - [`with_private_database`]: a copy of the crate's database, built through its public API
//!   from the same metadata, with a cache of its own. A thread holding one parses and formats
//!   with the crate's own code (`parse_with`, `format_with`) without waiting for anyone.
//! - Its patterns are anchored at the start. The crate only ever acts on a match that starts
//!   at the first digit (it checks `start() == 0`, or has checked it before it captures or
//!   replaces), and such a match is the same whether the search is anchored or not; unanchored,
//!   the regex engine also tries a match at every later digit, and over many different numbers
//!   keeps building automaton states for patterns of hundreds of area codes.
//! - [`is_valid`]: the crate's `is_valid_with`, line for line, over the same anchored patterns
//!   compiled once and kept outside any cache.
//!
//! `tests` here and in `phone` pin all of it against the crate's own global database.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, OnceLock};

use phonenumber::country;
use phonenumber::metadata::{loader, Database, Descriptor, Format, Metadata, DATABASE};
use phonenumber::PhoneNumber;
use regex::{Regex, RegexBuilder};

/// Country calling codes are 1 to 3 digits.
const MAX_CALLING_CODE: u16 = 999;

/// The crate's metadata in a form `Database::from` accepts, in the order that rebuilds the
/// same lookups: per calling code its regions in the crate's order (main region first), and
/// for an id listed under several codes (`001`, the non-geographic entities) the entry the
/// crate's `by_id` returns last, since the last one inserted wins.
fn metadata_of(db: &Database) -> Vec<loader::Metadata> {
    let mut all: Vec<&Metadata> = (0..=MAX_CALLING_CODE)
        .filter_map(|code| db.by_code(&code))
        .flatten()
        .collect();
    let wins = |m: &Metadata| {
        db.by_id(m.id())
            .is_some_and(|w| w.country_code() == m.country_code())
    };
    // Stable: the order within each calling code is kept.
    all.sort_by_key(|m| wins(m));
    all.into_iter().map(loader_metadata).collect()
}

fn loader_descriptor(d: &Descriptor) -> loader::Descriptor {
    loader::Descriptor {
        national_number: Some(d.national_number().as_str().to_string()),
        possible_length: d.possible_length().to_vec(),
        possible_local_length: d.possible_local_length().to_vec(),
        example: d.example().map(str::to_string),
    }
}

fn loader_format(f: &Format) -> loader::Format {
    loader::Format {
        pattern: Some(f.pattern().as_str().to_string()),
        format: Some(f.format().to_string()),
        leading_digits: f
            .leading_digits()
            .iter()
            .map(|r| r.as_str().to_string())
            .collect(),
        national_prefix_formatting_rule: f.national_prefix().map(str::to_string),
        national_prefix_optional_when_formatting: f.is_national_prefix_optional(),
        domestic_carrier: f.domestic_carrier().map(str::to_string),
    }
}

fn loader_metadata(m: &Metadata) -> loader::Metadata {
    let d = m.descriptors();
    let opt = |d: Option<&Descriptor>| d.map(loader_descriptor);
    loader::Metadata {
        general: Some(loader_descriptor(d.general())),
        fixed_line: opt(d.fixed_line()),
        mobile: opt(d.mobile()),
        toll_free: opt(d.toll_free()),
        premium_rate: opt(d.premium_rate()),
        shared_cost: opt(d.shared_cost()),
        personal_number: opt(d.personal_number()),
        voip: opt(d.voip()),
        pager: opt(d.pager()),
        uan: opt(d.uan()),
        emergency: opt(d.emergency()),
        voicemail: opt(d.voicemail()),
        short_code: opt(d.short_code()),
        standard_rate: opt(d.standard_rate()),
        carrier: opt(d.carrier()),
        no_international: opt(d.no_international()),
        id: Some(m.id().to_string()),
        country_code: Some(m.country_code()),
        international_prefix: m.international_prefix().map(|r| r.as_str().to_string()),
        preferred_international_prefix: m.preferred_international_prefix().map(str::to_string),
        national_prefix: m.national_prefix().map(str::to_string),
        preferred_extension_prefix: m.preferred_extension_prefix().map(str::to_string),
        national_prefix_for_parsing: m
            .national_prefix_for_parsing()
            .map(|r| r.as_str().to_string()),
        national_prefix_transform_rule: m.national_prefix_transform_rule().map(str::to_string),
        formats: m.formats().iter().map(loader_format).collect(),
        international_formats: m
            .international_formats()
            .iter()
            .map(loader_format)
            .collect(),
        main_country_for_code: m.is_main_country_for_code(),
        leading_digits: m.leading_digits().map(|r| r.as_str().to_string()),
        mobile_number_portable: m.is_mobile_number_portable(),
        defaults: loader::Defaults::default(),
    }
}

/// Private copies handed back by [`with_private_database`], kept for the next bulk parse
/// (building one compiles nothing, but checks the syntax of every pattern).
static SPARE: Mutex<Vec<Database>> = Mutex::new(Vec::new());

/// Compiled patterns a private database keeps. The crate's own cache holds 100: a company with
/// people in a dozen countries uses more (each country's patterns for parsing national numbers
/// and formatting), and every pattern evicted is compiled again on its next use; validating a
/// million people of sixteen offices took 8 times longer that way. Only patterns in use are
/// compiled, so this bounds memory, it does not fill it.
const REGEX_CACHE: usize = 2048;

/// A copy of the crate's database with a regex cache of its own and anchored patterns.
pub fn private_database() -> Database {
    let metadata = metadata_of(&DATABASE).into_iter().map(anchored).collect();
    // The crate's own metadata passed back through its own constructor cannot fail to load.
    let db = Database::from(metadata).expect("the crate's metadata loads");
    // Every pattern of the database holds this one cache: a larger one in its place serves all.
    if let Ok(mut cache) = db.cache().lock() {
        *cache = regex_cache::RegexCache::new(REGEX_CACHE);
    }
    db
}

/// One private database for parsing a number at a time (its cache has a mutex, as the
/// crate's does); bulk parsing takes one per thread with [`with_private_database`].
pub fn shared_database() -> &'static Database {
    static SHARED: LazyLock<Database> = LazyLock::new(private_database);
    &SHARED
}

/// `pattern` anchored at the start (see the module documentation). The newline ends any `#`
/// comment the pattern might have in whitespace-insensitive mode before the group closes.
fn at_start(pattern: &str) -> String {
    format!("^(?:{pattern}\n)")
}

/// Every pattern of `m` anchored at the start.
fn anchored(mut m: loader::Metadata) -> loader::Metadata {
    let anchor = |p: &mut String| *p = at_start(p);
    for d in [
        &mut m.general,
        &mut m.fixed_line,
        &mut m.mobile,
        &mut m.toll_free,
        &mut m.premium_rate,
        &mut m.shared_cost,
        &mut m.personal_number,
        &mut m.voip,
        &mut m.pager,
        &mut m.uan,
        &mut m.emergency,
        &mut m.voicemail,
        &mut m.short_code,
        &mut m.standard_rate,
        &mut m.carrier,
        &mut m.no_international,
    ]
    .into_iter()
    .flatten()
    {
        d.national_number.iter_mut().for_each(anchor);
    }
    for p in [
        &mut m.international_prefix,
        &mut m.national_prefix_for_parsing,
        &mut m.leading_digits,
    ] {
        p.iter_mut().for_each(anchor);
    }
    for f in m
        .formats
        .iter_mut()
        .chain(m.international_formats.iter_mut())
    {
        f.pattern.iter_mut().for_each(anchor);
        f.leading_digits.iter_mut().for_each(anchor);
    }
    m
}

/// Runs `f` with a private database, reusing one a previous call gave back.
pub fn with_private_database<R>(f: impl FnOnce(&Database) -> R) -> R {
    let spare = SPARE.lock().ok().and_then(|mut spare| spare.pop());
    let db = spare.unwrap_or_else(private_database);
    let result = f(&db);
    if let Ok(mut spare) = SPARE.lock() {
        spare.push(db);
    }
    result
}

/// One descriptor's possible lengths and compiled national-number pattern.
struct Pattern {
    lengths: Vec<u16>,
    at_start: Regex,
}

impl Pattern {
    fn new(d: &Descriptor) -> Pattern {
        Pattern {
            lengths: d.possible_length().to_vec(),
            at_start: compile_at_start(d.national_number().as_str()),
        }
    }

    /// `Descriptor::is_match`.
    fn is_match(&self, value: &str) -> bool {
        if !self.lengths.is_empty() && !self.lengths.contains(&(value.len() as u16)) {
            return false;
        }
        self.at_start.is_match(value)
    }
}

/// `pattern` anchored at the start, compiled with the options `phonenumber` compiles its
/// patterns with (`regex_cache`'s defaults and `ignore_whitespace`).
fn compile_at_start(pattern: &str) -> Regex {
    // Patterns of the crate's own metadata, which the crate has compiled before us.
    RegexBuilder::new(&at_start(pattern))
        .ignore_whitespace(true)
        .unicode(true)
        .size_limit(10 * (1 << 20))
        .dfa_size_limit(2 * (1 << 20))
        .build()
        .expect("the crate's patterns compile")
}

/// The patterns `number_type` tries after the general one, compiled on first use.
struct Types {
    general: Pattern,
    /// Premium rate, toll free, shared cost, VoIP, personal, pager, UAN, voicemail, fixed line,
    /// mobile: a number of any of these types is valid.
    any: Vec<Pattern>,
}

impl Types {
    fn new(meta: &Metadata) -> Types {
        let d = meta.descriptors();
        let any = [
            d.premium_rate(),
            d.toll_free(),
            d.shared_cost(),
            d.voip(),
            d.personal_number(),
            d.pager(),
            d.uan(),
            d.voicemail(),
            d.fixed_line(),
            d.mobile(),
        ]
        .into_iter()
        .flatten()
        .map(Pattern::new)
        .collect();
        Types {
            general: Pattern::new(d.general()),
            any,
        }
    }

    /// `number_type(meta, value) != Type::Unknown`.
    fn is_known(&self, value: &str) -> bool {
        self.general.is_match(value) && self.any.iter().any(|p| p.is_match(value))
    }
}

/// Compiled patterns of one entry of the database, each compiled on first use.
#[derive(Default)]
struct Compiled {
    leading_digits: OnceLock<Option<Regex>>,
    types: OnceLock<Types>,
}

/// Compiled patterns per (calling code, region id) of the crate's database.
static COMPILED: LazyLock<HashMap<(u16, String), Compiled>> = LazyLock::new(|| {
    (0..=MAX_CALLING_CODE)
        .filter_map(|code| DATABASE.by_code(&code))
        .flatten()
        .map(|m| ((m.country_code(), m.id().to_string()), Compiled::default()))
        .collect()
});

fn compiled(meta: &Metadata) -> Option<&'static Compiled> {
    COMPILED.get(&(meta.country_code(), meta.id().to_string()))
}

fn is_known(meta: &Metadata, value: &str) -> bool {
    compiled(meta).is_some_and(|c| c.types.get_or_init(|| Types::new(meta)).is_known(value))
}

fn leading_digits_at_start(meta: &Metadata, value: &str) -> Option<bool> {
    let c = compiled(meta)?;
    let re = c
        .leading_digits
        .get_or_init(|| meta.leading_digits().map(|r| compile_at_start(r.as_str())))
        .as_ref()?;
    Some(re.is_match(value))
}

/// `validator::source_for` followed by the lookup `is_valid_with` does with its answer.
fn region_for(code: u16, national: &str) -> Option<&'static Metadata> {
    let db: &'static Database = &DATABASE;
    let regions = db.region(&code)?;
    if regions.len() == 1 {
        return if regions[0] == "001" {
            db.by_code(&code)?.into_iter().next()
        } else {
            let id: country::Id = regions[0].parse().ok()?;
            db.by_id(id.as_ref())
        };
    }
    for region in regions {
        let meta = db.by_id(region)?;
        let found = match leading_digits_at_start(meta, national) {
            Some(at_start) => at_start,
            None => is_known(meta, national),
        };
        if found {
            let id: country::Id = region.parse().ok()?;
            return db.by_id(id.as_ref());
        }
    }
    None
}

/// `phonenumber::is_valid`, without the crate's regex cache.
pub fn is_valid(number: &PhoneNumber) -> bool {
    let national = number.national().to_string();
    region_for(number.code().value(), &national).is_some_and(|meta| is_known(meta, &national))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every field the crate's public API shows, for comparing two databases, with the
    /// patterns of `db` rewritten by `patterns`.
    fn fingerprint(
        db: &Database,
        patterns: impl Fn(loader::Metadata) -> loader::Metadata,
    ) -> Vec<String> {
        let mut out = Vec::new();
        for code in 0..=MAX_CALLING_CODE {
            if let Some(regions) = db.region(&code) {
                out.push(format!("{code} regions {regions:?}"));
            }
            for m in db.by_code(&code).unwrap_or_default() {
                out.push(format!("{code} {:?}", patterns(loader_metadata(m))));
            }
        }
        let mut ids: Vec<&str> = db.iter().map(Metadata::id).collect();
        ids.sort_unstable();
        for id in ids {
            let m = db.by_id(id).map(|m| m.country_code());
            out.push(format!("by_id {id} {m:?}"));
        }
        out
    }

    #[test]
    fn a_private_database_is_the_crate_s_database_anchored() {
        let copy = private_database();
        assert_eq!(fingerprint(&copy, |m| m), fingerprint(&DATABASE, anchored));
        assert!(!std::sync::Arc::ptr_eq(&copy.cache(), &DATABASE.cache()));
        let us = copy.by_id("US").expect("US");
        assert!(us
            .descriptors()
            .general()
            .national_number()
            .as_str()
            .starts_with("^(?:"));
    }

    /// Every region's example numbers (general, fixed line, mobile, toll free), with their
    /// calling code: numbers to start generated ones from.
    pub(crate) fn examples() -> Vec<(u16, String)> {
        let mut out = Vec::new();
        for code in 0..=MAX_CALLING_CODE {
            for m in DATABASE.by_code(&code).unwrap_or_default() {
                let d = m.descriptors();
                for desc in [Some(d.general()), d.fixed_line(), d.mobile(), d.toll_free()]
                    .into_iter()
                    .flatten()
                {
                    if let Some(example) = desc.example() {
                        out.push((code, example.to_string()));
                    }
                }
            }
        }
        out
    }

    pub(crate) static EXAMPLES: LazyLock<Vec<(u16, String)>> = LazyLock::new(examples);

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]

        /// Example numbers with their tail replaced and their length changed: valid and
        /// invalid numbers of every region, some with leading zeros.
        #[test]
        fn validity_agrees_with_the_crate(
            pick in any::<prop::sample::Index>(),
            keep in 0usize..12,
            tail in "[0-9]{0,8}",
        ) {
            let (code, example) = &EXAMPLES[pick.index(EXAMPLES.len())];
            let digits = format!("{}{tail}", &example[..keep.min(example.len())]);
            let raw = format!("+{code}{digits}");
            if let Ok(number) = phonenumber::parse(None, &raw) {
                prop_assert_eq!(is_valid(&number), phonenumber::is_valid(&number), "{}", raw);
            }
        }
    }

    #[test]
    fn example_numbers_of_every_region_agree_with_the_crate() {
        for (code, example) in EXAMPLES.iter() {
            let raw = format!("+{code}{example}");
            if let Ok(number) = phonenumber::parse(None, &raw) {
                assert_eq!(is_valid(&number), phonenumber::is_valid(&number), "{raw}");
            }
        }
    }
}
