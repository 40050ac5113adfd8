//! The limits stage (DO-1): requests and tokens per minute and concurrency per key, team,
//! client IP and route; abuse suspension.
//!
//! Each (subject, id) has token buckets of capacity N refilled at N per minute, so a burst of
//! exactly N passes and the rate then settles at N per minute. Admission is all-or-nothing
//! across subjects under one lock: a request refused by its team's limit does not use up its
//! key's. Tokens are reserved before the call (prompt estimate + `max_tokens`) and settled
//! with the reported usage afterwards, so the bucket can go briefly negative when a model
//! used more than reserved. Concurrency permits live in the request context and are released
//! when it is dropped, which for a stream is when the stream ends.
//!
//! The pipeline sees limits through [`RateLimiter`]: [`LocalLimits`] wraps this instance's
//! [`Limiter`]; [`shared::RedisLimiter`] keeps the same buckets in Redis so that several
//! instances enforce one limit together.

pub mod shared;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use crate::config::limits::Rule;

/// What a limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// A virtual key.
    Key,
    /// A team.
    Team,
    /// A client IP.
    Ip,
    /// A route.
    Route,
}

impl Scope {
    /// Name used in errors and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Team => "team",
            Self::Ip => "ip",
            Self::Route => "route",
        }
    }
}

/// One subject of a request with the rule that applies to it.
#[derive(Debug, Clone)]
pub struct Subject {
    /// Kind of subject.
    pub scope: Scope,
    /// Its id (key id, team name, IP, route alias).
    pub id: String,
    /// Its limits.
    pub rule: Rule,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    capacity: f64,
    per_sec: f64,
    level: f64,
    updated: Instant,
}

impl Bucket {
    fn new(per_minute: u64, now: Instant) -> Self {
        let capacity = per_minute as f64;
        Self {
            capacity,
            per_sec: capacity / 60.0,
            level: capacity,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.updated).as_secs_f64();
        self.level = (self.level + dt * self.per_sec).min(self.capacity);
        self.updated = now;
    }

    /// Time until `n` would be available.
    fn wait_for(&self, n: f64) -> Duration {
        if self.level >= n {
            return Duration::ZERO;
        }
        Duration::from_secs_f64(((n - self.level) / self.per_sec).max(0.0))
    }

    /// Time until the bucket is full again.
    fn reset(&self) -> Duration {
        Duration::from_secs_f64(((self.capacity - self.level) / self.per_sec).max(0.0))
    }
}

#[derive(Debug, Default)]
struct SubjectState {
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
    in_flight: u32,
}

/// A refusal: which limit, and when to retry.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// Subject kind.
    pub scope: Scope,
    /// `requests`, `tokens` or `concurrency`.
    pub limit: &'static str,
    /// The configured value.
    pub value: u64,
    /// When a retry can succeed.
    pub retry_after: Duration,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.limit {
            "concurrency" => write!(
                f,
                "{} limit of {} concurrent requests reached",
                self.scope.as_str(),
                self.value
            ),
            "tokens" => write!(
                f,
                "{} limit of {} tokens per minute reached",
                self.scope.as_str(),
                self.value
            ),
            _ => write!(
                f,
                "{} limit of {} requests per minute reached",
                self.scope.as_str(),
                self.value
            ),
        }
    }
}

/// The tightest limits a request saw, for the `x-ratelimit-*` headers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Headroom {
    /// Requests per minute of the tightest request limit.
    pub requests_limit: Option<u64>,
    /// Requests left in it.
    pub requests_remaining: u64,
    /// Until it is full again.
    pub requests_reset: Duration,
    /// Tokens per minute of the tightest token limit.
    pub tokens_limit: Option<u64>,
    /// Tokens left in it.
    pub tokens_remaining: u64,
    /// Until it is full again.
    pub tokens_reset: Duration,
}

/// Where an admission's reservation and concurrency slots are held.
#[derive(Debug)]
enum Hold {
    /// Nothing was limited.
    Free,
    /// In this instance's [`Limiter`].
    Local {
        limiter: Arc<Limiter>,
        subjects: Vec<(Scope, String)>,
        concurrent: Vec<(Scope, String)>,
    },
    /// In Redis: settled and released in one call when the admission drops.
    Shared(shared::Lease),
}

