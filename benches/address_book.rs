//! Address book lookups as desk phones make them, against Switchboard's LDAP server and against
//! OpenLDAP's `slapd` holding the same people (indexed for these searches, as an administrator
//! would), in the same run, with the same client: a name typed on the keypad, an incoming
//! caller's number (E.164, as a PBX sends it), and a number's last four digits.
//!
//! `cargo bench --bench address_book -- --people 100000 --queries 1000`

#[path = "common/mod.rs"]
mod common;

#[path = "../tests/common/certs.rs"]
mod certs;
#[path = "../tests/common/slapd.rs"]
mod slapd;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use ldap3::{LdapConnAsync, Scope, SearchOptions, SearchResult};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use slapd::{base_ldif, Slapd, SlapdOptions, SUFFIX};
use switchboard::addressbook::ldap::{LdapServer, LdapServerConfig};
use switchboard::config::Config;
use switchboard::domain::PhoneKind;
use switchboard::search::indexer::Indexer;
use switchboard::search::SearchIndex;
use switchboard::sources::ContactSource;

/// A server to ask: where, as whom, under which base.
struct Target {
    name: &'static str,
    url: String,
    dn: String,
    password: String,
    base: String,
}

/// One kind of lookup and its filters.
struct Kind {
    name: &'static str,
    filters: Vec<String>,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// Replays `filters` one after the other over one bound connection: latencies and how many
/// found at least one entry.
async fn replay(target: &Target, filters: &[String]) -> (Vec<Duration>, usize, Vec<String>) {
    let (conn, mut ldap) = LdapConnAsync::new(&target.url).await.expect("connect");
    ldap3::drive!(conn);
    ldap.simple_bind(&target.dn, &target.password)
        .await
        .expect("bind")
        .success()
        .expect("bound");
    let mut times = Vec::with_capacity(filters.len());
    let mut found = 0;
    let mut missed = Vec::new();
    for filter in filters {
        let t = Instant::now();
        let SearchResult(entries, result) = ldap
            .with_search_options(SearchOptions::new().sizelimit(50))
            .search(
                &target.base,
                Scope::Subtree,
                filter,
                vec!["cn", "telephoneNumber", "mobile"],
            )
            .await
            .expect("search");
        times.push(t.elapsed());
        assert!(
            result.rc == 0 || result.rc == 4,
            "{}: {filter}: {result:?}",
            target.name
        );
        if entries.is_empty() {
            missed.push(filter.clone());
        } else {
            found += 1;
        }
    }
    let _ = ldap.unbind().await;
    times.sort();
    (times, found, missed)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let count = common::arg("--people", 100_000);
    let queries = common::arg("--queries", 1000);
    println!("# address book lookups: {count} people, {queries} lookups of each kind");
    let people = switchboard::demo::generate(count, 3);

    // slapd, indexed for what phones search.
    let t = Instant::now();
    let mut ldif = base_ldif();
    for (i, p) in people.iter().enumerate() {
        ldif.push_str(&slapd::person_ldif(i, p));
    }
    let options = SlapdOptions {
        syncprov: false,
        sessionlog: None,
        directory_indexes: true,
        ..SlapdOptions::default()
    };
    let server = Slapd::start(options, &ldif);
    println!(
        "slapd: slapadd of {count} entries (indexes cn, sn, givenName, mail, telephoneNumber, mobile: eq, sub) and start in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // Switchboard: the same people imported and indexed.
    let t = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let (cluster, pool) = common::fresh_database(dir.path()).await;
    let config = Config::default();
    let raw = switchboard::demo::DemoSource { count, seed: 3 }
        .read()
        .await
        .expect("people");
    let opts = common::import_options("demo");
    let phones = config.phones(None).expect("phones");
    let report = switchboard::sync::import(&pool, raw, &phones, &opts, &ProgressBar::hidden())
        .await
        .expect("import");
    assert_eq!(report.counts.added, count);
    let index = SearchIndex::open(&dir.path().join("index")).expect("index");
    let mut indexer = Indexer::new(index.clone(), pool.clone(), 512).expect("indexer");
    indexer.catch_up().await.expect("index");
    indexer.merge_segments().await.expect("merge");
    let (audit_stop, audit_stopped) = tokio::sync::watch::channel(false);
    let (audit, _audit_task) = switchboard::audit::AuditLog::start(pool.clone(), audit_stopped);
    let clock: switchboard::presence::Clock = Arc::new(chrono::Utc::now);
    let mut state_config = config.clone();
    state_config.access.rate_per_second = 0.0;
    let state = switchboard::state::app_state(
        &state_config,
        pool.clone(),
        index,
        Arc::new(AtomicBool::new(true)),
        switchboard::presence::PresenceHub::disabled(),
        audit,
        clock,
    )
    .expect("state");
    let password = switchboard::access::devices::add(&pool, "bench")
        .await
        .expect("device");
    let base = "ou=people,dc=example,dc=com".to_string();
    let ldap = LdapServer::new(
        state,
        LdapServerConfig {
            listen: "127.0.0.1:0".parse().expect("address"),
            base_dn: base.clone(),
            ..LdapServerConfig::default()
        },
        None,
    )
    .expect("server");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let served = ldap.start(stopped).await.expect("listen");
    println!(
        "switchboard: import, index and start in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // The lookups, drawn from the people themselves.
    let mut rng = SmallRng::seed_from_u64(7);
    let mut names = Vec::with_capacity(queries);
    let mut callers = Vec::with_capacity(queries);
    let mut endings = Vec::with_capacity(queries);
    while names.len() < queries {
        let p = &people[rng.random_range(0..people.len())];
        let family: String = p
            .family_name
            .clone()
            .unwrap_or_default()
            .chars()
            .take(3)
            .collect();
        names.push(format!("(|(cn={family}*)(sn={family}*))"));
        let normalized = p.clone().normalize(&phones).expect("valid");
        let Some(work) = normalized
            .phones
            .iter()
            .find(|ph| ph.kind == PhoneKind::Work)
            .and_then(|ph| ph.e164.clone())
        else {
            continue;
        };
        callers.push(format!("(|(telephoneNumber={work})(mobile={work}))"));
        endings.push(format!("(telephoneNumber=*{})", &work[work.len() - 4..]));
    }
    let kinds = [
        Kind {
            name: "name typed on the keypad (3 letters)",
            filters: names,
        },
        Kind {
            name: "incoming caller, E.164",
            filters: callers,
        },
        Kind {
            name: "a number's last 4 digits",
            filters: endings,
        },
    ];
    let targets = [
        Target {
            name: "switchboard",
            url: served[0].0.clone(),
            dn: "cn=bench".into(),
            password,
            base,
        },
        Target {
            name: "slapd",
            url: server.url.clone(),
            dn: slapd::READER_DN.into(),
            password: slapd::READER_PW.into(),
            base: format!("ou=People,{SUFFIX}"),
        },
    ];
    println!();
    println!("| lookup | server | p50 | p99 | found someone |");
    println!("|---|---|---|---|---|");
    for kind in &kinds {
        for target in &targets {
            // A warm-up pass, then the measured one.
            let _ = replay(target, &kind.filters[..kind.filters.len().min(50)]).await;
            let (times, found, missed) = replay(target, &kind.filters).await;
            println!(
                "| {} | {} | {:.2} ms | {:.2} ms | {:.0}% |",
                kind.name,
                target.name,
                percentile(&times, 0.5),
                percentile(&times, 0.99),
                100.0 * found as f64 / kind.filters.len() as f64
            );
            if target.name == "switchboard" && !missed.is_empty() {
                eprintln!(
                    "switchboard found nobody for: {:?}",
                    &missed[..missed.len().min(3)]
                );
            }
        }
    }
    let _ = stop.send(true);
    let _ = audit_stop.send(true);
    pool.close().await;
    cluster.stop().await;
}
