//! Names as people spell and say them: other spellings of a name word for the index (German
//! `ue` for `ü`, Nordic `oe`/`aa`/`ae`, the Latin transliteration of a name in another script),
//! and the names a typed word stands for (Peggy → Margaret, Sergey → Sergei).
//!
//! Transliteration is `any_ascii`: one table per script after the usual romanization (Cyrillic,
//! Greek, Armenian, Georgian, Hebrew, Arabic, Devanagari, Thai; pinyin for Chinese characters,
//! Hepburn for kana, Revised Romanization for Hangul), no dependencies, character by character,
//! so it is fast enough to run on every name word of a million people. Arabic and Hebrew are
//! written without most vowels, so their transliterations are consonant skeletons: found by typing
//! those, not by every Latin spelling. Japanese kanji get Chinese readings (no crate we know
//! gives Japanese ones without a dictionary): a kanji name is found by its kana or Latin field.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::fold;
use crate::domain::record::is_cjk;

/// The nickname table of carltonnorthern/nicknames (Apache-2.0, `schema/nicknames.LICENSE`):
/// English given names and what they are shortened to.
const NICKNAMES: &str = include_str!("../../schema/nicknames.csv");
/// Ours: names from other languages and their short forms, and spellings of one name in
/// several transliterations (`has_variant`, both ways).
const NICKNAMES_INTL: &str = include_str!("../../schema/nicknames-intl.csv");

/// Most names one typed word stands for (a few short forms stand for a dozen names).
const MAX_ALIASES: usize = 16;

static ALIASES: LazyLock<HashMap<&'static str, Vec<&'static str>>> = LazyLock::new(|| {
    let mut map: HashMap<&'static str, Vec<&'static str>> = HashMap::new();
    for line in NICKNAMES.lines().chain(NICKNAMES_INTL.lines()).skip(1) {
        let mut parts = line.split(',');
        let (Some(name), Some(relation), Some(other)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if name == "name1" {
            continue; // the second file's header
        }
        let mut link = |from: &'static str, to: &'static str| {
            let names = map.entry(from).or_default();
            if !names.contains(&to) && names.len() < MAX_ALIASES {
                names.push(to);
            }
        };
        // "peggy" stands for Margaret; a variant spelling stands for the other, both ways.
        link(other.trim(), name.trim());
        if relation == "has_variant" {
            link(name.trim(), other.trim());
        }
    }
    map
});

/// The names a typed (folded) word also stands for: "peggy" → margaret, "sergey" → sergei.
pub fn aliases(word: &str) -> &'static [&'static str] {
    ALIASES.get(word).map_or(&[], Vec::as_slice)
}

/// Whether `c` is written in a script other than Latin (Latin with its extensions and
/// Vietnamese's are folded by the analyzer already).
fn other_script(c: char) -> bool {
    let code = c as u32;
    code >= 0x0370 && !(0x1E00..0x1F00).contains(&code) && c.is_alphabetic()
}

/// The Latin letters of a word written in another script, lower case: "Петрова" → "petrova",
/// "刘备" → "liubei". `None` for a word in Latin letters.
pub fn transliterate(word: &str) -> Option<String> {
    if word.is_ascii() || !word.chars().any(other_script) {
        return None;
    }
    let latin: String = any_ascii::any_ascii(word)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .flat_map(|c| c.to_lowercase())
        .collect();
    (!latin.is_empty()).then_some(latin)
}

/// Other spellings of a name word as written, folded as the index folds: "Müller" → mueller,
/// "Børge" → boerge, "Иванова" → ivanova, "刘备" → liubei, liu, bei.
pub fn spellings(raw: &str) -> Vec<String> {
    if raw.is_ascii() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let lower = raw.to_lowercase();
    if lower.contains(['ä', 'ö', 'ü', 'ø', 'å']) {
        let spelled = lower
            .replace('ä', "ae")
            .replace('ö', "oe")
            .replace('ü', "ue")
            .replace('ø', "oe")
            .replace('å', "aa");
        out.extend(fold(&spelled));
    }
    if let Some(latin) = transliterate(raw) {
        out.push(latin);
        // Each syllable of a name in Chinese characters, kana or Hangul is a word people type
        // ("liu bei"), as is the whole ("liubei").
        if raw.chars().filter(|c| is_cjk(*c)).count() > 1 {
            out.extend(
                raw.chars()
                    .filter_map(|c| transliterate(c.encode_utf8(&mut [0; 4]))),
            );
        }
    }
    out
}

/// The name a person sorts by: in Latin letters, so that Иванова sorts among the Ivanovas.
pub fn sort_name(folded: &str) -> String {
    if folded.is_ascii() {
        return folded.to_string();
    }
    any_ascii::any_ascii(folded).to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_cover_scripts_and_national_forms() {
        assert_eq!(spellings("Müller"), ["mueller"]);
        assert_eq!(spellings("Børge"), ["boerge"]);
        assert_eq!(spellings("Åsa"), ["aasa"]);
        assert_eq!(spellings("Иванова"), ["ivanova"]);
        assert_eq!(spellings("Δημήτριος"), ["dimitrios"]);
        assert_eq!(spellings("刘备"), ["liubei", "liu", "bei"]);
        assert_eq!(spellings("김민준"), ["gimminjun", "gim", "min", "jun"]);
        assert_eq!(spellings("さくら"), ["sakura", "sa", "ku", "ra"]);
        assert!(spellings("Smith").is_empty());
        assert!(spellings("José").is_empty(), "folding covers it");
    }

    #[test]
    fn short_forms_and_variants_stand_for_names() {
        assert!(aliases("peggy").contains(&"margaret"));
        assert!(aliases("dick").contains(&"richard"));
        assert!(aliases("liz").contains(&"elizabeth"));
        assert!(aliases("beth").contains(&"elizabeth"));
        assert!(aliases("misha").contains(&"mikhail"));
        assert!(aliases("pepe").contains(&"jose"));
        assert!(aliases("paco").contains(&"francisco"));
        assert!(aliases("sergey").contains(&"sergei"));
        assert!(aliases("sergei").contains(&"sergey"));
        assert!(aliases("julia").contains(&"yuliya"));
        assert!(aliases("husain").contains(&"hussein"));
        assert!(aliases("margaret").is_empty() || !aliases("margaret").contains(&"peggy"));
        assert!(ALIASES.values().all(|names| names.len() <= MAX_ALIASES));
    }

    #[test]
    fn names_sort_by_their_latin_letters() {
        assert_eq!(sort_name("иванова екатерина"), "ivanova ekaterina");
        assert_eq!(sort_name("smith jane"), "smith jane");
    }
}
