//! Relevance: a fixed company (`tests/fixtures/search_people.csv`, 62 people in ten offices) in a
//! real PostgreSQL and index, and what a receptionist types, with the person they mean. Each case
//! says whether that person must come first (the query is unambiguous) or in the top three.

mod common;

use common::{options, urlencode, TestApp};
use switchboard::sync::ImportOptions;

async fn company() -> TestApp {
    let mut app = TestApp::new().await;
    let csv = std::fs::read_to_string(common::fixture("search_people.csv")).expect("fixture");
    let report = app.import_csv(&csv, &full_import()).await.expect("import");
    assert!(report.rejects.is_empty(), "{:?}", report.rejects);
    app
}

fn full_import() -> ImportOptions {
    ImportOptions {
        full: true,
        ..options("hr")
    }
}

/// `Top1`: the person must be the first hit; `Top3`: among the first three; `At(n)`: exactly
/// the n-th (from 0).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Rank {
    Top1,
    Top3,
    At(usize),
}
use Rank::{At, Top1, Top3};

/// Runs every case and fails with each one whose person is not where it should be.
async fn assert_ranks(app: &TestApp, cases: &[(&str, &str, Rank, &str)]) {
    let mut failures = Vec::new();
    for (q, who, rank, what) in cases {
        let names = app.names(q).await;
        let position = names.iter().position(|n| n == who);
        let ok = match (rank, position) {
            (_, None) => false,
            (Top1, Some(p)) => p == 0,
            (Top3, Some(p)) => p < 3,
            (At(n), Some(p)) => p == *n,
        };
        if !ok {
            failures.push(format!(
                "{q:?} ({what}): wanted {who} {rank:?}, got {:?}",
                &names[..names.len().min(5)]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// (what is typed, whom it means, how high they must rank, what the case covers)
const CASES: &[(&str, &str, Rank, &str)] = &[
    // Prefixes of every word, as you type, in any order.
    ("jan smi", "Jane Smith", Top1, "prefixes"),
    ("jane smith", "Jane Smith", Top1, "exact full name"),
    ("smith jane", "Jane Smith", Top1, "any order"),
    ("janet", "Janet Smithson", Top1, "whole given name"),
    ("smithson", "Janet Smithson", Top1, "whole family name"),
    ("gra", "Grace Hopper", Top1, "three letters"),
    ("hop", "Grace Hopper", Top1, "family-name prefix"),
    ("wash", "DeShawn Washington", Top1, "prefix"),
    (
        "feathers",
        "Bartholomew Featherstonehaugh",
        Top1,
        "long-name prefix",
    ),
    (
        "bart feath",
        "Bartholomew Featherstonehaugh",
        Top1,
        "two prefixes",
    ),
    (
        "jon",
        "Jon Snow",
        Top1,
        "whole word before prefix (Jonathan)",
    ),
    ("jonath", "Jonathan Whitaker", Top1, "prefix"),
    ("mary kate", "Mary-Kate Olsen", Top1, "hyphenated name"),
    (
        "sarah connor",
        "Sarah Connor",
        Top1,
        "exact name beats its sound-alike",
    ),
    (
        "sara conner",
        "Sara Conner",
        Top1,
        "exact name beats its sound-alike",
    ),
    ("brown isla", "Isla Brown", Top1, "family name first"),
    // Typos: one edit from four letters, two from eight.
    ("jonh smiht", "John Smith", Top1, "two transpositions"),
    ("catrina", "Katrina Novak", Top1, "one substitution"),
    ("katrine novak", "Katrina Novak", Top1, "one substitution"),
    ("hoper", "Grace Hopper", Top1, "one deletion"),
    (
        "grace hoppr",
        "Grace Hopper",
        Top1,
        "one deletion in the last word",
    ),
    ("whittaker", "Jonathan Whitaker", Top1, "one insertion"),
    (
        "washingtno",
        "DeShawn Washington",
        Top1,
        "transposition in a long word",
    ),
    (
        "featherstonhaug",
        "Bartholomew Featherstonehaugh",
        Top1,
        "two edits in a long word",
    ),
    (
        "vandersloat",
        "Ursula Vandersloot",
        Top1,
        "one substitution",
    ),
    ("kowalsky", "Marek Kowalski", Top1, "one substitution"),
    ("catri", "Katrina Novak", Top1, "a prefix with a typo"),
    // Sound-alikes, below exact matches.
    ("steven hawkins", "Stephen Hawkins", Top1, "phonetic"),
    ("filip knight", "Philip Knight", Top1, "phonetic"),
    ("jeffrey chaucer", "Geoffrey Chaucer", Top1, "phonetic"),
    (
        "muhammad",
        "Mohammed Al-Rashid",
        Top1,
        "phonetic or two typos",
    ),
    ("macdonald", "Ian McDonald", Top1, "phonetic"),
    ("schmidt", "Hans Schmidt", Top1, "exact first; Smith below"),
    // Diacritics and case, both ways; ligatures and transliteration.
    ("jose muller", "José Müller", Top1, "accents folded"),
    ("JOSÉ MÜLLER", "José Müller", Top1, "case and accents"),
    ("mueller", "José Müller", Top1, "German transliteration"),
    (
        "renée dubois",
        "Renee Dubois",
        Top1,
        "accents in the query, not the name",
    ),
    ("siobhan", "Siobhán O'Connor", Top1, "accent"),
    ("oconnor", "Siobhán O'Connor", Top3, "apostrophe dropped"),
    ("zoe", "Zoë Taylor", Top1, "diaeresis"),
    ("grossmann", "Günther Großmann", Top1, "ß → ss"),
    ("gunther", "Günther Großmann", Top1, "umlaut"),
    (
        "guenther",
        "Günther Großmann",
        Top1,
        "umlaut transliterated",
    ),
    ("soren ostergaard", "Søren Østergaard", Top1, "ø → o"),
    ("saether", "Frode Sæther", Top1, "æ → ae"),
    ("lukasz walesa", "Łukasz Wałęsa", Top1, "Ł → l, ę → e"),
    ("malgorzata", "Małgorzata Zielińska", Top1, "ł → l"),
    ("yilmaz", "Ahmet Yılmaz", Top1, "dotless ı"),
    ("francois", "François Lefèvre", Top1, "cedilla"),
    ("garcia", "María García", Top1, "accent"),
    ("王", "王伟", Top1, "CJK, shown family name first"),
    ("дмитрий", "Дмитрий Иванов", Top1, "Cyrillic, lower case"),
    ("ИВАНОВ", "Дмитрий Иванов", Top1, "Cyrillic, upper case"),
    // Phone numbers in any format, the last digits, extensions.
    ("+44 20 7946 0018", "Jane Smith", Top1, "international"),
    ("020 7946 0018", "Jane Smith", Top1, "national"),
    ("02079460018", "Jane Smith", Top1, "digits"),
    ("442079460018", "Jane Smith", Top1, "E.164 digits"),
    ("0044 20 7946 0018", "Jane Smith", Top1, "00 prefix"),
    ("+44 20 7946", "Jane Smith", Top1, "the start of a number"),
    ("0018", "Jane Smith", Top1, "last four digits"),
    ("7946 0018", "Jane Smith", Top1, "last eight digits"),
    ("+44 7400 123456", "Jane Smith", Top1, "mobile"),
    ("07400 123456", "Jane Smith", Top1, "mobile, national"),
    ("4711", "Grace Hopper", Top1, "extension"),
    ("x2100", "Rhys Evans", Top1, "extension with a marker"),
    ("ext. 3001", "Hans Schmidt", Top1, "extension with a marker"),
    ("(212) 460-1234", "Grace Hopper", Top1, "US national format"),
    ("+1 212 460 1234", "Grace Hopper", Top1, "US international"),
    (
        "01 41 31 53 02",
        "François Lefèvre",
        Top1,
        "French national",
    ),
    ("+48 22 123 45 67", "Łukasz Wałęsa", Top1, "Polish"),
    ("5302", "François Lefèvre", Top1, "last four digits"),
    // Email local parts and IM handles.
    ("jsmith", "Jane Smith", Top1, "XMPP handle"),
    ("hschmidt", "Hans Schmidt", Top1, "Matrix handle"),
    ("ghopper", "Grace Hopper", Top1, "email local part"),
    (
        "ianmcdonald",
        "Ian McDonald",
        Top1,
        "email local part without its dot",
    ),
    ("jane.smith@acme.test", "Jane Smith", Top1, "whole email"),
    ("jkim", "Jennifer Kim", Top1, "XMPP handle"),
    // Titles, departments, locations.
    ("receptionist", "Åsa Lindqvist", Top1, "title"),
    ("recep", "Åsa Lindqvist", Top1, "title prefix"),
    ("physicist", "Stephen Hawkins", Top1, "title"),
    (
        "archiv",
        "Bartholomew Featherstonehaugh",
        Top1,
        "title prefix",
    ),
    (
        "finance lond",
        "Olusegun Okafor",
        Top3,
        "department and location prefix",
    ),
    ("jane c", "Jane Smith", Top1, "one letter of her title"),
    (
        "janet hu",
        "Janet Smithson",
        Top1,
        "two letters of her department",
    ),
    ("brown sales", "Oliver Brown", Top1, "name and department"),
    ("brown berlin", "Isla Brown", Top1, "name and location"),
    (
        "anna zur",
        "Anna Meier",
        Top1,
        "location prefix with an umlaut",
    ),
];

#[tokio::test]
async fn the_person_meant_ranks_first_or_in_the_top_three() {
    let app = company().await;
    assert!(CASES.len() >= 60, "{} cases", CASES.len());
    assert_ranks(&app, CASES).await;
}

#[tokio::test]
async fn exact_matches_rank_above_typos_and_sound_alikes() {
    let app = company().await;
    // Schmidt first; the Smiths only sound alike and come after.
    let names = app.names("schmidt").await;
    assert_eq!(names[0], "Hans Schmidt");
    let smith = names.iter().position(|n| n == "Jane Smith");
    assert!(smith.is_some_and(|p| p > 0), "{names:?}");
    // "smith" whole word beats "smithson" prefix beats "smyth" sound-alike.
    let names = app.names("smith").await;
    let at = |who: &str| names.iter().position(|n| n == who);
    assert!(at("Jane Smith") < at("Janet Smithson"), "{names:?}");
    assert!(at("John Smith") < at("Janet Smithson"), "{names:?}");
    // The exact tier fills nothing more here, so typos and sound-alikes follow it.
    if let Some(smyth) = at("John Smyth") {
        assert!(at("Janet Smithson").is_some_and(|p| p < smyth), "{names:?}");
    }
    // An exact full-name match beats one that merely contains both words.
    assert_eq!(app.names("john smith").await[0], "John Smith");
    let (_, _, body) = app.get("/api/v1/people?q=jonh+smiht").await;
    assert_eq!(body["approximate"], true, "{body}");
    // One exact match fills a page of one: no typo tier was needed.
    let (_, _, body) = app.get("/api/v1/people?q=jane+smith&limit=1").await;
    assert_eq!(body["approximate"], false, "{body}");
}

#[tokio::test]
async fn near_breaks_ties_then_alphabetical() {
    let app = company().await;
    // Michael O'Brien sounds alike ("Brien") and follows the three Browns.
    assert_eq!(
        app.names("brown").await[..3],
        ["Amelia Brown", "Isla Brown", "Oliver Brown"]
    );
    let near = |location: &str| format!("brown&near={}", urlencode(location));
    let names = |body: serde_json::Value| common::display_names(&body);
    let (_, _, body) = app
        .get(&format!("/api/v1/people?q={}", near("New York")))
        .await;
    assert_eq!(
        names(body)[..3],
        ["Oliver Brown", "Amelia Brown", "Isla Brown"]
    );
    let (_, _, body) = app
        .get(&format!("/api/v1/people?q={}", near("Berlin")))
        .await;
    assert_eq!(
        names(body)[..3],
        ["Isla Brown", "Amelia Brown", "Oliver Brown"]
    );
    // A boost never lifts a worse match over a better one: "smith" whole words stay first.
    let (_, _, body) = app.get("/api/v1/people?q=smith&near=Paris").await;
    let first_two = names(body);
    assert!(first_two[..2].contains(&"Jane Smith".to_string()));
}

#[tokio::test]
async fn identical_queries_give_identical_pages() {
    let app = company().await;
    for q in ["j", "smith", "jonh", "schmidt", "", "+44 20"] {
        let first = app.names(q).await;
        for _ in 0..3 {
            assert_eq!(app.names(q).await, first, "{q}");
        }
    }
}

#[tokio::test]
async fn paging_through_tiers_never_repeats_or_skips() {
    let app = company().await;
    // "smith" has 3 exact/prefix matches and more approximate ones: pages of 2 cross the tiers.
    let all = app.names("smith").await;
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let uri = match &cursor {
            Some(c) => format!("/api/v1/people?q=smith&limit=2&cursor={c}"),
            None => "/api/v1/people?q=smith&limit=2".into(),
        };
        let (status, _, body) = app.get(&uri).await;
        assert_eq!(status, 200, "{body}");
        for p in body["items"].as_array().expect("items") {
            paged.push(p["display_name"].as_str().unwrap_or_default().to_string());
        }
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(paged, all);
}

#[tokio::test]
async fn deleted_people_never_appear() {
    let mut app = company().await;
    assert_eq!(app.names("soonest").await, ["Leaving Soonest"]);
    let csv = std::fs::read_to_string(common::fixture("search_people.csv")).expect("fixture");
    let without: String = csv
        .lines()
        .filter(|l| !l.starts_with("P62,"))
        .map(|l| format!("{l}\n"))
        .collect();
    let report = app
        .import_csv(&without, &full_import())
        .await
        .expect("import");
    assert_eq!(report.counts.removed, 1);
    for q in ["soonest", "leaving", "+44 20 3210 9876", "soonst", "9876"] {
        assert!(
            !app.names(q).await.contains(&"Leaving Soonest".to_string()),
            "{q}"
        );
    }
    let (status, _, _) = app
        .get("/api/v1/people/by-phone/%2B44%2020%203210%209876")
        .await;
    assert_eq!(status, 404);
}

/// People written in their own scripts, and people known by another name: (what is typed, whom
/// it means, the position they must have, what the case covers).
const SCRIPT_CASES: &[(&str, &str, Rank, &str)] = &[
    ("иванова", "Екатерина Иванова", At(0), "the original script"),
    (
        "ekaterina",
        "Екатерина Иванова",
        At(0),
        "Cyrillic found in Latin letters",
    ),
    (
        "ekaterina ivanova",
        "Екатерина Иванова",
        At(0),
        "full name in Latin letters",
    ),
    (
        "petrova",
        "Ольга Петрова",
        At(0),
        "Cyrillic family name in Latin letters",
    ),
    ("петрова", "Ольга Петрова", At(0), "Cyrillic as typed"),
    (
        "olga petr",
        "Ольга Петрова",
        At(0),
        "a transliterated prefix",
    ),
    (
        "dimitrios",
        "Δημήτριος Παπαδόπουλος",
        At(0),
        "Greek in Latin letters",
    ),
    (
        "dimitris papadopoulos",
        "Δημήτριος Παπαδόπουλος",
        At(0),
        "Greek: a common short spelling",
    ),
    ("wang fang", "王芳", At(0), "pinyin with a space"),
    ("wangfang", "王芳", At(0), "pinyin as one word"),
    ("wáng fāng", "王芳", At(0), "pinyin with tones"),
    ("liu bei", "刘备", At(0), "pinyin"),
    ("liubei", "刘备", At(0), "pinyin as one word"),
    ("王芳", "王芳", At(0), "Chinese as typed"),
    ("minjun", "김민준", At(0), "Korean in Revised Romanization"),
    (
        "kim minjun",
        "김민준",
        At(0),
        "Korean: the common spelling of the family name",
    ),
    ("sakura", "田中さくら", At(0), "Japanese kana in romaji"),
    ("aram", "Արամ Խաչատրյան", At(0), "Armenian in Latin letters"),
    (
        "nino beridze",
        "ნინო ბერიძე",
        At(0),
        "Georgian in Latin letters",
    ),
    ("rahul", "राहुल शर्मा", At(0), "Devanagari in Latin letters"),
    ("محمد", "محمد حسين", At(0), "Arabic as typed"),
    ("peggy", "Peggy Carter", At(0), "the name as written first"),
    ("peggy", "Margaret Hughes", At(1), "then who goes by it"),
    ("dick", "Richard Dawson", At(0), "a short form"),
    (
        "liz taylor",
        "Elizabeth Taylor",
        At(0),
        "a short form and a family name",
    ),
    ("beth", "Elizabeth Taylor", At(0), "a short form"),
    (
        "misha",
        "Михаил Соколов",
        At(0),
        "a Russian short form, Cyrillic name",
    ),
    ("pepe", "José García", At(0), "a Spanish short form"),
    (
        "paco lopez",
        "Francisco López",
        At(0),
        "a Spanish short form",
    ),
    (
        "sergei smirnov",
        "Sergey Smirnov",
        At(0),
        "a transliteration variant",
    ),
    (
        "julia kovalenko",
        "Yuliya Kovalenko",
        At(0),
        "a transliteration variant",
    ),
    ("husain", "Hussein Ali", At(0), "a transliteration variant"),
    ("boerge", "Børge Hansen", At(0), "Nordic ø as oe"),
    ("borge hansen", "Børge Hansen", At(0), "Nordic ø folded"),
    ("goetz", "Götz Berger", At(0), "German ö as oe"),
    (
        "moose",
        "Theodore Winslow",
        At(0),
        "the nickname his source lists",
    ),
    (
        "moose winslow",
        "Theodore Winslow",
        At(0),
        "nickname and family name",
    ),
    (
        "bunny",
        "Bunny Bell",
        At(0),
        "the name her display name calls her",
    ),
    (
        "peter nagy",
        "Nagy Péter",
        At(0),
        "a Hungarian name, family first",
    ),
    ("nagy peter", "Nagy Péter", At(0), "as Hungarians say it"),
];

#[tokio::test]
async fn names_in_every_script_and_by_the_names_people_go_by() {
    let mut app = TestApp::new().await;
    let csv =
        std::fs::read_to_string(common::fixture("search_people_scripts.csv")).expect("fixture");
    let report = app
        .import_csv(&csv, &options("scripts"))
        .await
        .expect("import");
    assert!(report.rejects.is_empty(), "{:?}", report.rejects);
    assert_ranks(&app, SCRIPT_CASES).await;
    // A Latin query lists the Cyrillic namesake among the Latin ones (sorted by Latin letters),
    // not after everyone spelled in Latin.
    let names = app.names("ivanova").await;
    assert_eq!(names, ["Anna Ivanova", "Екатерина Иванова"]);
    // The names people go by are returned with them, in results and on their record.
    let (status, _, body) = app.get("/api/v1/people?q=moose").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"][0]["nicknames"], serde_json::json!(["Moose"]));
    let id = body["items"][0]["id"].as_str().expect("id");
    let (_, _, theodore) = app.get(&format!("/api/v1/people/{id}")).await;
    assert_eq!(theodore["nicknames"], serde_json::json!(["Moose"]));
    assert_eq!(theodore["display_name"], "Theodore Winslow");
    let (_, _, body) = app.get("/api/v1/people?q=bunny").await;
    assert_eq!(body["items"][0]["nicknames"], serde_json::json!(["Bunny"]));
    let (_, _, body) = app.get("/api/v1/people?q=winslow").await;
    assert_eq!(body["items"][0]["nicknames"], serde_json::json!(["Moose"]));
    let (_, _, body) = app.get("/api/v1/people?q=hughes").await;
    assert_eq!(body["items"][0]["nicknames"], serde_json::json!([]));
}