/// An admitted request's hold on the limiter: its token reservation and concurrency slots,
/// released or settled when dropped.
#[derive(Debug)]
pub struct Admission {
    hold: Hold,
    reserved: u64,
    /// Tokens the call used, once settled.
    used: Option<u64>,
    /// Headers to send.
    pub headroom: Headroom,
}

impl Admission {
    /// An admission that holds nothing (no limit applied).
    pub fn free() -> Self {
        Self {
            hold: Hold::Free,
            reserved: 0,
            used: None,
            headroom: Headroom::default(),
        }
    }

    /// Settle the token reservation with what the call actually used.
    pub fn settle(&mut self, used: u64) {
        if self.used.is_some() {
            return;
        }
        self.used = Some(used);
        let Hold::Local {
            limiter, subjects, ..
        } = &self.hold
        else {
            // Shared: settled together with the release, in one call, on drop.
            return;
        };
        let delta = self.reserved as f64 - used as f64;
        if delta == 0.0 {
            return;
        }
        let mut map = limiter.state.lock();
        for key in subjects {
            if let Some(b) = map.get_mut(key).and_then(|s| s.tokens.as_mut()) {
                b.level = (b.level + delta).min(b.capacity);
            }
        }
    }
}

impl Admission {
    /// Settle with `used` tokens by taking the Redis settlement (and lease release) out of
    /// this admission, for the caller to send together with the budget settlement in one
    /// round trip; the admission then ends with nothing left to send. None when the hold is
    /// not in Redis (nothing taken: use [`Admission::settle`]) or there is nothing to send.
    pub fn take_shared_settlement(&mut self, used: u64) -> Option<shared::RateSettlement> {
        let Hold::Shared(lease) = &mut self.hold else {
            return None;
        };
        if self.used.is_some() {
            return None;
        }
        self.used = Some(used);
        let delta = i64::try_from(self.reserved)
            .unwrap_or(i64::MAX)
            .saturating_sub(i64::try_from(used).unwrap_or(i64::MAX));
        lease.take_settlement(delta)
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        match &mut self.hold {
            Hold::Free => {}
            Hold::Local {
                limiter,
                concurrent,
                ..
            } => {
                let mut map = limiter.state.lock();
                for key in concurrent.iter() {
                    if let Some(s) = map.get_mut(key) {
                        s.in_flight = s.in_flight.saturating_sub(1);
                    }
                }
            }
            Hold::Shared(lease) => {
                // Never settled (the call failed before any usage): give it all back.
                let used = self.used.unwrap_or(0);
                let delta = i64::try_from(self.reserved).unwrap_or(i64::MAX)
                    - i64::try_from(used).unwrap_or(i64::MAX);
                lease.end(delta);
            }
        }
    }
}

/// Why a request was not admitted.
#[derive(Debug, Clone, PartialEq)]
pub enum LimitError {
    /// A limit refuses it (429).
    Refused(Refusal),
    /// The shared limiter cannot decide (Redis is unreachable under `fail_closed`, 503).
    Unavailable(String),
}

/// Whether the limiter can enforce what the config asks, for `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// Enforcing as configured.
    Ready,
    /// Serving, but with weaker limits than configured (why).
    Degraded(String),
    /// Refusing requests (why).
    Unavailable(String),
}

/// Admission control over requests, tokens and concurrency, local or shared.
#[async_trait::async_trait]
pub trait RateLimiter: std::fmt::Debug + Send + Sync {
    /// Admit a request of `tokens` (reserved) for every subject, or say why not. `now` is
    /// the local clock (tests pause it); a shared limiter uses its server's clock instead.
    async fn admit(
        &self,
        subjects: &[Subject],
        tokens: u64,
        now: Instant,
    ) -> Result<Admission, LimitError>;

    /// Whether limits are enforced as configured.
    async fn readiness(&self) -> Readiness;

    /// Count an abuse event of a key (see [`Limiter::abuse`]); true for exactly the one
    /// event that reaches `threshold` within `window`, which must then suspend the key for
    /// `suspend` (a shared limiter counts across every instance).
    async fn abuse(
        &self,
        key_id: &str,
        kind: &str,
        threshold: u32,
        window: Duration,
        suspend: Duration,
    ) -> bool;

