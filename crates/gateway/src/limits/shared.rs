//! Limits shared by every instance (DO-1 at scale): the request and token buckets and the
//! concurrency counts live in Redis, so a route limit of N admits N in total however many
//! gateways serve it.
//!
//! Each request costs one round trip to admit ([`ADMIT_SCRIPT`], all-or-nothing over every
//! subject, on the Redis server's clock) and one fire-and-forget call when it ends
//! ([`SETTLE_SCRIPT`], settling the token reservation and releasing the concurrency lease).
//! A request with a budget in Redis too makes these the same round trips as the budget's
//! reservation and settlement ([`crate::budget::shared::ADMIT_RESERVE_SCRIPT`],
//! [`crate::budget::shared::SETTLE_BOTH_SCRIPT`]), built from [`AdmitPlan`] and
//! [`RateSettlement`].
//! Concurrency is counted as leases with an expiry ([`LEASE_TTL`]), so the slots of an
//! instance that dies are freed by themselves; while a request is in flight a heartbeat task
//! renews its leases every third of the TTL ([`RENEW_SCRIPT`]), so a stream that outlives the
//! TTL keeps its slot, and the heartbeat is cancelled when the request ends. Keys are `tollgate:v1[:NAMESPACE]:b:SCOPE:ID`
//! (bucket hash) and `…:c:SCOPE:ID` (lease set) and expire when idle.
//!
//! Abuse events (guard blocks, denials) are counted here too ([`ABUSE_SCRIPT`]), so a key is
//! suspended once its events reach the threshold in total, wherever they happened.
//!
//! When Redis cannot be reached, [`RedisUnavailable`] decides: refuse with 503 naming the
//! reason (`fail_closed`, the default) or fall back to this instance's local
//! [`Limiter`](super::Limiter) (`local`). Either way the change raises an alert (tracing
//! target `tollgate::alert`) and `/readyz` reports it until Redis answers again. The scripts
//! touch several keys in one call, so a Redis Cluster would need them in one hash slot; a
//! single server (or a primary with replicas) is what this supports.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use redis::aio::MultiplexedConnection;
use serde::Deserialize;
use tokio::time::Instant;

use super::Subject;
use super::{Admission, Headroom, Hold, LimitError, Limiter, RateLimiter, Readiness, Refusal};
use crate::config::limits::LimitsConfig;

/// The admission script: KEYS and ARGV are documented at its top.
pub const ADMIT_SCRIPT: &str = include_str!("redis_admit.v1.lua");
/// The settlement and release script: KEYS and ARGV are documented at its top.
pub const SETTLE_SCRIPT: &str = include_str!("redis_settle.v1.lua");
/// The lease renewal script: KEYS and ARGV are documented at its top.
pub const RENEW_SCRIPT: &str = include_str!("redis_renew.v1.lua");
/// The abuse counting script: KEYS and ARGV are documented at its top.
pub const ABUSE_SCRIPT: &str = include_str!("redis_abuse.v1.lua");
/// After a key is suspended, how long further abuse events of it are not counted: they raced
/// the suspension to the other instances (which load it within a second), and must not
/// suspend (and alert) a second time.
pub const ABUSE_SETTLE: Duration = Duration::from_secs(10);
/// Prefix of every key; the version changes with the scripts' key layout.
pub const KEY_PREFIX: &str = "tollgate:v1";
/// How long a concurrency lease lives unless renewed or released: bounds how long a dead
/// instance's requests keep their slots. Requests in flight renew theirs every third of it.
pub const LEASE_TTL: Duration = Duration::from_secs(120);
/// Longest wait for a connection to Redis.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// Longest wait for a script's answer before Redis counts as unreachable.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
/// While Redis is unreachable, how often a request (or `/readyz`) tries it again; requests in
/// between take the fallback at once instead of waiting for a timeout each.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// What to do when Redis cannot be reached (`[limits] redis_unavailable`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedisUnavailable {
    /// Refuse requests with 503 naming the reason: limits are never silently loosened.
    #[default]
    FailClosed,
    /// Enforce limits per instance with the local limiter (N per instance, not in total).
    Local,
}

impl RedisUnavailable {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FailClosed => "fail_closed",
            Self::Local => "local",
        }
    }
}

/// Whether Redis answered last time, and if not, why and when to try again.
#[derive(Debug)]
struct Link {
    conn: Option<MultiplexedConnection>,
    down: Option<String>,
    retry_at: Instant,
}

