//! What the receptionist's console asks of the API beyond search: the people around a person
//! (managers, reports, team, who to reach instead), absence notes on search results, and the
//! "available now" filter and count by live presence.

mod common;
mod presence_support;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{options, TestApp};
use serde_json::{json, Value};
use switchboard::presence::{directory, PresenceHub};

const TOKEN: &str = "pbx-token-console-0123";

const COMPANY: &str = "\
external_id,given_name,family_name,email,department,manager_email,im
1,Clara,Chief,clara@example.com,,1,sip:clara@pbx.example.com
2,Henry,Head,henry@example.com,Sales,1,sip:henry@pbx.example.com
3,Ann,Able,ann@example.com,Sales,2,sip:ann@pbx.example.com
4,Bob,Baker,bob@example.com,Sales,2,sip:bob@pbx.example.com
5,Cy,Cole,cy@example.com,Engineering,2,sip:cy@pbx.example.com
6,Dora,Dean,dora@example.com,Sales,3,sip:dora@pbx.example.com
";

async fn company(config: switchboard::config::Config) -> (TestApp, PresenceHub) {
    let hub = common::webhook_hub(TOKEN);
    let mut app = TestApp::with(config, hub.clone()).await;
    app.import_csv(COMPANY, &options("hr"))
        .await
        .expect("import");
    let (_, people) = directory::load_all(&app.db.pool).await.expect("load");
    hub.set_people(&people);
    hub.start();
    // As `serve` runs it: the search's "available now" follows the hub.
    tokio::spawn(switchboard::state::follow_availability(
        hub.clone(),
        app.index.available().clone(),
        hub.stop_signal(),
    ));
    (app, hub)
}

