//! Cost of the limits stage (issue 5): one admission decision of the local limiter over the
//! four subjects a request has (key, team, client IP, route; goal <= 5 µs including the
//! release when the admission drops), and one request's round trip to the shared limiter in
//! Redis (admission script; the settle/release call is fire-and-forget and not waited for).
//!
//! The Redis bench runs against `TOLLGATE_TEST_REDIS_URL` and is skipped with a message
//! without it; its keys live under a namespace of their own and expire by themselves.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "criterion_group! generates undocumented items; a bench may unwrap"
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tokio::time::Instant;
use tollgate_gateway::config::limits::Rule;
use tollgate_gateway::limits::shared::{RedisLimiter, RedisUnavailable};
use tollgate_gateway::limits::{Limiter, RateLimiter, Scope, Subject};

/// Limits high enough never to refuse during a bench, so every iteration is a full
/// admission (refill, check, take) and a release.
fn subjects() -> Vec<Subject> {
    let rule = Rule {
        rpm: Some(1_000_000_000),
        tpm: Some(1_000_000_000_000),
        concurrency: Some(1_000_000),
    };
    [
        (Scope::Key, "key_01HZX3"),
        (Scope::Team, "search"),
        (Scope::Ip, "203.0.113.7"),
        (Scope::Route, "gpt-4o"),
    ]
    .into_iter()
    .map(|(scope, id)| Subject {
        scope,
        id: id.into(),
        rule,
    })
    .collect()
}

fn local(c: &mut Criterion) {
    let l = Limiter::new();
    let s = subjects();
    c.bench_function("limits/local admit+release (4 subjects)", |b| {
        b.iter(|| {
            let mut a = l.admit(black_box(&s), 1_500, Instant::now()).unwrap();
            a.settle(700);
            drop(a);
        })
    });
}

fn redis(c: &mut Criterion) {
    let Some(url) = std::env::var("TOLLGATE_TEST_REDIS_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("skipping the Redis limiter bench: TOLLGATE_TEST_REDIS_URL is not set");
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ns = format!("bench-{}", std::process::id());
    let l = RedisLimiter::new(
        &url,
        Some(&ns),
        RedisUnavailable::FailClosed,
        Limiter::new(),
    )
    .unwrap();
    let s = subjects();
    // Connect (and load the script) outside the measurement.
    rt.block_on(l.admit(&s, 0, Instant::now())).unwrap();
    c.bench_function("limits/redis admit round trip (4 subjects)", |b| {
        b.iter(|| {
            let a = rt.block_on(l.admit(black_box(&s), 1_500, Instant::now()));
            drop(a.unwrap());
        })
    });
    // Let the fire-and-forget releases run before the runtime goes.
    rt.block_on(async { tokio::time::sleep(std::time::Duration::from_millis(200)).await });
}

criterion_group!(benches, local, redis);
criterion_main!(benches);