#[derive(Debug)]
struct Inner {
    client: redis::Client,
    /// `redis://host:port/db` without credentials, for messages.
    shown: String,
    prefix: String,
    policy: RedisUnavailable,
    fallback: Arc<Limiter>,
    link: Mutex<Link>,
    /// One connection attempt at a time.
    connecting: tokio::sync::Mutex<()>,
    admit: redis::Script,
    settle: redis::Script,
    renew: redis::Script,
    abuse: redis::Script,
    lease_ttl: Duration,
    /// Where losing and regaining Redis is alerted (stored, webhooks); None: the log only.
    alerts: Option<Arc<crate::alert::Alerter>>,
}

/// The Redis-backed [`RateLimiter`].
#[derive(Debug, Clone)]
pub struct RedisLimiter {
    inner: Arc<Inner>,
}

/// `url` without its password, for messages.
fn shown(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

impl RedisLimiter {
    /// The shared limiter `[limits]` asks for (`redis`), or None. `fallback` is the local
    /// limiter used under `redis_unavailable = "local"`. Nothing is connected yet.
    pub fn from_config(cfg: &LimitsConfig, fallback: Arc<Limiter>) -> Result<Option<Self>, String> {
        let Some(url) = cfg.redis.as_deref() else {
            return Ok(None);
        };
        Self::new(
            url,
            cfg.redis_namespace.as_deref(),
            cfg.redis_unavailable,
            fallback,
        )
        .map(Some)
    }

    /// A limiter on the Redis at `url`, its keys under `tollgate:v1:NAMESPACE` (or
    /// `tollgate:v1`). Connects on first use.
    pub fn new(
        url: &str,
        namespace: Option<&str>,
        policy: RedisUnavailable,
        fallback: Arc<Limiter>,
    ) -> Result<Self, String> {
        let client = redis::Client::open(url)
            .map_err(|e| format!("limits.redis: {} is not a Redis URL: {e}", shown(url)))?;
        let prefix = match namespace {
            Some(ns) => format!("{KEY_PREFIX}:{ns}"),
            None => KEY_PREFIX.to_owned(),
        };
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                shown: shown(url),
                prefix,
                policy,
                fallback,
                link: Mutex::new(Link {
                    conn: None,
                    down: None,
                    retry_at: Instant::now(),
                }),
                connecting: tokio::sync::Mutex::new(()),
                admit: redis::Script::new(ADMIT_SCRIPT),
                settle: redis::Script::new(SETTLE_SCRIPT),
                renew: redis::Script::new(RENEW_SCRIPT),
                abuse: redis::Script::new(ABUSE_SCRIPT),
                lease_ttl: LEASE_TTL,
                alerts: None,
            }),
        })
    }

    /// Concurrency leases live `ttl` unless released (default [`LEASE_TTL`]); set before
    /// the limiter is shared.
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.lease_ttl = ttl;
        }
        self
    }

    /// Raise the alerts of losing and regaining Redis through `alerts` (its sinks: log,
    /// store, webhooks) rather than the log alone; set before the limiter is shared.
    pub fn with_alerts(mut self, alerts: Arc<crate::alert::Alerter>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.alerts = Some(alerts);
        }
        self
    }

    /// What happens when Redis is down.
    pub fn policy(&self) -> RedisUnavailable {
        self.inner.policy
    }
}

/// The limiter's connection to Redis, lent to the other counters kept there (budget
/// reservations, [`crate::budget::shared`]): one link, so one outage alert, one retry
/// schedule and one policy (`[limits] redis_unavailable`) for everything shared.
#[derive(Debug, Clone)]
pub struct RedisLink {
    inner: Arc<Inner>,
}

impl RedisLink {
    /// A connection, or why there is none (no new attempt within [`RETRY_INTERVAL`] of a
    /// failure).
    pub(crate) async fn conn(&self) -> Result<MultiplexedConnection, String> {
        self.inner.conn().await
    }

    /// Record that a call failed (alerting when Redis was up); returns the reason to show.
    pub(crate) fn down(&self, why: String) -> String {
        self.inner.down(why)
    }

    /// Record that a call succeeded (alerting when Redis was down).
    pub(crate) fn up(&self) {
        self.inner.up();
    }

    /// Why Redis counts as unreachable right now, or None while it answers.
    pub fn down_reason(&self) -> Option<String> {
        self.inner.link.lock().down.clone()
    }

    /// Prefix of every key (`tollgate:v1[:NAMESPACE]`).
    pub fn prefix(&self) -> &str {
        &self.inner.prefix
    }

