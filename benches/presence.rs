//! Presence benchmark: lookup latency for pages of 50 people from the cache, and change → SSE
//! delivery latency with N tracked people and a steady rate of webhook-driven changes.
//!
//! `cargo bench --bench presence -- [--people 10000] [--rate 100] [--seconds 20] [--clients 10]`

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use switchboard::http::router;
use switchboard::presence::{
    system_clock, BackendConfig, PersonAttrs, PresenceConfig, PresenceHub,
};
use switchboard::search::SearchIndex;
use uuid::Uuid;

const TOKEN: &str = "bench-token";

struct Args {
    people: usize,
    rate: u64,
    seconds: u64,
    clients: usize,
}

fn args() -> Args {
    let mut a = Args {
        people: 10_000,
        rate: 100,
        seconds: 20,
        clients: 10,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let value = argv.get(i + 1).and_then(|v| v.parse::<u64>().ok());
        match (argv[i].as_str(), value) {
            ("--people", Some(v)) => a.people = v as usize,
            ("--rate", Some(v)) => a.rate = v.max(1),
            ("--seconds", Some(v)) => a.seconds = v.max(1),
            ("--clients", Some(v)) => a.clients = (v as usize).max(1),
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

fn handle(n: usize) -> String {
    format!("sip:user{n}@pbx.example.com")
}

const STATES: &[&str] = &[
    "available",
    "busy",
    "away",
    "do_not_disturb",
    "be_right_back",
];

#[tokio::main]
async fn main() {
    let args = args();
    let mut pbx = BackendConfig::new("pbx", "webhook");
    pbx.token = Some(TOKEN.into());
    let hub = PresenceHub::from_config(
        &PresenceConfig {
            backends: vec![pbx],
            ..Default::default()
        },
        system_clock(),
    )
    .expect("hub");
    let ids: Vec<Uuid> = (0..args.people)
        .map(|n| Uuid::from_u128(n as u128 + 1))
        .collect();
    let people: Vec<PersonAttrs> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| PersonAttrs {
            id: *id,
            im: vec![handle(n)],
            ..Default::default()
        })
        .collect();
    hub.set_people(&people);
    hub.start();
    // Everyone has a state.
    for chunk in (0..args.people).collect::<Vec<_>>().chunks(1000) {
        let events = chunk
            .iter()
            .map(|n| {
                serde_json::from_value(serde_json::json!({
                    "handle": handle(*n), "availability": STATES[n % STATES.len()]
                }))
                .expect("event")
            })
            .collect();
        hub.ingest_webhook(TOKEN, events).expect("seed");
    }
    println!(
        "presence benchmark: {} tracked people, {} changes/s for {} s, {} SSE clients",
        args.people, args.rate, args.seconds, args.clients
    );

    // 1. Lookup of a page of 50, in-process, from the cache.
    let mut rng = SmallRng::seed_from_u64(7);
    let mut pages = Vec::with_capacity(20_000);
    for _ in 0..20_000 {
        let page: Vec<Uuid> = (0..50)
            .map(|_| ids[rng.random_range(0..ids.len())])
            .collect();
        let t = Instant::now();
        let merged: usize = page.iter().map(|id| hub.lookup(*id).channels.len()).sum();
        pages.push(t.elapsed());
        assert_eq!(merged, 50);
    }
    pages.sort();
    println!(
        "lookup 50 people in-process: p50 {}  p99 {}",
        ms(percentile(&pages, 0.5)),
        ms(percentile(&pages, 0.99))
    );

    // The HTTP server: presence routes only need the hub (the pool is never connected).
    let dir = tempfile::tempdir().expect("tempdir");
    let index = SearchIndex::open(&dir.path().join("index")).expect("index");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .connect_lazy("postgres://unused@localhost/unused")
        .expect("lazy pool");
    let mut config = switchboard::config::Config::default();
    config.access.open = true;
    config.access.rate_per_second = 0.0;
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let (audit, _writer) = switchboard::audit::AuditLog::start(pool.clone(), stopped);
    let app = router(
        switchboard::state::app_state(
            &config,
            pool,
            index,
            Arc::new(std::sync::atomic::AtomicBool::new(true)),
            hub.clone(),
            audit,
            switchboard::presence::system_clock(),
        )
        .expect("state"),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::new();

    // 2. Lookup of a page of 50 over HTTP.
    let mut http = Vec::with_capacity(2_000);
    for _ in 0..2_000 {
        let page: Vec<String> = (0..50)
            .map(|_| ids[rng.random_range(0..ids.len())].to_string())
            .collect();
        let url = format!("http://{addr}/api/v1/presence?ids={}", page.join(","));
        let t = Instant::now();
        let body = client
            .get(&url)
            .send()
            .await
            .expect("get")
            .bytes()
            .await
            .expect("body");
        http.push(t.elapsed());
        assert!(!body.is_empty());
    }
    http.sort();
    println!(
        "lookup 50 people over HTTP:  p50 {}  p99 {}",
        ms(percentile(&http, 0.5)),
        ms(percentile(&http, 0.99))
    );

    // 3. Change → SSE delivery: clients watch everyone between them; each change carries its
    // sequence number in the status text.
    let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let per_client = args.people.div_ceil(args.clients).min(1000);
    let mut readers = Vec::new();
    for chunk in ids.chunks(per_client).take(args.clients) {
        let url = format!(
            "http://{addr}/api/v1/presence/stream?ids={}",
            chunk
                .iter()
                .map(Uuid::to_string)
                .collect::<Vec<_>>()
                .join(",")
        );
        let mut response = client.get(&url).send().await.expect("stream");
        let (sent, latencies) = (sent.clone(), latencies.clone());
        readers.push(tokio::spawn(async move {
            let mut buffer = String::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                let now = Instant::now();
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let frame: String = buffer.drain(..end + 2).collect();
                    let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data:")) else {
                        continue;
                    };
                    let Ok(value) = serde_json::from_str::<serde_json::Value>(data.trim()) else {
                        continue;
                    };
                    let seq = value["presence"]["status_message"]
                        .as_str()
                        .and_then(|s| s.strip_prefix("seq "))
                        .and_then(|s| s.parse::<u64>().ok());
                    if let Some(seq) = seq {
                        if let Some(at) = sent.lock().expect("lock").get(&seq) {
                            latencies.lock().expect("lock").push(now - *at);
                        }
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let total = args.rate * args.seconds;
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let start = tokio::time::Instant::now();
    for seq in 0..total {
        tokio::time::sleep_until(start + interval * seq as u32).await;
        let n = rng.random_range(0..args.people);
        let body = serde_json::json!({"events": [{
            "handle": handle(n),
            "availability": STATES[rng.random_range(0..STATES.len())],
            "status_message": format!("seq {seq}"),
        }]});
        sent.lock().expect("lock").insert(seq, Instant::now());
        let client = client.clone();
        tokio::spawn(async move {
            let _ = client
                .post(format!("http://{addr}/api/v1/presence/events"))
                .bearer_auth(TOKEN)
                .json(&body)
                .send()
                .await;
        });
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut delivered = latencies.lock().expect("lock").clone();
    delivered.sort();
    println!(
        "change -> SSE delivery:      p50 {}  p99 {}  max {}  ({} of {} changes delivered, {:.0} changes/s sent)",
        ms(percentile(&delivered, 0.5)),
        ms(percentile(&delivered, 0.99)),
        ms(delivered.last().copied().unwrap_or_default()),
        delivered.len(),
        total,
        total as f64 / (start.elapsed().as_secs_f64() - 2.0)
    );
    for r in readers {
        r.abort();
    }
    hub.shutdown().await;
}