    /// The Redis limiter behind this one, when limits are shared there: a request that also
    /// has a budget is then admitted and reserved in one round trip
    /// ([`crate::budget::Budgets::reserve_and_admit`]).
    fn shared(&self) -> Option<&shared::RedisLimiter> {
        None
    }

    /// Whether [`RateLimiter::abuse`] counts across instances (and so needs a round trip);
    /// false: it is this instance's count, decided at once.
    fn shares_abuse(&self) -> bool {
        false
    }
}

/// This instance's [`Limiter`] as a [`RateLimiter`].
#[derive(Debug, Clone)]
pub struct LocalLimits(pub Arc<Limiter>);

#[async_trait::async_trait]
impl RateLimiter for LocalLimits {
    async fn admit(
        &self,
        subjects: &[Subject],
        tokens: u64,
        now: Instant,
    ) -> Result<Admission, LimitError> {
        self.0
            .admit(subjects, tokens, now)
            .map_err(LimitError::Refused)
    }

    async fn readiness(&self) -> Readiness {
        Readiness::Ready
    }

    async fn abuse(
        &self,
        key_id: &str,
        kind: &str,
        threshold: u32,
        window: Duration,
        suspend: Duration,
    ) -> bool {
        self.0
            .abuse(key_id, kind, threshold, window, suspend, Instant::now())
    }
}

/// Most subjects tracked before idle, full ones are forgotten (bounds memory against a flood
/// of client IPs).
pub const MAX_TRACKED: usize = 200_000;

/// The local (single-instance) limiter.
#[derive(Debug, Default)]
pub struct Limiter {
    state: Mutex<HashMap<(Scope, String), SubjectState>>,
    abuse: Mutex<HashMap<String, Vec<Instant>>>,
    /// Suspensions decided here: until when, and whether the shared store has it yet (after
    /// which the store's kill switch is the authority, so lifting it there lifts it here).
    suspended: Mutex<HashMap<String, (Instant, bool)>>,
}

impl Limiter {
    /// A limiter with no state.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Admit a request of `tokens` (reserved) for every subject, or say which limit refuses.
    pub fn admit(
        self: &Arc<Self>,
        subjects: &[Subject],
        tokens: u64,
        now: Instant,
    ) -> Result<Admission, Refusal> {
        let mut map = self.state.lock();
        if map.len() > MAX_TRACKED {
            map.retain(|_, s| {
                s.in_flight > 0
                    || s.requests.is_some_and(|b| b.level < b.capacity)
                    || s.tokens.is_some_and(|b| b.level < b.capacity)
            });
        }
        // First pass: would every subject admit it?
        let mut headroom = Headroom::default();
        for s in subjects.iter().filter(|s| !s.rule.is_empty()) {
            let st = map.entry((s.scope, s.id.clone())).or_default();
            if let Some(rpm) = s.rule.rpm {
                let b = st.requests.get_or_insert_with(|| Bucket::new(rpm, now));
                b.refill(now);
                if b.level < 1.0 {
                    return Err(Refusal {
                        scope: s.scope,
                        limit: "requests",
                        value: rpm,
                        retry_after: b.wait_for(1.0),
                    });
                }
            }
            if let Some(tpm) = s.rule.tpm {
                let b = st.tokens.get_or_insert_with(|| Bucket::new(tpm, now));
                b.refill(now);
                // A request larger than the whole budget can never pass: refuse it now
                // rather than make it wait forever.
                let need = (tokens as f64).min(b.capacity);
                if b.level < need {
                    return Err(Refusal {
                        scope: s.scope,
                        limit: "tokens",
                        value: tpm,
                        retry_after: b.wait_for(need),
                    });
                }
            }
            if let Some(c) = s.rule.concurrency {
                if st.in_flight >= c {
                    return Err(Refusal {
                        scope: s.scope,
                        limit: "concurrency",
                        value: u64::from(c),
                        retry_after: Duration::from_secs(1),
                    });
                }
            }
        }
        // Second pass: take.
        let mut taken = Vec::new();
        let mut concurrent = Vec::new();
        for s in subjects.iter().filter(|s| !s.rule.is_empty()) {
            let key = (s.scope, s.id.clone());
            let st = map.entry(key.clone()).or_default();
            if let Some(b) = st.requests.as_mut() {
                b.level -= 1.0;
                let remaining = b.level.max(0.0) as u64;
                if headroom.requests_limit.is_none() || remaining < headroom.requests_remaining {
                    headroom.requests_limit = Some(b.capacity as u64);
                    headroom.requests_remaining = remaining;
                    headroom.requests_reset = b.reset();
                }
            }
            if let Some(b) = st.tokens.as_mut() {
                b.level -= tokens as f64;
                let remaining = b.level.max(0.0) as u64;
                if headroom.tokens_limit.is_none() || remaining < headroom.tokens_remaining {
                    headroom.tokens_limit = Some(b.capacity as u64);
                    headroom.tokens_remaining = remaining;
                    headroom.tokens_reset = b.reset();
                }
            }
            if s.rule.concurrency.is_some() {
                st.in_flight += 1;
                concurrent.push(key.clone());
            }
            taken.push(key);
        }
        Ok(Admission {
            hold: Hold::Local {
                limiter: self.clone(),
                subjects: taken,
                concurrent,
            },
            reserved: tokens,
            used: None,
            headroom,
        })
    }