    /// What happens while Redis is unreachable.
    pub fn policy(&self) -> RedisUnavailable {
        self.inner.policy
    }
}

impl RedisLimiter {
    /// The link to this limiter's Redis, for other shared counters.
    pub fn link(&self) -> RedisLink {
        RedisLink {
            inner: self.inner.clone(),
        }
    }
}

impl Inner {
    fn keys(&self, s: &Subject) -> [String; 2] {
        let scope = s.scope.as_str();
        [
            format!("{}:b:{scope}:{}", self.prefix, s.id),
            format!("{}:c:{scope}:{}", self.prefix, s.id),
        ]
    }

    /// A connection, or why there is none. Connects when there is none and a retry is due.
    async fn conn(&self) -> Result<MultiplexedConnection, String> {
        {
            let link = self.link.lock();
            if let Some(c) = &link.conn {
                return Ok(c.clone());
            }
            if let Some(why) = &link.down {
                if Instant::now() < link.retry_at {
                    return Err(why.clone());
                }
            }
        }
        let _one = self.connecting.lock().await;
        if let Some(c) = &self.link.lock().conn {
            return Ok(c.clone());
        }
        let cfg = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let attempt = self
            .client
            .get_multiplexed_async_connection_with_config(&cfg);
        match tokio::time::timeout(CONNECT_TIMEOUT * 2, attempt).await {
            Ok(Ok(c)) => {
                self.link.lock().conn = Some(c.clone());
                Ok(c)
            }
            Ok(Err(e)) => Err(self.down(format!("cannot connect: {e}"))),
            Err(_) => Err(self.down(format!("no answer within {CONNECT_TIMEOUT:?}"))),
        }
    }

    /// Record that Redis failed; alert when it was up. Returns the reason shown to clients.
    fn down(&self, why: String) -> String {
        let reason = format!("Redis at {} is unreachable ({why})", self.shown);
        let mut link = self.link.lock();
        link.conn = None;
        link.retry_at = Instant::now() + RETRY_INTERVAL;
        if link.down.is_none() {
            let what = match self.policy {
                RedisUnavailable::FailClosed => {
                    "refusing requests with 503 (limits.redis_unavailable = \"fail_closed\")"
                }
                RedisUnavailable::Local => {
                    "enforcing limits per instance and reserving budgets in the store (limits.redis_unavailable = \"local\")"
                }
            };
            match &self.alerts {
                Some(alerts) => {
                    alerts.raise(crate::alert::Alert {
                        kind: "redis_unavailable",
                        severity: crate::alert::Severity::Critical,
                        subject: "global".into(),
                        dedup_key: format!("redis_unavailable:{}", self.shown),
                        message: format!("shared rate limits unavailable: {what}: {reason}"),
                        details: serde_json::json!({
                            "redis": self.shown, "policy": self.policy.as_str(), "reason": reason,
                        }),
                    });
                }
                None => tracing::error!(
                    target: "tollgate::alert",
                    redis = %self.shown,
                    policy = self.policy.as_str(),
                    reason = %reason,
                    "shared rate limits unavailable: {what}"
                ),
            }
        }
        link.down = Some(reason.clone());
        reason
    }

    fn up(&self) {
        let mut link = self.link.lock();
        if link.down.take().is_some() {
            let message = "shared rate limits restored: Redis answers again";
            match &self.alerts {
                Some(alerts) => {
                    alerts.raise(crate::alert::Alert {
                        kind: "redis_restored",
                        severity: crate::alert::Severity::Info,
                        subject: "global".into(),
                        dedup_key: format!("redis_restored:{}", self.shown),
                        message: message.into(),
                        details: serde_json::json!({"redis": self.shown}),
                    });
                }
                None => tracing::warn!(target: "tollgate::alert", redis = %self.shown, "{message}"),
            }
        }
    }
}

/// What an admitted request holds in Redis until it ends.
#[derive(Debug)]
pub(super) struct Lease {
    inner: Arc<Inner>,
    id: String,
    keys: Vec<String>,
    /// Per subject: tokens per minute, concurrency (0: none).
    rules: Vec<(u64, u32)>,
    /// The task renewing the concurrency leases while the request is in flight.
    heartbeat: Option<tokio::task::AbortHandle>,
}

