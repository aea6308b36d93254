//! LDAP sync against a real OpenLDAP `slapd` (with the syncprov overlay), started per test.

mod common;

use axum::http::StatusCode;
use common::slapd::{base_ldif, people_ldif, CuttingProxy, Slapd, SlapdOptions, SUFFIX};
use common::TestApp;
use indicatif::ProgressBar;
use switchboard::config::{Config, SourceConfig};
use switchboard::sync::directory::{sync_directory, DirectorySyncOptions, DirectorySyncReport};

fn fixture_ldif() -> String {
    base_ldif() + &std::fs::read_to_string(common::fixture("ldap/people.ldif")).expect("fixture")
}

fn config(source: &SourceConfig) -> Config {
    Config {
        default_region: Some("GB".into()),
        sources: vec![source.clone()],
        ..Config::default()
    }
}

async fn sync(
    app: &mut TestApp,
    source: &SourceConfig,
    opts: DirectorySyncOptions,
) -> switchboard::Result<DirectorySyncReport> {
    sync_with(app, &config(source), source, opts).await
}

async fn sync_with(
    app: &mut TestApp,
    config: &Config,
    source: &SourceConfig,
    opts: DirectorySyncOptions,
) -> switchboard::Result<DirectorySyncReport> {
    let report = sync_directory(&app.db.pool, config, source, opts, &ProgressBar::hidden()).await?;
    app.indexer.catch_up().await.expect("catch up");
    Ok(report)
}

async fn sync_default(
    app: &mut TestApp,
    source: &SourceConfig,
) -> switchboard::Result<DirectorySyncReport> {
    sync(app, source, DirectorySyncOptions::default()).await
}

