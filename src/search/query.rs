//! Turns what a person types into a tantivy query. Never fails: any string becomes a query over
//! its words (or digits), so there is no query syntax to get wrong.

use tantivy::query::{BooleanQuery, BoostQuery, FuzzyTermQuery, Occur, Query, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::Term;

use super::{fold, Fields, MAX_PREFIX};

/// Shortest word that also matches other text (not names) as a prefix.
pub const MIN_TEXT_PREFIX: usize = 3;

/// Words beyond this many are ignored: nobody types more, and it bounds the work per query.
pub const MAX_WORDS: usize = 8;

/// `None` for an empty query (list everyone).
pub fn build(q: &str, f: &Fields) -> Option<Box<dyn Query>> {
    if let Some(digits) = phone_digits(q) {
        return Some(phone_query(&digits, f));
    }
    let words: Vec<String> = fold(q).into_iter().take(MAX_WORDS).collect();
    if words.is_empty() {
        return None;
    }
    let clauses: Vec<(Occur, Box<dyn Query>)> = words
        .iter()
        .map(|w| (Occur::Must, word_query(w, f)))
        .collect();
    Some(Box::new(BooleanQuery::new(clauses)))
}

/// A word matches a name (ranked higher), any other text, or a phone number by its digits.
/// Every word also matches as a prefix ("jan sm" finds Jane Smith); whole words rank higher.
fn word_query(word: &str, f: &Fields) -> Box<dyn Query> {
    let term = |field| Term::from_field_text(field, word);
    let boosted = |query: Box<dyn Query>, boost: f32| -> (Occur, Box<dyn Query>) {
        (Occur::Should, Box::new(BoostQuery::new(query, boost)))
    };
    let chars = word.chars().count();
    // Name prefixes are indexed as terms (edge n-grams): one lookup, however short.
    let name_prefix: Box<dyn Query> = if chars <= MAX_PREFIX {
        Box::new(TermQuery::new(
            term(f.name_prefix),
            IndexRecordOption::Basic,
        ))
    } else {
        Box::new(FuzzyTermQuery::new_prefix(term(f.name), 0, false))
    };
    let mut should: Vec<(Occur, Box<dyn Query>)> = vec![
        boosted(
            Box::new(TermQuery::new(term(f.name), IndexRecordOption::WithFreqs)),
            4.0,
        ),
        boosted(
            Box::new(TermQuery::new(term(f.text), IndexRecordOption::WithFreqs)),
            1.0,
        ),
        boosted(name_prefix, 2.0),
    ];
    // One- and two-letter starts of titles, departments and locations are indexed terms.
    if chars < MIN_TEXT_PREFIX {
        let query = TermQuery::new(term(f.text_prefix), IndexRecordOption::Basic);
        should.push(boosted(Box::new(query), 0.5));
    }
    // Emails and IM handles match by prefix from three letters, by automaton: they have too
    // many distinct words to index every prefix of.
    if chars >= MIN_TEXT_PREFIX {
        should.push(boosted(
            Box::new(FuzzyTermQuery::new_prefix(term(f.text), 0, false)),
            0.5,
        ));
    }
    if word.len() >= 3 && word.chars().all(|c| c.is_ascii_digit()) {
        should.push((Occur::Should, phone_query(word, f)));
    }
    Box::new(BooleanQuery::new(should))
}

/// A query that looks like a phone number: at least three digits and nothing but phone punctuation.
/// Returns its digits, without a national trunk `0` (so "020 7946" matches the number's digits).
pub fn phone_digits(q: &str) -> Option<String> {
    let q = q.trim();
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

/// Phone digits are indexed with every prefix from three digits, so this is one term lookup.
fn phone_query(digits: &str, f: &Fields) -> Box<dyn Query> {
    Box::new(TermQuery::new(
        Term::from_field_text(f.phone, digits),
        IndexRecordOption::Basic,
    ))
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
        assert_eq!(phone_digits("jan 42"), None);
        assert_eq!(phone_digits("12"), None);
    }

    #[test]
    fn empty_and_punctuation_only_queries_list_everyone() {
        let (_, fields) = crate::search::schema();
        assert!(build("", &fields).is_none());
        assert!(build("  \"():*~ ", &fields).is_none());
        assert!(build("jan sm", &fields).is_some());
    }
}
