//! Directory sync benchmark against a real OpenLDAP `slapd`: loads N generated people (default
//! 100,000) with `slapadd`, then times a full sync end to end, an incremental sync after 100
//! changes, and the server's own paged scan for comparison.
//!
//! `cargo bench --bench ldap_sync -- --entries 100000 --changes 100`

#[path = "common/mod.rs"]
mod common;

#[path = "../tests/common/certs.rs"]
mod certs;
#[path = "../tests/common/slapd.rs"]
mod slapd;

// The allocator the binary uses (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use indicatif::ProgressBar;
use slapd::{base_ldif, Slapd, SlapdOptions, SUFFIX};
use switchboard::config::Config;
use switchboard::sync::directory::{sync_directory, DirectorySyncOptions};

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let entries = common::arg("--entries", 100_000);
    let changes = common::arg("--changes", 100).min(entries);
    println!("# switchboard directory sync benchmark: {entries} entries, {changes} changes");

    let t = Instant::now();
    let people = switchboard::demo::generate(entries, 3);
    let mut ldif = base_ldif();
    for (i, p) in people.iter().enumerate() {
        ldif.push_str(&slapd::person_ldif(i, p));
    }
    // As production servers run: a 500-entry limit per search, paging allowed past it.
    let options = SlapdOptions {
        size_limit: Some(500),
        ..SlapdOptions::default()
    };
    let slapd = Slapd::start(options, &ldif);
    println!(
        "setup: slapadd of {entries} entries and start in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let (cluster, pool) = common::fresh_database(dir.path()).await;

    let mut source = slapd.source("corp");
    source.page_size = Some(500);
    source.timeout = Some("60s".into());
    let config = Config {
        sources: vec![source.clone()],
        ..Config::default()
    };

    // The server alone: a paged scan of every entry with the attributes we ask for.
    let settings =
        switchboard::sources::ldap::LdapSettings::from_config(&source).expect("settings");
    let t = Instant::now();
    let scan = settings.read(None, None, &|_| {}).await.expect("scan");
    let scan_time = t.elapsed().as_secs_f64();
    println!(
        "paged read into records (no database): {} entries in {scan_time:.2} s",
        scan.entries
    );
    // The same paged scan with OpenLDAP's own C client, for what the server alone costs.
    let t = Instant::now();
    let out = std::process::Command::new("ldapsearch")
        .args([
            "-x",
            "-LLL",
            "-H",
            &slapd.url,
            "-D",
            slapd::READER_DN,
            "-w",
            slapd::READER_PW,
            "-b",
            &format!("ou=People,{SUFFIX}"),
            "-E",
            "pr=500/noprompt",
            "(objectClass=inetOrgPerson)",
        ])
        .output()
        .expect("ldapsearch");
    assert!(out.status.success());
    println!(
        "ldapsearch (C client) paged scan: {} entries in {:.2} s",
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("dn: "))
            .count(),
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let full = sync_directory(
        &pool,
        &config,
        &source,
        DirectorySyncOptions::default(),
        &ProgressBar::hidden(),
    )
    .await
    .expect("full sync");
    let full_time = t.elapsed().as_secs_f64();
    assert_eq!(
        full.report.counts.added + full.report.counts.rejected,
        entries
    );
    let tm = full.report.timings;
    println!(
        "full sync: {} added, {} rejected in {full_time:.2} s ({:.0} entries/s); \
         read {:.2} s (validation of {:.2} s overlapped), compare {:.2} s, write {:.2} s",
        full.report.counts.added,
        full.report.counts.rejected,
        entries as f64 / full_time,
        full.read_seconds,
        tm.validate,
        tm.compare,
        tm.write
    );

    // A realistic batch of changes: half modified titles, a quarter new people, a quarter gone.
    let mut batch = String::new();
    let (modify, add) = (changes / 2, changes / 4);
    let delete = changes - modify - add;
    for i in 0..modify {
        batch.push_str(&format!(
            "dn: uid=u{},ou=People,{SUFFIX}\nchangetype: modify\nreplace: title\ntitle: Changed {i}\n\n",
            i * 7
        ));
    }
    for i in 0..add {
        batch.push_str(&format!(
            "dn: uid=new{i},ou=People,{SUFFIX}\nchangetype: add\nobjectClass: inetOrgPerson\n\
             uid: new{i}\ncn: New Person {i}\nsn: Person\nmail: new{i}@example.com\n\n"
        ));
    }
    for i in 0..delete {
        batch.push_str(&format!(
            "dn: uid=u{},ou=People,{SUFFIX}\nchangetype: delete\n\n",
            entries - 1 - i
        ));
    }
    slapd.modify(&batch);

    let t = Instant::now();
    let inc = sync_directory(
        &pool,
        &config,
        &source,
        DirectorySyncOptions::default(),
        &ProgressBar::hidden(),
    )
    .await
    .expect("incremental sync");
    let inc_time = t.elapsed().as_secs_f64();
    let c = inc.report.counts;
    assert_eq!(inc.mode, "incremental");
    assert_eq!((c.added, c.updated, c.removed), (add, modify, delete));
    println!(
        "incremental sync after {changes} changes: {} added, {} updated, {} removed in {:.3} s \
         (read {:.3} s)",
        c.added, c.updated, c.removed, inc_time, inc.read_seconds
    );

    let t = Instant::now();
    let idle = sync_directory(
        &pool,
        &config,
        &source,
        DirectorySyncOptions::default(),
        &ProgressBar::hidden(),
    )
    .await
    .expect("idle sync");
    assert!(idle.report.changes.is_empty());
    println!(
        "incremental sync with nothing changed: {:.3} s",
        t.elapsed().as_secs_f64()
    );

    pool.close().await;
    cluster.stop().await;
}
