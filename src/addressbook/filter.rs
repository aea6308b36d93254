//! LDAP filters as devices send them: which searches of the index find the candidates, and
//! whether an entry matches (RFC 4511 §4.5.1.7: TRUE, FALSE or Undefined).

use std::collections::HashSet;

use ldap3_proto::proto::{LdapFilter, LdapSubstringFilter};
use uuid::Uuid;

use super::entry::{attribute, fold_text, Entry, Syntax};

/// Where the people a filter can match are found.
#[derive(Debug, Clone, PartialEq)]
pub enum Candidates {
    /// Nobody can match (an unknown attribute, an impossible value).
    Nothing,
    /// The people these searches find (typed as a search box takes them: words, word starts,
    /// phone numbers, their last digits).
    Searches(Vec<String>),
    /// The people with a number ending in these digits (`*0018`), then those the search for
    /// them finds (an extension, say).
    Ending(String),
    /// Anyone might: list everyone (up to the server's limit).
    Everyone,
}

/// The searches whose results hold every person the filter can match (beyond the index's word
/// starts: a substring inside a word, "*mit*" for Smith, is matched only among them).
pub fn candidates(filter: &LdapFilter) -> Candidates {
    match filter {
        LdapFilter::And(children) => {
            let mut best: Option<Vec<String>> = None;
            for child in children {
                match candidates(child) {
                    Candidates::Nothing => return Candidates::Nothing,
                    Candidates::Everyone => {}
                    Candidates::Ending(digits) => return Candidates::Ending(digits),
                    Candidates::Searches(s) => {
                        if best.as_ref().is_none_or(|b| s.len() < b.len()) {
                            best = Some(s);
                        }
                    }
                }
            }
            best.map_or(Candidates::Everyone, Candidates::Searches)
        }
        LdapFilter::Or(children) => {
            let mut all = Vec::new();
            for child in children {
                match candidates(child) {
                    Candidates::Nothing => {}
                    Candidates::Everyone => return Candidates::Everyone,
                    // Among other alternatives, an ending is one more search.
                    Candidates::Ending(digits) => {
                        if !all.contains(&digits) {
                            all.push(digits);
                        }
                    }
                    Candidates::Searches(s) => {
                        for q in s {
                            if !all.contains(&q) {
                                all.push(q);
                            }
                        }
                    }
                }
            }
            if all.is_empty() {
                Candidates::Nothing
            } else {
                Candidates::Searches(all)
            }
        }
        LdapFilter::Not(_) => Candidates::Everyone,
        LdapFilter::Present(attr) => match attribute(attr) {
            Some(_) => Candidates::Everyone,
            None => Candidates::Nothing,
        },
        LdapFilter::Equality(attr, value) if is_anr(attr) => searched(value),
        LdapFilter::Equality(attr, value) | LdapFilter::Approx(attr, value) => {
            match attribute(attr) {
                None => Candidates::Nothing,
                Some(("objectClass", _)) => Candidates::Everyone,
                Some((_, Syntax::Exact)) => Candidates::Everyone,
                Some(_) => searched(value),
            }
        }
        LdapFilter::Substring(attr, sub) => match attribute(attr) {
            None => Candidates::Nothing,
            Some((_, Syntax::Exact)) => Candidates::Everyone,
            // Only the end of a number (`*0018`): the index knows numbers by their endings.
            Some((_, Syntax::Phone))
                if sub.initial.is_none() && sub.any.is_empty() && sub.final_.is_some() =>
            {
                let digits: String = sub
                    .final_
                    .iter()
                    .flat_map(|f| f.chars())
                    .filter(char::is_ascii_digit)
                    .collect();
                if (4..=8).contains(&digits.len()) {
                    Candidates::Ending(digits)
                } else {
                    searched(sub.final_.as_deref().unwrap_or_default())
                }
            }
            Some((_, syntax)) => {
                // The longest piece that the index finds: a number's start or end, a word's
                // start (a middle piece only for text).
                let mut pieces: Vec<&String> = sub.initial.iter().chain(&sub.final_).collect();
                if syntax == Syntax::Text {
                    pieces.extend(&sub.any);
                }
                pieces
                    .into_iter()
                    .max_by_key(|p| p.chars().filter(|c| c.is_alphanumeric()).count())
                    .map_or(Candidates::Everyone, |p| searched(p))
            }
        },
        LdapFilter::GreaterOrEqual(attr, _) | LdapFilter::LessOrEqual(attr, _) => {
            match attribute(attr) {
                Some(_) => Candidates::Everyone,
                None => Candidates::Nothing,
            }
        }
        LdapFilter::Extensible(_) => Candidates::Nothing,
    }
}

