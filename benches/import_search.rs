//! Import, index and search benchmark (not a test: it prints figures, it asserts nothing).
//!
//!     cargo bench --bench import_search -- --people 1000000 --queries 20000 --concurrency 8 --pg-queries 100
//!
//! Generates the demo company as a CSV file, imports it through the CSV source and the sync
//! engine into a fresh embedded PostgreSQL, lets the indexer catch up, then replays a query mix
//! (name prefixes of 1–3 words, emails, phone fragments and endings, typos, sound-alikes)
//! in-process and through HTTP with concurrency, and the first `--pg-queries` of them against
//! PostgreSQL's pg_trgm on the same data (GIN index; ILIKE and word_similarity). The index
//! writer gets the memory `switchboard import` gives it (`--writer-mb` sets another).

#[path = "common/mod.rs"]
mod common;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use switchboard::domain::{PhoneNormalizer, SourceRecord};
use switchboard::search::indexer::Indexer;
use switchboard::search::SearchIndex;
use switchboard::sources::file::FileSource;
use switchboard::sources::ContactSource;
use switchboard::sync::{self, ImportOptions};

// The allocator the binary uses (src/main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    people: usize,
    queries: usize,
    concurrency: usize,
    /// How many of the queries to replay against pg_trgm too (0: skip it).
    pg_queries: usize,
    /// Keep the database and index here, and reuse them when they hold `people` people: only
    /// the search figures are then measured (for quick loops on search speed).
    data: Option<std::path::PathBuf>,
    /// The index writer's memory (MB): by default what `switchboard import` and `serve` use.
    writer_mb: usize,
}

