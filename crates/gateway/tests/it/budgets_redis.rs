//! Budgets shared through Redis (DO-2 at scale), against the real Redis at
//! `TOLLGATE_TEST_REDIS_URL` and the real Postgres at `TOLLGATE_TEST_POSTGRES_URL`: two
//! instances (two [`Budgets`] with their own Redis links and store pools over one Redis
//! namespace and one Postgres schema) under concurrent load never reserve past a limit, a
//! dead instance's reservation expires, counters lost by Redis are reseeded from the store,
//! spend settled in the store alone while Redis was out of reach is caught up there once,
//! and Redis down follows the policy.
//!
//! Without both services these tests say why and pass, unless `CI` is set: then they fail.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tollgate_gateway::alert::Alerter;
use tollgate_gateway::budget::Budgets;
use tollgate_gateway::budget::shared::SharedBudgets;
use tollgate_gateway::config::Config;
use tollgate_gateway::limits::Limiter;
use tollgate_gateway::limits::Readiness;
use tollgate_gateway::limits::shared::{RedisLimiter, RedisUnavailable};
use tollgate_store::Store;
use tollgate_store::budget::{Spend, usd_to_nanos};

/// Nothing listens here: Redis "down".
const CLOSED: &str = "redis://127.0.0.1:1";
/// The budget under test: global, monthly, $1.
const LIMIT_USD: f64 = 1.0;
/// Longest a test waits for Redis's clock to expire a lease.
const EXPIRY_WAIT: Duration = Duration::from_secs(5);

/// Both services' URLs, or None (with a message) outside CI.
fn services() -> Option<(String, String)> {
    use tollgate_testkit::services::{POSTGRES_URL_ENV, REDIS_URL_ENV, url};
    let what = "the shared budget tests";
    Some((url(POSTGRES_URL_ENV, what)?, url(REDIS_URL_ENV, what)?))
}

/// One Postgres schema and one Redis namespace, shared by the instances of a test.
struct Shared {
    pg: String,
    schema: String,
    redis: String,
    ns: String,
}

impl Shared {
    async fn create(pg: &str, redis: &str) -> Self {
        use sqlx::Connection;
        let schema = format!("t_{:016x}", rand::random::<u64>());
        let mut c = sqlx::PgConnection::connect(pg).await.unwrap();
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
        Self {
            pg: pg.to_owned(),
            ns: schema.replace('_', "-"),
            schema,
            redis: redis.to_owned(),
        }
    }

    fn location(&self) -> String {
        let sep = if self.pg.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-c%20search_path%3D{}", self.pg, self.schema)
    }

    /// A store pool of its own on the shared schema.
    async fn store(&self) -> Store {
        Store::connect(&self.location()).await.unwrap()
    }