/// A search for `value` (one letter is enough: the index holds every start of a name, and a
/// Korean or Chinese family name is one character), unless it has no letter or digit at all.
fn searched(value: &str) -> Candidates {
    if !value.chars().any(char::is_alphanumeric) {
        Candidates::Everyone
    } else {
        Candidates::Searches(vec![value.trim().to_string()])
    }
}

/// What the approximate (`~=`) items found: per value, the people the typo-tolerant search
/// returned for it.
#[derive(Debug, Default)]
pub struct Approximate {
    pub found: Vec<(String, HashSet<Uuid>)>,
}

/// Whether any item of the filter is about the attribute `name` (by any of its names).
pub fn reads(filter: &LdapFilter, name: &str) -> bool {
    let about = |attr: &str| attribute(attr).is_some_and(|(canonical, _)| canonical == name);
    match filter {
        LdapFilter::And(children) | LdapFilter::Or(children) => {
            children.iter().any(|c| reads(c, name))
        }
        LdapFilter::Not(child) => reads(child, name),
        LdapFilter::Equality(attr, _)
        | LdapFilter::Approx(attr, _)
        | LdapFilter::GreaterOrEqual(attr, _)
        | LdapFilter::LessOrEqual(attr, _)
        | LdapFilter::Substring(attr, _)
        | LdapFilter::Present(attr) => about(attr),
        LdapFilter::Extensible(m) => m.type_.as_deref().is_some_and(about),
    }
}

/// The values of every `~=` item in a filter.
pub fn approximate_values(filter: &LdapFilter, out: &mut Vec<String>) {
    match filter {
        LdapFilter::And(children) | LdapFilter::Or(children) => {
            children.iter().for_each(|c| approximate_values(c, out))
        }
        LdapFilter::Not(child) => approximate_values(child, out),
        LdapFilter::Approx(_, value) if !out.contains(value) => out.push(value.clone()),
        _ => {}
    }
}

