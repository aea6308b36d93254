//! Active Directory sync against a real Samba AD DC (see `tests/common/samba.rs`).

mod common;

use common::samba::{SambaDc, BASE};
use common::TestApp;
use indicatif::ProgressBar;
use switchboard::config::{Config, SourceConfig};
use switchboard::sync::directory::{sync_directory, DirectorySyncOptions, DirectorySyncReport};

async fn sync(app: &mut TestApp, source: &SourceConfig) -> DirectorySyncReport {
    let config = Config {
        default_region: Some("DE".into()),
        sources: vec![source.clone()],
        ..Config::default()
    };
    let report = sync_directory(
        &app.db.pool,
        &config,
        source,
        DirectorySyncOptions::default(),
        &ProgressBar::hidden(),
    )
    .await
    .expect("sync");
    app.indexer.catch_up().await.expect("catch up");
    report
}

/// An enabled account needs no password with PASSWD_NOTREQD (512 + 32); 546 is that, disabled.
fn user(cn: &str, extra: &str, uac: u32) -> String {
    let sam: String = cn
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(18)
        .collect();
    format!(
        "dn: CN={cn},OU=Staff,{BASE}\nchangetype: add\nobjectClass: user\nsAMAccountName: {sam}\n\
         userAccountControl: {uac}\n{extra}\n"
    )
}

#[tokio::test]
async fn active_directory_full_and_usn_incremental_sync() {
    let Some(dc) = SambaDc::start() else {
        eprintln!("skipped: set TEST_SAMBA_AD=1 to run against Samba (scripts/test does)");
        return;
    };
    let photo = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode([0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3])
    };
    let mut ldif =
        format!("dn: OU=Staff,{BASE}\nchangetype: add\nobjectClass: organizationalUnit\n\n");
    ldif += &user(
        "Greta Boss",
        "givenName: Greta\nsn: Boss\nmail: greta@example.test\ntitle: CEO\n\
         department: Board\nphysicalDeliveryOfficeName: Berlin HQ\ntelephoneNumber: +49 30 901820\n",
        544,
    );
    ldif += &user(
        "Jürgen Weiß",
        &format!(
            "givenName:: {}\nsn:: {}\nmail: juergen@example.test\ntitle: Engineer\n\
             department: R&D\nmobile: +49 151 23456789\nipPhone: 4711\n\
             manager: CN=Greta Boss,OU=Staff,{BASE}\nthumbnailPhoto:: {photo}\n",
            b64("Jürgen"),
            b64("Weiß")
        ),
        544,
    );
    ldif += &user(
        "Anna Alt",
        "givenName: Anna\nsn: Alt\nmail: anna@example.test\ntitle: Analyst\n",
        544,
    );
    ldif += &user(
        "Dora Disabled",
        "givenName: Dora\nsn: Disabled\nmail: dora@example.test\n",
        546,
    );
    // Colleagues who do not change, so that the removals below stay under the safety limit.
    for i in 0..8 {
        ldif += &user(
            &format!("Filler {i}"),
            &format!("givenName: Filler\nsn: Number{i}\nmail: filler{i}@example.test\n"),
            544,
        );
    }
    dc.modify(&ldif);

    let mut app = TestApp::new().await;
    let source = dc.source("ad", &format!("OU=Staff,{BASE}"));
    let first = sync(&mut app, &source).await;
    assert_eq!(first.mode, "full");
    // The disabled account is not a person; paging (page size 2) read the rest.
    assert_eq!(first.report.counts.added, 11, "{:?}", first.report);
    assert!(first
        .report
        .changes
        .iter()
        .all(|c| uuid::Uuid::parse_str(&c.external_id).is_ok()));

    let jurgen = app.names("jurgen weiss").await;
    assert_eq!(jurgen.first().map(String::as_str), Some("Jürgen Weiß"));
    let (_, _, hits) = app.get("/api/v1/people?q=weiss").await;
    let id = hits["items"][0]["id"].as_str().expect("id").to_string();
    let (_, _, jurgen) = app.get(&format!("/api/v1/people/{id}")).await;
    assert_eq!(jurgen["manager"]["display_name"], "Greta Boss");
    assert!(jurgen["photo_url"].as_str().is_some());
    assert!(jurgen["phones"]
        .as_array()
        .expect("phones")
        .iter()
        .any(|p| p["kind"] == "extension"));

    // Changes: a new title, a disabled account, a deletion, a rename, a newcomer.
    dc.modify(&format!(
        "dn: CN=Anna Alt,OU=Staff,{BASE}\nchangetype: modify\nreplace: title\ntitle: Lead Analyst\n\n\
         dn: CN=Greta Boss,OU=Staff,{BASE}\nchangetype: modify\nreplace: userAccountControl\nuserAccountControl: 546\n\n\
         dn: CN=Jürgen Weiß,OU=Staff,{BASE}\nchangetype: modrdn\nnewrdn: CN=Jürgen Weiss\ndeleteoldrdn: 1\n\n"
    ));
    dc.modify(&user(
        "Nina Neu",
        "givenName: Nina\nsn: Neu\nmail: nina@example.test\n",
        544,
    ));
    dc.modify(&format!(
        "dn: CN=Dora Disabled,OU=Staff,{BASE}\nchangetype: delete\n\n\
         dn: CN=Anna Alt,OU=Staff,{BASE}\nchangetype: modify\nreplace: department\ndepartment: Finance\n"
    ));
    let r = sync(&mut app, &source).await;
    assert_eq!(r.mode, "incremental");
    let c = r.report.counts;
    // Anna (twice modified: one update), Jürgen renamed (same person); Greta disabled; Nina new.
    // Dora was never a person, so her deletion changes nobody.
    assert_eq!(
        (c.added, c.updated, c.removed),
        (1, 2, 1),
        "{:?}",
        r.report.changes
    );
    let (_, _, after) = app.get(&format!("/api/v1/people/{id}")).await;
    assert_eq!(after["id"], id.as_str(), "a rename keeps the person");
    assert!(app.names("greta").await.is_empty());

    // Deleting an enabled account arrives through the Deleted Objects container.
    dc.modify(&format!(
        "dn: CN=Nina Neu,OU=Staff,{BASE}\nchangetype: delete\n"
    ));
    let r = sync(&mut app, &source).await;
    assert_eq!(r.mode, "incremental");
    assert_eq!(r.report.counts.removed, 1, "{:?}", r.report.changes);
    assert!(app.names("nina").await.is_empty());
    let idle = sync(&mut app, &source).await;
    assert!(idle.report.changes.is_empty(), "{:?}", idle.report.changes);
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}
