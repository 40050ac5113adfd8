//! Open-loop load generator for `bench/run.sh`: sends requests at a fixed rate for a fixed
//! time and reports latency percentiles and throughput.
//!
//! Two latencies are kept per request: from the moment it was sent (`p50_ms`…), and from its
//! *scheduled* start (`sched_p50_ms`…), so a stalled server cannot hide its queueing delay (no
//! coordinated omission). Tokio's timer ticks in milliseconds, so the scheduled figures carry
//! up to a millisecond of timer slack on both sides of a comparison. Requests and time are bounded by the
//! arguments; it only ever talks to the URL it is given.
//!
//! Usage: `tollgate-loadgen URL RATE_PER_SEC SECONDS [BEARER_KEY] [BODY]`

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::{Instant, MissedTickBehavior};

/// Longest run accepted, so a typo cannot start an endless load.
const MAX_SECONDS: u64 = 120;
/// Highest rate accepted.
const MAX_RATE: u64 = 20_000;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: tollgate-loadgen URL RATE_PER_SEC SECONDS [BEARER_KEY] [BODY]");
        std::process::exit(2);
    }
    let url = args[1].clone();
    let rate: u64 = args[2].parse().unwrap_or(0).min(MAX_RATE);
    let seconds: u64 = args[3].parse().unwrap_or(0).min(MAX_SECONDS);
    if rate == 0 || seconds == 0 {
        eprintln!("rate and seconds must be positive");
        std::process::exit(2);
    }
    let key = args.get(4).cloned().filter(|k| !k.is_empty());
    let body = args.get(5).cloned().unwrap_or_else(|| {
        r#"{"model":"bench","messages":[{"role":"user","content":"Say hello"}]}"#.to_owned()
    });
    let client = match reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .tcp_nodelay(true)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot build client: {e}");
            std::process::exit(2);
        }
    };
    let latencies = Arc::new(Mutex::new(Vec::with_capacity((rate * seconds) as usize)));
    let errors = Arc::new(Mutex::new(0u64));
    let total = rate * seconds;
    let mut tick = tokio::time::interval(Duration::from_nanos(1_000_000_000 / rate));
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let scheduled = tick.tick().await;
        let (client, url, body, key) = (client.clone(), url.clone(), body.clone(), key.clone());
        let (latencies, errors) = (latencies.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let mut rb = client
                .post(&url)
                .header("content-type", "application/json")
                .body(body);
            if let Some(k) = key {
                rb = rb.bearer_auth(k);
            }
            let ok = match tokio::time::timeout(Duration::from_secs(10), rb.send()).await {
                Ok(Ok(r)) => {
                    let good = r.status().is_success();
                    good && r.bytes().await.is_ok()
                }
                _ => false,
            };
            let ms = sent.elapsed().as_secs_f64() * 1000.0;
            let sched_ms = scheduled.elapsed().as_secs_f64() * 1000.0;
            if ok {
                latencies.lock().push((ms, sched_ms));
            } else {
                *errors.lock() += 1;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let pairs = latencies.lock().clone();
    let mut l: Vec<f64> = pairs.iter().map(|p| p.0).collect();
    let mut s: Vec<f64> = pairs.iter().map(|p| p.1).collect();
    l.sort_by(f64::total_cmp);
    s.sort_by(f64::total_cmp);
    let errors = *errors.lock();
    println!(
        "{{\"url\":\"{url}\",\"rate\":{rate},\"requests\":{total},\"ok\":{},\"errors\":{errors},\"throughput_rps\":{:.1},\"p50_ms\":{:.3},\"p90_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3},\"sched_p50_ms\":{:.3},\"sched_p99_ms\":{:.3}}}",
        l.len(),
        l.len() as f64 / elapsed,
        percentile(&l, 0.50),
        percentile(&l, 0.90),
        percentile(&l, 0.99),
        l.last().copied().unwrap_or(f64::NAN),
        percentile(&s, 0.50),
        percentile(&s, 0.99),
    );
}