    /// Whether a key is suspended now (and until when).
    pub fn suspended(&self, key_id: &str, now: Instant) -> Option<Instant> {
        let mut s = self.suspended.lock();
        match s.get(key_id) {
            Some((until, _)) if *until > now => Some(*until),
            Some(_) => {
                s.remove(key_id);
                None
            }
            None => None,
        }
    }

    /// Count an abuse event (a guard block or an authorisation failure) for a key; returns
    /// true when it just crossed `threshold` within `window` and was suspended for `suspend`.
    pub fn abuse(
        &self,
        key_id: &str,
        kind: &str,
        threshold: u32,
        window: Duration,
        suspend: Duration,
        now: Instant,
    ) -> bool {
        if threshold == 0 {
            return false;
        }
        let mut events = self.abuse.lock();
        let list = events.entry(format!("{kind}:{key_id}")).or_default();
        list.retain(|t| now.saturating_duration_since(*t) < window);
        list.push(now);
        if list.len() >= threshold as usize {
            list.clear();
            self.suspend(key_id, now + suspend);
            return true;
        }
        false
    }

    /// Suspend a key here until `until` (at once, before the shared store has it).
    pub fn suspend(&self, key_id: &str, until: Instant) {
        self.suspended
            .lock()
            .insert(key_id.to_owned(), (until, false));
    }

    /// The shared store now holds this key's suspension.
    pub fn suspension_stored(&self, key_id: &str) {
        if let Some(s) = self.suspended.lock().get_mut(key_id) {
            s.1 = true;
        }
    }

    /// Forget the suspensions the store holds but no longer has on (`key_off` false): an
    /// admin lifted them early, on any instance or from the CLI.
    pub fn reconcile(&self, key_off: impl Fn(&str) -> bool) {
        self.suspended
            .lock()
            .retain(|key, (_, stored)| !*stored || key_off(key));
    }
}

/// The client's address: the peer, unless the peer is a trusted proxy, in which case the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(peer: IpAddr, forwarded: Option<&str>, trusted: &[ipnet::IpNet]) -> IpAddr {
    if !trusted.iter().any(|n| n.contains(&peer)) {
        return peer;
    }
    let Some(xff) = forwarded else { return peer };
    let mut ip = peer;
    for hop in xff.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(a) => {
                ip = a;
                if !trusted.iter().any(|n| n.contains(&a)) {
                    return a;
                }
            }
            // A malformed hop ends the trusted chain: use what we had.
            Err(_) => return ip,
        }
    }
    ip
}

