//! What the console asks as a receptionist types, at a million people, in one run over one
//! index: every prefix of what they type (one letter, two, …) as the plain search, with the
//! "available now" filter (live presence from the demo's simulated backend, through the real
//! hub and the task that keeps the search's set in step), and with facet counts (the chips,
//! including the count available now), through the whole router.
//!
//! `cargo bench --bench console_search -- --people 1000000 --names 300`

#[path = "common/mod.rs"]
mod common;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{ask, percentile};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use switchboard::presence::{simulated, BackendConfig, PresenceBackend, PresenceHub};

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let count = common::arg("--people", 100_000);
    let names = common::arg("--names", 300);
    println!("# the console's searches: {count} people, every prefix of {names} typed names");
    let dir = tempfile::tempdir().expect("temp dir");
    let (cluster, pool) = common::fresh_database(dir.path()).await;
    let t = Instant::now();
    let index = common::demo_index(&pool, dir.path(), count).await;
    println!("import and index in {:.1} s", t.elapsed().as_secs_f64());

    // The demo's simulated presence, through the hub as `switchboard demo` runs it.
    let mut config = BackendConfig::new(simulated::NAME, simulated::NAME);
    config.schemes = Some(vec!["xmpp".into()]);
    let backend: Arc<dyn PresenceBackend> = Arc::new(simulated::SimulatedBackend::new(
        pool.clone(),
        switchboard::demo::utc_offset,
    ));
    let hub = PresenceHub::from_config_and(
        &Default::default(),
        Arc::new(chrono::Utc::now),
        vec![(config, backend)],
    )
    .expect("hub");
    let (_, people) = switchboard::presence::directory::load_all(&pool)
        .await
        .expect("people");
    hub.set_people(&people);
    hub.start();
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(switchboard::state::follow_availability(
        hub.clone(),
        index.available().clone(),
        stopped,
    ));
    let t = Instant::now();
    while index.available().is_empty() && t.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "simulated presence: {} people available now ({:.1} s to the first reading)",
        index.available().len(),
        t.elapsed().as_secs_f64()
    );

    let (router, token, audit_stop, audit_task) = common::router(&pool, index, hub.clone()).await;

    // What receptionists type: a family name, or a given and a family name, a letter at a time.
    let people: Vec<(String, String)> = sqlx::query_as(
        "SELECT given_name, family_name FROM people WHERE given_name IS NOT NULL \
         AND family_name IS NOT NULL ORDER BY random() LIMIT $1",
    )
    .bind(names as i64)
    .fetch_all(&pool)
    .await
    .expect("names");
    let mut rng = SmallRng::seed_from_u64(11);
    let mut typed: Vec<String> = Vec::new();
    for (given, family) in &people {
        let name = if rng.random_bool(0.5) {
            family.clone()
        } else {
            format!("{given} {family}")
        };
        let chars: Vec<char> = name.chars().collect();
        for n in 1..=chars.len() {
            let prefix: String = chars[..n].iter().collect();
            if !prefix.ends_with(' ') {
                typed.push(prefix);
            }
        }
    }
    let enc = |q: &str| form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>();
    let kinds = [
        ("search", ""),
        ("search, available now only", "&available=true"),
        (
            "search with facet counts (and available now)",
            "&facets=true",
        ),
    ];
    for q in typed.iter().take(200) {
        for (_, extra) in kinds {
            ask(
                &router,
                &format!("/api/v1/people?limit=25&q={}{extra}", enc(q)),
                &token,
            )
            .await;
        }
    }
    // Interleaved, so that every kind sees the same machine.
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); kinds.len()];
    let mut one_letter: Vec<Vec<Duration>> = vec![Vec::new(); kinds.len()];
    let mut available_share = (0u64, 0u64);
    for q in &typed {
        for (i, (_, extra)) in kinds.iter().enumerate() {
            let (took, answer) = ask(
                &router,
                &format!("/api/v1/people?limit=25&q={}{extra}", enc(q)),
                &token,
            )
            .await;
            times[i].push(took);
            if q.chars().count() == 1 {
                one_letter[i].push(took);
            }
            if let Some(available) = answer["facets"]["available"].as_u64() {
                available_share.0 += available;
                available_share.1 += answer["total"].as_u64().unwrap_or(0);
            }
        }
    }
    println!(
        "{} keystrokes ({} of them a first letter); {:.0}% of matches available now",
        typed.len(),
        one_letter[0].len(),
        100.0 * available_share.0 as f64 / available_share.1.max(1) as f64
    );
    println!(
        "| request per keystroke | p50 ms | p99 ms | first letter p50 ms | first letter p99 ms |"
    );
    println!("|---|---|---|---|---|");
    for (i, (name, _)) in kinds.iter().enumerate() {
        times[i].sort();
        one_letter[i].sort();
        println!(
            "| {name} | {:.3} | {:.3} | {:.3} | {:.3} |",
            percentile(&times[i], 0.5),
            percentile(&times[i], 0.99),
            percentile(&one_letter[i], 0.5),
            percentile(&one_letter[i], 0.99)
        );
    }
    hub.shutdown().await;
    let _ = audit_stop.send(true);
    let _ = audit_task.await;
    drop(cluster);
}
