//! Two `tollgate serve` processes sharing one Postgres schema (keys, switches, audit) and one
//! Redis (limit counters), as a scaled-out deployment runs: a route limit of N admits N in
//! total across both, a key revoked or switched off from the CLI is refused by both within a
//! second, and `audit verify` passes with both instances' chains.
//!
//! Needs `TOLLGATE_TEST_POSTGRES_URL` and `TOLLGATE_TEST_REDIS_URL` (`.ci/run` sets both);
//! without them the test says why and passes, unless `CI` is set: then it fails.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_testkit::{MOCK_KEY, MockUpstream};

use crate::audit::admin_cli;
use crate::server::{Server, cli, review_toml};

const POSTGRES_URL_ENV: &str = "TOLLGATE_TEST_POSTGRES_URL";
const REDIS_URL_ENV: &str = "TOLLGATE_TEST_REDIS_URL";
/// The route limit shared by both instances: with a refill of one per 60/N s, the burst
/// below finishes long before a single request is refilled.
const ROUTE_RPM: u64 = 10;
/// Requests sent at once, half to each instance.
const BURST: usize = 40;
/// How soon a revocation or a kill switch must reach every instance.
const PROPAGATION: Duration = Duration::from_secs(1);

fn ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The services' URLs, or None (with a message) outside CI.
fn services() -> Option<(String, String)> {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    match (get(POSTGRES_URL_ENV), get(REDIS_URL_ENV)) {
        (Some(pg), Some(redis)) => Some((pg, redis)),
        _ => {
            let why = format!("{POSTGRES_URL_ENV} and {REDIS_URL_ENV} must both be set");
            assert!(
                !ci(),
                "CI is set, so the scale-out test must run, but {why} (.ci/run starts both services)"
            );
            eprintln!("skipping the scale-out test: {why}");
            None
        }
    }
}

/// A fresh schema in the test database, dropped when this goes out of scope.
struct Schema {
    url: String,
    name: String,
}

impl Schema {
    async fn create(url: &str) -> Self {
        use sqlx::Connection;
        let name = format!("t_{:016x}", rand_u64());
        let mut c = tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(url))
            .await
            .expect("Postgres answers within 5 s")
            .unwrap_or_else(|e| panic!("{POSTGRES_URL_ENV}: {e}"));
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
        Self {
            url: url.to_owned(),
            name,
        }
    }

    /// The `--store` location confining the store to this schema.
    fn location(&self) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-c%20search_path%3D{}", self.url, self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        // Drop cannot await: a thread with its own runtime drops the schema.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(Ok(mut c)) =
                    tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(&url))
                        .await
                {
                    let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                        .execute(&mut c)
                        .await;
                    let _ = c.close().await;
                }
            });
        })
        .join();
    }
}

fn rand_u64() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64;
    nanos ^ (u64::from(std::process::id()) << 32)
}

