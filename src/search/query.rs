//! Turns what a person types into tantivy queries. Never fails: any string becomes a query over
//! its words (or digits), so there is no query syntax to get wrong.
//!
//! Every word must match something; how well it matches is a constant score per kind of match
//! (`score`), the best one per word, summed over the words. A query is planned in two tiers:
//! `exact` (whole words and prefixes of names, other text and phone numbers) is cheap and answers
//! most typing; `wide` finds typos and sound-alikes, and is run only when `exact` does not fill
//! the page. `wide` leaves out what `exact` matches: its results go after all of those, so pages
//! stay consistent whichever tier answered them. A tier knows the best score a document can
//! reach in it, which lets a search stop reading early (`ranked`).

use tantivy::query::{
    BooleanQuery, ConstScoreQuery, DisjunctionMaxQuery, EmptyQuery, FuzzyTermQuery, Occur, Query,
    TermQuery,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{Score, Term};

use super::{
    fold, phonetic_codes, Fields, MAX_PHONE_PREFIX, MAX_PHONE_SUFFIX, MAX_PREFIX, MIN_PHONE_SUFFIX,
};

/// Shortest word that also matches the start of an email address or IM handle (in the wide tier,
/// and only when it starts no name: "jsmi" for jsmith@…).
pub const MIN_CONTACT_PREFIX: usize = 3;

/// Words beyond this many are ignored: nobody types more, and it bounds the work per query.
pub const MAX_WORDS: usize = 8;

/// Longest word the analyzer keeps (`RemoveLongFilter`); a longer typed word matches nobody.
pub const MAX_WORD_CHARS: usize = 64;

/// Shortest word matched with one typo; from `TWO_TYPOS` letters, two.
pub const ONE_TYPO: usize = 4;
pub const TWO_TYPOS: usize = 8;
/// Shortest last word also matched as a prefix with one typo ("catri" finds Katrina).
pub const FUZZY_PREFIX: usize = 5;
/// Shortest word matched by its sound (shorter codes match too much: "and" sounds like "Janet").
pub const MIN_PHONETIC: usize = 4;

/// What each kind of match is worth. Tiers are far enough apart that a sum over up to
/// `MAX_WORDS` words never lets a lower tier overtake a higher one where it matters: a
/// whole-name match (`FULL_NAME`) outranks any partial one. (Every exact or prefix match
/// outranks every typo by running first: see `Plan`.)
pub mod score {
    pub const FULL_NAME: f32 = 64.0;
    pub const NAME: f32 = 8.0;
    pub const PHONE: f32 = 8.0;
    pub const NAME_PREFIX: f32 = 4.0;
    /// A name the typed word stands for (Peggy → Margaret, Sergey → Sergei), or the typed
    /// word in another script's letters: below the name as typed and names it starts ("jan"
    /// is Jane being typed more often than Janet's short form), above other fields.
    pub const NAME_ALIAS: f32 = 3.5;
    pub const PHONE_PREFIX: f32 = 4.0;
    pub const TEXT: f32 = 3.0;
    pub const PHONE_SUFFIX: f32 = 3.0;
    pub const TEXT_PREFIX: f32 = 2.0;
    pub const FUZZY: f32 = 1.0;
    pub const PHONETIC: f32 = 0.5;
    /// Breaks ties between equally good matches (people at the caller's site first); smaller
    /// than the smallest difference between two tiers.
    pub const NEAR: f32 = 0.25;
}

/// Most terms a typed start is expanded to (words of titles, departments, units and locations;
/// numbers with a given ending); a start of more (one letter, in a large organisation) is
/// matched by one automaton over the field instead.
pub const MAX_EXPANSION: usize = 64;

/// What planning asks of the index's term dictionaries.
pub trait Terms {
    /// Whether some document has `word` as a term of `field`.
    fn known(&self, field: Field, word: &str) -> bool;
    /// The terms of `field` that start with `prefix`, in order; `None` when there are more
    /// than `limit`.
    fn starting_with(&self, field: Field, prefix: &str, limit: usize) -> Option<Vec<String>>;
}

/// Narrows a search to exact field values (as stored, as facets return them).
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub department: Option<String>,
    pub location: Option<String>,
    pub org_unit: Option<String>,
    pub has_presence: Option<bool>,
    /// Only people available right now (`true`), or everyone else (`false`), by live presence.
    pub available: Option<bool>,
    /// The caller's scope: only people with one of these values (an empty list allows all).
    pub within: Within,
    /// What words may match besides names (a partner: only what its policy shows).
    pub searchable: Searchable,
}

