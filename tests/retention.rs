//! Forgetting people: a purge of those removed longer ago than the retention period, and an
//! erasure through the real binary (`switchboard person erase ID`), each audited, each leaving
//! nothing of the person but blanked change-log entries.

mod common;

use std::process::Output;

use axum::http::StatusCode;
use common::{options, TestApp};
use switchboard::retention::{purge, RetentionConfig};
use uuid::Uuid;

const STAFF: &str = "external_id,given_name,family_name,email,manager_email\n\
    E1,Ada,Lovelace,ada@example.com,\n\
    E2,Bea,Quarry,bea@example.com,\n\
    E3,Cyd,Rourke,cyd@example.com,\n\
    E4,Dov,Tamm,dov@example.com,ada@example.com\n";

/// Imports the four, then a full import without Ada and Cyd: both removed.
async fn staff_with_two_removed(app: &mut TestApp) {
    let opts = options("hr");
    app.import_csv(STAFF, &opts).await.expect("import");
    let mut full = options("hr");
    full.full = true;
    full.force = true;
    let kept: String = STAFF
        .lines()
        .filter(|l| !l.starts_with("E1,") && !l.starts_with("E3,"))
        .map(|l| format!("{l}\n"))
        .collect();
    let report = app.import_csv(&kept, &full).await.expect("full import");
    assert_eq!(report.counts.removed, 2);
}

async fn id_of(app: &TestApp, email: &str) -> Uuid {
    sqlx::query_scalar("SELECT id FROM people WHERE $1 = ANY(emails)")
        .bind(email)
        .fetch_one(&app.db.pool)
        .await
        .expect(email)
}

async fn count(app: &TestApp, sql: &str, id: Uuid) -> i64 {
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(&app.db.pool)
        .await
        .expect(sql)
}

/// What is left of a person anywhere but the blanked change log.
async fn traces(app: &TestApp, id: Uuid) -> [i64; 4] {
    [
        count(app, "SELECT count(*) FROM people WHERE id = $1", id).await,
        count(
            app,
            "SELECT count(*) FROM person_sources WHERE person_id = $1",
            id,
        )
        .await,
        count(
            app,
            "SELECT count(*) FROM person_notes WHERE person_id = $1",
            id,
        )
        .await,
        count(
            app,
            "SELECT count(*) FROM change_log WHERE person_id = $1 \
             AND (display_name IS NOT NULL OR external_id IS NOT NULL)",
            id,
        )
        .await,
    ]
}

#[tokio::test]
async fn people_removed_longer_than_the_retention_period_are_purged_and_audited() {
    let mut app = TestApp::new().await;
    staff_with_two_removed(&mut app).await;
    let (ada, cyd, dov) = (
        id_of(&app, "ada@example.com").await,
        id_of(&app, "cyd@example.com").await,
        id_of(&app, "dov@example.com").await,
    );
    // Ada left 40 days ago, with a photo and a note; Cyd just now.
    for sql in [
        format!(
            "UPDATE people SET deleted_at = now() - interval '40 days', \
             photo_url = '/api/v1/photos/ada1' WHERE id = '{ada}'"
        ),
        "INSERT INTO photos (digest, content_type, bytes) VALUES ('ada1', 'image/jpeg', '\\x00')"
            .to_string(),
        format!(
            "INSERT INTO person_notes VALUES ('{ada}', 'absence', 'gone', NULL, 'reception', now())"
        ),
    ] {
        sqlx::query(&sql).execute(&app.db.pool).await.expect(&sql);
    }
    assert_ne!(traces(&app, ada).await, [0, 0, 0, 0]);

    let config = RetentionConfig { removed_days: 30 };
    let now = chrono::Utc::now();
    let purged = purge(&app.db.pool, &config, now, &app.state.audit)
        .await
        .expect("purge");
    assert_eq!(purged, 1, "only Ada is past 30 days");
    assert_eq!(traces(&app, ada).await, [0, 0, 0, 0]);
    let photos: i64 = sqlx::query_scalar("SELECT count(*) FROM photos WHERE digest = 'ada1'")
        .fetch_one(&app.db.pool)
        .await
        .expect("photos");
    assert_eq!(photos, 0, "her photo went with her");
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM change_log WHERE person_id = $1",
            ada
        )
        .await,
        3,
        "the change log keeps that someone was added, removed and erased"
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM people WHERE id = $1", cyd).await,
        1,
        "Cyd is within the period"
    );
    let manager: Option<Uuid> = sqlx::query_scalar("SELECT manager_id FROM people WHERE id = $1")
        .bind(dov)
        .fetch_one(&app.db.pool)
        .await
        .expect("dov");
    assert_eq!(manager, None, "her report no longer points at her");

    // Nothing to do the second time; Cyd's turn comes when her 30 days are over.
    assert_eq!(
        purge(&app.db.pool, &config, now, &app.state.audit)
            .await
            .expect("again"),
        0
    );
    let later = now + chrono::Duration::days(31);
    assert_eq!(
        purge(&app.db.pool, &config, later, &app.state.audit)
            .await
            .expect("later"),
        1
    );
    // removed_days = 0 keeps removed people forever.
    assert_eq!(
        purge(
            &app.db.pool,
            &RetentionConfig { removed_days: 0 },
            later,
            &app.state.audit
        )
        .await
        .expect("never"),
        0
    );

    app.indexer.catch_up().await.expect("index");
    assert_eq!(app.names("Dov").await, vec!["Dov Tamm"]);
    let actions = app.audit_actions().await;
    let purges: Vec<_> = actions
        .iter()
        .filter(|(principal, action)| principal == "system:retention" && action == "person.purge")
        .collect();
    assert_eq!(purges.len(), 2, "{actions:?}");
}

async fn switchboard(app: &TestApp, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(args)
        .env("SWITCHBOARD_DATABASE__URL", &app.db.url)
        .env("RUST_LOG", "warn")
        .env("USER", "dpo")
        .output()
        .await
        .expect("switchboard")
}

#[tokio::test]
async fn person_erase_removes_an_active_person_now_and_audits_it() {
    let mut app = TestApp::new().await;
    app.import_csv(STAFF, &options("hr")).await.expect("import");
    let ada = id_of(&app, "ada@example.com").await;
    assert_eq!(app.names("Lovelace").await, vec!["Ada Lovelace"]);
    let (status, _, _) = app.get(&format!("/api/v1/people/{ada}")).await;
    assert_eq!(status, StatusCode::OK);

    let out = switchboard(&app, &["person", "erase", &ada.to_string()]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("erased {ada}")));
    assert_eq!(traces(&app, ada).await, [0, 0, 0, 0]);

    // The index follows the change log: she is gone from search, and her report's card no
    // longer names her.
    app.indexer.catch_up().await.expect("index");
    assert!(app.names("Lovelace").await.is_empty());
    let (status, _, _) = app.get(&format!("/api/v1/people/{ada}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let dov = id_of(&app, "dov@example.com").await;
    let (_, _, card) = app.get(&format!("/api/v1/people/{dov}")).await;
    assert!(card["manager"].is_null(), "{card}");

    // Again: nobody to erase, said so, nothing audited.
    let again = switchboard(&app, &["person", "erase", &ada.to_string()]).await;
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("not found"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let actions = app.audit_actions().await;
    let erasures: Vec<_> = actions
        .iter()
        .filter(|(_, action)| action == "person.erase")
        .collect();
    assert_eq!(erasures.len(), 1, "{actions:?}");
    assert_eq!(erasures[0].0, "cli:dpo");
}
