//! Partner search next to internal search, in the same run over the same index: the same
//! typed names sent to `GET /api/v1/people` with a service token and to `GET /shared/v1/people`
//! with a partner's key (its scope a filter inside the search, its fields and coarse presence
//! projected, its rate and quota counted, every request audited), through the whole router.
//!
//! `cargo bench --bench shared_search -- --people 1000000 --queries 2000`

#[path = "common/mod.rs"]
mod common;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::time::Instant;

use common::{ask, percentile};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let count = common::arg("--people", 100_000);
    let queries = common::arg("--queries", 2000);
    println!("# partner search vs internal search: {count} people, {queries} queries each");
    let dir = tempfile::tempdir().expect("temp dir");
    let (cluster, pool) = common::fresh_database(dir.path()).await;
    let t = Instant::now();
    let index = common::demo_index(&pool, dir.path(), count).await;
    println!("import and index in {:.1} s", t.elapsed().as_secs_f64());

    let (router, token, audit_stop, audit_task) =
        common::router(&pool, index, switchboard::presence::PresenceHub::disabled()).await;
    // A partner as one would be set up: half the departments, a few fields, coarse presence,
    // limits it will not reach here.
    let departments: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT department FROM people WHERE department IS NOT NULL ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .expect("departments");
    let half: Vec<String> = departments.iter().step_by(2).cloned().collect();
    let settings = serde_json::from_value(serde_json::json!({
        "fields": ["name", "title", "department", "location", "work_phone", "email"],
        "presence": "coarse",
        "scope": {"department": half},
        "rate": "100000/s",
        "quota": "100000000/day",
    }))
    .expect("settings");
    let (_, key) =
        switchboard::access::partners::add(&pool, &Default::default(), "bench", &settings)
            .await
            .expect("partner");
    println!(
        "partner scope: {} of {} departments",
        half.len(),
        departments.len()
    );

    // What people type: the start of a family name (3 to 6 letters), or a given and family name.
    let people: Vec<(String, String)> = sqlx::query_as(
        "SELECT given_name, family_name FROM people WHERE given_name IS NOT NULL AND family_name IS NOT NULL \
         ORDER BY random() LIMIT $1",
    )
    .bind(queries as i64)
    .fetch_all(&pool)
    .await
    .expect("names");
    let mut rng = SmallRng::seed_from_u64(7);
    let typed: Vec<String> = people
        .iter()
        .map(|(given, family)| {
            if rng.random_bool(0.5) {
                let n = rng.random_range(3..=6);
                family.chars().take(n).collect()
            } else {
                format!("{given} {family}")
            }
        })
        // What a partner may send (at least `min_query_chars`).
        .filter(|q: &String| switchboard::access::partners::query_length(q) >= 3)
        .collect();
    let enc = |q: &str| form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>();
    // Warm both paths, then interleave them so that both see the same machine.
    for q in typed.iter().take(100) {
        ask(
            &router,
            &format!("/api/v1/people?limit=20&q={}", enc(q)),
            &token,
        )
        .await;
        ask(
            &router,
            &format!("/shared/v1/people?limit=20&q={}", enc(q)),
            &key,
        )
        .await;
    }
    let (mut internal, mut shared) = (Vec::new(), Vec::new());
    let (mut internal_found, mut shared_found) = (0, 0);
    let found = |answer: &serde_json::Value| answer["items"].as_array().map_or(0, Vec::len);
    for q in &typed {
        let (t, n) = ask(
            &router,
            &format!("/api/v1/people?limit=20&q={}", enc(q)),
            &token,
        )
        .await;
        internal.push(t);
        internal_found += found(&n);
        let (t, n) = ask(
            &router,
            &format!("/shared/v1/people?limit=20&q={}", enc(q)),
            &key,
        )
        .await;
        shared.push(t);
        shared_found += found(&n);
    }
    internal.sort();
    shared.sort();
    println!("| search | queries | people per answer | p50 ms | p99 ms |");
    println!("|---|---|---|---|---|");
    for (name, times, found) in [
        (
            "internal (service token, audited)",
            &internal,
            internal_found,
        ),
        (
            "partner (scope, fields, coarse presence, rate, quota, audited)",
            &shared,
            shared_found,
        ),
    ] {
        println!(
            "| {name} | {} | {:.1} | {:.3} | {:.3} |",
            times.len(),
            found as f64 / times.len() as f64,
            percentile(times, 0.5),
            percentile(times, 0.99)
        );
    }
    println!(
        "partner p99 / internal p99: {:.2}",
        percentile(&shared, 0.99) / percentile(&internal, 0.99)
    );
    let _ = audit_stop.send(true);
    let _ = audit_task.await;
    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE principal = 'partner:bench'")
            .fetch_one(&pool)
            .await
            .expect("count");
    println!("audit records of the partner's requests: {audited}");
    drop(cluster);
}
