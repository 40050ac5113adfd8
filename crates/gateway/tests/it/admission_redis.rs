//! Admission with shared rate limits AND a shared budget (issue 5, item 7): through the real
//! router and a counting relay to the real Redis at `TOLLGATE_TEST_REDIS_URL`, a request
//! costs one round trip to admit (rate limits and budget reservation in one script) and one
//! to settle; a budget refusal takes no rate token, and a rate refusal holds no budget.
//!
//! Without Redis these tests say why and pass, unless `CI` is set: then they fail.

use std::sync::Arc;

use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use tollgate_testkit::services;

use crate::harness::{Harness, user};

/// The test Redis's URL, or None (with a message) outside CI.
fn redis_url() -> Option<String> {
    services::url(services::REDIS_URL_ENV, "the shared admission tests")
}

/// What the gateway sent through the relay, one buffer per connection.
type Sent = Arc<Mutex<Vec<Arc<Mutex<Vec<u8>>>>>>;

/// A TCP relay to the test Redis that keeps every byte the gateway sends, per connection,
/// so a test can count the scripts it ran.
struct Relay {
    url: String,
    sent: Sent,
    accept: tokio::task::AbortHandle,
}

impl Relay {
    async fn start(redis_url: &str) -> Self {
        let rest = redis_url.trim_start_matches("redis://");
        let authority = rest.split('/').next().unwrap_or(rest);
        let target = authority.rsplit('@').next().unwrap_or(authority).to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}", listener.local_addr().unwrap());
        let sent: Sent = Arc::default();
        let log = sent.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&target).await else {
                    continue;
                };
                let bytes: Arc<Mutex<Vec<u8>>> = Arc::default();
                log.lock().push(bytes.clone());
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                });
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    // Kept before it is passed on, so that it is counted before any answer
                    // to it can reach the gateway.
                    while let Ok(n) = cr.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        bytes.lock().extend_from_slice(&buf[..n]);
                        if sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        })
        .abort_handle();
        Self { url, sent, accept }
    }

    /// How many times `needle` was sent so far, over every connection.
    fn count(&self, needle: &[u8]) -> usize {
        self.sent
            .lock()
            .iter()
            .map(|c| {
                c.lock()
                    .windows(needle.len())
                    .filter(|w| *w == needle)
                    .count()
            })
            .sum()
    }

    /// Scripts run so far (EVALSHA or EVAL commands): one per round trip.
    fn scripts(&self) -> usize {
        self.count(b"\r\nEVALSHA\r\n") + self.count(b"\r\nEVAL\r\n")
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// A gateway on the relay, its limits and budgets under a namespace of their own.
async fn gateway(relay: &Relay, ns: &str, budget_usd: f64) -> Harness {
    Harness::start_extra(&format!(
        "[prices]\ngpt-mock = {{ input = 1.0, output = 1.0 }}\n[limits]\nredis = \"{}\"\nredis_namespace = \"{ns}\"\n[[budgets]]\nscope = \"global\"\nperiod = \"day\"\nlimit_usd = {budget_usd:?}\n",
        relay.url
    ))
    .await
}

async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    let cfg = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(std::time::Duration::from_secs(30)))
        .set_response_timeout(Some(std::time::Duration::from_secs(30)));
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection_with_config(&cfg)
        .await
        .unwrap()
}

/// Every key under `tollgate:v1:NS:PART*`.
async fn keys(c: &mut redis::aio::MultiplexedConnection, ns: &str, part: &str) -> Vec<String> {
    redis::cmd("KEYS")
        .arg(format!("tollgate:v1:{ns}:{part}*"))
        .query_async(c)
        .await
        .unwrap()
}

async fn forget(c: &mut redis::aio::MultiplexedConnection, ns: &str) {
    let all = keys(c, ns, "").await;
    if !all.is_empty() {
        let _: i64 = redis::cmd("DEL").arg(all).query_async(c).await.unwrap();
    }
}

/// The SHA1 Redis knows `script` by.
async fn sha(c: &mut redis::aio::MultiplexedConnection, script: &str) -> String {
    redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(script)
        .query_async(c)
        .await
        .unwrap()
}

fn namespace() -> String {
    format!("adm-{:016x}", rand::random::<u64>())
}

