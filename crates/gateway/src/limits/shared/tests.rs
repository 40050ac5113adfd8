//! Against the real Redis at `TOLLGATE_TEST_REDIS_URL`, each test under a namespace of its
//! own. Without one these tests say why and pass, unless `CI` is set: then they fail.

use super::*;
use crate::config::limits::Rule;
use crate::limits::Scope;

use tollgate_testkit::services::REDIS_URL_ENV;
/// Nothing listens here: Redis "down".
const CLOSED: &str = "redis://127.0.0.1:1";
/// Longest a test waits for fire-and-forget work (settlement, release) to land.
const SETTLE_WAIT: Duration = Duration::from_secs(3);

/// The test Redis, or None (with a message) outside CI.
async fn redis_url() -> Option<String> {
    let why = match std::env::var(REDIS_URL_ENV) {
        Ok(url) if !url.trim().is_empty() => {
            let probe = async {
                let c = redis::Client::open(url.as_str())?;
                let mut conn = c.get_multiplexed_async_connection().await?;
                redis::cmd("PING").query_async::<String>(&mut conn).await
            };
            match tokio::time::timeout(Duration::from_secs(2), probe).await {
                Ok(Ok(_)) => return Some(url),
                Ok(Err(e)) => format!("Redis at {} is unreachable: {e}", shown(&url)),
                Err(_) => format!("Redis at {} did not answer", shown(&url)),
            }
        }
        _ => format!("{REDIS_URL_ENV} is not set"),
    };
    tollgate_testkit::services::unavailable("the Redis limiter tests", &why);
    None
}

fn namespace() -> String {
    format!("test-{:016x}", rand::random::<u64>())
}

fn limiter(url: &str, ns: &str, policy: RedisUnavailable) -> RedisLimiter {
    RedisLimiter::new(url, Some(ns), policy, Limiter::new()).unwrap()
}

fn subj(scope: Scope, id: &str, rpm: Option<u64>, tpm: Option<u64>, c: Option<u32>) -> Subject {
    Subject {
        scope,
        id: id.into(),
        rule: Rule {
            rpm,
            tpm,
            concurrency: c,
        },
    }
}

async fn admit(l: &RedisLimiter, s: &[Subject], tokens: u64) -> Result<Admission, LimitError> {
    l.admit(s, tokens, Instant::now()).await
}

/// Admit until `s` passes or [`SETTLE_WAIT`] is over.
async fn admitted_within(l: &RedisLimiter, s: &[Subject], tokens: u64) -> bool {
    let deadline = std::time::Instant::now() + SETTLE_WAIT;
    loop {
        if admit(l, s, tokens).await.is_ok() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_limit_of_n_admits_exactly_n_from_many_tasks_on_two_instances() {
    let Some(url) = redis_url().await else { return };
    let ns = namespace();
    let a = limiter(&url, &ns, RedisUnavailable::FailClosed);
    let b = limiter(&url, &ns, RedisUnavailable::FailClosed);
    let s = vec![subj(Scope::Route, "r", Some(37), None, None)];
    let mut tasks = Vec::new();
    for i in 0..200 {
        let l = if i % 2 == 0 { a.clone() } else { b.clone() };
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            match l.admit(&s, 0, Instant::now()).await {
                Ok(_) => 1,
                Err(LimitError::Refused(r)) => {
                    assert_eq!(r.limit, "requests");
                    assert!(r.retry_after > Duration::ZERO);
                    0
                }
                Err(e) => panic!("{e:?}"),
            }
        }));
    }
    let mut admitted = 0;
    for t in tasks {
        admitted += t.await.unwrap();
    }
    assert_eq!(admitted, 37);
}

#[tokio::test]
async fn a_refusal_by_one_subject_uses_nothing_of_the_others() {
    let Some(url) = redis_url().await else { return };
    let l = limiter(&url, &namespace(), RedisUnavailable::FailClosed);
    let key = subj(Scope::Key, "k", Some(2), None, None);
    let team = subj(Scope::Team, "t", Some(1), None, None);
    let first = admit(&l, &[key.clone(), team.clone()], 0).await.unwrap();
    assert_eq!(first.headroom.requests_limit, Some(1));
    assert_eq!(first.headroom.requests_remaining, 0);
    match admit(&l, &[key.clone(), team], 0).await {
        Err(LimitError::Refused(r)) => {
            assert_eq!((r.scope, r.limit, r.value), (Scope::Team, "requests", 1));
            assert!(r.retry_after > Duration::from_secs(50), "{r:?}");
        }
        other => panic!("{other:?}"),
    }
    // The key still has its second request.
    assert!(admit(&l, std::slice::from_ref(&key), 0).await.is_ok());
    assert!(admit(&l, &[key], 0).await.is_err());
}