    async fn redis_conn(&self) -> redis::aio::MultiplexedConnection {
        // Patient: a loaded test machine can be slower than the client's default timeout.
        let cfg = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(30)))
            .set_response_timeout(Some(Duration::from_secs(30)));
        redis::Client::open(self.redis.as_str())
            .unwrap()
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
            .unwrap()
    }

    /// The live counters of the global monthly budget in Redis (spent, reserved), or None.
    async fn counters(&self, c: &mut redis::aio::MultiplexedConnection) -> Option<(i64, i64)> {
        counters(c, &self.ns).await
    }

    /// Lose every key of the namespace, as a Redis restart without persistence does.
    async fn forget(&self) {
        let mut c = self.redis_conn().await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("tollgate:v1:{}:*", self.ns))
            .query_async(&mut c)
            .await
            .unwrap();
        if !keys.is_empty() {
            let _: i64 = redis::cmd("DEL")
                .arg(keys)
                .query_async(&mut c)
                .await
                .unwrap();
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let (url, name) = (self.pg.clone(), self.schema.clone());
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                use sqlx::Connection;
                if let Ok(mut c) = sqlx::PgConnection::connect(&url).await {
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

/// The live counters of the global monthly budget under namespace `ns` (spent, reserved),
/// or None while unseeded.
async fn counters(c: &mut redis::aio::MultiplexedConnection, ns: &str) -> Option<(i64, i64)> {
    let period = chrono::Utc::now().format("%Y-%m-01");
    let (spent, reserved): (Option<i64>, Option<i64>) = redis::cmd("HMGET")
        .arg(format!("tollgate:v1:{ns}:g:global/month:{period}"))
        .arg("spent")
        .arg("reserved")
        .query_async(c)
        .await
        .unwrap();
    Some((spent?, reserved.unwrap_or(0)))
}

fn config() -> Config {
    let text = format!(
        "[[budgets]]\nscope = \"global\"\nperiod = \"month\"\nlimit_usd = {LIMIT_USD:?}\nthresholds = [0.5, 0.8]\n"
    );
    Config::parse(&text, std::path::Path::new("tollgate.toml"))
        .unwrap()
        .0
}

/// One gateway instance's budgets: its own store pool and Redis link (at `redis`).
async fn instance(
    s: &Shared,
    redis: &str,
    policy: RedisUnavailable,
    ttl: Option<Duration>,
) -> (Arc<Budgets>, Store) {
    let cfg = config();
    let store = s.store().await;
    let alerts = Arc::new(Alerter::new(&cfg.alerts, store.alerts.clone()));
    let link = RedisLimiter::new(redis, Some(&s.ns), policy, Limiter::new())
        .unwrap()
        .link();
    let mut shared = SharedBudgets::new(link);
    if let Some(ttl) = ttl {
        shared = shared.with_reservation_ttl(ttl);
    }
    let b = Budgets::new(&cfg, store.budgets.clone(), alerts).with_shared(shared);
    (Arc::new(b), store)
}

/// The store's record of the global budget this month.
async fn ledger(store: &Store) -> Spend {
    let period = chrono::Utc::now().format("%Y-%m-01").to_string();
    store.budgets.spend("global/month", &period).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_under_concurrent_load_never_reserve_past_the_limit() {
    let Some((pg, redis)) = services() else {
        return;
    };
    let s = Shared::create(&pg, &redis).await;
    let (a, store) = instance(&s, &s.redis, RedisUnavailable::FailClosed, None).await;
    let (b, _) = instance(&s, &s.redis, RedisUnavailable::FailClosed, None).await;
    let limit = usd_to_nanos(LIMIT_USD);
    let reserve_usd = 0.03;

    // A watcher reads the shared counters throughout: settled spend plus what calls in
    // flight reserved never passes the limit.
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        let mut c = s.redis_conn().await;
        let ns = s.ns.clone();
        tokio::spawn(async move {
            let (mut samples, mut busiest) = (0u32, 0i64);
            while !done.load(Ordering::SeqCst) {
                if let Some((spent, reserved)) = counters(&mut c, &ns).await {
                    assert!(
                        spent + reserved <= limit,
                        "spent {spent} + reserved {reserved} passed the limit {limit}"
                    );
                    busiest = busiest.max(reserved);
                }
                samples += 1;
            }
            (samples, busiest)
        })
    };
    let mut tasks = Vec::new();
    for i in 0..120u64 {
        let budgets = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            match budgets.reserve("k", None, Some(reserve_usd)).await {
                Ok(Some(hold)) => {
                    tokio::task::yield_now().await;
                    // Each call costs between a third of its reservation and all of it.
                    let actual = reserve_usd * (1 + i % 3) as f64 / 3.0;
                    hold.settle(Some(actual));
                    usd_to_nanos(actual)
                }
                Ok(None) => panic!("the global budget applies"),
                Err(e) => {
                    assert_eq!(e.status().as_u16(), 429, "{}", e.message);
                    0
                }
            }
        }));
    }
    let mut paid = 0;
    for t in tasks {
        paid += t.await.unwrap();
    }
    a.idle().await;
    b.idle().await;
    // Then fill what is left one call at a time, on alternate instances, until refused.
    let mut i = 0;
    loop {
        let budgets = if i % 2 == 0 { &a } else { &b };
        i += 1;
        match budgets.reserve("k", None, Some(reserve_usd)).await {
            Ok(Some(hold)) => {
                hold.settle(Some(reserve_usd));
                paid += usd_to_nanos(reserve_usd);
                budgets.idle().await;
            }
            Ok(None) => unreachable!(),
            Err(e) => {
                assert!(e.message.contains("has no room"), "{}", e.message);
                break;
            }
        }
    }
    done.store(true, Ordering::SeqCst);
    let (samples, busiest) = watcher.await.unwrap();
    assert!(samples > 0 && busiest > 0, "{samples} samples, {busiest}");

    // The store has every cost exactly once, Redis agrees, and nothing is left reserved.
    let recorded = ledger(&store).await;
    assert_eq!(recorded.spent, paid);
    assert_eq!(
        recorded.reserved, 0,
        "reservations live in Redis, not the store"
    );
    let mut c = s.redis_conn().await;
    assert_eq!(s.counters(&mut c).await, Some((paid, 0)));
    assert!(paid <= limit && limit - paid < usd_to_nanos(reserve_usd));
    // Each soft threshold alerted once, whichever instance crossed it.
    let alerts = store
        .alerts
        .alerts_since(chrono::DateTime::<chrono::Utc>::MIN_UTC, 100)
        .await
        .unwrap();
    let mut crossed: Vec<String> = alerts
        .iter()
        .filter(|a| a.kind == "budget_threshold")
        .map(|a| a.details["threshold"].to_string())
        .collect();
    crossed.sort();
    assert_eq!(crossed, ["0.5", "0.8"]);
    // `tollgate budgets` reads the store's spend and Redis's reservations.
    let status = a.status().await.unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(usd_to_nanos(status[0].spent_usd), paid);
    assert_eq!(status[0].reserved_usd, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_instances_reservation_expires() {
    let Some((pg, redis)) = services() else {
        return;
    };
    let s = Arc::new(Shared::create(&pg, &redis).await);
    // Ready before the other instance dies, so that its first look comes well within the lease.
    let (live, store) = instance(&s, &s.redis, RedisUnavailable::FailClosed, None).await;
    // The instance dies holding most of the budget: its runtime (and with it the task that
    // renews the reservation) is gone, and no settlement is ever sent.
    let dead = s.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (b, _) = instance(
                &dead,
                &dead.redis,
                RedisUnavailable::FailClosed,
                Some(Duration::from_secs(1)),
            )
            .await;
            std::mem::forget(b.reserve("k", None, Some(0.8)).await.unwrap());
        });
        drop(rt);
    })
    .join()
    .unwrap();
    let e = live.reserve("k", None, Some(0.5)).await.unwrap_err();
    assert!(e.message.contains("$0.8000 reserved"), "{}", e.message);
    // Redis's clock expires the lease: the room comes back by itself.
    let t0 = std::time::Instant::now();
    let hold = loop {
        if let Ok(Some(h)) = live.reserve("k", None, Some(0.5)).await {
            break h;
        }
        assert!(
            t0.elapsed() < EXPIRY_WAIT,
            "the dead reservation never expired"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    hold.settle(Some(0.5));
    live.idle().await;
    assert_eq!(ledger(&store).await.spent, usd_to_nanos(0.5));
    let mut c = s.redis_conn().await;
    assert_eq!(s.counters(&mut c).await, Some((usd_to_nanos(0.5), 0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_lost_by_redis_mid_period_are_reseeded_from_the_store() {
    let Some((pg, redis)) = services() else {
        return;
    };
    let s = Shared::create(&pg, &redis).await;
    let (a, store) = instance(&s, &s.redis, RedisUnavailable::FailClosed, None).await;
    for _ in 0..3 {
        a.reserve("k", None, Some(0.25))
            .await
            .unwrap()
            .unwrap()
            .settle(Some(0.2));
    }
    a.idle().await;
    let mut c = s.redis_conn().await;
    assert_eq!(s.counters(&mut c).await, Some((usd_to_nanos(0.6), 0)));

    // Redis restarts empty mid-period: the next call seeds the counters from the store, so
    // the $0.60 already spent still counts.
    s.forget().await;
    assert_eq!(s.counters(&mut c).await, None);
    let e = a.reserve("k", None, Some(0.5)).await.unwrap_err();
    assert!(e.message.contains("spent $0.6000"), "{}", e.message);
    assert_eq!(s.counters(&mut c).await, Some((usd_to_nanos(0.6), 0)));

    // A call in flight when Redis lost its data settles into the store, and into Redis as
    // soon as it is seeded again: counted at least once there, never lost.
    let hold = a.reserve("k", None, Some(0.1)).await.unwrap().unwrap();
    s.forget().await;
    hold.settle(Some(0.1));
    a.idle().await;
    assert_eq!(ledger(&store).await.spent, usd_to_nanos(0.7));
    let another = instance(&s, &s.redis, RedisUnavailable::FailClosed, None)
        .await
        .0;
    let e = another.reserve("k", None, Some(0.25)).await.unwrap_err();
    assert!(e.message.contains("has no room"), "{}", e.message);
    let (spent, reserved) = s.counters(&mut c).await.unwrap();
    assert!(
        (usd_to_nanos(0.7)..=usd_to_nanos(0.8)).contains(&spent) && reserved == 0,
        "spent {spent} reserved {reserved}"
    );
}

/// A TCP relay to the test Redis that can be cut and restored: an instance's Redis going
/// away and coming back without touching the server others use.
struct Relay {
    port: u16,
    target: String,
    tasks: Arc<parking_lot::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Relay {
    fn new(redis_url: &str) -> Self {
        let rest = redis_url.trim_start_matches("redis://");
        let authority = rest.split('/').next().unwrap_or(rest);
        let target = authority.rsplit('@').next().unwrap_or(authority).to_owned();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self {
            port,
            target,
            tasks: Arc::default(),
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn up(&self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        let (target, tasks) = (self.target.clone(), self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let target = target.clone();
                let pipe = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks.lock().push(pipe.abort_handle());
            }
        });
        self.tasks.lock().push(accept.abort_handle());
    }

    /// Close the port and every connection through it.
    fn down(&self) {
        for t in self.tasks.lock().drain(..) {
            t.abort();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spend_settled_in_the_store_alone_is_caught_up_in_redis_once() {
    let Some((pg, redis)) = services() else {
        return;
    };
    let s = Shared::create(&pg, &redis).await;
    let relay = Relay::new(&s.redis);
    relay.up().await;
    let (x, store) = instance(&s, &relay.url(), RedisUnavailable::Local, None).await;
    let call = |usd: f64| {
        let x = x.clone();
        async move {
            x.reserve("k", None, Some(usd))
                .await
                .unwrap()
                .unwrap()
                .settle(Some(usd));
            x.idle().await;
        }
    };
    call(0.1).await;
    let mut c = s.redis_conn().await;
    assert_eq!(s.counters(&mut c).await, Some((usd_to_nanos(0.1), 0)));

    // Cut off from Redis, `local` spends $0.30 in the store alone...
    relay.down();
    call(0.3).await;
    assert!(matches!(x.readiness(), Readiness::Degraded(_)));
    assert_eq!(ledger(&store).await.spent, usd_to_nanos(0.4));
    assert_eq!(s.counters(&mut c).await, Some((usd_to_nanos(0.1), 0)));
    // ...and adds it to the same counters once it reaches Redis again.
    relay.up().await;
    let t0 = std::time::Instant::now();
    while x.readiness() != Readiness::Ready
        || s.counters(&mut c).await.map(|v| v.0) != Some(usd_to_nanos(0.4))
    {
        assert!(t0.elapsed() < EXPIRY_WAIT, "{:?}", s.counters(&mut c).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(x.reserve("k", None, Some(0.01)).await.unwrap());
        x.idle().await;
    }
    assert_eq!(s.counters(&mut c).await, Some((usd_to_nanos(0.4), 0)));

    // Cut off again, $0.20 in the store alone; meanwhile Redis restarts empty. The counters
    // seeded anew read the $0.20 from the store: it is not added a second time.
    relay.down();
    call(0.2).await;
    s.forget().await;
    relay.up().await;
    let t0 = std::time::Instant::now();
    while x.readiness() != Readiness::Ready || s.counters(&mut c).await.is_none() {
        assert!(t0.elapsed() < EXPIRY_WAIT, "{:?}", s.counters(&mut c).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(x.reserve("k", None, Some(0.01)).await.unwrap());
        x.idle().await;
    }
    assert_eq!(ledger(&store).await.spent, usd_to_nanos(0.6));
    assert_eq!(s.counters(&mut c).await, Some((usd_to_nanos(0.6), 0)));
    let e = x.reserve("k", None, Some(0.5)).await.unwrap_err();
    assert!(e.message.contains("spent $0.6000"), "{}", e.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_refuses_or_reserves_in_the_store_as_configured() {
    let Some((pg, redis)) = services() else {
        return;
    };
    let s = Shared::create(&pg, &redis).await;

    let (closed, store) = instance(&s, CLOSED, RedisUnavailable::FailClosed, None).await;
    let e = closed.reserve("k", None, Some(0.1)).await.unwrap_err();
    assert_eq!(e.status().as_u16(), 503);
    assert!(
        e.message.contains("shared budgets are unavailable")
            && e.message
                .contains("Redis at redis://127.0.0.1:1 is unreachable")
            && e.message.contains("fail_closed"),
        "{}",
        e.message
    );
    match closed.readiness() {
        Readiness::Unavailable(why) => assert!(why.contains("budgeted calls are refused"), "{why}"),
        other => panic!("{other:?}"),
    }
    // `local`: the store's atomic reservation, shared by every instance on the store.
    let (local, _) = instance(&s, CLOSED, RedisUnavailable::Local, None).await;
    let hold = local.reserve("k", None, Some(0.6)).await.unwrap().unwrap();
    assert_eq!(ledger(&store).await.reserved, usd_to_nanos(0.6));
    let (other, _) = instance(&s, CLOSED, RedisUnavailable::Local, None).await;
    let e = other.reserve("k", None, Some(0.5)).await.unwrap_err();
    assert_eq!(e.status().as_u16(), 429, "{}", e.message);
    hold.settle(Some(0.4));
    local.idle().await;
    assert_eq!(
        ledger(&store).await,
        Spend {
            spent: usd_to_nanos(0.4),
            reserved: 0
        }
    );
    match local.readiness() {
        Readiness::Degraded(why) => assert!(why.contains("reserved in the store"), "{why}"),
        other => panic!("{other:?}"),
    }
    // Redis is back (an instance reaching it): it starts from the store's $0.40.
    let (up, _) = instance(&s, &s.redis, RedisUnavailable::Local, None).await;
    let e = up.reserve("k", None, Some(0.65)).await.unwrap_err();
    assert!(e.message.contains("spent $0.4000"), "{}", e.message);
    assert_eq!(up.readiness(), Readiness::Ready);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_and_budgeted_calls_follow_the_policy_while_redis_is_down() {
    for (policy, ready_code, ready_status, call_code, says) in [
        (
            "fail_closed",
            503,
            "unavailable",
            503,
            "budgeted calls are refused",
        ),
        (
            "local",
            200,
            "degraded",
            200,
            "budgets are reserved in the store",
        ),
    ] {
        let h = crate::harness::Harness::start_extra(&format!(
            "[prices]\ngpt-mock = {{ input = 1.0, output = 1.0 }}\n[limits]\nredis = \"{CLOSED}\"\nredis_unavailable = \"{policy}\"\n[[budgets]]\nscope = \"global\"\nperiod = \"day\"\nlimit_usd = 10.0\n"
        ))
        .await;
        let (status, body) = h
            .json(
                "/v1/chat/completions",
                &crate::harness::user("gpt", "hello"),
            )
            .await;
        assert_eq!(status, call_code, "{policy}: {body}");
        if call_code == 503 {
            let msg = crate::harness::error_message(&body);
            assert!(msg.contains("shared budgets are unavailable"), "{msg}");
        }
        let resp = reqwest::get(format!("{}/readyz", h.url)).await.unwrap();
        assert_eq!(resp.status().as_u16(), ready_code, "{policy}");
        let ready: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(ready["status"], ready_status, "{policy}: {ready}");
        let reason = ready["reason"].as_str().unwrap();
        assert!(
            reason.contains("redis://127.0.0.1:1") && reason.contains(says),
            "{policy}: {reason}"
        );
    }
}