/// Whether `entry` (of the person `id`) matches: `Some(true)`, `Some(false)`, or `None` for
/// Undefined (an attribute people do not have, a matching rule we do not know).
pub fn matches(
    filter: &LdapFilter,
    entry: &Entry,
    id: &Uuid,
    approx: &Approximate,
) -> Option<bool> {
    match filter {
        LdapFilter::And(children) => {
            let mut result = Some(true);
            for child in children {
                match matches(child, entry, id, approx) {
                    Some(false) => return Some(false),
                    None => result = None,
                    Some(true) => {}
                }
            }
            result
        }
        LdapFilter::Or(children) => {
            let mut result = Some(false);
            for child in children {
                match matches(child, entry, id, approx) {
                    Some(true) => return Some(true),
                    None => result = None,
                    Some(false) => {}
                }
            }
            result
        }
        LdapFilter::Not(child) => matches(child, entry, id, approx).map(|b| !b),
        LdapFilter::Present(attr) => Some(
            attribute(attr)
                .and_then(|(name, _)| entry.get(name))
                .is_some_and(|a| !a.values.is_empty()),
        ),
        LdapFilter::Equality(attr, value) if is_anr(attr) => Some(anr(entry, value)),
        LdapFilter::Equality(attr, value) => {
            let (name, syntax) = attribute(attr)?;
            let keys = entry.get(name)?.keys();
            Some(match syntax {
                Syntax::Phone => {
                    let wanted = phone_readings(value);
                    keys.iter().flatten().any(|k| wanted.contains(k))
                }
                Syntax::Text => {
                    let wanted = fold_text(value);
                    keys.iter().flatten().any(|k| *k == wanted)
                }
                Syntax::Exact => {
                    let wanted = value.to_lowercase();
                    keys.iter().flatten().any(|k| *k == wanted)
                }
            })
        }
        LdapFilter::Substring(attr, sub) => {
            let (name, syntax) = attribute(attr)?;
            let keys = entry.get(name)?.keys();
            Some(match syntax {
                Syntax::Phone => match digits_pattern(sub) {
                    Some(pattern) => keys.iter().flatten().any(|k| pattern.matches(k)),
                    // "(telephoneNumber=jan*)" (iOS asks every attribute for a name): no
                    // number holds letters.
                    None => false,
                },
                Syntax::Text => {
                    let pattern = Pattern::of(sub, fold_text);
                    keys.iter().flatten().any(|k| pattern.matches(k))
                }
                Syntax::Exact => {
                    let pattern = Pattern::of(sub, |s| s.to_lowercase());
                    keys.iter().flatten().any(|k| pattern.matches(k))
                }
            })
        }
        LdapFilter::GreaterOrEqual(attr, value) | LdapFilter::LessOrEqual(attr, value) => {
            let (name, syntax) = attribute(attr)?;
            let keys = entry.get(name)?.keys();
            let wanted = match syntax {
                Syntax::Text => fold_text(value),
                _ => value.to_lowercase(),
            };
            let greater = matches!(filter, LdapFilter::GreaterOrEqual(..));
            Some(keys.iter().flatten().any(|k| {
                if greater {
                    k.as_str() >= wanted.as_str()
                } else {
                    k.as_str() <= wanted.as_str()
                }
            }))
        }
        LdapFilter::Approx(attr, value) => {
            let (name, syntax) = attribute(attr)?;
            let attribute = entry.get(name)?;
            if attribute.values.is_empty() {
                return Some(false);
            }
            // The typo-tolerant search found this person for the value, and it was this
            // attribute that could have matched: equal after folding, or found by search.
            let found = approx
                .found
                .iter()
                .any(|(v, ids)| v == value && ids.contains(id));
            let equal = match syntax {
                Syntax::Phone => {
                    let wanted = phone_readings(value);
                    attribute
                        .keys()
                        .iter()
                        .flatten()
                        .any(|k| wanted.contains(k))
                }
                _ => {
                    let wanted = fold_text(value);
                    attribute
                        .keys()
                        .iter()
                        .flatten()
                        .any(|k| k.contains(&wanted))
                }
            };
            Some(equal || (found && syntax == Syntax::Text))
        }
        LdapFilter::Extensible(_) => None,
    }
}

/// Active Directory's ambiguous name resolution (`anr`, which Cisco Jabber sends): the value
/// starts a word of a name or the email address.
fn is_anr(attr: &str) -> bool {
    attr.eq_ignore_ascii_case("anr")
}

fn anr(entry: &Entry, value: &str) -> bool {
    let wanted = fold_text(value);
    if wanted.is_empty() {
        return false;
    }
    ["cn", "displayName", "givenName", "sn", "nickname", "mail"]
        .iter()
        .filter_map(|name| entry.get(name))
        .flat_map(|a| a.keys().into_iter().flatten())
        .any(|key| key.starts_with(&wanted) || key.contains(&format!(" {wanted}")))
}

/// The digit strings a phone number in a filter may be stored as: with and without a national
/// trunk `0`, after `+` or `00`, or as typed.
fn phone_readings(value: &str) -> Vec<String> {
    let mut readings = crate::search::query::phone_candidates(value).unwrap_or_default();
    let digits: String = value.chars().filter(char::is_ascii_digit).collect();
    if !digits.is_empty() && !readings.contains(&digits) {
        readings.push(digits);
    }
    readings
}

/// A substring filter's pieces, compared in order.
struct Pattern {
    initial: Option<String>,
    any: Vec<String>,
    last: Option<String>,
}

