//! Two `tollgate serve` processes sharing one Postgres schema (keys, switches, audit, budgets,
//! alerts) and one Redis (limit, abuse and budget counters), as a scaled-out deployment runs: a
//! route limit of N admits N in total across both, a budget is never overshot by concurrent
//! calls on both (its reservations in Redis, its spend recorded in Postgres), a key revoked or switched off from the CLI is refused by both within a second,
//! abuse counted on both suspends a key everywhere with one alert, and `audit verify` passes
//! with both instances' chains.
//!
//! Needs `TOLLGATE_TEST_POSTGRES_URL` and `TOLLGATE_TEST_REDIS_URL` (`.ci/run` sets both);
//! without them the test says why and passes, unless `CI` is set: then it fails.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_guard::cost::{Price, PriceTable};
use tollgate_store::budget::usd_to_nanos;
use tollgate_testkit::{MOCK_KEY, MockUpstream};

use crate::audit::admin_cli;
use tollgate_testkit::services::{POSTGRES_URL_ENV, REDIS_URL_ENV};

use crate::server::{Server, cli, review_toml};

/// The route limit shared by both instances: with a refill of one per 60/N s, the burst
/// below finishes long before a single request is refilled (15 s: the burst must finish
/// within it even on a loaded machine, where it has taken over 6 s).
const ROUTE_RPM: u64 = 4;
/// Requests sent at once, half to each instance.
const BURST: usize = 40;
/// How soon a revocation or a kill switch must reach every instance.
const PROPAGATION: Duration = Duration::from_secs(1);

