//! The search API beyond ranking: reverse phone lookup, filters and facets, and any query
//! string getting results or a clear 400, never a 500 or a hang.

mod common;

use common::{options, urlencode, TestApp};
use serde_json::Value;
use switchboard::sync::ImportOptions;

async fn company() -> TestApp {
    let mut app = TestApp::new().await;
    let csv = std::fs::read_to_string(common::fixture("search_people.csv")).expect("fixture");
    let opts = ImportOptions {
        full: true,
        ..options("hr")
    };
    let report = app.import_csv(&csv, &opts).await.expect("import");
    assert!(report.rejects.is_empty(), "{:?}", report.rejects);
    app
}

use common::display_names as names;

#[tokio::test]
async fn reverse_lookup_finds_the_owner_of_a_number_in_any_format() {
    let app = company().await;
    for number in [
        "+44 20 7946 0018",
        "020 7946 0018",
        "02079460018",
        "+442079460018",
        "0044 20 7946 0018",
        "(020) 7946-0018",
        "+44 7400 123456",
        "2001",
    ] {
        let (status, content_type, body) = app
            .get(&format!("/api/v1/people/by-phone/{}", urlencode(number)))
            .await;
        assert_eq!(status, 200, "{number}: {body}");
        assert!(content_type.starts_with("application/json"));
        assert_eq!(names(&body), ["Jane Smith"], "{number}");
    }
    let (status, _, body) = app.get("/api/v1/people/by-phone/4711").await;
    assert_eq!(status, 200);
    assert_eq!(names(&body), ["Grace Hopper"]);
    assert_eq!(body["digits"], serde_json::json!(["4711"]));
    // A start or an end of a number is a search, not an owner.
    for number in ["+44 20 7946", "0018", "+44 20 0000 0000"] {
        let (status, content_type, body) = app
            .get(&format!("/api/v1/people/by-phone/{}", urlencode(number)))
            .await;
        assert_eq!(status, 404, "{number}: {body}");
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(body["code"], "not_found");
    }
    for garbage in ["hello", "12", "+44 20 7946 0018 ext", &"1".repeat(100)] {
        let (status, content_type, body) = app
            .get(&format!("/api/v1/people/by-phone/{}", urlencode(garbage)))
            .await;
        assert_eq!(status, 400, "{garbage}: {body}");
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(body["code"], "invalid_parameter");
    }
}