impl Pattern {
    fn of(sub: &LdapSubstringFilter, fold: impl Fn(&str) -> String) -> Pattern {
        Pattern {
            initial: sub.initial.as_deref().map(&fold).filter(|s| !s.is_empty()),
            any: sub
                .any
                .iter()
                .map(|s| fold(s))
                .filter(|s| !s.is_empty())
                .collect(),
            last: sub.final_.as_deref().map(&fold).filter(|s| !s.is_empty()),
        }
    }

    fn matches(&self, value: &str) -> bool {
        let mut rest = value;
        if let Some(initial) = &self.initial {
            match rest.strip_prefix(initial.as_str()) {
                Some(r) => rest = r,
                None => return false,
            }
        }
        for piece in &self.any {
            match rest.find(piece.as_str()) {
                Some(at) => rest = &rest[at + piece.len()..],
                None => return false,
            }
        }
        match &self.last {
            Some(last) => rest.ends_with(last.as_str()),
            None => true,
        }
    }
}

/// A substring filter on a number, as digits: "020 79*" starts the national digits "2079…",
/// "+4420*" the international ones, "*4711" ends any of them. `None` when the filter holds no
/// digit at all.
fn digits_pattern(sub: &LdapSubstringFilter) -> Option<Pattern> {
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let initial = sub.initial.as_deref().map(|s| {
        let s = s.trim();
        if let Some(international) = s.strip_prefix('+').or_else(|| s.strip_prefix("00")) {
            digits(international)
        } else {
            digits(s).trim_start_matches('0').to_string()
        }
    });
    let pattern = Pattern {
        initial: initial.filter(|s| !s.is_empty()),
        any: sub
            .any
            .iter()
            .map(|s| digits(s))
            .filter(|s| !s.is_empty())
            .collect(),
        last: sub.final_.as_deref().map(digits).filter(|s| !s.is_empty()),
    };
    let written = sub.initial.is_some() || sub.final_.is_some() || !sub.any.is_empty();
    let empty = pattern.initial.is_none() && pattern.any.is_empty() && pattern.last.is_none();
    (!(written && empty)).then_some(pattern)
}