async fn presence(app: &TestApp, handle: &str, availability: &str) {
    let body = json!({"events": [{"handle": handle, "availability": availability}]});
    let (status, _, answer) = app
        .send(
            Request::post("/api/v1/presence/events")
                .header("content-type", "application/json")
                .header("authorization", format!("Bearer {TOKEN}"))
                .body(Body::from(body.to_string()))
                .expect("request"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|p| p["display_name"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn a_team_is_managers_reports_and_colleagues_with_someone_to_reach_instead() {
    let (app, _hub) = company(switchboard::config::Config::default()).await;
    let ann = app.id_of("Able").await;
    let (status, _, team) = app.get(&format!("/api/v1/people/{ann}/team")).await;
    assert_eq!(status, StatusCode::OK, "{team}");
    assert_eq!(names(&team["chain"]), ["Henry Head", "Clara Chief"]);
    assert_eq!(names(&team["team"]), ["Bob Baker", "Cy Cole"]);
    assert_eq!(team["team_total"], 2);
    assert_eq!(names(&team["reports"]), ["Dora Dean"]);
    assert_eq!(team["reports_total"], 1);
    assert!(team["chain"][0]["presence"].is_object(), "{team}");
    // Nobody has said anything yet: nobody to suggest.
    assert!(team["reach_instead"].is_null(), "{team}");

    // A colleague comes online: the manager is still unknown, so the colleague it is.
    presence(&app, "sip:bob@pbx.example.com", "available").await;
    let team = app.get(&format!("/api/v1/people/{ann}/team")).await.2;
    assert_eq!(team["reach_instead"]["display_name"], "Bob Baker");
    assert_eq!(team["reach_reason"], "team");
    // Not someone whose absence note says they are away, whatever their status.
    let bob = app.id_of("Baker").await;
    let note = |method: &str| {
        Request::builder()
            .method(method)
            .uri(format!("/api/v1/people/{bob}/notes/absence"))
            .header("authorization", format!("Bearer {}", app.token))
            .header("content-type", "application/json")
            .body(Body::from(json!({"text": "On parental leave"}).to_string()))
            .expect("request")
    };
    assert_eq!(app.send(note("PUT")).await.0, StatusCode::OK);
    let team = app.get(&format!("/api/v1/people/{ann}/team")).await.2;
    assert!(team["reach_instead"].is_null(), "{team}");
    assert_eq!(app.send(note("DELETE")).await.0, StatusCode::NO_CONTENT);
    // The manager, once available, comes first; a busy one does not.
    presence(&app, "sip:henry@pbx.example.com", "busy").await;
    let team = app.get(&format!("/api/v1/people/{ann}/team")).await.2;
    assert_eq!(team["reach_reason"], "team");
    presence(&app, "sip:henry@pbx.example.com", "available").await;
    let team = app.get(&format!("/api/v1/people/{ann}/team")).await.2;
    assert_eq!(team["reach_instead"]["display_name"], "Henry Head");
    assert_eq!(team["reach_reason"], "manager");

    // The top of the chain (her own manager, as some exports say) has reports and no team,
    // and is not her own report.
    let clara = app.id_of("Chief").await;
    let team = app.get(&format!("/api/v1/people/{clara}/team")).await.2;
    assert_eq!(names(&team["chain"]), Vec::<String>::new());
    assert_eq!(names(&team["reports"]), ["Henry Head"]);
    assert_eq!(team["team_total"], 0);

    for (uri, expected) in [
        (
            format!("/api/v1/people/{}/team", uuid::Uuid::nil()),
            StatusCode::NOT_FOUND,
        ),
        (
            "/api/v1/people/not-a-uuid/team".to_string(),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (status, _, body) = app.get(&uri).await;
        assert_eq!(status, expected, "{uri}: {body}");
        assert!(body["code"].is_string(), "{body}");
    }
}

#[tokio::test]
async fn a_team_shows_only_people_in_scope_and_out_of_scope_is_nobody() {
    let (app, _hub) = company(common::viewers_see_only(&["Sales"])).await;
    let cookie = app
        .signed_in("rita", switchboard::access::Role::Viewer)
        .await;
    let get = |uri: String| {
        Request::get(uri)
            .header("cookie", &cookie)
            .body(Body::empty())
            .expect("request")
    };
    let ann = app.id_of("Able").await;
    let (status, _, team) = app.send(get(format!("/api/v1/people/{ann}/team"))).await;
    assert_eq!(status, StatusCode::OK, "{team}");
    // The chief (no department) is out of Rita's scope: the chain stops below her; Cy
    // (Engineering) is neither listed nor counted.
    assert_eq!(names(&team["chain"]), ["Henry Head"]);
    assert_eq!(names(&team["team"]), ["Bob Baker"]);
    assert_eq!(team["team_total"], 1);
    let cy = app.id_of("Cole").await;
    let (status, _, out_of_scope) = app.send(get(format!("/api/v1/people/{cy}/team"))).await;
    let (nobody_status, _, nobody) = app
        .send(get(format!("/api/v1/people/{}/team", uuid::Uuid::nil())))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!((status, &out_of_scope), (nobody_status, &nobody));
}

#[tokio::test]
async fn search_results_carry_absence_notes() {
    let (app, _hub) = company(switchboard::config::Config::default()).await;
    let ann = app.id_of("Able").await;
    let (status, _, body) = app
        .send(
            Request::put(format!("/api/v1/people/{ann}/notes/absence"))
                .header("authorization", format!("Bearer {}", app.token))
                .header("content-type", "application/json")
                .body(Body::from(
                    json!({"text": "At the dentist, back 14:00"}).to_string(),
                ))
                .expect("request"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, _, found) = app.get("/api/v1/people?q=able").await;
    assert_eq!(found["items"][0]["display_name"], "Ann Able");
    assert_eq!(
        found["items"][0]["absence"]["text"],
        "At the dentist, back 14:00"
    );
    let (_, _, others) = app.get("/api/v1/people?q=baker").await;
    assert!(others["items"][0].get("absence").is_none(), "{others}");
}

/// Searches until `check` holds (presence reaches the search through a background task).
async fn eventually(app: &TestApp, uri: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, body) = app.get(uri).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if check(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{uri} never matched: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn available_now_filters_and_counts_by_live_presence() {
    let (mut app, _hub) = company(switchboard::config::Config::default()).await;
    presence(&app, "sip:ann@pbx.example.com", "available").await;
    presence(&app, "sip:henry@pbx.example.com", "available").await;
    presence(&app, "sip:bob@pbx.example.com", "busy").await;
    let body = eventually(&app, "/api/v1/people?q=&available=true&facets=true", |b| {
        common::display_names(b) == ["Ann Able", "Henry Head"]
    })
    .await;
    assert_eq!(body["facets"]["available"], 2, "{body}");
    assert_eq!(body["total"], 2);
    // Everyone else, and the count among all matches of a query.
    let (_, _, rest) = app.get("/api/v1/people?q=&available=false").await;
    assert_eq!(
        common::display_names(&rest),
        ["Bob Baker", "Clara Chief", "Cy Cole", "Dora Dean"]
    );
    let (_, _, sales) = app
        .get("/api/v1/people?q=&department=Sales&facets=true")
        .await;
    assert_eq!(sales["facets"]["available"], 2, "{sales}");
    let (_, _, typed) = app.get("/api/v1/people?q=ann&available=true").await;
    assert_eq!(common::display_names(&typed), ["Ann Able"]);

    // Ann goes into a meeting: she drops out as the change arrives.
    presence(&app, "sip:ann@pbx.example.com", "busy").await;
    eventually(&app, "/api/v1/people?q=&available=true", |b| {
        common::display_names(b) == ["Henry Head"]
    })
    .await;
    // A reindexed person (a new document in a new segment) keeps their state.
    app.import_csv(
        &COMPANY.replace(
            "2,Henry,Head,henry@example.com,Sales",
            "2,Henry,Head,henry@example.com,Sales Ops",
        ),
        &options("hr"),
    )
    .await
    .expect("import");
    let body = eventually(&app, "/api/v1/people?q=&available=true&facets=true", |b| {
        common::display_names(b) == ["Henry Head"]
    })
    .await;
    assert_eq!(body["items"][0]["department"], "Sales Ops");
    assert_eq!(body["facets"]["available"], 1);
}

#[tokio::test]
async fn an_absence_note_reaches_open_presence_streams() {
    let (app, _hub) = company(switchboard::config::Config::default()).await;
    let url = app.serve().await;
    let client = app.client();
    let ann = app.id_of("Able").await;
    let mut stream = client
        .get(format!("{url}/api/v1/presence/stream?ids={ann}"))
        .send()
        .await
        .expect("stream");
    assert_eq!(stream.status(), 200);
    let mut sse = presence_support::Sse::default();
    sse.next(&mut stream, Duration::from_secs(5), |v| {
        v["presence"].is_object()
    })
    .await;
    let response = client
        .put(format!("{url}/api/v1/people/{ann}/notes/absence"))
        .json(&json!({"text": "Off sick today"}))
        .send()
        .await
        .expect("put");
    assert_eq!(response.status(), 200);
    let change = sse
        .next(&mut stream, Duration::from_secs(5), |v| {
            v.get("absence").is_some()
        })
        .await;
    assert_eq!(change["id"], ann.to_string());
    assert_eq!(change["absence"]["text"], "Off sick today");
    let response = client
        .delete(format!("{url}/api/v1/people/{ann}/notes/absence"))
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), 204);
    let change = sse
        .next(&mut stream, Duration::from_secs(5), |v| {
            v.get("absence").is_some_and(Value::is_null)
        })
        .await;
    assert_eq!(change["id"], ann.to_string());

    // A note set through another server on the same database (the second of a balanced pair)
    // reaches this server's stream through PostgreSQL, as `serve` follows it.
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(app.state.notes.clone().follow(app.db.pool.clone(), stopped));
    let deadline = Instant::now() + Duration::from_secs(10);
    while sqlx::query_scalar::<_, i64>(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
         AND query LIKE 'LISTEN %switchboard_notes%'",
    )
    .fetch_one(&app.db.pool)
    .await
    .expect("activity")
        == 0
    {
        assert!(Instant::now() < deadline, "the server listens for notes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut other = app.state.clone();
    other.notes = switchboard::http::notes::NotesFeed::default();
    let response = tower::ServiceExt::oneshot(
        switchboard::http::router(other),
        Request::put(format!("/api/v1/people/{ann}/notes/absence"))
            .header("authorization", format!("Bearer {}", app.token))
            .header("content-type", "application/json")
            .body(Body::from(json!({"text": "Set elsewhere"}).to_string()))
            .expect("request"),
    )
    .await
    .expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let change = sse
        .next(&mut stream, Duration::from_secs(5), |v| {
            v["absence"]["text"] == "Set elsewhere"
        })
        .await;
    assert_eq!(change["id"], ann.to_string());
}

#[tokio::test]
async fn who_may_not_see_presence_may_not_filter_or_count_by_it() {
    let mut config = switchboard::config::Config::default();
    let mut policy = switchboard::access::policy::Policy::staff_default();
    policy.presence = switchboard::access::policy::PresenceLevel::None;
    config
        .access
        .policies
        .insert(switchboard::access::Role::Viewer, policy);
    let (app, _hub) = company(config).await;
    presence(&app, "sip:ann@pbx.example.com", "available").await;
    // The admin token's policy shows presence: it counts Ann.
    eventually(&app, "/api/v1/people?q=&facets=true", |b| {
        b["facets"]["available"] == 1
    })
    .await;
    let cookie = app
        .signed_in("vera", switchboard::access::Role::Viewer)
        .await;
    let get = |uri: &str| {
        Request::get(uri)
            .header("cookie", &cookie)
            .body(Body::empty())
            .expect("request")
    };
    let (status, _, body) = app.send(get("/api/v1/people?q=&available=true")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["code"], "invalid_parameter");
    let (status, _, body) = app.send(get("/api/v1/people?q=&facets=true")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["facets"]["available"], 0, "{body}");
}

/// A PUT or DELETE of someone's deputy by a signed-in person.
fn deputy_request(
    method: &str,
    (cookie, csrf): (&str, &str),
    whose: uuid::Uuid,
    deputy: Option<uuid::Uuid>,
) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri(format!("/api/v1/people/{whose}/deputy"))
        .header("cookie", cookie)
        .header("x-csrf-token", csrf)
        .header("content-type", "application/json")
        .body(Body::from(
            deputy.map_or(String::new(), |id| json!({ "id": id }).to_string()),
        ))
        .expect("request")
}

#[tokio::test]
async fn a_deputy_is_named_by_the_person_or_reception_and_tried_first() {
    let (mut app, _hub) = company(common::viewers_see_only(&["Sales"])).await;
    let (ann, bob, cy, dora) = (
        app.id_of("Able").await,
        app.id_of("Baker").await,
        app.id_of("Cole").await,
        app.id_of("Dean").await,
    );
    switchboard::access::users::add_with_email(
        &app.db.pool,
        "ann",
        switchboard::access::Role::Viewer,
        Some("correct horse battery".into()),
        Some("ann@example.com"),
    )
    .await
    .expect("user");
    let (cookie, csrf) = app.sign_in("ann", "correct horse battery").await;
    let ann_session = (cookie.as_str(), csrf.as_str());

    // Ann names Dora, her report, her deputy; she may not name Bob's; nobody is their own (a
    // conflict);
    // someone out of her scope (Cy, Engineering) or nobody at all is not found.
    let (status, _, body) = app
        .send(deputy_request("PUT", ann_session, ann, Some(dora)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["deputy"]["display_name"], "Dora Dean");
    for (whose, deputy, expected) in [
        (bob, dora, StatusCode::FORBIDDEN),
        (ann, ann, StatusCode::CONFLICT),
        (ann, cy, StatusCode::NOT_FOUND),
        (ann, uuid::Uuid::nil(), StatusCode::NOT_FOUND),
    ] {
        let (status, _, body) = app
            .send(deputy_request("PUT", ann_session, whose, Some(deputy)))
            .await;
        assert_eq!(status, expected, "{whose} ← {deputy}: {body}");
        assert!(body["code"].is_string(), "{body}");
    }

    // The deputy is on her team's answer and, when available, comes before an available
    // manager; busy, the manager it is.
    let team = app.get(&format!("/api/v1/people/{ann}/team")).await.2;
    assert_eq!(team["deputy"]["display_name"], "Dora Dean", "{team}");
    presence(&app, "sip:henry@pbx.example.com", "available").await;
    presence(&app, "sip:dora@pbx.example.com", "available").await;
    let team = app.get(&format!("/api/v1/people/{ann}/team")).await.2;
    assert_eq!(
        (
            &team["reach_instead"]["display_name"],
            &team["reach_reason"]
        ),
        (&json!("Dora Dean"), &json!("deputy"))
    );
    presence(&app, "sip:dora@pbx.example.com", "busy").await;
    let team = app.get(&format!("/api/v1/people/{ann}/team")).await.2;
    assert_eq!(team["reach_reason"], "manager", "{team}");

    // Reception (the admin's token) removes it; Ann's attempt on Bob changed nothing.
    let (status, _, _) = app
        .send(
            Request::delete(format!("/api/v1/people/{ann}/deputy"))
                .header("authorization", format!("Bearer {}", app.token))
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(app.get(&format!("/api/v1/people/{ann}/team")).await.2["deputy"].is_null());
    assert!(app.get(&format!("/api/v1/people/{bob}/team")).await.2["deputy"].is_null());
    let actions: Vec<String> = app
        .audit_actions()
        .await
        .into_iter()
        .map(|(_, action)| action)
        .filter(|a| a.starts_with("deputy."))
        .collect();
    assert_eq!(actions, ["deputy.set", "deputy.clear"]);
}

#[tokio::test]
async fn teams_on_the_board_are_a_lead_and_their_reports_in_scope_with_presence() {
    let (app, _hub) = company(common::viewers_see_only(&["Sales"])).await;
    switchboard::access::users::add(
        &app.db.pool,
        "rita",
        switchboard::access::Role::Viewer,
        Some("correct horse battery".into()),
    )
    .await
    .expect("user");
    let (cookie, csrf) = app.sign_in("rita", "correct horse battery").await;
    let (ann, henry) = (app.id_of("Able").await, app.id_of("Head").await);
    let put = |body: Value| {
        Request::put("/api/v1/me/favourites")
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("request")
    };
    presence(&app, "sip:bob@pbx.example.com", "available").await;

    // Henry's team: Ann and Bob; Cy (Engineering) is out of Rita's scope, neither shown nor
    // counted; a lead who does not exist is left out.
    let (status, _, board) = app
        .send(put(
            json!({"ids": [ann], "teams": [henry, uuid::Uuid::nil(), henry]}),
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{board}");
    assert_eq!(names(&board["items"]), ["Ann Able"]);
    assert_eq!(board["teams"].as_array().map(Vec::len), Some(1), "{board}");
    let team = &board["teams"][0];
    assert_eq!(team["lead"]["display_name"], "Henry Head");
    assert_eq!(names(&team["members"]), ["Ann Able", "Bob Baker"]);
    assert_eq!(team["members_total"], 2);
    assert_eq!(team["members"][1]["presence"]["availability"], "available");

    // People pinned without a word of teams keep the teams; an empty list removes them.
    let (_, _, board) = app.send(put(json!({"ids": []}))).await;
    assert_eq!(names(&board["items"]), Vec::<String>::new());
    assert_eq!(
        board["teams"][0]["lead"]["display_name"], "Henry Head",
        "{board}"
    );
    let (status, _, _) = app
        .send(put(json!({"ids": [], "teams": (0..51).map(|i| uuid::Uuid::from_u128(i + 1)).collect::<Vec<_>>()})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "too many teams");
    let (_, _, board) = app.send(put(json!({"ids": [], "teams": []}))).await;
    assert_eq!(board["teams"], json!([]));
}