async fn person(app: &TestApp, name: &str) -> serde_json::Value {
    let uri = format!("/api/v1/people?q={}", common::urlencode(name));
    let (status, _, body) = app.get(&uri).await;
    assert_eq!(status, StatusCode::OK);
    let id = body["items"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("nobody found for {name}: {body}"))
        .to_string();
    let (status, _, person) = app.get(&format!("/api/v1/people/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    person
}

#[tokio::test]
async fn first_full_sync_maps_entries_managers_photos_and_odd_dns() {
    let slapd = Slapd::start(SlapdOptions::default(), &fixture_ldif());
    let mut app = TestApp::new().await;
    let source = slapd.source("corp");

    let r = sync_default(&mut app, &source).await.expect("sync");
    assert_eq!(r.mode, "full");
    // The entry with a number nobody can dial is kept, the number as written, reported by DN.
    assert_eq!(r.report.counts.added, 5, "{:?}", r.report);
    assert_eq!(r.report.counts.rejected, 0);
    assert_eq!(r.report.warnings.len(), 1, "{:?}", r.report.warnings);
    let warning = &r.report.warnings[0];
    assert!(
        warning.reason.contains("phone kept as written"),
        "{warning:?}"
    );
    assert_eq!(
        warning.dn.as_deref(),
        Some("uid=badphone,ou=people,dc=example,dc=com")
    );
    assert_eq!(
        warning.position(),
        "dn uid=badphone,ou=people,dc=example,dc=com"
    );
    assert_eq!(app.active("corp").await, 5);
    let bad = person(&app, "bad phone").await;
    assert_eq!(bad["phones"][0]["valid"], false, "{bad}");

    // Multi-valued attributes, display name preference, photo.
    let john = person(&app, "johnny doe").await;
    assert_eq!(john["display_name"], "Johnny Doe");
    assert_eq!(john["emails"].as_array().expect("emails").len(), 2);
    let phones = john["phones"].as_array().expect("phones");
    assert_eq!(phones.len(), 3, "{phones:?}");
    assert!(phones.iter().any(|p| p["kind"] == "mobile"));
    let alice = person(&app, "alice smith").await;
    assert_eq!(john["manager"]["id"], alice["id"], "{john}");
    let photo_url = john["photo_url"].as_str().expect("photo url").to_string();
    let (status, content_type, _) = app.get(&photo_url).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, "image/jpeg");

    // A non-ASCII DN, a manager DN spelled differently, an escaped comma in a DN.
    let jose = person(&app, "jose muller").await;
    assert_eq!(jose["display_name"], "José Müller");
    assert_eq!(jose["manager"]["id"], alice["id"]);
    let smith = person(&app, "smith john").await;
    assert_eq!(smith["display_name"], "Smith, John");

    // The run and who it added are on record.
    let run_id = r.report.run_id.expect("run");
    let (status, _, detail) = app.get(&format!("/api/v1/sync/runs/{run_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["run"]["mode"], "full");
    assert_eq!(detail["run"]["kind"], "ldap");
    assert_eq!(detail["changes"].as_array().expect("changes").len(), 5);
    assert_eq!(detail["rejects"].as_array().expect("rejects").len(), 0);
    assert_eq!(
        detail["warnings"][0]["dn"],
        "uid=badphone,ou=people,dc=example,dc=com"
    );

    // A second run finds the cookie and reads nothing.
    let again = sync_default(&mut app, &source).await.expect("sync");
    assert_eq!(again.mode, "incremental");
    assert_eq!(again.read, 0);
    assert!(again.report.changes.is_empty());
}

#[tokio::test]
async fn incremental_sync_applies_add_modify_rename_and_delete_only() {
    let slapd = Slapd::start(
        SlapdOptions::default(),
        &(base_ldif() + &people_ldif(0..20)),
    );
    let mut app = TestApp::new().await;
    let source = slapd.source("corp");
    let first = sync_default(&mut app, &source).await.expect("first");
    assert_eq!(first.report.counts.added, 20);
    let renamed_before = person(&app, "person 3").await;

    slapd.modify(&format!(
        "dn: uid=new1,ou=People,{SUFFIX}\nchangetype: add\nobjectClass: inetOrgPerson\nuid: new1\n\
         cn: Newcomer One\nsn: One\nmail: new1@example.com\n\n\
         dn: uid=user2,ou=People,{SUFFIX}\nchangetype: modify\nreplace: title\ntitle: Director\n\n\
         dn: uid=user3,ou=People,{SUFFIX}\nchangetype: modrdn\nnewrdn: uid=user3b\ndeleteoldrdn: 1\n\n\
         dn: uid=user4,ou=People,{SUFFIX}\nchangetype: delete\n"
    ));
    let r = sync_default(&mut app, &source).await.expect("incremental");
    assert_eq!(r.mode, "incremental");
    let c = r.report.counts;
    assert_eq!(
        (c.added, c.updated, c.removed),
        (1, 2, 1),
        "{:?}",
        r.report.changes
    );
    // Only the four changed entries were read and touched.
    assert_eq!(r.read, 3);
    assert_eq!(c.unchanged, 0);
    assert_eq!(app.active("corp").await, 20);
    assert_eq!(person(&app, "person 2").await["title"], "Director");
    // A rename is an update of the same person, not a delete and an add.
    let renamed_after = person(&app, "person 3").await;
    assert_eq!(renamed_after["id"], renamed_before["id"]);
    assert!(app.names("person 4").await.iter().all(|n| n != "Person 4"));
    let kinds: Vec<(String, String)> = r
        .report
        .changes
        .iter()
        .map(|c| (c.kind.as_str().to_string(), c.display_name.clone()))
        .collect();
    assert!(
        kinds.contains(&("removed".into(), "Person 4".into())),
        "{kinds:?}"
    );
    assert!(kinds.contains(&("added".into(), "Newcomer One".into())));
}

#[tokio::test]
async fn present_phase_deletions_are_applied_without_a_session_log() {
    let options = SlapdOptions {
        sessionlog: None,
        ..SlapdOptions::default()
    };
    let slapd = Slapd::start(options, &(base_ldif() + &people_ldif(0..10)));
    let mut app = TestApp::new().await;
    let source = slapd.source("corp");
    sync_default(&mut app, &source).await.expect("first");
    slapd.modify(&format!(
        "dn: uid=user7,ou=People,{SUFFIX}\nchangetype: delete\n\n\
         dn: uid=user1,ou=People,{SUFFIX}\nchangetype: modify\nreplace: title\ntitle: Lead\n"
    ));
    let r = sync_default(&mut app, &source).await.expect("incremental");
    assert_eq!(r.mode, "incremental");
    assert_eq!(r.report.counts.removed, 1, "{:?}", r.report.changes);
    assert_eq!(r.report.counts.updated, 1);
    assert_eq!(app.active("corp").await, 9);
}

#[tokio::test]
async fn paging_reads_past_the_server_size_limit() {
    let options = SlapdOptions {
        size_limit: Some(100),
        ..SlapdOptions::default()
    };
    let slapd = Slapd::start(options, &(base_ldif() + &people_ldif(0..260)));
    let mut app = TestApp::new().await;
    // The limit is real: an unpaged search as the same reader stops at 100.
    assert_eq!(slapd.unpaged_search_status(), Some(4), "sizeLimitExceeded");

    let r = sync_default(&mut app, &slapd.source("corp"))
        .await
        .expect("paged");
    assert_eq!(r.report.counts.added, 260);
    assert_eq!(app.active("corp").await, 260);
}

#[tokio::test]
async fn a_connection_cut_mid_read_deletes_nobody_and_is_recorded() {
    let slapd = Slapd::start(
        SlapdOptions::default(),
        &(base_ldif() + &people_ldif(0..300)),
    );
    let mut app = TestApp::new().await;
    let mut source = slapd.source("corp");
    sync_default(&mut app, &source).await.expect("first");
    assert_eq!(app.active("corp").await, 300);

    // Through a relay that drops the connection after ~40 KB, a full read cannot finish.
    let proxy = CuttingProxy::start(slapd.port, 40_000).await;
    source.url = Some(format!("ldap://127.0.0.1:{}", proxy.port));
    let err = sync(
        &mut app,
        &source,
        DirectorySyncOptions {
            full: true,
            ..Default::default()
        },
    )
    .await
    .expect_err("cut");
    assert_eq!(err.code(), "directory_unavailable", "{err}");
    assert_eq!(app.active("corp").await, 300);
    let (_, _, runs) = app.get("/api/v1/sync/runs?source=corp").await;
    let latest = &runs["items"][0];
    assert_eq!(latest["status"], "failed", "{runs}");
    assert_eq!(latest["removed"], 0);
    assert!(latest["error"].as_str().expect("error").contains("failed"));

    // A server that is down is the same: an error, nobody removed.
    drop(proxy);
    let mut down = slapd.source("corp");
    down.url = Some("ldap://127.0.0.1:1".into());
    let err = sync(
        &mut app,
        &down,
        DirectorySyncOptions {
            full: true,
            ..Default::default()
        },
    )
    .await
    .expect_err("down");
    assert_eq!(err.code(), "directory_unavailable");
    assert_eq!(app.active("corp").await, 300);
}

#[tokio::test]
async fn removing_more_than_the_limit_needs_force() {
    let slapd = Slapd::start(
        SlapdOptions::default(),
        &(base_ldif() + &people_ldif(0..20)),
    );
    let mut app = TestApp::new().await;
    let source = slapd.source("corp");
    sync_default(&mut app, &source).await.expect("first");
    let deletes: String = (0..6)
        .map(|i| format!("dn: uid=user{i},ou=People,{SUFFIX}\nchangetype: delete\n\n"))
        .collect();
    slapd.modify(&deletes);

    let err = sync_default(&mut app, &source).await.expect_err("limit");
    assert_eq!(err.code(), "safety_limit", "{err}");
    assert_eq!(app.active("corp").await, 20);
    // The refused run kept its cursor: the same deletions come back, and are accepted forced.
    let r = sync(
        &mut app,
        &source,
        DirectorySyncOptions {
            force: true,
            ..Default::default()
        },
    )
    .await
    .expect("forced");
    assert_eq!(r.mode, "incremental");
    assert_eq!(r.report.counts.removed, 6);
    assert_eq!(app.active("corp").await, 14);
}

#[tokio::test]
async fn bad_credentials_are_an_error_and_change_nothing() {
    let slapd = Slapd::start(SlapdOptions::default(), &fixture_ldif());
    let mut app = TestApp::new().await;
    let mut source = slapd.source("corp");
    source.bind_password = Some("wrong".into());
    let err = sync_default(&mut app, &source).await.expect_err("auth");
    assert_eq!(err.code(), "directory_credentials_rejected", "{err}");
    assert_eq!(app.active("corp").await, 0);
    let (_, _, runs) = app.get("/api/v1/sync/runs").await;
    assert_eq!(runs["items"][0]["status"], "failed");
}

#[tokio::test]
async fn a_refused_cookie_falls_back_to_a_full_sync() {
    let mut slapd = Slapd::start(
        SlapdOptions::default(),
        &(base_ldif() + &people_ldif(0..10)),
    );
    let mut app = TestApp::new().await;
    let source = slapd.source("corp");
    sync_default(&mut app, &source).await.expect("first");
    // The same server without the sync provider refuses the (critical) sync request.
    slapd.restart(SlapdOptions {
        syncprov: false,
        ..SlapdOptions::default()
    });
    slapd.modify(&format!(
        "dn: uid=user5,ou=People,{SUFFIX}\nchangetype: delete\n"
    ));
    let r = sync_default(&mut app, &source).await.expect("fallback");
    assert_eq!(r.mode, "full");
    assert!(r.fell_back.is_some());
    assert_eq!(r.report.counts.removed, 1);
    assert_eq!(r.report.counts.unchanged, 9);
}

#[tokio::test]
async fn people_in_two_sources_merge_by_email_with_per_attribute_precedence() {
    let slapd = Slapd::start(SlapdOptions::default(), &fixture_ldif());
    let mut app = TestApp::new().await;
    let source = slapd.source("corp");
    let mut config = config(&source);
    // Phone numbers from the facilities team's CSV, everything else from the directory.
    config.merge.precedence = vec!["corp".into(), "facilities".into()];
    config
        .merge
        .attributes
        .insert("phones".into(), vec!["facilities".into(), "corp".into()]);
    sync_with(&mut app, &config, &source, DirectorySyncOptions::default())
        .await
        .expect("ldap");
    let alice_ldap = person(&app, "alice smith").await;

    let facilities = switchboard::sync::ImportOptions {
        merge: config.merge.clone(),
        ..common::options("facilities")
    };
    let csv = "external_id,display_name,email,phone,title,org_unit\n\
               f-1,A. Smith,Alice.Smith@example.com,+44 20 7946 0999,Wrong Title,Sales North\n\
               f-2,Bob Builder,bob@example.com,+44 20 7946 0555,Caretaker,Facilities\n";
    let r = app.import_csv(csv, &facilities).await.expect("csv");
    assert_eq!(r.counts.added, 2);
    // Alice is one person with both sources; Bob is new.
    assert_eq!(app.names("alice").await, vec!["Alice Smith"]);
    let alice = person(&app, "alice smith").await;
    assert_eq!(alice["id"], alice_ldap["id"]);
    assert_eq!(alice["sources"].as_array().expect("sources").len(), 2);
    assert_eq!(alice["title"], "Head of Sales", "directory wins titles");
    assert_eq!(alice["org_unit"], "Sales North", "filled from the CSV");
    let phones: Vec<&str> = alice["phones"]
        .as_array()
        .expect("phones")
        .iter()
        .filter_map(|p| p["e164"].as_str())
        .collect();
    assert_eq!(phones, vec!["+442079460999"], "facilities wins phones");

    // A directory change to a merged person keeps the precedence.
    slapd.modify(&format!(
        "dn: uid=asmith,ou=People,{SUFFIX}\nchangetype: modify\nreplace: title\ntitle: Sales Director\n"
    ));
    let r = sync_with(&mut app, &config, &source, DirectorySyncOptions::default())
        .await
        .expect("incremental");
    assert_eq!(r.report.counts.updated, 1);
    let alice = person(&app, "alice smith").await;
    assert_eq!(alice["title"], "Sales Director");
    assert_eq!(alice["phones"][0]["e164"], "+442079460999");

    // The CSV drops Alice: she stays (the directory lists her) with the directory's number.
    let full = switchboard::sync::ImportOptions {
        full: true,
        force: true,
        ..facilities.clone()
    };
    let csv =
        "external_id,display_name,email,phone\nf-2,Bob Builder,bob@example.com,+44 20 7946 0555\n";
    let r = app.import_csv(csv, &full).await.expect("csv full");
    assert_eq!(r.counts.removed, 1);
    let alice = person(&app, "alice smith").await;
    assert_eq!(alice["sources"].as_array().expect("sources").len(), 1);
    assert_eq!(alice["phones"][0]["e164"], "+442079460100");
    assert_eq!(alice["org_unit"], serde_json::Value::Null);

    // The directory removes her too: now she is gone.
    slapd.modify(&format!(
        "dn: uid=asmith,ou=People,{SUFFIX}\nchangetype: delete\n"
    ));
    let r = sync_with(
        &mut app,
        &config,
        &source,
        DirectorySyncOptions {
            force: true,
            ..Default::default()
        },
    )
    .await
    .expect("delete");
    assert_eq!(r.report.counts.removed, 1);
    assert!(app.names("alice").await.is_empty());
}

#[tokio::test]
async fn one_person_refreshes_by_uid_and_filter_characters_match_themselves() {
    let slapd = Slapd::start(
        SlapdOptions::default(),
        &(base_ldif() + &people_ldif(0..10)),
    );
    let mut app = TestApp::new().await;
    let source = slapd.source("corp");
    let only = |who: &str| DirectorySyncOptions {
        person: Some(who.into()),
        ..Default::default()
    };
    let r = sync(&mut app, &source, only("user3")).await.expect("one");
    assert_eq!(r.mode, "partial");
    assert_eq!(r.report.counts.added, 1);
    assert_eq!(app.active("corp").await, 1);
    // Unescaped, `*` would match everyone and `*)(uid=*` would rewrite the filter.
    for hostile in ["*", "user*", "*)(uid=*", "user1)(|(uid=*"] {
        let err = sync(&mut app, &source, only(hostile))
            .await
            .expect_err(hostile);
        assert_eq!(err.code(), "not_found", "{hostile}: {err}");
    }
    assert_eq!(app.active("corp").await, 1);
    // A refresh by mail works too, and leaves the incremental cursor alone.
    sync(&mut app, &source, only("user5@example.com"))
        .await
        .expect("by mail");
    assert_eq!(app.active("corp").await, 2);
    let first = sync(&mut app, &source, DirectorySyncOptions::default())
        .await
        .expect("full");
    assert_eq!(first.mode, "full");
    assert_eq!(first.report.counts.added, 8);
}

#[tokio::test]
async fn ldaps_and_starttls_verify_the_server_against_the_configured_ca() {
    let options = SlapdOptions {
        tls: true,
        ..SlapdOptions::default()
    };
    let slapd = Slapd::start(options, &(base_ldif() + &people_ldif(0..5)));
    let mut app = TestApp::new().await;

    let mut ldaps = slapd.source("corp");
    ldaps.url = slapd.ldaps_url.clone();
    // Without our CA, the server's certificate is not trusted: an error, nobody written.
    let err = sync_default(&mut app, &ldaps).await.expect_err("untrusted");
    assert_eq!(err.code(), "directory_unavailable", "{err}");
    assert_eq!(app.active("corp").await, 0);

    ldaps.ca_file = Some(slapd.ca_file());
    let r = sync_default(&mut app, &ldaps).await.expect("ldaps");
    assert_eq!(r.report.counts.added, 5);

    let mut starttls = slapd.source("corp-starttls");
    starttls.starttls = true;
    starttls.ca_file = Some(slapd.ca_file());
    let r = sync_default(&mut app, &starttls).await.expect("starttls");
    assert_eq!(r.report.counts.added, 5);
}

#[tokio::test]
async fn slapd_killed_mid_read_deletes_nobody() {
    let options = SlapdOptions {
        size_limit: Some(500),
        ..SlapdOptions::default()
    };
    let mut slapd = Slapd::start(options, &(base_ldif() + &people_ldif(0..10_000)));
    let mut app = TestApp::new().await;
    let mut source = slapd.source("corp");
    sync_default(&mut app, &source).await.expect("first");
    assert_eq!(app.active("corp").await, 10_000);

    // A full re-read in small pages; the server dies once the first entries have arrived.
    source.page_size = Some(10);
    let config = config(&source);
    let progress = ProgressBar::hidden();
    let pool = app.db.pool.clone();
    let run = {
        let (progress, source) = (progress.clone(), source.clone());
        tokio::spawn(async move {
            let opts = DirectorySyncOptions {
                full: true,
                ..Default::default()
            };
            sync_directory(&pool, &config, &source, opts, &progress).await
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !progress.message().starts_with("read ") {
        assert!(
            std::time::Instant::now() < deadline,
            "the read never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    slapd.kill();
    let err = run.await.expect("task").expect_err("killed mid-read");
    assert_eq!(err.code(), "directory_unavailable", "{err}");
    assert_eq!(app.active("corp").await, 10_000);
    let (_, _, runs) = app.get("/api/v1/sync/runs?source=corp&limit=1").await;
    assert_eq!(runs["items"][0]["status"], "failed", "{runs}");

    // Back up, the next sync picks up where the last good one left off.
    slapd.start_again();
    source.page_size = Some(500);
    let r = sync_default(&mut app, &source)
        .await
        .expect("after restart");
    assert_eq!(r.mode, "incremental");
    assert_eq!(app.active("corp").await, 10_000);
}