fn args() -> Args {
    let mut args = Args {
        people: 100_000,
        queries: 20_000,
        concurrency: 8,
        pg_queries: 2_000,
        data: None,
        writer_mb: switchboard::config::Config::default()
            .search
            .writer_memory_mb,
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
            "--pg-queries" => args.pg_queries = value().unwrap_or(args.pg_queries),
            "--data" => args.data = it.next().map(Into::into),
            "--writer-mb" => args.writer_mb = value().unwrap_or(args.writer_mb),
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
    status_mib("VmRSS:")
}

/// A memory figure of this process from /proc/self/status, in MiB.
fn status_mib(key: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Queries run before measuring (a different mix).
const WARMUP: usize = 5_000;

/// Kinds of query in the mix, for per-kind figures.
const KINDS: [&str; 8] = [
    "1 word prefix",
    "2 words, last a prefix",
    "3 words (name + department prefix)",
    "email local part",
    "phone number prefix",
    "last 4–6 digits of a number",
    "name with a typo",
    "sound-alike family name",
];

/// Swaps two neighbouring letters (or, for short words, changes one): a typical typo.
fn typo(word: &str, rng: &mut SmallRng) -> String {
    let mut chars: Vec<char> = word.chars().collect();
    if chars.len() < 4 {
        return word.to_string();
    }
    let i = rng.random_range(1..chars.len() - 1);
    chars.swap(i, i + 1);
    chars.into_iter().collect()
}

/// What receptionists type: 1–3 word name prefixes, email local parts, phone fragments,
/// names with a typo, and names as heard.
fn query_mix(people: &[SourceRecord], n: usize, seed: u64) -> Vec<(usize, String)> {
    let mut rng = SmallRng::seed_from_u64(seed);
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
            let digits = |p: &SourceRecord| -> String {
                p.phones[0].1.chars().filter(char::is_ascii_digit).collect()
            };
            match rng.random_range(0..20) {
                0..=4 => (0, cut(&given, &mut rng)),
                5..=8 => (1, format!("{} {}", given, cut(&family, &mut rng))),
                9 => (1, format!("{} {}", family, cut(&given, &mut rng))),
                10 => (
                    2,
                    format!(
                        "{} {} {}",
                        given,
                        family,
                        cut(p.department.as_deref().unwrap_or(""), &mut rng)
                    ),
                ),
                11 | 12 => (
                    3,
                    p.emails[0]
                        .split('@')
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                ),
                13 | 14 => {
                    let digits = digits(p);
                    let n = digits.len().min(rng.random_range(5..=digits.len().max(5)));
                    (4, format!("+{}", &digits[..n]))
                }
                15 => {
                    let digits = digits(p);
                    let n = rng.random_range(4..=6).min(digits.len());
                    (5, digits[digits.len() - n..].to_string())
                }
                16..=18 => (6, format!("{} {}", given, typo(&family, &mut rng))),
                _ => {
                    // Sound-alikes the demo's names have: as a caller might spell them.
                    let heard = family
                        .replace("ph", "f")
                        .replace("th", "t")
                        .replace("ck", "k")
                        .replace('y', "i")
                        .replace("ss", "s")
                        .replace("ll", "l");
                    (7, format!("{given} {heard}"))
                }
            }
        })
        .collect()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    // As the binary does (src/cli.rs).
    switchboard::cli::without_huge_pages();
    let args = args();
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = args
        .data
        .clone()
        .unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir).expect("data dir");
    let marker = dir.join("bench-people");
    let reuse = args.data.is_some()
        && std::fs::read_to_string(&marker).ok().as_deref() == Some(&args.people.to_string());
    println!(
        "# switchboard import + search benchmark: {} people",
        args.people
    );

    let started = Instant::now();
    let people = switchboard::demo::generate(args.people, 1);
    let csv_path = dir.join("people.csv");
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

    let (cluster, pool) = common::fresh_database(&dir).await;

    let index = SearchIndex::open(&dir.join("index")).expect("index");
    let mut indexer = Indexer::new(index.clone(), pool.clone(), args.writer_mb).expect("indexer");
    if reuse {
        println!("reusing the database and index in {}", dir.display());
        let t = Instant::now();
        let indexed = indexer.catch_up().await.expect("index");
        println!(
            "index caught up with {indexed} changes in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    } else {
        import_and_index(&args, &dir, &csv_path, &pool, &mut indexer).await;
        std::fs::write(&marker, args.people.to_string()).expect("marker");
    }
    // As a server does after a bulk load, in the background; searches are measured after it.
    let t = Instant::now();
    let segments = index
        .index()
        .searchable_segment_ids()
        .map_or(0, |s| s.len());
    indexer.merge_segments().await.expect("merge");
    println!(
        "merged {segments} index segments into one in {:.1} s (in a server: in the background, after a bulk load)",
        t.elapsed().as_secs_f64()
    );
    let phones = PhoneNormalizer::new("US").expect("region");
    let opts = import_options();

    // In-process search latency (no HTTP), one thread.
    let mix = query_mix(&people, args.queries, 99);
    // A server that has run a while: other queries first, unmeasured, so the measured ones do
    // not pay for first touches of the index files.
    let warmup = query_mix(&people, WARMUP, 7);
    for (_, q) in &warmup {
        index.search(q, 20, 0).expect("search");
    }
    drop(people);
    let queries: Vec<String> = mix.iter().map(|(_, q)| q.clone()).collect();
    let mut inproc = Vec::with_capacity(queries.len());
    let mut by_kind: Vec<Vec<Duration>> = vec![Vec::new(); KINDS.len()];
    let mut approximate = vec![0usize; KINDS.len()];
    let mut empty = 0;
    let mut slowest: Vec<(Duration, &str)> = Vec::new();
    for (kind, q) in &mix {
        let t = Instant::now();
        let results = index.search(q, 20, 0).expect("search");
        let took = t.elapsed();
        inproc.push(took);
        slowest.push((took, q));
        by_kind[*kind].push(took);
        approximate[*kind] += usize::from(results.approximate);
        empty += usize::from(results.hits.is_empty());
    }
    inproc.sort();
    slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
    slowest.truncate(10);

    // Through HTTP: one client (latency), then many (throughput); each on a server running open
    // (no sign-in, no audit) and on one where the client is signed in and every lookup is
    // audited (`audit.staff_lookups`): what access control costs a search.
    let (open_addr, _) = serve_http(&pool, &index, true, false).await;
    let (signed_addr, _) = serve_http(&pool, &index, false, false).await;
    let (audited_addr, audit) = serve_http(&pool, &index, false, true).await;
    let cookie = sign_in(signed_addr, &pool).await;
    let queries = Arc::new(queries);
    let rss_before_http = rss_mib();
    // Each variant replays every query ROUNDS times, the variants taking turns, so that a
    // machine getting slower or faster during the run favours none of them.
    const ROUNDS: usize = 3;
    let variants: [(&str, std::net::SocketAddr, Option<&str>); 3] = [
        ("open (no sign-in)", open_addr, None),
        ("signed in", signed_addr, Some(&cookie)),
        (
            "signed in + every lookup audited",
            audited_addr,
            Some(&cookie),
        ),
    ];
    let mut http_rows = Vec::new();
    for clients in [1, args.concurrency] {
        let mut latencies = vec![Vec::new(); variants.len()];
        let mut walls = vec![Duration::ZERO; variants.len()];
        for _ in 0..ROUNDS {
            for (v, (_, addr, cookie)) in variants.iter().enumerate() {
                let (l, wall) = replay(*addr, queries.clone(), clients, *cookie).await;
                latencies[v].extend(l);
                walls[v] += wall;
            }
        }
        for (v, (name, _, _)) in variants.iter().enumerate() {
            latencies[v].sort();
            http_rows.push((clients, *name, std::mem::take(&mut latencies[v]), walls[v]));
        }
    }
    let audited: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(&pool)
        .await
        .expect("audit count");

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
    for (clients, name, latencies, wall) in &http_rows {
        println!(
            "| HTTP, {clients} client(s), {name} ({ROUNDS} rounds) | {} | {} | {} | {} | {:.0}/s |",
            ms(percentile(latencies, 0.5)),
            ms(percentile(latencies, 0.9)),
            ms(percentile(latencies, 0.99)),
            ms(percentile(latencies, 1.0)),
            latencies.len() as f64 / wall.as_secs_f64()
        );
    }
    for rows in http_rows.chunks(variants.len()) {
        let base = percentile(&rows[0].2, 0.99).as_secs_f64();
        println!(
            "access cost at p99, {} client(s): signed in {:+.1}%, signed in + audited {:+.1}%",
            rows[0].0,
            100.0 * (percentile(&rows[1].2, 0.99).as_secs_f64() / base - 1.0),
            100.0 * (percentile(&rows[2].2, 0.99).as_secs_f64() / base - 1.0),
        );
    }
    println!(
        "audit records written: {audited} (dropped: {})",
        audit.dropped()
    );
    println!("queries with no hit: {empty} of {}", queries.len());
    println!(
        "resident memory of the benchmark process (index, server, client): {:.0} MiB before HTTP, {:.0} MiB after \
         ({:.0} MiB heap, also holding what generating and importing the company left; {:.0} MiB mapped index files)",
        rss_before_http,
        rss_mib(),
        status_mib("RssAnon:"),
        status_mib("RssFile:")
    );
    println!(
        "slowest in-process queries: {}",
        slowest
            .iter()
            .map(|(t, q)| format!("{q:?} {}", ms(*t)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!();
    println!("| in-process, by kind of query | share | p50 | p99 | typo tier ran |");
    println!("|---|---|---|---|---|");
    for (kind, name) in KINDS.iter().enumerate() {
        let mut times = std::mem::take(&mut by_kind[kind]);
        times.sort();
        println!(
            "| {name} | {:.0}% | {} | {} | {:.0}% |",
            100.0 * times.len() as f64 / mix.len() as f64,
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.99)),
            100.0 * approximate[kind] as f64 / times.len().max(1) as f64
        );
    }

    // The same queries on the same data in PostgreSQL with pg_trgm: a GIN trigram index over
    // one folded text per person, every word by ILIKE '%word%' (phone digits likewise), ranked
    // by word_similarity; and word_similarity alone (`<%`, the typo-tolerant way).
    let pg_n = args.pg_queries.min(queries.len());
    if pg_n > 0 {
        let t = Instant::now();
        pg_trgm_setup(&pool).await;
        println!();
        println!(
            "pg_trgm: extension, folded text column and GIN index built in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let subset = Arc::new(queries[..pg_n].to_vec());
        let (ours, ours_wall) = replay(open_addr, subset.clone(), args.concurrency, None).await;
        let (ilike, ilike_wall, ilike_empty) =
            pg_replay(&pool, subset.clone(), args.concurrency, PgMode::Ilike).await;
        let (similar, similar_wall, similar_empty) = pg_replay(
            &pool,
            subset.clone(),
            args.concurrency,
            PgMode::WordSimilarity,
        )
        .await;
        println!();
        println!(
            "| same {pg_n} queries, {} concurrent clients | p50 | p99 | throughput | no hit | p99 vs Switchboard |",
            args.concurrency
        );
        println!("|---|---|---|---|---|---|");
        let row = |name: &str, l: &[Duration], wall: Duration, empty: Option<usize>| {
            println!(
                "| {name} | {} | {} | {:.0}/s | {} | {:.1}× |",
                ms(percentile(l, 0.5)),
                ms(percentile(l, 0.99)),
                l.len() as f64 / wall.as_secs_f64(),
                empty.map_or("–".to_string(), |e| e.to_string()),
                percentile(l, 0.99).as_secs_f64() / percentile(&ours, 0.99).as_secs_f64()
            )
        };
        row("Switchboard over HTTP", &ours, ours_wall, None);
        row(
            "pg_trgm ILIKE per word + word_similarity order",
            &ilike,
            ilike_wall,
            Some(ilike_empty),
        );
        row(
            "pg_trgm word_similarity (<%)",
            &similar,
            similar_wall,
            Some(similar_empty),
        );
    }

    // Import → searchable: a one-person import (as from cron) while the server's indexer runs.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let indexer_task = tokio::spawn(indexer.run(Arc::new(AtomicBool::new(true)), stopped));
    let partial = ImportOptions {
        full: false,
        ..opts.clone()
    };
    let mut visible = Vec::new();
    // New people on every run, also when the data is reused.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for n in 0..20 {
        let i = format!("{run}x{n}");
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

fn import_options() -> ImportOptions {
    common::import_options("bench")
}

/// Imports the CSV file into an empty database, builds the index, re-imports the unchanged file,
/// and prints how long each step took.
async fn import_and_index(
    args: &Args,
    dir: &std::path::Path,
    csv_path: &std::path::Path,
    pool: &sqlx::PgPool,
    indexer: &mut Indexer,
) {
    // Import: read + parse + validate + diff + write, one transaction.
    let phones = PhoneNormalizer::new("US").expect("region");
    let opts = import_options();
    let t = Instant::now();
    let raw = FileSource::new(csv_path, None, Default::default())
        .read()
        .await
        .expect("read csv");
    let read = t.elapsed();
    // As `switchboard import` does a first load: indexed while PostgreSQL writes it.
    let report = sync::import_indexing(pool, raw, &phones, &opts, &ProgressBar::hidden(), indexer)
        .await
        .expect("import");
    let import = t.elapsed();
    assert_eq!(
        report.counts.rejected,
        0,
        "{:?}",
        &report.rejects[..report.rejects.len().min(3)]
    );

    let t = Instant::now();
    let indexed = indexer.catch_up().await.expect("index");
    let index_time = t.elapsed();
    let index_bytes: u64 = std::fs::read_dir(dir.join("index"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);

    // Re-import of the unchanged file.
    let t = Instant::now();
    let raw = FileSource::new(csv_path, None, Default::default())
        .read()
        .await
        .expect("read csv");
    let again = sync::import(pool, raw, &phones, &opts, &ProgressBar::hidden())
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
        "| … of which validate / compare / write + commit (indexing meanwhile) / index commit | {:.1} / {:.1} / {:.1} / {:.1} s | |",
        t.validate, t.compare, t.write, t.index
    );
    println!(
        "| index catch-up after it ({indexed} changes → tantivy) | {:.1} s | |",
        index_time.as_secs_f64(),
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
}

/// Sends every query once, spread over `concurrency` clients; returns sorted latencies and wall time.
/// Serves the search API: open (no sign-in), or closed, with or without every staff lookup audited.
async fn serve_http(
    pool: &sqlx::PgPool,
    index: &SearchIndex,
    open: bool,
    audit_staff_lookups: bool,
) -> (std::net::SocketAddr, switchboard::audit::AuditLog) {
    let mut config = switchboard::config::Config::default();
    config.access.open = open;
    config.audit.staff_lookups = audit_staff_lookups;
    // Every limit on (header timeout, request timeout, concurrency limit, per-principal rate),
    // the rate set past what the load generator — one principal, thousands of requests a
    // second — asks, so that it measures what checking costs, not refusals.
    config.access.rate_per_second = 1e9;
    config.access.rate_burst = 1e9;
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    // The writer runs until the process ends.
    std::mem::forget(_stop);
    let (audit, _task) = switchboard::audit::AuditLog::start(pool.clone(), stopped);
    let state = switchboard::state::app_state(
        &config,
        pool.clone(),
        index.clone(),
        Arc::new(AtomicBool::new(true)),
        switchboard::presence::PresenceHub::disabled(),
        audit.clone(),
        switchboard::presence::system_clock(),
    )
    .expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = switchboard::http::router(state);
    tokio::spawn(switchboard::server::serve_connections(
        listener,
        app,
        None,
        std::future::pending(),
        switchboard::server::HEADER_READ_TIMEOUT,
    ));
    (addr, audit)
}

/// A local viewer signs in; returns the session cookie.
async fn sign_in(addr: std::net::SocketAddr, pool: &sqlx::PgPool) -> String {
    let password = "bench-password-1".to_string();
    switchboard::access::users::add(
        pool,
        "bench",
        switchboard::access::Role::Viewer,
        Some(password.clone()),
    )
    .await
    .expect("user");
    let response = reqwest::Client::new()
        .post(format!("http://{addr}/api/v1/auth/login"))
        .json(&serde_json::json!({"username": "bench", "password": password}))
        .send()
        .await
        .expect("sign in");
    assert_eq!(response.status(), 200);
    let cookie = response
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_string();
    cookie
}

async fn replay(
    addr: std::net::SocketAddr,
    queries: Arc<Vec<String>>,
    concurrency: usize,
    cookie: Option<&str>,
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
        let cookie = cookie.map(str::to_string);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            for q in queries.iter().skip(worker).step_by(concurrency) {
                let url = format!("http://{addr}/api/v1/people?limit=20&q={}", urlencode(q));
                let t = Instant::now();
                let mut request = client.get(url);
                if let Some(cookie) = &cookie {
                    request = request.header("cookie", cookie);
                }
                let response = request.send().await.expect("request");
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

/// A folded text per person (name, title, department, unit, location, emails, phone digits)
/// with a GIN trigram index, in the benchmark's own database.
async fn pg_trgm_setup(pool: &sqlx::PgPool) {
    for sql in [
        "CREATE EXTENSION IF NOT EXISTS pg_trgm",
        "CREATE EXTENSION IF NOT EXISTS unaccent",
        "DROP TABLE IF EXISTS trgm_people",
        "CREATE TABLE trgm_people AS SELECT id, lower(unaccent(concat_ws(' ', display_name, \
         title, department, org_unit, location, array_to_string(emails, ' '), \
         (SELECT string_agg(replace(p->>'e164', '+', ''), ' ') FROM jsonb_array_elements(phones) p)))) \
         AS doc FROM people WHERE deleted_at IS NULL",
        "CREATE INDEX trgm_people_doc ON trgm_people USING gin (doc gin_trgm_ops)",
        "ANALYZE trgm_people",
    ] {
        sqlx::query(sql).execute(pool).await.expect("pg_trgm setup");
    }
}

#[derive(Clone, Copy)]
enum PgMode {
    Ilike,
    WordSimilarity,
}

/// The query as PostgreSQL gets it: folded words, or a phone number's digits.
fn pg_words(q: &str) -> Vec<String> {
    match switchboard::search::query::phone_digits(q) {
        Some(digits) => vec![digits],
        None => switchboard::search::fold(q),
    }
}

async fn pg_replay(
    pool: &sqlx::PgPool,
    queries: Arc<Vec<String>>,
    concurrency: usize,
    mode: PgMode,
) -> (Vec<Duration>, Duration, usize) {
    let t = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let pool = pool.clone();
        let queries = queries.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut empty = 0;
            for q in queries.iter().skip(worker).step_by(concurrency) {
                let words = pg_words(q);
                let text = words.join(" ");
                let t = Instant::now();
                let rows: Vec<(uuid::Uuid,)> = match mode {
                    PgMode::Ilike => {
                        let patterns: Vec<String> = words
                            .iter()
                            .map(|w| format!("%{}%", w.replace(['%', '_'], "")))
                            .collect();
                        sqlx::query_as(
                            "SELECT id FROM trgm_people WHERE doc ILIKE ALL($1) \
                             ORDER BY word_similarity($2, doc) DESC, id LIMIT 20",
                        )
                        .bind(&patterns)
                        .bind(&text)
                        .fetch_all(&pool)
                        .await
                        .expect("ilike")
                    }
                    PgMode::WordSimilarity => sqlx::query_as(
                        "SELECT id FROM trgm_people WHERE $1 <% doc \
                         ORDER BY word_similarity($1, doc) DESC, id LIMIT 20",
                    )
                    .bind(&text)
                    .fetch_all(&pool)
                    .await
                    .expect("word_similarity"),
                };
                latencies.push(t.elapsed());
                empty += usize::from(rows.is_empty());
            }
            (latencies, empty)
        }));
    }
    let mut latencies = Vec::new();
    let mut empty = 0;
    for task in tasks {
        let (l, e) = task.await.expect("worker");
        latencies.extend(l);
        empty += e;
    }
    let wall = t.elapsed();
    latencies.sort();
    (latencies, wall, empty)
}