impl Lease {
    /// Renew the concurrency leases in `keys` every third of the TTL until aborted. Only the
    /// process dying (or [`Lease::end`]) stops it, so a dead instance's leases still expire.
    fn heartbeat(inner: Arc<Inner>, id: String, keys: Vec<String>) -> tokio::task::AbortHandle {
        let every = (inner.lease_ttl / 3).max(Duration::from_millis(10));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Ok(mut c) = inner.conn().await else {
                    // Redis is down: the next tick tries again; if it stays down past the
                    // TTL the lease expires, as every other counter then does.
                    continue;
                };
                let mut call = inner.renew.prepare_invoke();
                for k in &keys {
                    call.key(k);
                }
                call.arg(&id).arg(inner.lease_ttl.as_millis() as u64);
                match call.invoke_async::<i64>(&mut c).await {
                    Ok(n) if n < keys.len() as i64 => {
                        tracing::warn!(
                            lease = %id,
                            renewed = n,
                            held = keys.len(),
                            "a concurrency lease expired while its request was in flight (Redis unreachable for longer than the lease); its slot is no longer counted"
                        );
                    }
                    Ok(_) => {}
                    Err(e) => {
                        inner.down(format!("renewing a concurrency lease: {e}"));
                    }
                }
            }
        })
        .abort_handle()
    }

    /// Settle `delta` tokens (reserved − used) and release the lease, without waiting.
    pub(super) fn end(&mut self, delta: i64) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        let has_tokens = delta != 0 && self.rules.iter().any(|r| r.0 > 0);
        let has_lease = self.rules.iter().any(|r| r.1 > 0);
        if !has_tokens && !has_lease {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = self.inner.clone();
        let id = std::mem::take(&mut self.id);
        let keys = std::mem::take(&mut self.keys);
        let rules = std::mem::take(&mut self.rules);
        rt.spawn(async move {
            let Ok(mut c) = inner.conn().await else {
                // The lease expires by itself; the tokens stay reserved until refilled.
                return;
            };
            let mut call = inner.settle.prepare_invoke();
            for k in &keys {
                call.key(k);
            }
            call.arg(delta).arg(&id);
            for (tpm, conc) in &rules {
                call.arg(*tpm).arg(*conc);
            }
            if let Err(e) = call.invoke_async::<i64>(&mut c).await {
                inner.down(format!("settling a request: {e}"));
            }
        });
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }
}

/// One admission prepared for the admission script: its keys and ARGV, and what is needed
/// to read the answer. Built by [`RedisLimiter::plan`], sent alone (`admit_shared`) or
/// together with a budget reservation ([`crate::budget::shared`]).
#[derive(Debug)]
pub struct AdmitPlan {
    id: String,
    keys: Vec<String>,
    args: Vec<String>,
    /// Per subject: tokens per minute, concurrency (0: none).
    rules: Vec<(u64, u32)>,
    /// Per subject: its scope and rule, to name a refusal.
    subjects: Vec<(super::Scope, crate::config::limits::Rule)>,
    tokens: u64,
}

impl AdmitPlan {
    /// KEYS of [`ADMIT_SCRIPT`].
    pub(crate) fn keys(&self) -> &[String] {
        &self.keys
    }

    /// ARGV of [`ADMIT_SCRIPT`].
    pub(crate) fn args(&self) -> &[String] {
        &self.args
    }
}

/// An admitted request's settlement in Redis, taken out of its [`Admission`] so that it
/// travels in the same round trip as the budget settlement ([`crate::budget::shared`]).
#[derive(Debug)]
pub struct RateSettlement {
    inner: Arc<Inner>,
    keys: Vec<String>,
    args: Vec<String>,
}

impl RateSettlement {
    /// KEYS of [`SETTLE_SCRIPT`].
    pub(crate) fn keys(&self) -> &[String] {
        &self.keys
    }

    /// ARGV of [`SETTLE_SCRIPT`].
    pub(crate) fn args(&self) -> &[String] {
        &self.args
    }

    /// Send it on its own, without waiting (when there is no budget settlement to join).
    pub(crate) fn send(self) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            let Ok(mut c) = self.inner.conn().await else {
                // The lease expires by itself; the tokens stay reserved until refilled.
                return;
            };
            let mut call = self.inner.settle.prepare_invoke();
            for k in &self.keys {
                call.key(k);
            }
            for a in &self.args {
                call.arg(a);
            }
            if let Err(e) = call.invoke_async::<i64>(&mut c).await {
                self.inner.down(format!("settling a request: {e}"));
            }
        });
    }
}