/// The global daily budget's counters: spent, reserved, and how many holds are recorded.
async fn budget_counters(
    c: &mut redis::aio::MultiplexedConnection,
    ns: &str,
) -> (Option<i64>, i64, usize) {
    let hashes = keys(c, ns, "g:global/day:").await;
    let Some(h) = hashes.first() else {
        return (None, 0, 0);
    };
    let all: std::collections::HashMap<String, String> =
        redis::cmd("HGETALL").arg(h).query_async(c).await.unwrap();
    (
        all.get("spent").and_then(|v| v.parse().ok()),
        all.get("reserved")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        all.keys().filter(|k| k.starts_with("a:")).count(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_round_trip_admits_and_one_settles_with_limits_and_a_budget() {
    let Some(redis) = redis_url() else {
        return;
    };
    let mut c = redis_conn(&redis).await;
    let admit_sha = sha(
        &mut c,
        tollgate_gateway::budget::shared::ADMIT_RESERVE_SCRIPT,
    )
    .await;
    let settle_sha = sha(&mut c, tollgate_gateway::budget::shared::SETTLE_BOTH_SCRIPT).await;
    let relay = Relay::start(&redis).await;
    let ns = namespace();
    let h = gateway(&relay, &ns, 10.0).await;
    // `tpm`: a key limit of 300 tokens per minute, so tokens are reserved and settled.
    // The first request seeds the budget's counters (a second round trip, by design).
    // Small answers, so that both calls fit the 300 tokens together.
    let small = |text: &str| {
        let mut b = user("tpm", text);
        b["max_tokens"] = json!(10);
        b
    };
    let (status, body) = h.json("/v1/chat/completions", &small("hi")).await;
    assert_eq!(status, 200, "{body}");
    h.gw.budgets.idle().await;

    assert_eq!(
        relay.count(admit_sha.as_bytes()),
        2,
        "an unseeded budget: the script answers which need a seed, and is called again"
    );
    let before = relay.scripts();
    let (a0, s0) = (
        relay.count(admit_sha.as_bytes()),
        relay.count(settle_sha.as_bytes()),
    );
    let r = h
        .post("/v1/chat/completions", &small("hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-ratelimit-limit-tokens"));
    let _: Value = r.json().await.unwrap();
    h.gw.budgets.idle().await;
    assert_eq!(
        relay.count(admit_sha.as_bytes()) - a0,
        1,
        "admission: one script"
    );
    assert_eq!(
        relay.count(settle_sha.as_bytes()) - s0,
        1,
        "settlement: one script"
    );
    assert_eq!(relay.scripts() - before, 2, "two round trips in all");
    // Both were counted: the call's cost is spent, nothing stays reserved, and the tokens
    // were settled (the bucket is below full but not by the whole reservation).
    let (spent, reserved, holds) = budget_counters(&mut c, &ns).await;
    assert!(spent.unwrap() > 0);
    assert_eq!((reserved, holds), (0, 0));
    forget(&mut c, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_refusal_takes_no_rate_token_and_a_rate_refusal_holds_no_budget() {
    let Some(redis) = redis_url() else {
        return;
    };
    let mut c = redis_conn(&redis).await;
    let relay = Relay::start(&redis).await;

    // A budget with no room: refused with budget_exceeded, and the route's rpm bucket was
    // never touched.
    let ns = namespace();
    let h = gateway(&relay, &ns, 0.000001).await;
    let mut b = user("limited", "hi");
    b["max_tokens"] = json!(100_000);
    let (status, body) = h.json("/v1/chat/completions", &b).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "budget_exceeded", "{body}");
    assert!(
        keys(&mut c, &ns, "b:").await.is_empty(),
        "a rate token was taken"
    );
    assert_eq!(h.mock.count("gpt-mock"), 0);
    forget(&mut c, &ns).await;

    // A rate refusal (route limit of 3 per minute): the 4th request holds no budget.
    let ns = namespace();
    let h = gateway(&relay, &ns, 10.0).await;
    for _ in 0..3 {
        let (status, body) = h.json("/v1/chat/completions", &user("limited", "hi")).await;
        assert_eq!(status, 200, "{body}");
    }
    h.gw.budgets.idle().await;
    let (spent, _, _) = budget_counters(&mut c, &ns).await;
    let before = relay.scripts();
    let r = h
        .post("/v1/chat/completions", &user("limited", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
    // Nothing to settle after a refusal: the budget hold was given back in the same script.
    h.gw.budgets.idle().await;
    assert_eq!(relay.scripts() - before, 1, "one round trip, no settlement");
    assert_eq!(budget_counters(&mut c, &ns).await, (spent, 0, 0));
    let holds: i64 = redis::cmd("ZCARD")
        .arg(keys(&mut c, &ns, "gr:global/day:").await)
        .query_async(&mut c)
        .await
        .unwrap_or(0);
    assert_eq!(holds, 0);
    assert_eq!(h.mock.count("gpt-mock"), 3);
    forget(&mut c, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_with_limits_and_a_budget_follows_the_policy() {
    // Nothing listens on port 1: Redis "down".
    for (policy, code) in [("fail_closed", 503), ("local", 200)] {
        let h = Harness::start_extra(&format!(
            "[prices]\ngpt-mock = {{ input = 1.0, output = 1.0 }}\n[limits]\nredis = \"redis://127.0.0.1:1\"\nredis_unavailable = \"{policy}\"\n[[budgets]]\nscope = \"global\"\nperiod = \"day\"\nlimit_usd = 10.0\n"
        ))
        .await;
        let (status, body) = h.json("/v1/chat/completions", &user("limited", "hi")).await;
        assert_eq!(status, code, "{policy}: {body}");
        if policy == "fail_closed" {
            let msg = crate::harness::error_message(&body);
            assert!(
                msg.contains("are unavailable") && msg.contains("fail_closed"),
                "{msg}"
            );
            continue;
        }
        // `local`: this instance's limiter (3 per minute on the route) and the store's budget.
        for _ in 0..2 {
            let (status, body) = h.json("/v1/chat/completions", &user("limited", "hi")).await;
            assert_eq!(status, 200, "{body}");
        }
        let (status, body) = h.json("/v1/chat/completions", &user("limited", "hi")).await;
        assert_eq!(status, 429, "{body}");
        assert_eq!(body["error"]["code"], "rate_limit_exceeded", "{body}");
        h.gw.budgets.idle().await;
        let spent = h.gw.budgets.status().await.unwrap()[0].spent_usd;
        assert!(spent > 0.0, "the calls were counted in the store: {spent}");
    }
}
