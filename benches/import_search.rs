//! Import, index and search benchmark (not a test: it prints figures, it asserts nothing).
//!
//!     cargo bench --bench import_search -- --people 1000000 --queries 20000 --concurrency 8
//!
//! Generates the demo company as a CSV file, imports it through the CSV source and the sync
//! engine into a fresh embedded PostgreSQL, lets the indexer catch up, then replays a query mix
//! (name prefixes of 1–3 words, emails, phone fragments) through HTTP with concurrency.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use switchboard::db::EmbeddedPostgres;
use switchboard::domain::{PhoneNormalizer, SourceRecord};
use switchboard::http::{router, AppState};
use switchboard::search::indexer::Indexer;
use switchboard::search::SearchIndex;
use switchboard::sources::csv::CsvSource;
use switchboard::sources::ContactSource;
use switchboard::sync::{self, ImportOptions};

// The allocator the binary uses (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    people: usize,
    queries: usize,
    concurrency: usize,
}

fn args() -> Args {
    let mut args = Args {
        people: 100_000,
        queries: 20_000,
        concurrency: 8,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .and_then(|v| v.replace('_', "").parse::<usize>().ok())
        };
        match flag.as_str() {
            "--people" => args.people = value().unwrap_or(args.people),
            "--queries" => args.queries = value().unwrap_or(args.queries),
            "--concurrency" => args.concurrency = value().unwrap_or(args.concurrency),
            _ => {} // cargo bench passes --bench
        }
    }
    args
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// What receptionists type: 1–3 word name prefixes, email local parts, phone fragments.
fn query_mix(people: &[SourceRecord], n: usize) -> Vec<String> {
    let mut rng = SmallRng::seed_from_u64(99);
    (0..n)
        .map(|_| {
            let p = &people[rng.random_range(0..people.len())];
            let given = p.given_name.clone().unwrap_or_default();
            let family = p.family_name.clone().unwrap_or_default();
            let cut = |s: &str, rng: &mut SmallRng| -> String {
                let chars: Vec<char> = s.chars().collect();
                chars[..rng.random_range(1..=chars.len().max(1)).min(chars.len())]
                    .iter()
                    .collect()
            };
            match rng.random_range(0..10) {
                0..=2 => cut(&given, &mut rng),
                3..=5 => format!("{} {}", given, cut(&family, &mut rng)),
                6 => format!("{} {}", family, cut(&given, &mut rng)),
                7 => format!(
                    "{} {} {}",
                    given,
                    family,
                    cut(p.department.as_deref().unwrap_or(""), &mut rng)
                ),
                8 => p.emails[0]
                    .split('@')
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                _ => {
                    let number = &p.phones[0].1;
                    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
                    format!(
                        "+{}",
                        &digits[..digits.len().min(rng.random_range(5..=digits.len().max(5)))]
                    )
                }
            }
        })
        .collect()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = args();
    let dir = tempfile::tempdir().expect("temp dir");
    println!(
        "# switchboard import + search benchmark: {} people",
        args.people
    );

    let started = Instant::now();
    let people = switchboard::demo::generate(args.people, 1);
    let csv_path = dir.path().join("people.csv");
    switchboard::sources::csv::write_records(
        std::fs::File::create(&csv_path).expect("csv"),
        &people,
    )
    .expect("write csv");
    let size = std::fs::metadata(&csv_path).map(|m| m.len()).unwrap_or(0);
    println!(
        "generated {} people as CSV ({:.0} MB) in {:.1} s (not timed below)",
        people.len(),
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    let cluster = EmbeddedPostgres::start(&dir.path().join("postgres"))
        .await
        .expect("postgres");
    switchboard::db::ensure_database(&cluster.connect_options("postgres"), "bench")
        .await
        .expect("db");
    let pool = switchboard::db::pool(cluster.connect_options("bench"), 16)
        .await
        .expect("pool");
    switchboard::db::MIGRATOR.run(&pool).await.expect("migrate");

    // Import: read + parse + validate + diff + write, one transaction.
    let phones = PhoneNormalizer::new("US").expect("region");
    let opts = ImportOptions {
        source: "bench".into(),
        kind: "csv".into(),
        full: true,
        dry_run: false,
        force: false,
        max_delete_share: 0.2,
        mode: None,
        merge: Default::default(),
    };
    let t = Instant::now();
    let raw = CsvSource::new(&csv_path, Default::default())
        .read()
        .await
        .expect("read csv");
    let read = t.elapsed();
    let report = sync::import(&pool, raw, &phones, &opts, &ProgressBar::hidden())
        .await
        .expect("import");
    let import = t.elapsed();
    assert_eq!(
        report.counts.rejected,
        0,
        "{:?}",
        &report.rejects[..report.rejects.len().min(3)]
    );

    let index = SearchIndex::open(&dir.path().join("index")).expect("index");
    let mut indexer = Indexer::new(index.clone(), pool.clone(), 512).expect("indexer");
    let t = Instant::now();
    let indexed = indexer.catch_up().await.expect("index");
    let index_time = t.elapsed();
    let index_bytes: u64 = std::fs::read_dir(dir.path().join("index"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);

    // Re-import of the unchanged file.
    let t = Instant::now();
    let raw = CsvSource::new(&csv_path, Default::default())
        .read()
        .await
        .expect("read csv");
    let again = sync::import(&pool, raw, &phones, &opts, &ProgressBar::hidden())
        .await
        .expect("reimport");
    let reimport = t.elapsed();
    assert_eq!(again.counts.unchanged, args.people);

    println!();
    println!("| step | time | rate |");
    println!("|---|---|---|");
    println!("| read + parse CSV | {:.1} s | |", read.as_secs_f64());
    println!(
        "| import (CSV → PostgreSQL, one transaction) | {:.1} s | {:.0} people/s |",
        import.as_secs_f64(),
        args.people as f64 / import.as_secs_f64()
    );
    let t = &report.timings;
    println!(
        "| … of which validate / compare / write + commit | {:.1} / {:.1} / {:.1} s | |",
        t.validate, t.compare, t.write
    );
    println!(
        "| index build ({indexed} changes → tantivy) | {:.1} s | {:.0} people/s |",
        index_time.as_secs_f64(),
        args.people as f64 / index_time.as_secs_f64()
    );
    println!(
        "| **import + index** | **{:.1} s** | |",
        (import + index_time).as_secs_f64()
    );
    println!(
        "| re-import, nothing changed | {:.1} s | |",
        reimport.as_secs_f64()
    );
    println!("index size on disk: {:.0} MB", index_bytes as f64 / 1e6);

    // In-process search latency (no HTTP), one thread.
    let queries = query_mix(&people, args.queries);
    drop(people);
    let mut inproc = Vec::with_capacity(queries.len());
    let mut empty = 0;
    for q in &queries {
        let t = Instant::now();
        let results = index.search(q, 20, 0).expect("search");
        inproc.push(t.elapsed());
        empty += usize::from(results.hits.is_empty());
    }
    inproc.sort();

    // Through HTTP: one client (latency), then many (throughput).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = router(AppState {
        pool: pool.clone(),
        index: index.clone(),
        ready: Arc::new(AtomicBool::new(true)),
        presence: switchboard::presence::PresenceHub::disabled(),
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    let queries = Arc::new(queries);
    let (http1, wall1) = replay(addr, queries.clone(), 1).await;
    let (http, wall) = replay(addr, queries.clone(), args.concurrency).await;

    println!();
    println!(
        "| search ({} queries) | p50 | p90 | p99 | max | throughput |",
        queries.len()
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| in-process, 1 thread | {} | {} | {} | {} | {:.0}/s |",
        ms(percentile(&inproc, 0.5)),
        ms(percentile(&inproc, 0.9)),
        ms(percentile(&inproc, 0.99)),
        ms(percentile(&inproc, 1.0)),
        inproc.len() as f64 / inproc.iter().sum::<Duration>().as_secs_f64()
    );
    println!(
        "| HTTP, 1 client | {} | {} | {} | {} | {:.0}/s |",
        ms(percentile(&http1, 0.5)),
        ms(percentile(&http1, 0.9)),
        ms(percentile(&http1, 0.99)),
        ms(percentile(&http1, 1.0)),
        http1.len() as f64 / wall1.as_secs_f64()
    );
    println!(
        "| HTTP, {} concurrent clients | {} | {} | {} | {} | {:.0}/s |",
        args.concurrency,
        ms(percentile(&http, 0.5)),
        ms(percentile(&http, 0.9)),
        ms(percentile(&http, 0.99)),
        ms(percentile(&http, 1.0)),
        http.len() as f64 / wall.as_secs_f64()
    );
    println!("queries with no hit: {empty} of {}", queries.len());
    println!(
        "resident memory of the benchmark process (index, server, client): {:.0} MiB",
        rss_mib()
    );

    // Import → searchable: a one-person import (as from cron) while the server's indexer runs.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let indexer_task = tokio::spawn(indexer.run(Arc::new(AtomicBool::new(true)), stopped));
    let partial = ImportOptions {
        full: false,
        ..opts.clone()
    };
    let mut visible = Vec::new();
    for i in 0..20 {
        let name = format!("Zebulon Benchmarkson{i}");
        let csv = format!("external_id,display_name,email\nZ{i},{name},zebulon{i}@example.com\n");
        let raw =
            switchboard::sources::csv::parse(csv.as_bytes(), &Default::default()).expect("csv");
        let t = Instant::now();
        sync::import(&pool, raw, &phones, &partial, &ProgressBar::hidden())
            .await
            .expect("import one");
        while index
            .search(&format!("benchmarkson{i}"), 1, 0)
            .expect("search")
            .hits
            .is_empty()
        {
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "never became searchable"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        visible.push(t.elapsed());
    }
    visible.sort();
    println!(
        "import of one person → searchable (commit, NOTIFY, index, reload), 20 runs: p50 {}, max {}",
        ms(percentile(&visible, 0.5)),
        ms(percentile(&visible, 1.0))
    );
    let _ = stop.send(true);
    let _ = indexer_task.await;

    pool.close().await;
    cluster.stop().await;
}

/// Sends every query once, spread over `concurrency` clients; returns sorted latencies and wall time.
async fn replay(
    addr: std::net::SocketAddr,
    queries: Arc<Vec<String>>,
    concurrency: usize,
) -> (Vec<Duration>, Duration) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .expect("client");
    let t = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let client = client.clone();
        let queries = queries.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for q in queries.iter().skip(worker).step_by(concurrency) {
                let url = format!("http://{addr}/api/v1/people?limit=20&q={}", urlencode(q));
                let t = Instant::now();
                let response = client.get(url).send().await.expect("request");
                assert_eq!(response.status(), 200);
                let _ = response.bytes().await.expect("body");
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("worker"));
    }
    let wall = t.elapsed();
    latencies.sort();
    (latencies, wall)
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