#[tokio::test]
async fn tokens_are_reserved_then_settled() {
    let Some(url) = redis_url().await else { return };
    let l = limiter(&url, &namespace(), RedisUnavailable::FailClosed);
    let s = [subj(Scope::Key, "k", None, Some(1000), None)];
    let mut a = admit(&l, &s, 800).await.unwrap();
    assert_eq!(a.headroom.tokens_limit, Some(1000));
    assert!((199..=200).contains(&a.headroom.tokens_remaining));
    match admit(&l, &s, 300).await {
        Err(LimitError::Refused(r)) => assert_eq!(r.limit, "tokens"),
        other => panic!("{other:?}"),
    }
    a.settle(100);
    drop(a);
    assert!(admitted_within(&l, &s, 800).await, "700 refunded");
    // An oversize request is bounded by the capacity, not refused forever.
    let l2 = limiter(&url, &namespace(), RedisUnavailable::FailClosed);
    assert!(admit(&l2, &s, 5_000).await.is_ok());
}

#[tokio::test]
async fn concurrency_is_released_when_the_admission_drops() {
    let Some(url) = redis_url().await else { return };
    let l = limiter(&url, &namespace(), RedisUnavailable::FailClosed);
    let s = [subj(Scope::Route, "r", None, None, Some(2))];
    let a = admit(&l, &s, 0).await.unwrap();
    let _b = admit(&l, &s, 0).await.unwrap();
    match admit(&l, &s, 0).await {
        Err(LimitError::Refused(r)) => assert_eq!(r.limit, "concurrency"),
        other => panic!("{other:?}"),
    }
    drop(a);
    assert!(admitted_within(&l, &s, 0).await);
}

#[tokio::test]
async fn a_dead_instances_concurrency_expires_with_its_leases() {
    let Some(url) = redis_url().await else { return };
    let ns = namespace();
    let s = [subj(Scope::Route, "r", None, None, Some(1))];
    // The instance dies holding the slot: its runtime (and with it the heartbeat that
    // renews the lease) is gone, and no release is ever sent.
    let (u, n, held) = (url.clone(), ns.clone(), s.clone());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let dead = limiter(&u, &n, RedisUnavailable::FailClosed)
                .with_lease_ttl(Duration::from_millis(300));
            std::mem::forget(admit(&dead, &held, 0).await.unwrap());
        });
        drop(rt);
    })
    .join()
    .unwrap();
    let l = limiter(&url, &ns, RedisUnavailable::FailClosed);
    assert!(admit(&l, &s, 0).await.is_err());
    assert!(admitted_within(&l, &s, 0).await, "the lease expired");
}

#[tokio::test]
async fn a_request_longer_than_the_lease_keeps_its_slot_until_it_ends() {
    let Some(url) = redis_url().await else { return };
    let ttl = Duration::from_millis(300);
    let l = limiter(&url, &namespace(), RedisUnavailable::FailClosed).with_lease_ttl(ttl);
    let s = [
        subj(Scope::Key, "k", Some(1_000), None, None),
        subj(Scope::Route, "r", None, None, Some(1)),
    ];
    let long = admit(&l, &s, 0).await.unwrap();
    // A long stream: in flight for more than three lease lifetimes. Time itself is what
    // is under test here (the lease expires on the Redis server's clock), so it passes
    // for real; the heartbeat must have renewed the lease several times meanwhile.
    let t0 = std::time::Instant::now();
    while t0.elapsed() < ttl * 4 {
        tokio::time::sleep(ttl / 2).await;
        match admit(&l, &s, 0).await {
            Err(LimitError::Refused(r)) => assert_eq!(r.limit, "concurrency"),
            other => panic!("the slot was freed after {:?}: {other:?}", t0.elapsed()),
        }
    }
    // It ends: the slot is released at once, and the heartbeat stops with it.
    drop(long);
    assert!(admitted_within(&l, &s, 0).await, "released when it ended");
}