/// A filter written back in RFC 4515's string form (for the audit trail and logs).
pub fn to_string(filter: &LdapFilter) -> String {
    fn escape(value: &str) -> String {
        let mut out = String::with_capacity(value.len());
        for c in value.chars() {
            match c {
                '*' => out.push_str("\\2a"),
                '(' => out.push_str("\\28"),
                ')' => out.push_str("\\29"),
                '\\' => out.push_str("\\5c"),
                '\0' => out.push_str("\\00"),
                c => out.push(c),
            }
        }
        out
    }
    match filter {
        LdapFilter::And(c) => format!("(&{})", c.iter().map(to_string).collect::<String>()),
        LdapFilter::Or(c) => format!("(|{})", c.iter().map(to_string).collect::<String>()),
        LdapFilter::Not(c) => format!("(!{})", to_string(c)),
        LdapFilter::Equality(a, v) => format!("({a}={})", escape(v)),
        LdapFilter::Approx(a, v) => format!("({a}~={})", escape(v)),
        LdapFilter::GreaterOrEqual(a, v) => format!("({a}>={})", escape(v)),
        LdapFilter::LessOrEqual(a, v) => format!("({a}<={})", escape(v)),
        LdapFilter::Present(a) => format!("({a}=*)"),
        LdapFilter::Substring(a, s) => {
            let mut out = format!("({a}=");
            if let Some(i) = &s.initial {
                out.push_str(&escape(i));
            }
            out.push('*');
            for piece in &s.any {
                out.push_str(&escape(piece));
                out.push('*');
            }
            if let Some(f) = &s.final_ {
                out.push_str(&escape(f));
            }
            out.push(')');
            out
        }
        LdapFilter::Extensible(m) => format!(
            "({}:{}:={})",
            m.type_.as_deref().unwrap_or(""),
            m.matching_rule.as_deref().unwrap_or(""),
            escape(&m.match_value)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Person, PhoneNormalizer, PhoneParser};

    /// RFC 4515 filter strings as the tests write them (the crate's parser takes no spaces in
    /// values).
    fn parse(s: &str) -> LdapFilter {
        fn filter(s: &str) -> (LdapFilter, &str) {
            let s = s.strip_prefix('(').expect("(");
            fn list(mut rest: &str) -> (Vec<LdapFilter>, &str) {
                let mut children = Vec::new();
                while rest.starts_with('(') {
                    let (child, after) = filter(rest);
                    children.push(child);
                    rest = after;
                }
                (children, rest.strip_prefix(')').expect(")"))
            }
            if let Some(rest) = s.strip_prefix('&') {
                let (c, rest) = list(rest);
                return (LdapFilter::And(c), rest);
            }
            if let Some(rest) = s.strip_prefix('|') {
                let (c, rest) = list(rest);
                return (LdapFilter::Or(c), rest);
            }
            if let Some(rest) = s.strip_prefix('!') {
                let (c, rest) = filter(rest);
                return (
                    LdapFilter::Not(Box::new(c)),
                    rest.strip_prefix(')').expect(")"),
                );
            }
            let end = s.find(')').expect(")");
            let (item, rest) = (&s[..end], &s[end + 1..]);
            let at = item.find('=').expect("=");
            let (attr, value) = (&item[..at], &item[at + 1..]);
            let (attr, f) = if let Some(a) = attr.strip_suffix('~') {
                (a, LdapFilter::Approx(a.into(), value.into()))
            } else if let Some(a) = attr.strip_suffix('>') {
                (a, LdapFilter::GreaterOrEqual(a.into(), value.into()))
            } else if let Some(a) = attr.strip_suffix('<') {
                (a, LdapFilter::LessOrEqual(a.into(), value.into()))
            } else if value == "*" {
                (attr, LdapFilter::Present(attr.into()))
            } else if value.contains('*') {
                let parts: Vec<&str> = value.split('*').collect();
                let some = |p: &str| (!p.is_empty()).then(|| p.to_string());
                let sub = LdapSubstringFilter {
                    initial: some(parts[0]),
                    any: parts[1..parts.len() - 1]
                        .iter()
                        .map(|p| p.to_string())
                        .collect(),
                    final_: some(parts[parts.len() - 1]),
                };
                (attr, LdapFilter::Substring(attr.into(), sub))
            } else {
                (attr, LdapFilter::Equality(attr.into(), value.into()))
            };
            let _ = attr;
            (f, rest)
        }
        let (f, rest) = filter(s);
        assert!(rest.is_empty(), "{s}");
        f
    }

    fn jane() -> (Uuid, Entry) {
        let phones = PhoneNormalizer::new("GB").expect("region");
        let now = chrono::DateTime::UNIX_EPOCH;
        let person = Person {
            id: Uuid::from_u128(1),
            display_name: "Jane Müller".into(),
            given_name: Some("Jane".into()),
            family_name: Some("Müller".into()),
            nicknames: vec!["Janie".into()],
            title: Some("Head of Sales".into()),
            department: Some("Sales".into()),
            org_unit: None,
            location: Some("London".into()),
            manager: None,
            phones: vec![
                phones
                    .parse_in(
                        crate::domain::PhoneKind::Work,
                        "+44 20 7946 0018 x4711",
                        None,
                    )
                    .expect("phone"),
                phones
                    .parse_in(crate::domain::PhoneKind::Mobile, "+44 7400 123456", None)
                    .expect("phone"),
            ],
            emails: vec!["jane.muller@example.com".into()],
            im: vec![],
            photo_url: None,
            sources: vec![],
            created_at: now,
            updated_at: now,
            presence: None,
            absence: None,
            status: None,
            partner_sharing: None,
        };
        (person.id, Entry::of(&person, "ou=people,dc=example,dc=com"))
    }

    fn check(filter: &str) -> Option<bool> {
        let (id, entry) = jane();
        matches(&parse(filter), &entry, &id, &Approximate::default())
    }

    #[test]
    fn filters_that_devices_send_match_as_they_expect() {
        for yes in [
            "(objectClass=*)",
            "(objectClass=inetOrgPerson)",
            "(cn=jane*)",
            "(cn=Jane Muller)",
            "(sn=mül*)",
            "(sn=MUELLER)",
            "(|(cn=*müller*)(mail=*müller*))",
            "(&(objectClass=person)(|(sn=mu*)(givenName=mu*)))",
            "(mail=jane.muller@example.com)",
            "(mail=*@example.com)",
            "(telephoneNumber=*4711)",
            "(telephoneNumber=+442079460018)",
            "(telephoneNumber=020 7946 0018)",
            "(telephoneNumber=020 7946*)",
            "(telephoneNumber=+4420*)",
            "(ipPhone=4711)",
            "(mobile=+447400123456)",
            "(|(telephoneNumber=07400123456)(mobile=07400123456))",
            "(nickname=janie)",
            "(!(department=Marketing))",
            "(sn>=m)",
            "(sn<=n)",
            "(displayName~=jane muller)",
            "(anr=mul)",
            "(anr=jane.m)",
        ] {
            assert_eq!(check(yes), Some(true), "{yes}");
        }
        for no in [
            "(cn=john*)",
            "(telephoneNumber=*4712)",
            "(mobile=+442079460018)",
            "(department=Marketing)",
            "(!(objectClass=person))",
            "(sn>=n)",
            "(homePhone=*)",
            "(telephoneNumber=jane*)",
            "(anr=ane)",
        ] {
            assert_eq!(check(no), Some(false), "{no}");
        }
        // Unknown attributes are Undefined, not an error; an Or still finds by the others.
        assert_eq!(check("(favouriteColour=blue)"), None);
        assert_eq!(check("(!(favouriteColour=blue))"), None);
        assert_eq!(check("(|(favouriteColour=blue)(cn=jane*))"), Some(true));
        assert_eq!(check("(&(favouriteColour=blue)(cn=jane*))"), None);
        assert_eq!(check("(favouriteColour=*)"), Some(false));
    }

    #[test]
    fn candidates_come_from_the_most_telling_searches() {
        let of = |s: &str| candidates(&parse(s));
        assert_eq!(of("(objectClass=*)"), Candidates::Everyone);
        assert_eq!(
            of("(&(objectClass=person)(cn=smi*))"),
            Candidates::Searches(vec!["smi".into()])
        );
        assert_eq!(
            of("(|(cn=smi*)(telephoneNumber=*4711))"),
            Candidates::Searches(vec!["smi".into(), "4711".into()])
        );
        assert_eq!(of("(|(cn=smi*)(!(cn=x)))"), Candidates::Everyone);
        assert_eq!(
            of("(telephoneNumber=*0018)"),
            Candidates::Ending("0018".into()),
            "a number's end is looked up by its end"
        );
        assert_eq!(of("(favouriteColour=blue)"), Candidates::Nothing);
        assert!(reads(&parse("(&(cn=a*)(!(manager=*)))"), "manager"));
        assert!(
            !reads(&parse("(title=*manager*)"), "manager"),
            "a value is not an attribute"
        );
        assert_eq!(
            of("(&(favouriteColour=blue)(cn=smith))"),
            Candidates::Nothing
        );
        assert_eq!(of("(cn=*)"), Candidates::Everyone);
        assert_eq!(
            of("(cn=김*)"),
            Candidates::Searches(vec!["김".into()]),
            "one character narrows"
        );
        assert_eq!(of("(cn=-*)"), Candidates::Everyone, "nothing to search for");
    }

    #[test]
    fn filters_are_written_back_as_rfc_4515_strings() {
        for s in [
            "(&(objectClass=person)(|(cn=ab*cd*ef)(mail=*x)))",
            "(!(sn=ab))",
            "(cn~=jon)",
        ] {
            assert_eq!(to_string(&parse(s)), s);
        }
    }
}