/// The services' URLs, or None (with a message) outside CI.
fn services() -> Option<(String, String)> {
    use tollgate_testkit::services::url;
    let what = "the scale-out test";
    Some((url(POSTGRES_URL_ENV, what)?, url(REDIS_URL_ENV, what)?))
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

fn instance(data: &Path) -> String {
    std::fs::read_to_string(data.join("instance.id"))
        .unwrap()
        .trim()
        .to_owned()
}

/// A scaled-out deployment: one Postgres schema, one Redis namespace, two `tollgate serve`
/// processes on the project in `dir`, whose config is the shared part below plus `extra`.
struct Cluster {
    a: Server,
    b: Server,
    data: [PathBuf; 2],
    dir: PathBuf,
    owner: String,
    location: String,
    master: String,
    schema: Schema,
    _mock: MockUpstream,
    _tmp: tempfile::TempDir,
}

impl Cluster {
    async fn start(pg: &str, redis: &str, extra: &str) -> Self {
        let schema = Schema::create(pg).await;
        let mock = MockUpstream::start().await.unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let location = schema.location();

        // `init` on the shared store: the owner credential lands in Postgres, the master key
        // in the project's data directory, from where both instances read it.
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
{extra}
"#,
                ns = schema.name.replace('_', "-"),
                openai = mock.openai_base(),
                review = review_toml(),
            ),
        )
        .unwrap();
        let store = [
            "--store",
            location.as_str(),
            "--master-key-file",
            master.as_str(),
        ];
        let mut args: Vec<&str> = store.to_vec();
        args.extend_from_slice(&["secrets", "set", "mock"]);
        let (code, _, err) = cli(&dir, &args, Some(&format!("{MOCK_KEY}\n")));
        assert_eq!(code, 0, "{err}");
        let data = [tmp.path().join("data-a"), tmp.path().join("data-b")];
        let serve = |data: &Path| {
            let mut a: Vec<&str> = store.to_vec();
            a.extend_from_slice(&["--redis", redis, "--data-dir", data.to_str().unwrap()]);
            Server::start(&dir, &a)
        };
        let (a, b) = (serve(&data[0]), serve(&data[1]));
        for s in [&a, &b] {
            let ready: Value = reqwest::get(format!("{}/readyz", s.url))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(ready["status"], "ready", "{ready}");
        }
        Self {
            a,
            b,
            data,
            dir,
            owner,
            location,
            master,
            schema,
            _mock: mock,
            _tmp: tmp,
        }
    }

    /// `--store` and `--master-key-file` of the shared store.
    fn store(&self) -> [&str; 4] {
        [
            "--store",
            self.location.as_str(),
            "--master-key-file",
            self.master.as_str(),
        ]
    }

    /// Stop both instances (and wait for them to exit), as a deployment shuts down.
    fn stop(&mut self) {
        for s in [&mut self.a, &mut self.b] {
            let _ = s.child.kill();
            let _ = s.child.wait();
        }
    }

    fn servers(&self) -> [&Server; 2] {
        [&self.a, &self.b]
    }

    /// A CLI command as the owner.
    fn admin(&self, args: &[&str]) -> (i32, String, String) {
        run(&self.dir, &self.store(), Some(&self.owner), args)
    }

    /// A new key (key, id), with extra `keys create` options.
    fn key(&self, name: &str, opts: &[&str]) -> (String, String) {
        let mut args = vec!["keys", "create", "--name", name, "--json"];
        args.extend_from_slice(opts);
        let (code, out, err) = self.admin(&args);
        assert_eq!(code, 0, "{err}");
        let v: Value = serde_json::from_str(out.trim()).unwrap();
        (
            v["key"].as_str().unwrap().to_owned(),
            v["id"].as_str().unwrap().to_owned(),
        )
    }

    /// A connection to the shared schema, to read what the instances wrote.
    async fn db(&self) -> sqlx::PgConnection {
        use sqlx::Connection;
        sqlx::PgConnection::connect(&self.location).await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_share_limits_revocations_switches_and_the_audit_trail() {
    let Some((pg, redis)) = services() else {
        return;
    };
    let mut c = Cluster::start(
        &pg,
        &redis,
        &format!(
            r#"
[routes.gpt]
targets = [{{ provider = "oa", model = "gpt-mock" }}]
[routes.gpt.limits]
route = {{ rpm = {ROUTE_RPM} }}
"#
        ),
    )
    .await;
    let (load, _) = c.key("load", &[]);
    let (revoked, revoked_id) = c.key("to-revoke", &[]);
    let (killed, killed_id) = c.key("to-kill", &[]);
    let (a, b) = (&c.a, &c.b);
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
    let (code, _, err) = c.admin(&["keys", "revoke", &revoked_id]);
    assert_eq!(code, 0, "{err}");
    refused_by_both(&c.servers(), &revoked, 401, "revoked key").await;

    let (code, _, err) = c.admin(&["kill", "key", &killed_id, "--reason", "scale-out drill"]);
    assert_eq!(code, 0, "{err}");
    refused_by_both(&c.servers(), &killed, 403, "switched-off key").await;

    // Both instances wrote their own chain into the one store, and it verifies.
    let (ia, ib) = (instance(&c.data[0]), instance(&c.data[1]));
    assert_ne!(ia, ib);
    c.stop();
    let mut args = c.store().to_vec();
    args.extend_from_slice(&["audit", "verify", "--json"]);
    let (code, out, err) = cli(&c.dir, &args, None);
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

/// The budget shared by both instances, USD: room for several calls, far fewer than the burst.
const BUDGET_USD: f64 = 0.2;
/// Price of gpt-mock per million input and output tokens, USD.
const PRICE: f64 = 1000.0;
/// `max_tokens` of each budgeted call: its reservation is the prompt estimate plus this.
const MAX_TOKENS: u64 = 20;

/// The live counters of the global monthly budget in Redis (spent, reserved), nano-USD:
/// where both instances reserve. Zero before the first call seeds them.
async fn counters(c: &mut redis::aio::MultiplexedConnection, namespace: &str) -> (i64, i64) {
    // Periods are calendar months in UTC (no `[budgets_settings] timezone` here).
    let period = chrono::Utc::now().format("%Y-%m-01");
    let (spent, reserved): (Option<i64>, Option<i64>) = redis::cmd("HMGET")
        .arg(format!("tollgate:v1:{namespace}:g:global/month:{period}"))
        .arg("spent")
        .arg("reserved")
        .query_async(c)
        .await
        .unwrap();
    (spent.unwrap_or(0), reserved.unwrap_or(0))
}

async fn redis_conn(url: &str) -> redis::aio::MultiplexedConnection {
    // A loaded machine (two gateways, Postgres, Redis on two cores) can be slower to answer
    // than the client's default timeout: the watcher waits rather than fails.
    let cfg = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(30)))
        .set_response_timeout(Some(Duration::from_secs(30)));
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection_with_config(&cfg)
        .await
        .unwrap()
}

/// Spend and reservations of the global monthly budget, nano-USD, as the store's ledger has
/// them: the durable record of spend (reservations live in Redis).
async fn ledger(c: &mut sqlx::PgConnection, schema: &str) -> (i64, i64) {
    let row: Option<(i64, i64)> = sqlx::query_as(&format!(
        "SELECT spent, reserved FROM {schema}.budget_spend WHERE budget = 'global/month'"
    ))
    .fetch_optional(c)
    .await
    .unwrap();
    row.unwrap_or((0, 0))
}