impl Lease {
    /// Take the settlement of `delta` tokens and the release of the lease out of this lease,
    /// to be sent by someone else; the lease then ends with nothing to do. None: nothing to
    /// settle or release.
    pub(super) fn take_settlement(&mut self, delta: i64) -> Option<RateSettlement> {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        let rules = std::mem::take(&mut self.rules);
        let keys = std::mem::take(&mut self.keys);
        let id = std::mem::take(&mut self.id);
        let has_tokens = delta != 0 && rules.iter().any(|r| r.0 > 0);
        let has_lease = rules.iter().any(|r| r.1 > 0);
        if !has_tokens && !has_lease {
            return None;
        }
        let mut args = vec![delta.to_string(), id];
        for (tpm, conc) in &rules {
            args.push(tpm.to_string());
            args.push(conc.to_string());
        }
        Some(RateSettlement {
            inner: self.inner.clone(),
            keys,
            args,
        })
    }
}

impl RedisLimiter {
    /// Prepare the admission of a request over `subjects` (those with a rule) reserving
    /// `tokens`.
    pub fn plan(&self, subjects: &[&Subject], tokens: u64) -> AdmitPlan {
        let inner = &self.inner;
        let id = uuid::Uuid::new_v4().simple().to_string();
        let mut keys = Vec::with_capacity(subjects.len() * 2);
        for s in subjects {
            keys.extend(inner.keys(s));
        }
        let mut args = vec![
            tokens.to_string(),
            id.clone(),
            (inner.lease_ttl.as_millis() as u64).to_string(),
        ];
        let mut rules = Vec::with_capacity(subjects.len());
        for s in subjects {
            let r = s.rule;
            args.push(r.rpm.unwrap_or(0).to_string());
            args.push(r.tpm.unwrap_or(0).to_string());
            args.push(r.concurrency.unwrap_or(0).to_string());
            rules.push((r.tpm.unwrap_or(0), r.concurrency.unwrap_or(0)));
        }
        AdmitPlan {
            id,
            keys,
            args,
            rules,
            subjects: subjects.iter().map(|s| (s.scope, s.rule)).collect(),
            tokens,
        }
    }

    /// Read the admission script's `reply` to `plan`: the admission (its lease renewed by a
    /// heartbeat), the refusal, or (inner Err) why the reply makes no sense.
    pub(crate) fn admitted(
        &self,
        plan: AdmitPlan,
        reply: &[i64],
    ) -> Result<Admission, Result<Refusal, String>> {
        let inner = &self.inner;
        let ms = |v: i64| Duration::from_millis(v.max(0) as u64);
        let num = |v: i64| v.max(0) as u64;
        let AdmitPlan {
            id,
            keys,
            rules,
            subjects,
            tokens,
            ..
        } = plan;
        match reply {
            [1, rl, rr, rs, tl, tr, ts] => {
                let headroom = Headroom {
                    requests_limit: (*rl > 0).then_some(num(*rl)),
                    requests_remaining: num(*rr),
                    requests_reset: ms(*rs),
                    tokens_limit: (*tl > 0).then_some(num(*tl)),
                    tokens_remaining: num(*tr),
                    tokens_reset: ms(*ts),
                };
                let leased: Vec<String> = keys
                    .chunks(2)
                    .zip(&rules)
                    .filter(|(_, r)| r.1 > 0)
                    .filter_map(|(k, _)| k.get(1).cloned())
                    .collect();
                let heartbeat = (!leased.is_empty())
                    .then(|| Lease::heartbeat(inner.clone(), id.clone(), leased));
                Ok(Admission {
                    hold: Hold::Shared(Lease {
                        inner: inner.clone(),
                        id,
                        keys,
                        rules,
                        heartbeat,
                    }),
                    reserved: tokens,
                    used: None,
                    headroom,
                })
            }
            [0, i, kind, retry] => {
                let (scope, rule) = subjects
                    .get((*i as usize).saturating_sub(1))
                    .ok_or_else(|| Err(format!("the admission script named subject {i}")))?;
                let (limit, value) = match kind {
                    1 => ("requests", rule.rpm.unwrap_or(0)),
                    2 => ("tokens", rule.tpm.unwrap_or(0)),
                    _ => ("concurrency", u64::from(rule.concurrency.unwrap_or(0))),
                };
                Err(Ok(Refusal {
                    scope: *scope,
                    limit,
                    value,
                    retry_after: ms(*retry),
                }))
            }
            other => Err(Err(format!(
                "the admission script answered {other:?}; is another tollgate version sharing this Redis?"
            ))),
        }
    }