#[tokio::test]
async fn filters_narrow_results_and_facets_count_all_matches() {
    let app = company().await;
    let (status, _, body) = app
        .get("/api/v1/people?q=brown&department=Engineering")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&body), ["Isla Brown"]);

    let (_, _, body) = app.get("/api/v1/people?location=Berlin&limit=100").await;
    let mut berlin = names(&body);
    berlin.sort();
    assert_eq!(
        berlin,
        [
            "Günther Großmann",
            "Hans Schmidt",
            "Isla Brown",
            "José Müller",
            "Дмитрий Иванов"
        ]
    );
    let (_, _, body) = app
        .get("/api/v1/people?location=Berlin&org_unit=Platform&department=Engineering&limit=100")
        .await;
    assert_eq!(body["total"], 4);

    let (_, _, body) = app.get("/api/v1/people?has_presence=true&limit=100").await;
    let mut reachable = names(&body);
    reachable.sort();
    assert_eq!(reachable, ["Hans Schmidt", "Jane Smith", "Jennifer Kim"]);
    let (_, _, body) = app.get("/api/v1/people?has_presence=false&limit=1").await;
    assert_eq!(body["total"], 62 - 3);
    assert_eq!(
        body["total_exact"], true,
        "fewer than 1,000 matches are all counted"
    );

    // Facets: counts over every match, not just the page.
    let (status, _, body) = app
        .get("/api/v1/people?q=engineer&facets=true&limit=1")
        .await;
    assert_eq!(status, 200, "{body}");
    let facets = &body["facets"];
    let total = body["total"].as_u64().expect("total");
    let sum = |list: &Value| -> u64 {
        list.as_array()
            .expect("list")
            .iter()
            .map(|f| f["count"].as_u64().expect("count"))
            .sum()
    };
    assert_eq!(sum(&facets["department"]), total, "{facets}");
    assert_eq!(sum(&facets["location"]), total, "{facets}");
    assert_eq!(facets["department"][0]["value"], "Engineering", "{facets}");
    assert_eq!(facets["has_presence"], 1, "Hans Schmidt: {facets}");
    let counts: Vec<u64> = facets["location"]
        .as_array()
        .expect("list")
        .iter()
        .map(|f| f["count"].as_u64().expect("count"))
        .collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{facets}");

    // Everyone's facets, and a filter's facets agree with the filter's total.
    let (_, _, everyone) = app.get("/api/v1/people?facets=true&limit=1").await;
    let london = everyone["facets"]["location"]
        .as_array()
        .expect("locations")
        .iter()
        .find(|f| f["value"] == "London")
        .map(|f| f["count"].clone())
        .expect("London");
    let (_, _, body) = app.get("/api/v1/people?location=London&limit=1").await;
    assert_eq!(body["total"], london);
    // Without `facets=true` the response has none (and stays as it was).
    let (_, _, body) = app.get("/api/v1/people?q=engineer").await;
    assert!(body.get("facets").is_none(), "{body}");

    // A filter value nobody has matches nobody; a bad flag is a 400.
    let (_, _, body) = app.get("/api/v1/people?department=Nope").await;
    assert_eq!(body["total"], 0);
    let (status, _, body) = app.get("/api/v1/people?has_presence=maybe").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "invalid_parameter");
}

#[tokio::test]
async fn any_query_gets_results_or_a_clear_400() {
    let app = company().await;
    let long_word = "a".repeat(100);
    let ten_kb = "jane ".repeat(2048);
    let cases: Vec<String> = vec![
        String::new(),
        " ".into(),
        "\"".into(),
        "\"jane smith\"".into(),
        "(jane OR smith) AND NOT john".into(),
        "name:jane".into(),
        "*".into(),
        "jan*".into(),
        "smith~2".into(),
        "jane^10".into(),
        "[a TO z]".into(),
        "{}".into(),
        "\\".into(),
        "/regex.*/".into(),
        "\u{0}\u{1}\u{7}\u{1b}[31mjane".into(),
        "\u{202e}htims enaj".into(),
        "jane\u{200b}smith".into(),
        "简体 jane Дмитрий العربية".into(),
        "🙂🙂🙂".into(),
        "ǰ̌ane".into(),
        "+".into(),
        "++44".into(),
        "x".into(),
        "ext".into(),
        "%".into(),
        "'; DROP TABLE people; --".into(),
        long_word.clone(),
        "1".repeat(200),
        format!("{} {}", "abcdefgh ".repeat(27), "zzzzzzzz"),
        "é".repeat(256),
    ];
    for q in &cases {
        let (status, content_type, body) =
            app.get(&format!("/api/v1/people?q={}", urlencode(q))).await;
        assert_eq!(status, 200, "{q:?}: {body}");
        assert!(content_type.starts_with("application/json"), "{q:?}");
        assert!(body["items"].is_array(), "{q:?}: {body}");
    }
    // A word longer than any indexed word matches nobody (it does not vanish and list everyone).
    assert!(app.names(&long_word).await.is_empty());
    assert_eq!(app.names("\u{0}\u{7}jane smith").await[0], "Jane Smith");
    // Too long to be typed (over 256 characters, as the spec says): a clear 400, not a slow
    // search.
    for q in [ten_kb.clone(), "é".repeat(257)] {
        let (status, content_type, body) = app
            .get(&format!("/api/v1/people?q={}", urlencode(&q)))
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(body["code"], "invalid_parameter");
    }
    // Invalid UTF-8 in the query string decodes to replacement characters: no words, everyone.
    let (status, _, body) = app.get("/api/v1/people?q=%FF%FE").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 62);
}