/// A budgeted call: (status, error code, actual cost in nano-USD from the reported usage).
async fn budgeted_call(url: &str, key: &str, prices: &PriceTable) -> (u16, String, i64) {
    let r = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": "gpt", "max_tokens": MAX_TOKENS, "messages": [{"role": "user", "content": "hi"}]}))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let cost = match status {
        200 => {
            let u = &body["usage"];
            let (i, o) = (
                u["prompt_tokens"].as_u64().unwrap(),
                u["completion_tokens"].as_u64().unwrap(),
            );
            usd_to_nanos(prices.cost("gpt-mock", i, 0, o).unwrap())
        }
        _ => 0,
    };
    (status, code, cost)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_budget_is_not_overshot_by_concurrent_calls_on_two_instances() {
    let Some((pg, redis)) = services() else {
        return;
    };
    let c = Cluster::start(
        &pg,
        &redis,
        &format!(
            r#"
[prices]
gpt-mock = {{ input = {PRICE:?}, output = {PRICE:?} }}
[[budgets]]
scope = "global"
period = "month"
limit_usd = {BUDGET_USD:?}
[routes.gpt]
targets = [{{ provider = "oa", model = "gpt-mock" }}]
"#
        ),
    )
    .await;
    let (key, _) = c.key("spender", &[]);
    let mut prices = PriceTable::with_defaults();
    prices.set(
        "gpt-mock",
        Price {
            input: PRICE,
            cached_input: PRICE,
            output: PRICE,
        },
    );
    let limit = usd_to_nanos(BUDGET_USD);
    // What the gateway reserves per call: the prompt estimate plus max_tokens, at the price.
    let reserve = usd_to_nanos(
        prices
            .cost(
                "gpt-mock",
                tollgate_guard::tokens::estimate("hi"),
                0,
                MAX_TOKENS,
            )
            .unwrap(),
    );

    // A burst across both instances while a watcher reads the shared counters in Redis: at
    // every moment, settled spend plus what calls in flight reserved stays within the limit.
    let namespace = c.schema.name.replace('_', "-");
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = {
        let (done, redis, namespace) = (done.clone(), redis.clone(), namespace.clone());
        tokio::spawn(async move {
            let mut r = redis_conn(&redis).await;
            let (mut samples, mut most_reserved) = (0u32, 0i64);
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let (spent, reserved) = counters(&mut r, &namespace).await;
                assert!(
                    spent + reserved <= limit,
                    "spent {spent} + reserved {reserved} passed the limit {limit}"
                );
                samples += 1;
                most_reserved = most_reserved.max(reserved);
            }
            (samples, most_reserved)
        })
    };
    let mut tasks = Vec::new();
    for i in 0..BURST {
        let url = c.servers()[i % 2].url.clone();
        let (key, prices) = (key.clone(), prices.clone());
        tasks.push(tokio::spawn(async move {
            budgeted_call(&url, &key, &prices).await
        }));
    }
    let mut admitted = [0u64; 2];
    let mut cost = 0;
    for (i, t) in tasks.into_iter().enumerate() {
        match t.await.unwrap() {
            (200, _, paid) => {
                admitted[i % 2] += 1;
                cost = paid;
            }
            (429, code, _) => assert_eq!(code, "budget_exceeded"),
            other => panic!("unexpected answer {other:?}"),
        }
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (samples, most_reserved) = watcher.await.unwrap();
    assert!(samples > 0);
    assert!(most_reserved > 0, "the watcher saw calls in flight");
    assert!(
        cost > 0 && cost <= reserve,
        "a call costs {cost}, reserves {reserve}"
    );
    assert!(
        most_reserved % reserve == 0,
        "reservations are whole calls: {most_reserved} of {reserve} each"
    );

    // Settlement follows each response: the cost into the store, then the reservation out
    // of Redis. Then fill what is left, one call at a time on alternate instances, until the
    // budget refuses.
    let mut db = c.db().await;
    let mut r = redis_conn(&redis).await;
    let settled = |(spent, reserved): (i64, i64), (stored, in_store): (i64, i64)| {
        reserved == 0 && in_store == 0 && spent == stored
    };
    let t0 = Instant::now();
    while !settled(
        counters(&mut r, &namespace).await,
        ledger(&mut db, &c.schema.name).await,
    ) {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "reservations never settled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut n = admitted[0] + admitted[1];
    let mut i = 0;
    loop {
        let (status, code, paid) = budgeted_call(&c.servers()[i % 2].url, &key, &prices).await;
        i += 1;
        if status == 429 {
            assert_eq!(code, "budget_exceeded");
            break;
        }
        assert_eq!(status, 200);
        assert_eq!(paid, cost, "every call costs the same");
        n += 1;
        let t0 = Instant::now();
        while !settled(
            counters(&mut r, &namespace).await,
            ledger(&mut db, &c.schema.name).await,
        ) {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "reservation never settled"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let (spent, reserved) = ledger(&mut db, &c.schema.name).await;
    assert_eq!(reserved, 0);
    assert_eq!(spent, n as i64 * cost, "each admitted call is counted once");
    assert_eq!(
        counters(&mut r, &namespace).await,
        (spent, 0),
        "Redis counts what the store recorded"
    );
    // The precise bound: the last call admitted had room for its whole reservation next to
    // the others' spend or reservations, each at least its cost, so (n-1)*cost + reserve <=
    // limit; the refusal had no room, so n*cost + reserve > limit. Together n is fixed:
    let expected = (limit - reserve) / cost + 1;
    assert_eq!(
        n as i64, expected,
        "admitted {n} calls ({admitted:?} in the burst on a, b); limit {limit}, reserve {reserve}, cost {cost}"
    );
    assert!(spent <= limit, "spent {spent} of {limit}");
    assert!(
        limit - spent < reserve,
        "the budget is used up to one reservation"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn abuse_counted_on_both_instances_suspends_the_key_everywhere_with_one_alert() {
    const DENIALS: usize = 4;
    let Some((pg, redis)) = services() else {
        return;
    };
    let c = Cluster::start(
        &pg,
        &redis,
        &format!(
            r#"
[limits.abuse]
denials = {DENIALS}
window = "10m"
suspend_for = "15m"
[routes.gpt]
targets = [{{ provider = "oa", model = "gpt-mock" }}]
[routes.other]
targets = [{{ provider = "oa", model = "gpt-mock" }}]
"#
        ),
    )
    .await;
    let ask = |url: String, key: String, model: &'static str| async move {
        reqwest::Client::new()
            .post(format!("{url}/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    let url = |i: usize| c.servers()[i % 2].url.clone();

    // One key denials split between the instances: DENIALS - 1 in total suspend nothing...
    let (slow, slow_id) = c.key("slow", &["--models", "gpt"]);
    for i in 0..DENIALS - 1 {
        assert_eq!(ask(url(i), slow.clone(), "other").await, 403);
    }
    for i in 0..2 {
        assert_eq!(
            ask(url(i), slow.clone(), "gpt").await,
            200,
            "not suspended yet"
        );
    }
    // ...and the one that reaches DENIALS, wherever it lands, suspends it on both.
    assert_eq!(ask(url(DENIALS - 1), slow.clone(), "other").await, 403);
    refused_by_both(&c.servers(), &slow, 403, "suspended key").await;

    // Another key denied by both instances at once, twice the threshold: suspended once.
    let (burst, burst_id) = c.key("burst", &["--models", "gpt"]);
    let tasks: Vec<_> = (0..2 * DENIALS)
        .map(|i| tokio::spawn(ask(url(i), burst.clone(), "other")))
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 403);
    }
    refused_by_both(&c.servers(), &burst, 403, "suspended key").await;

    // The suspensions are expiring switches in the shared store, listed for responders.
    let (code, out, err) = c.admin(&["kill", "list"]);
    assert_eq!(code, 0, "{err}");
    for id in [&slow_id, &burst_id] {
        let line = out
            .lines()
            .find(|l| l.contains(id.as_str()))
            .unwrap_or_else(|| panic!("{id} not listed: {out}"));
        assert!(
            line.contains("abuse-detector") && line.contains("until "),
            "{line}"
        );
    }
    // Exactly one alert per key, whichever instance saw the crossing.
    let mut db = c.db().await;
    let count =
        |rows: &[(String,)], id: &str| rows.iter().filter(|(s,)| s == &format!("key:{id}")).count();
    let t0 = Instant::now();
    let rows = loop {
        let rows: Vec<(String,)> = sqlx::query_as(&format!(
            "SELECT subject FROM {}.alerts WHERE kind = 'key_suspended'",
            c.schema.name
        ))
        .fetch_all(&mut db)
        .await
        .unwrap();
        if count(&rows, &slow_id) > 0 && count(&rows, &burst_id) > 0 {
            break rows;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "alerts missing: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(count(&rows, &slow_id), 1, "{rows:?}");
    assert_eq!(count(&rows, &burst_id), 1, "{rows:?}");
    assert_eq!(rows.len(), 2, "{rows:?}");

    // A responder lifts one early: both instances serve it again within a second.
    let (code, _, err) = c.admin(&["unkill", "key", &slow_id]);
    assert_eq!(code, 0, "{err}");
    refused_by_both(&c.servers(), &slow, 200, "lifted suspension").await;
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
        // The alert went to every sink, the store included, so `tollgate alerts` lists it.
        let t0 = Instant::now();
        loop {
            let (code, out, err) = crate::audit::admin_cli(&p.dir, None, &["alerts", "--json"]);
            assert_eq!(code, 0, "{err}");
            let v: Value = serde_json::from_str(&out).unwrap();
            let found: Vec<&Value> = v
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["kind"] == "redis_unavailable")
                .collect();
            if let [a] = found.as_slice() {
                assert_eq!(a["details"]["policy"], policy, "{a}");
                break;
            }
            assert!(
                found.is_empty() && t0.elapsed() < Duration::from_secs(5),
                "{policy}: {v}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