    async fn admit_shared(
        &self,
        subjects: &[&Subject],
        tokens: u64,
    ) -> Result<Admission, Result<Refusal, String>> {
        let inner = &self.inner;
        let mut c = inner.conn().await.map_err(Err)?;
        let plan = self.plan(subjects, tokens);
        let mut call = inner.admit.prepare_invoke();
        for k in &plan.keys {
            call.key(k);
        }
        for a in &plan.args {
            call.arg(a);
        }
        let reply: Vec<i64> = match call.invoke_async(&mut c).await {
            Ok(v) => v,
            Err(e) => return Err(Err(inner.down(format!("admitting a request: {e}")))),
        };
        inner.up();
        self.admitted(plan, &reply)
    }

    /// The subjects of `subjects` that have a rule: those the admission counts.
    pub fn limited(subjects: &[Subject]) -> Vec<&Subject> {
        subjects.iter().filter(|s| !s.rule.is_empty()).collect()
    }

    /// What happens when Redis cannot be reached to admit: the policy's refusal or the local
    /// limiter's answer.
    fn unreachable(
        &self,
        reason: String,
        subjects: &[Subject],
        tokens: u64,
        now: Instant,
    ) -> Result<Admission, LimitError> {
        match self.inner.policy {
            RedisUnavailable::FailClosed => Err(LimitError::Unavailable(format!(
                "shared rate limits are unavailable: {reason}; refusing rather than serving unlimited (limits.redis_unavailable = \"fail_closed\")"
            ))),
            RedisUnavailable::Local => self
                .inner
                .fallback
                .admit(subjects, tokens, now)
                .map_err(LimitError::Refused),
        }
    }
}

#[async_trait::async_trait]
impl RateLimiter for RedisLimiter {
    async fn admit(
        &self,
        subjects: &[Subject],
        tokens: u64,
        now: Instant,
    ) -> Result<Admission, LimitError> {
        let limited = Self::limited(subjects);
        if limited.is_empty() {
            return Ok(Admission::free());
        }
        match self.admit_shared(&limited, tokens).await {
            Ok(a) => Ok(a),
            Err(Ok(refusal)) => Err(LimitError::Refused(refusal)),
            Err(Err(reason)) => self.unreachable(reason, subjects, tokens, now),
        }
    }

    async fn abuse(
        &self,
        key_id: &str,
        kind: &str,
        threshold: u32,
        window: Duration,
        suspend: Duration,
    ) -> bool {
        if threshold == 0 {
            return false;
        }
        let inner = &self.inner;
        let counted = async {
            let mut c = inner.conn().await?;
            let mut call = inner.abuse.prepare_invoke();
            call.key(format!("{}:a:{kind}:{key_id}", inner.prefix))
                .key(format!("{}:s:{key_id}", inner.prefix))
                .arg(window.as_millis().max(1) as u64)
                .arg(threshold)
                .arg(uuid::Uuid::new_v4().simple().to_string())
                .arg(suspend.min(ABUSE_SETTLE).as_millis().max(1) as u64);
            call.invoke_async::<i64>(&mut c)
                .await
                .map_err(|e| inner.down(format!("counting an abuse event: {e}")))
        };
        match counted.await {
            Ok(n) => {
                inner.up();
                n == 1
            }
            // Without Redis this instance counts alone: a key abusing it still gets
            // suspended, only later than with the shared count.
            Err(_) => {
                inner
                    .fallback
                    .abuse(key_id, kind, threshold, window, suspend, Instant::now())
            }
        }
    }

    fn shares_abuse(&self) -> bool {
        true
    }

    fn shared(&self) -> Option<&RedisLimiter> {
        Some(self)
    }

    async fn readiness(&self) -> Readiness {
        let inner = &self.inner;
        let reason = match inner.conn().await {
            Ok(mut c) => match redis::cmd("PING").query_async::<String>(&mut c).await {
                Ok(_) => {
                    inner.up();
                    return Readiness::Ready;
                }
                Err(e) => inner.down(format!("PING: {e}")),
            },
            Err(reason) => reason,
        };
        match inner.policy {
            RedisUnavailable::FailClosed => Readiness::Unavailable(format!(
                "{reason}: requests are refused (limits.redis_unavailable = \"fail_closed\")"
            )),
            RedisUnavailable::Local => Readiness::Degraded(format!(
                "{reason}: limits are enforced per instance (limits.redis_unavailable = \"local\")"
            )),
        }
    }
}

#[cfg(test)]
mod tests;