/// Which kinds of words find people besides their names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Searchable {
    pub emails: bool,
    pub im: bool,
    /// Words of titles, departments, units and locations.
    pub org: bool,
    /// Digits inside a query of words (a query that is a number is planned apart).
    pub phones: bool,
}

impl Default for Searchable {
    fn default() -> Self {
        Searchable {
            emails: true,
            im: true,
            org: true,
            phones: true,
        }
    }
}

/// A principal's scope as a search filter: each non-empty list is a word that one of its values
/// must match, so totals and facets count only people in scope.
#[derive(Debug, Clone, Default)]
pub struct Within {
    pub departments: Vec<String>,
    pub locations: Vec<String>,
    pub org_units: Vec<String>,
    /// Only people whose choice about partners admits them.
    pub consent: Option<crate::domain::Consent>,
}

/// The tiers of one search.
pub struct Plan {
    /// Whole words and prefixes; for an empty query, everyone.
    pub exact: Tier,
    /// Typos and sound-alikes, without what `exact` matches; `None` when no word is long
    /// enough for either.
    pub wide: Option<Tier>,
}

/// One tier: every word must match one of its alternatives, and is worth the best of those that
/// match; bonuses add theirs where they match. Filters are words of one alternative worth 0.
pub struct Tier {
    pub words: Vec<Vec<Alternative>>,
    pub bonuses: Vec<Alternative>,
    /// Leaves out documents in which every word matches an `exact` alternative (the wide tier
    /// leaves out what the exact tier found).
    pub exclude_exact: bool,
}

/// One way to match: a query for one term (or an automaton over terms), worth a constant score.
pub struct Alternative {
    pub query: Box<dyn Query>,
    pub score: Score,
    /// A whole word or a prefix, not a typo or a sound-alike.
    pub exact: bool,
}

impl Clone for Alternative {
    fn clone(&self) -> Alternative {
        Alternative {
            query: self.query.box_clone(),
            score: self.score,
            exact: self.exact,
        }
    }
}

impl Alternative {
    /// A word every match must have, worth nothing (a filter).
    pub fn filter(query: Box<dyn Query>) -> Alternative {
        Alternative {
            query,
            score: 0.0,
            exact: true,
        }
    }

    fn term(term: Term, score: Score) -> Alternative {
        Alternative {
            query: term_query(term),
            score,
            exact: true,
        }
    }

    fn other(query: Box<dyn Query>, score: Score) -> Alternative {
        Alternative {
            query,
            score,
            exact: true,
        }
    }

    fn approximate(mut self) -> Alternative {
        self.exact = false;
        self
    }

    fn scored(&self) -> Box<dyn Query> {
        constant(self.query.box_clone(), self.score)
    }
}

impl Tier {
    fn nothing() -> Tier {
        Tier {
            words: vec![Vec::new()],
            bonuses: Vec::new(),
            exclude_exact: false,
        }
    }