#[tokio::test]
async fn the_renewal_script_never_recreates_an_expired_lease() {
    let Some(url) = redis_url().await else { return };
    let ns = namespace();
    let mut c = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let key = format!("{KEY_PREFIX}:{ns}:c:route:r");
    let renew = redis::Script::new(RENEW_SCRIPT);
    let gone: i64 = renew
        .key(&key)
        .arg("lease-1")
        .arg(60_000)
        .invoke_async(&mut c)
        .await
        .unwrap();
    assert_eq!(gone, 0);
    let exists: i64 = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(exists, 0, "an expired lease must not come back");
    let _: i64 = redis::cmd("ZADD")
        .arg(&key)
        .arg(1)
        .arg("lease-1")
        .query_async(&mut c)
        .await
        .unwrap();
    let held: i64 = renew
        .key(&key)
        .arg("lease-1")
        .arg(60_000)
        .invoke_async(&mut c)
        .await
        .unwrap();
    assert_eq!(held, 1);
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&key)
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(ttl > 60_000 && ttl <= 61_000, "{ttl}");
    let score: f64 = redis::cmd("ZSCORE")
        .arg(&key)
        .arg("lease-1")
        .query_async(&mut c)
        .await
        .unwrap();
    assert!(score > 1.0e12, "renewed to server time + TTL: {score}");
}

#[tokio::test]
async fn keys_are_namespaced_and_expire_when_idle() {
    let Some(url) = redis_url().await else { return };
    let ns = namespace();
    let l = limiter(&url, &ns, RedisUnavailable::FailClosed);
    let s = [subj(Scope::Ip, "192.0.2.1", Some(60), Some(100), Some(3))];
    let _a = admit(&l, &s, 10).await.unwrap();
    let mut c = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("tollgate:v1:{ns}:*"))
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    for k in keys {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&k)
            .query_async(&mut c)
            .await
            .unwrap();
        assert!(ttl > 0 && ttl <= 121_000, "{k}: {ttl}");
    }
}

#[tokio::test]
async fn redis_down_fail_closed_refuses_naming_the_reason() {
    let l = limiter(CLOSED, &namespace(), RedisUnavailable::FailClosed);
    let s = [subj(Scope::Key, "k", Some(5), None, None)];
    match admit(&l, &s, 0).await {
        Err(LimitError::Unavailable(why)) => {
            assert!(
                why.contains("Redis at redis://127.0.0.1:1 is unreachable"),
                "{why}"
            );
            assert!(why.contains("fail_closed"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    // Within the retry interval the answer comes without another connection attempt.
    assert!(matches!(
        admit(&l, &s, 0).await,
        Err(LimitError::Unavailable(_))
    ));
    match l.readiness().await {
        Readiness::Unavailable(why) => assert!(why.contains("unreachable"), "{why}"),
        other => panic!("{other:?}"),
    }
    // A request no limit applies to needs no Redis.
    let free = [subj(Scope::Key, "k", None, None, None)];
    assert!(admit(&l, &free, 0).await.is_ok());
}

#[tokio::test]
async fn redis_down_local_falls_back_to_this_instances_limits() {
    let l = limiter(CLOSED, &namespace(), RedisUnavailable::Local);
    let s = [subj(Scope::Key, "k", Some(2), None, None)];
    assert!(admit(&l, &s, 0).await.is_ok());
    assert!(admit(&l, &s, 0).await.is_ok());
    match admit(&l, &s, 0).await {
        Err(LimitError::Refused(r)) => assert_eq!(r.limit, "requests"),
        other => panic!("{other:?}"),
    }
    match l.readiness().await {
        Readiness::Degraded(why) => {
            assert!(
                why.contains("unreachable") && why.contains("per instance"),
                "{why}"
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn passwords_are_not_shown() {
    assert_eq!(
        shown("redis://:s3cret@cache:6379/2"),
        "redis://cache:6379/2"
    );
    assert_eq!(shown("redis://cache:6379"), "redis://cache:6379");
}