/// `6m0s`-style durations, as OpenAI's `x-ratelimit-reset-*` headers carry.
pub fn reset_text(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1_000 {
        return format!("{ms}ms");
    }
    let secs = d.as_secs();
    if secs < 60 {
        return format!("{}s", secs.max(1));
    }
    format!("{}m{}s", secs / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_limit_of_n_admits_exactly_n_then_refills() {
        let l = Limiter::new();
        let t0 = Instant::now();
        let s = [subj(Scope::Key, "k", Some(5), None, None)];
        let mut held = Vec::new();
        for _ in 0..5 {
            held.push(l.admit(&s, 0, t0).unwrap());
        }
        let r = l.admit(&s, 0, t0).unwrap_err();
        assert_eq!(r.limit, "requests");
        assert!(
            r.retry_after > Duration::from_secs(11) && r.retry_after <= Duration::from_secs(12)
        );
        assert!(l.admit(&s, 0, t0 + Duration::from_secs(12)).is_ok());
    }

    #[test]
    fn a_refusal_by_one_subject_uses_nothing_of_the_others() {
        let l = Limiter::new();
        let t0 = Instant::now();
        let key = subj(Scope::Key, "k", Some(2), None, None);
        let team = subj(Scope::Team, "t", Some(1), None, None);
        assert!(l.admit(&[key.clone(), team.clone()], 0, t0).is_ok());
        assert_eq!(
            l.admit(&[key.clone(), team], 0, t0).unwrap_err().scope,
            Scope::Team
        );
        // The key still has its second request.
        assert!(l.admit(std::slice::from_ref(&key), 0, t0).is_ok());
        assert!(l.admit(&[key], 0, t0).is_err());
    }

    #[test]
    fn tokens_are_reserved_then_settled() {
        let l = Limiter::new();
        let t0 = Instant::now();
        let s = [subj(Scope::Key, "k", None, Some(1000), None)];
        let mut a = l.admit(&s, 800, t0).unwrap();
        assert_eq!(a.headroom.tokens_remaining, 200);
        assert_eq!(l.admit(&s, 300, t0).unwrap_err().limit, "tokens");
        a.settle(100);
        assert!(l.admit(&s, 800, t0).is_ok(), "700 refunded");
        // An oversize request is bounded by the capacity, not refused forever.
        let l2 = Limiter::new();
        assert!(l2.admit(&s, 5_000, t0).is_ok());
    }

    #[test]
    fn concurrency_is_released_when_the_admission_drops() {
        let l = Limiter::new();
        let t0 = Instant::now();
        let s = [subj(Scope::Route, "r", None, None, Some(2))];
        let a = l.admit(&s, 0, t0).unwrap();
        let _b = l.admit(&s, 0, t0).unwrap();
        assert_eq!(l.admit(&s, 0, t0).unwrap_err().limit, "concurrency");
        drop(a);
        assert!(l.admit(&s, 0, t0).is_ok());
    }

    #[test]
    fn abuse_suspends_after_the_threshold_within_the_window() {
        let l = Limiter::new();
        let t0 = Instant::now();
        let w = Duration::from_secs(60);
        let s = Duration::from_secs(600);
        assert!(!l.abuse("k", "block", 3, w, s, t0));
        assert!(!l.abuse("k", "block", 3, w, s, t0 + Duration::from_secs(70)));
        assert!(!l.abuse("k", "block", 3, w, s, t0 + Duration::from_secs(71)));
        assert!(l.abuse("k", "block", 3, w, s, t0 + Duration::from_secs(72)));
        assert!(l.suspended("k", t0 + Duration::from_secs(100)).is_some());
        assert!(l.suspended("k", t0 + Duration::from_secs(700)).is_none());
    }

    #[test]
    fn a_stored_suspension_lifted_in_the_store_is_lifted_here() {
        let l = Limiter::new();
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(600);
        l.suspend("stored", later);
        l.suspend("local", later);
        l.suspension_stored("stored");
        // Nothing is switched off in the store any more.
        l.reconcile(|_| false);
        assert!(l.suspended("stored", t0).is_none(), "lifted by an admin");
        assert!(
            l.suspended("local", t0).is_some(),
            "not stored yet: kept until it is"
        );
        l.suspension_stored("local");
        l.reconcile(|k| k == "local");
        assert!(l.suspended("local", t0).is_some(), "still on in the store");
    }

    #[test]
    fn forwarded_for_is_honoured_only_from_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(client_ip(peer, Some("1.2.3.4"), &trusted), peer);
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(
            client_ip(proxy, Some("1.2.3.4, 198.51.100.7, 10.9.9.9"), &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(proxy, None, &trusted), proxy);
        assert_eq!(client_ip(proxy, Some("garbage"), &trusted), proxy);
        assert_eq!(
            client_ip(proxy, Some("1.2.3.4, not-an-ip"), &trusted),
            proxy
        );
    }

    #[test]
    fn reset_text_matches_openai_style() {
        assert_eq!(reset_text(Duration::from_millis(250)), "250ms");
        assert_eq!(reset_text(Duration::from_secs(12)), "12s");
        assert_eq!(reset_text(Duration::from_secs(360)), "6m0s");
    }
}