async fn status(url: &str, key: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Poll both servers until `key` gets `want` from each; panics after [`PROPAGATION`].
async fn refused_by_both(servers: &[&Server; 2], key: &str, want: u16, what: &str) {
    let t0 = Instant::now();
    for s in servers {
        loop {
            let got = status(&s.url, key).await;
            if got == want {
                break;
            }
            assert!(
                t0.elapsed() < PROPAGATION,
                "{what}: {} still answers {got} after {:?}",
                s.url,
                t0.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// A CLI command on the shared store (`--store`, `--master-key-file`), optionally as `token`.
fn run(dir: &Path, store: &[&str], token: Option<&str>, args: &[&str]) -> (i32, String, String) {
    let mut all: Vec<&str> = store.to_vec();
    all.extend_from_slice(args);
    admin_cli(dir, token, &all)
}

fn create_key(dir: &Path, store: &[&str], owner: &str, name: &str) -> (String, String) {
    let (code, out, err) = run(
        dir,
        store,
        Some(owner),
        &["keys", "create", "--name", name, "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    (
        v["key"].as_str().unwrap().to_owned(),
        v["id"].as_str().unwrap().to_owned(),
    )
}

fn instance(data: &Path) -> String {
    std::fs::read_to_string(data.join("instance.id"))
        .unwrap()
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_share_limits_revocations_switches_and_the_audit_trail() {
    let Some((pg, redis)) = services() else {
        return;
    };
    let schema = Schema::create(&pg).await;
    let mock = MockUpstream::start().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let location = schema.location();

    // `init` on the shared store: the owner credential lands in Postgres, the master key in
    // the project's data directory, from where both instances read it.
    let (code, out, err) = cli(tmp.path(), &["--store", &location, "init", "proj"], None);
    assert_eq!(code, 0, "{err}");
    let owner = out
        .lines()
        .skip_while(|l| !l.contains("It is shown only this once:"))
        .skip(1)
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap()
        .to_owned();
    let dir: PathBuf = tmp.path().join("proj");
    let master = dir.join("tollgate-data").join("master.key");
    let master = master.to_str().unwrap().to_owned();
    let store = [
        "--store",
        location.as_str(),
        "--master-key-file",
        master.as_str(),
    ];
    std::fs::write(
        dir.join("tollgate.toml"),
        format!(
            r#"
[storage]
data_dir = "tollgate-data"

[limits]
redis_namespace = "{ns}"

[providers.oa]
kind = "openai"
base_url = "{openai}"
api_key = "keystore://mock"
retry_backoff = "5ms"
[providers.oa.review]
{review}

[routes.gpt]
targets = [{{ provider = "oa", model = "gpt-mock" }}]
[routes.gpt.limits]
route = {{ rpm = {ROUTE_RPM} }}
"#,
            ns = schema.name.replace('_', "-"),
            openai = mock.openai_base(),
            review = review_toml(),
        ),
    )
    .unwrap();
    let mut args = store.to_vec();
    args.extend_from_slice(&["secrets", "set", "mock"]);
    let (code, _, err) = cli(&dir, &args, Some(&format!("{MOCK_KEY}\n")));
    assert_eq!(code, 0, "{err}");
    let (load, _) = create_key(&dir, &store, &owner, "load");
    let (revoked, revoked_id) = create_key(&dir, &store, &owner, "to-revoke");
    let (killed, killed_id) = create_key(&dir, &store, &owner, "to-kill");

    let data_a = tmp.path().join("data-a");
    let data_b = tmp.path().join("data-b");
    let serve = |data: &Path| {
        let mut a = store.to_vec();
        let d = data.to_str().unwrap().to_owned();
        a.extend_from_slice(&["--redis", redis.as_str(), "--data-dir"]);
        let mut a: Vec<String> = a.into_iter().map(str::to_owned).collect();
        a.push(d);
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        Server::start(&dir, &refs)
    };
    let a = serve(&data_a);
    let b = serve(&data_b);
    for s in [&a, &b] {
        let ready: Value = reqwest::get(format!("{}/readyz", s.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(ready["status"], "ready", "{ready}");
    }

    // A route limit of N admits N in total under a burst across both instances.
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..BURST {
        let url = if i % 2 == 0 {
            a.url.clone()
        } else {
            b.url.clone()
        };
        let key = load.clone();
        tasks.push(tokio::spawn(async move { status(&url, &key).await }));
    }
    let mut ok = [0usize; 2];
    let mut refused = [0usize; 2];
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            200 => ok[i % 2] += 1,
            429 => refused[i % 2] += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    let limited = refused[0] + refused[1];
    let took = t0.elapsed();
    assert!(
        took < Duration::from_secs(60 / ROUTE_RPM),
        "the burst took {took:?}, long enough for a refill; the count below would be off"
    );
    assert_eq!(
        ok[0] + ok[1],
        ROUTE_RPM as usize,
        "admitted {ok:?} (instance a, b), refused {limited}"
    );
    assert_eq!(limited, BURST - ROUTE_RPM as usize);
    // Which instance wins the race for the shared budget varies (one may take all N); what
    // matters is that both answered from the one shared count: together exactly N, and each
    // instance answered its half of the burst, so neither admitted N on its own.
    assert_eq!(
        ok[0] + refused[0],
        BURST / 2,
        "instance a answered its half"
    );
    assert_eq!(
        ok[1] + refused[1],
        BURST - BURST / 2,
        "instance b answered its half"
    );

    // The route is spent for a while, but authentication (401) and kill switches (403) come
    // before the limits, so the refusals below are the ones under test.
    let (code, _, err) = run(&dir, &store, Some(&owner), &["keys", "revoke", &revoked_id]);
    assert_eq!(code, 0, "{err}");
    refused_by_both(&[&a, &b], &revoked, 401, "revoked key").await;

    let (code, _, err) = run(
        &dir,
        &store,
        Some(&owner),
        &["kill", "key", &killed_id, "--reason", "scale-out drill"],
    );
    assert_eq!(code, 0, "{err}");
    refused_by_both(&[&a, &b], &killed, 403, "switched-off key").await;

    // Both instances wrote their own chain into the one store, and it verifies.
    let (ia, ib) = (instance(&data_a), instance(&data_b));
    assert_ne!(ia, ib);
    drop(a);
    drop(b);
    let mut args = store.to_vec();
    args.extend_from_slice(&["audit", "verify", "--json"]);
    let (code, out, err) = cli(&dir, &args, None);
    assert_eq!(code, 0, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let chains = report["chains"].as_array().unwrap();
    for id in [&ia, &ib] {
        let c = chains
            .iter()
            .find(|c| c["instance"] == id.as_str())
            .unwrap_or_else(|| panic!("no chain {id} in {report}"));
        assert!(c["records"].as_u64().unwrap_or(0) > 0, "{c}");
    }
}

/// Nothing listens here: a Redis that is down.
const CLOSED_REDIS: &str = "redis://127.0.0.1:1";

#[tokio::test(flavor = "multi_thread")]
async fn redis_down_is_refused_or_degraded_as_configured_and_alerted() {
    let mock = MockUpstream::start().await.unwrap();
    for (policy, ready_code, ready_status, call_code) in [
        ("fail_closed", 503, "unavailable", 503),
        ("local", 200, "degraded", 200),
    ] {
        let p = crate::audit::project(
            &mock,
            &format!(
                "[routes.gpt.limits]\nroute = {{ rpm = 100 }}\n[limits]\nredis_unavailable = \"{policy}\"\n"
            ),
        );
        let (key, _) = crate::server::create_key(&p.dir, &[]);
        let server = Server::start(&p.dir, &["--redis", CLOSED_REDIS]);
        let alert = server.wait_for_line(|l| {
            l.contains("tollgate::alert") && l.contains("shared rate limits unavailable")
        });
        assert!(alert.contains(policy), "{alert}");
        let resp = reqwest::get(format!("{}/readyz", server.url))
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), ready_code, "{policy}");
        let ready: Value = resp.json().await.unwrap();
        assert_eq!(ready["status"], ready_status, "{policy}: {ready}");
        let reason = ready["reason"].as_str().unwrap();
        assert!(
            reason.contains("Redis at redis://127.0.0.1:1 is unreachable")
                && reason.contains(policy),
            "{reason}"
        );
        let resp = reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", server.url))
            .bearer_auth(&key)
            .json(&json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), call_code, "{policy}");
        if call_code == 503 {
            let body: Value = resp.json().await.unwrap();
            let msg = body["error"]["message"].as_str().unwrap_or_default();
            assert!(msg.contains("shared rate limits are unavailable"), "{body}");
        }
    }
}