    /// The same tier as one tantivy query (for counting and facets over every match).
    pub fn query(&self) -> Box<dyn Query> {
        if self.words.iter().any(Vec::is_empty) {
            return Box::new(EmptyQuery);
        }
        let best_of = |alternatives: &mut dyn Iterator<Item = &Alternative>| -> Box<dyn Query> {
            Box::new(DisjunctionMaxQuery::new(
                alternatives.map(Alternative::scored).collect(),
            ))
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = self
            .words
            .iter()
            .map(|w| (Occur::Must, best_of(&mut w.iter())))
            .collect();
        clauses.extend(self.bonuses.iter().map(|b| (Occur::Should, b.scored())));
        if self.exclude_exact {
            let exact = self
                .words
                .iter()
                .map(|w| (Occur::Must, best_of(&mut w.iter().filter(|a| a.exact))))
                .collect();
            clauses.push((Occur::MustNot, Box::new(BooleanQuery::new(exact))));
        }
        Box::new(BooleanQuery::new(clauses))
    }
}

/// Plans the search for `q`. `near` is a location whose people rank first among equals.
/// `terms` looks words up in the index: a word in the index as typed (a name word or prefix, or
/// a word of other text) is not treated as a typo, only matched by its sound; a start of
/// organisation words is expanded to those words.
pub fn plan(q: &str, f: &Fields, filters: &Filters, near: Option<&str>, terms: &dyn Terms) -> Plan {
    let tier = |words: Vec<Vec<Alternative>>, bonuses: Vec<Alternative>| {
        let mut words = words;
        let mut bonuses = bonuses;
        words.extend(filter_words(filters, f));
        if let Some(near) = near.filter(|n| !n.is_empty()) {
            bonuses.push(Alternative::term(
                Term::from_field_text(f.location, near),
                score::NEAR,
            ));
        }
        Tier {
            words,
            bonuses,
            exclude_exact: false,
        }
    };
    // A word longer than the analyzer keeps would silently vanish and widen the search.
    if has_overlong_word(q) {
        return Plan {
            exact: Tier::nothing(),
            wide: None,
        };
    }
    if let Some(candidates) = phone_candidates(q) {
        return Plan {
            exact: tier(vec![phone_alternatives(&candidates, terms, f)], Vec::new()),
            wide: None,
        };
    }
    let words: Vec<String> = fold(q).into_iter().take(MAX_WORDS).collect();
    if words.is_empty() {
        // Everyone has a `has_presence` of 0 or 1.
        let everyone = [0, 1]
            .map(|v| Alternative::term(Term::from_field_u64(f.has_presence, v), 0.0))
            .into();
        return Plan {
            exact: tier(vec![everyone], Vec::new()),
            wide: None,
        };
    }
    let last = words.len() - 1;
    let full_name = || {
        Alternative::term(
            Term::from_field_text(f.name_full, &words.join(" ")),
            score::FULL_NAME,
        )
    };
    let mut exact_words = Vec::new();
    let mut wide_words = Vec::new();
    let mut approximate = false;
    for (i, w) in words.iter().enumerate() {
        let exact = exact_alternatives(w, terms, f, filters.searchable);
        let mut alternatives: Vec<Alternative> = exact.iter().map(Alternative::clone).collect();
        exact_words.push(exact);
        let approx = approximate_alternatives(w, i == last, terms, f, filters.searchable);
        approximate |= !approx.is_empty();
        alternatives.extend(approx.into_iter().map(Alternative::approximate));
        wide_words.push(alternatives);
    }
    let wide = approximate.then(|| Tier {
        exclude_exact: true,
        ..tier(wide_words, vec![full_name()])
    });
    Plan {
        exact: tier(exact_words, vec![full_name()]),
        wide,
    }
}

fn constant(query: Box<dyn Query>, score: f32) -> Box<dyn Query> {
    Box::new(ConstScoreQuery::new(query, score))
}

fn term_query(term: Term) -> Box<dyn Query> {
    Box::new(TermQuery::new(term, IndexRecordOption::Basic))
}

/// Filters as words that every match must have, worth nothing.
fn filter_words(filters: &Filters, f: &Fields) -> Vec<Vec<Alternative>> {
    let mut words = Vec::new();
    for (field, value) in [
        (f.department, &filters.department),
        (f.location, &filters.location),
        (f.org_unit, &filters.org_unit),
    ] {
        if let Some(value) = value {
            words.push(vec![Alternative::term(
                Term::from_field_text(field, value),
                0.0,
            )]);
        }
    }
    if let Some(presence) = filters.has_presence {
        let term = Term::from_field_u64(f.has_presence, u64::from(presence));
        words.push(vec![Alternative::term(term, 0.0)]);
    }
    let within = &filters.within;
    if let Some(consent) = within.consent {
        // 0: no choice made, 1: opted in, 2: opted out (as `sharing_code` indexes it).
        let admitted: &[u64] = match consent {
            crate::domain::Consent::OptOut => &[0, 1],
            crate::domain::Consent::OptIn => &[1],
        };
        words.push(
            admitted
                .iter()
                .map(|v| Alternative::term(Term::from_field_u64(f.partner_sharing, *v), 0.0))
                .collect(),
        );
    }
    for (field, values) in [
        (f.department, &within.departments),
        (f.location, &within.locations),
        (f.org_unit, &within.org_units),
    ] {
        if !values.is_empty() {
            words.push(
                values
                    .iter()
                    .map(|v| Alternative::term(Term::from_field_text(field, v), 0.0))
                    .collect(),
            );
        }
    }
    words
}

fn has_overlong_word(q: &str) -> bool {
    q.split(|c: char| !c.is_alphanumeric())
        .any(|w| w.chars().count() > MAX_WORD_CHARS)
}

/// Whole words and prefixes: of names, of other text, and of phone numbers for digit words.
fn exact_alternatives(
    word: &str,
    terms: &dyn Terms,
    f: &Fields,
    searchable: Searchable,
) -> Vec<Alternative> {
    let term = |field| Term::from_field_text(field, word);
    let chars = word.chars().count();
    // Name prefixes are indexed as terms (edge n-grams): one lookup, however short.
    let name_prefix = if chars <= MAX_PREFIX {
        Alternative::term(term(f.name_prefix), score::NAME_PREFIX)
    } else {
        Alternative::other(
            Box::new(FuzzyTermQuery::new_prefix(term(f.name), 0, false)),
            score::NAME_PREFIX,
        )
    };
    let mut alternatives = vec![Alternative::term(term(f.name), score::NAME), name_prefix];
    if searchable.emails {
        alternatives.push(Alternative::term(term(f.text), score::TEXT));
        alternatives.push(Alternative::term(term(f.handle), score::TEXT));
    }
    if searchable.im {
        alternatives.push(Alternative::term(term(f.im), score::TEXT));
    }
    if searchable.org {
        alternatives.push(Alternative::term(term(f.org), score::TEXT));
        // Starts of the words of titles, departments, units and locations: a few words each.
        alternatives.extend(starts(terms, f.org, word, Some(word), score::TEXT_PREFIX));
    }
    // The names it stands for, and a word typed in another script in Latin letters
    // ("петрова" finds Petrova as well as Петрова).
    for alias in super::names::aliases(word) {
        let alias = Term::from_field_text(f.name, alias);
        alternatives.push(Alternative::term(alias, score::NAME_ALIAS));
    }
    if let Some(latin) = super::names::transliterate(word) {
        alternatives.push(Alternative::term(
            Term::from_field_text(f.name, &latin),
            score::NAME_ALIAS,
        ));
        if latin.chars().count() <= MAX_PREFIX {
            alternatives.push(Alternative::term(
                Term::from_field_text(f.name_prefix, &latin),
                score::NAME_PREFIX,
            ));
        }
    }
    if searchable.phones && word.len() >= 3 && word.chars().all(|c| c.is_ascii_digit()) {
        alternatives.extend(phone_alternatives(&[word.to_string()], terms, f));
    }
    alternatives
}

/// The terms of `field` that start with `prefix` (but `except`), each an alternative worth
/// `score`; with more than `MAX_EXPANSION` of them, one automaton over the field.
fn starts(
    terms: &dyn Terms,
    field: Field,
    prefix: &str,
    except: Option<&str>,
    score: Score,
) -> Vec<Alternative> {
    match terms.starting_with(field, prefix, MAX_EXPANSION) {
        Some(found) => found
            .iter()
            .filter(|t| Some(t.as_str()) != except)
            .map(|t| Alternative::term(Term::from_field_text(field, t), score))
            .collect(),
        None => vec![Alternative::other(
            Box::new(FuzzyTermQuery::new_prefix(
                Term::from_field_text(field, prefix),
                0,
                false,
            )),
            score,
        )],
    }
}

/// Typos (by Levenshtein automaton over the name dictionary), sound-alikes (by Double
/// Metaphone code) of a name word, and starts of email addresses and IM handles for a word that
/// starts no name (every start of every address would be too many terms to index, and an
/// automaton over a million addresses is too slow to run on every keystroke).
fn approximate_alternatives(
    word: &str,
    last: bool,
    terms: &dyn Terms,
    f: &Fields,
    searchable: Searchable,
) -> Vec<Alternative> {
    let chars = word.chars().count();
    let mut alternatives = Vec::new();
    if chars >= MIN_CONTACT_PREFIX && !terms.known(f.name_prefix, word) {
        for (field, allowed) in [(f.text, searchable.emails), (f.im, searchable.im)] {
            if allowed {
                alternatives.push(Alternative::other(
                    Box::new(FuzzyTermQuery::new_prefix(
                        Term::from_field_text(field, word),
                        0,
                        false,
                    )),
                    score::TEXT_PREFIX,
                ));
            }
        }
    }
    // Only words of letters: "number9" is not a typo of "number8", nor does it sound like it.
    if !word.chars().all(char::is_alphabetic) {
        return alternatives;
    }
    let in_index = [f.name_prefix, f.text, f.im, f.org, f.handle]
        .into_iter()
        .any(|field| terms.known(field, word));
    if chars >= ONE_TYPO && !in_index {
        let distance = if chars >= TWO_TYPOS { 2 } else { 1 };
        let term = Term::from_field_text(f.name, word);
        alternatives.push(Alternative::other(
            Box::new(FuzzyTermQuery::new(term.clone(), distance, true)),
            score::FUZZY,
        ));
        if last && chars >= FUZZY_PREFIX {
            alternatives.push(Alternative::other(
                Box::new(FuzzyTermQuery::new_prefix(term, 1, true)),
                score::FUZZY,
            ));
        }
    }
    if chars >= MIN_PHONETIC {
        for code in phonetic_codes(word) {
            alternatives.push(Alternative::term(
                Term::from_field_text(f.name_phonetic, &code),
                score::PHONETIC,
            ));
        }
    }
    alternatives
}

/// A whole number, its start, or its last digits; for each way of reading what was typed.
fn phone_alternatives(candidates: &[String], terms: &dyn Terms, f: &Fields) -> Vec<Alternative> {
    let mut alternatives = Vec::new();
    for digits in candidates {
        let term = |field| Term::from_field_text(field, digits);
        alternatives.push(Alternative::term(term(f.phone_exact), score::PHONE));
        alternatives.push(if digits.len() <= MAX_PHONE_PREFIX {
            Alternative::term(term(f.phone), score::PHONE_PREFIX)
        } else {
            Alternative::other(
                Box::new(FuzzyTermQuery::new_prefix(term(f.phone_exact), 0, false)),
                score::PHONE_PREFIX,
            )
        });
        // Endings: the shortest kind is indexed; a longer one is the start of a number
        // written backwards, which few numbers have.
        if digits.len() == MIN_PHONE_SUFFIX {
            alternatives.push(Alternative::term(term(f.phone_suffix), score::PHONE_SUFFIX));
        } else if (MIN_PHONE_SUFFIX..=MAX_PHONE_SUFFIX).contains(&digits.len()) {
            let backwards: String = digits.chars().rev().collect();
            let reversed = f.phone_reversed;
            alternatives.extend(starts(
                terms,
                reversed,
                &backwards,
                None,
                score::PHONE_SUFFIX,
            ));
        }
    }
    alternatives
}

/// The ways to read a phone-shaped query: its digits without a national trunk `0` (or after
/// `+`/`00`), and, when different, the digits as typed ("0018" is also a number's end).
pub fn phone_candidates(q: &str) -> Option<Vec<String>> {
    let digits = phone_digits(q)?;
    let mut candidates = vec![digits];
    let raw: String = q.chars().filter(char::is_ascii_digit).collect();
    if raw != candidates[0] {
        candidates.push(raw);
    }
    Some(candidates)
}

/// Strips an extension marker ("x4711", "ext. 4711", "extension 4711").
fn strip_extension_marker(q: &str) -> Option<&str> {
    let lower = q.to_ascii_lowercase();
    ["extension", "ext.", "ext", "x", "#"]
        .iter()
        .find(|m| lower.starts_with(*m))
        .map(|m| q[m.len()..].trim_start())
        .filter(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
}

/// A query that looks like a phone number: at least three digits and nothing but phone punctuation.
/// Returns its digits, without a national trunk `0` (so "020 7946" matches the number's digits).
pub fn phone_digits(q: &str) -> Option<String> {
    let q = q.trim();
    if let Some(extension) = strip_extension_marker(q) {
        return extension
            .chars()
            .all(|c| c.is_ascii_digit())
            .then(|| extension.to_string())
            .filter(|d| !d.is_empty());
    }
    let digits: String = q.chars().filter(char::is_ascii_digit).collect();
    let phoneish = q
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().\u{a0}/".contains(c));
    if digits.len() < 3 || !phoneish {
        return None;
    }
    if q.starts_with('+') {
        return Some(digits);
    }
    if let Some(international) = q.strip_prefix("00") {
        return Some(international.chars().filter(char::is_ascii_digit).collect());
    }
    Some(digits.trim_start_matches('0').to_string())
        .filter(|d| d.len() >= 3)
        .or(Some(digits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_shaped_queries_become_digits() {
        assert_eq!(
            phone_digits("+44 20 7946 0018").as_deref(),
            Some("442079460018")
        );
        assert_eq!(phone_digits("020 7946 0018").as_deref(), Some("2079460018"));
        assert_eq!(phone_digits("0044 20 7946").as_deref(), Some("44207946"));
        assert_eq!(
            phone_digits("(212) 555-0100").as_deref(),
            Some("2125550100")
        );
        assert_eq!(phone_digits("4711").as_deref(), Some("4711"));
        assert_eq!(phone_digits("x4711").as_deref(), Some("4711"));
        assert_eq!(phone_digits("Ext. 12").as_deref(), Some("12"));
        assert_eq!(phone_digits("xavier"), None);
        assert_eq!(phone_digits("jan 42"), None);
        assert_eq!(phone_digits("12"), None);
        assert_eq!(
            phone_candidates("0018"),
            Some(vec!["18".to_string(), "0018".to_string()]),
            "an international prefix, or a number's last digits"
        );
        assert_eq!(
            phone_candidates("07946 0018"),
            Some(vec!["79460018".to_string(), "079460018".to_string()])
        );
    }

    #[test]
    fn plans_add_a_wide_tier_only_for_words_that_can_have_typos() {
        let (_, fields) = crate::search::schema();
        let none = Filters::default();
        /// An index that knows every word, or none, and has no organisation words.
        struct Known(bool);
        impl Terms for Known {
            fn known(&self, _: Field, _: &str) -> bool {
                self.0
            }
            fn starting_with(&self, _: Field, _: &str, _: usize) -> Option<Vec<String>> {
                Some(Vec::new())
            }
        }
        let wide =
            |q: &str, known: bool| plan(q, &fields, &none, None, &Known(known)).wide.is_some();
        assert!(!wide("", false));
        assert!(!wide("  \"():*~ ", false));
        assert!(!wide("+44 20 7946", false));
        assert!(!wide("jo", false));
        assert!(!wide("jan sm", true), "too short for typos or sounds");
        assert!(wide("jan", false), "the start of an email address");
        assert!(wide("jonh smiht", false));
        assert!(wide("smith", true), "known words still match by sound");
        assert!(!wide("number9", true), "words with digits are no names");
        assert!(wide("number9", false), "but may start an address");
    }

    #[test]
    fn overlong_words_are_detected() {
        assert!(has_overlong_word(&"a".repeat(65)));
        assert!(!has_overlong_word(&format!("{} b", "a".repeat(64))));
    }
}

/// Arbitrary strings against a real index: planning and searching never fail or panic, finish
/// quickly in work (bounded words), and an exact match is never ranked below an approximate one.
#[cfg(test)]
mod props {
    use std::sync::OnceLock;

    use proptest::prelude::*;

    use crate::db::people::PersonRow;
    use crate::domain::{PhoneKind, PhoneNormalizer};
    use crate::search::{indexer, SearchIndex, SearchRequest};

    fn person(given: &str, family: &str, phone: &str, im: &[&str]) -> PersonRow {
        let phones = PhoneNormalizer::new("GB").expect("region");
        PersonRow {
            id: uuid::Uuid::now_v7(),
            display_name: format!("{given} {family}"),
            given_name: Some(given.into()),
            family_name: Some(family.into()),
            nicknames: Vec::new(),
            title: Some("Engineer".into()),
            department: Some("Engineering".into()),
            org_unit: None,
            location: Some("London".into()),
            manager_id: None,
            manager_name: None,
            phones: sqlx::types::Json(vec![phones
                .normalize(PhoneKind::Work, phone)
                .expect("phone")]),
            emails: vec![format!("{}.{}@example.com", given, family).to_lowercase()],
            im: im.iter().map(|s| s.to_string()).collect(),
            photo_url: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            deleted_at: None,
            partner_sharing: None,
        }
    }

    fn index() -> &'static SearchIndex {
        static INDEX: OnceLock<(tempfile::TempDir, SearchIndex)> = OnceLock::new();
        &INDEX
            .get_or_init(|| {
                let dir = tempfile::tempdir().expect("tempdir");
                let index = SearchIndex::open(dir.path()).expect("index");
                let mut writer = index.index().writer(15_000_000).expect("writer");
                let fields = index.fields();
                for row in [
                    person(
                        "Jane",
                        "Smith",
                        "+44 20 7946 0018",
                        &["xmpp:jsmith@x.example"],
                    ),
                    person("José", "Müller", "+49 30 12345678", &[]),
                    person("Łukasz", "Wałęsa", "+48 22 123 45 67", &[]),
                    person("王", "伟", "+44 20 3111 2233", &[]),
                ] {
                    writer
                        .add_document(indexer::document(&fields, row))
                        .expect("add");
                }
                writer.commit().expect("commit");
                index.reload().expect("reload");
                (dir, index)
            })
            .1
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn any_string_searches_without_error(q in any::<String>(), near in proptest::option::of(any::<String>())) {
            let request = SearchRequest { q, limit: 10, offset: 0, near, facets: true, ..Default::default() };
            let results = index().search_with(&request).expect("search");
            prop_assert!(results.hits.len() <= 10);
            prop_assert!(results.total >= results.hits.len());
        }

        #[test]
        fn query_like_strings_search_without_error(
            q in r#"[a-zA-Z0-9 "():*~+\-^\[\]{}\\/!?&|'.@#éüøßŁ王\u{0}-\u{1f}]{0,80}"#
        ) {
            let request = SearchRequest { q, limit: 5, ..Default::default() };
            index().search_with(&request).expect("search");
        }

        #[test]
        fn typing_any_prefix_of_a_name_finds_it(n in 1usize..=10) {
            let name = "jane smith";
            let typed = &name[..n];
            let hits = index().search(typed, 10, 0).expect("search").hits;
            prop_assert!(hits.iter().any(|h| h.display_name == "Jane Smith"), "{typed}");
        }
    }
}
