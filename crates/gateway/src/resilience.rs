//! Resilience toward providers (first part of checklist MG-3): jittered exponential backoff,
//! `Retry-After` parsing, and a per-target circuit breaker.
//!
//! Time comes from `tokio::time` so tests can pause and advance it.

use std::time::Duration;

use parking_lot::Mutex;
use rand::Rng;
use tokio::time::Instant;

/// Longest backoff between two attempts, whatever the attempt number.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Delay before retry number `attempt` (0-based): `base * 2^attempt`, capped, with "equal
/// jitter" (half fixed, half random) so synchronized clients spread out without ever
/// retrying immediately.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base
        .saturating_mul(1u32 << attempt.min(16))
        .min(MAX_BACKOFF);
    let half = exp / 2;
    let jitter = rand::thread_rng().gen_range(0..=half.as_millis().max(1) as u64);
    half + Duration::from_millis(jitter)
}

/// Parse a `Retry-After` value: delta-seconds or an HTTP date; also OpenAI's `retry-after-ms`.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<f64>() {
        if (0.0..86_400.0).contains(&secs) {
            return Some(Duration::from_secs_f64(secs));
        }
        return None;
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let delta = at.with_timezone(&chrono::Utc) - now;
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    // The trial's start time: a trial whose outcome is never reported (the client went away)
    // must not wedge the breaker, so another trial is allowed after one cool-down.
    HalfOpen { trial_since: Instant },
}

/// Observable breaker state, for metrics and readiness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// Calls are refused until the cool-down ends.
    Open,
    /// One trial call decides whether to close again.
    HalfOpen,
}

/// A consecutive-failure circuit breaker for one target.
#[derive(Debug)]
pub struct CircuitBreaker {
    threshold: u32,
    cooldown: Duration,
    state: Mutex<State>,
}

impl CircuitBreaker {
    /// Opens after `threshold` consecutive failures, for `cooldown`.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    /// Whether a call may go ahead now. In half-open state only one trial call passes.
    pub fn allow(&self) -> bool {
        let mut s = self.state.lock();
        match *s {
            State::Closed { .. } => true,
            State::Open { until } => {
                if Instant::now() >= until {
                    *s = State::HalfOpen {
                        trial_since: Instant::now(),
                    };
                    true
                } else {
                    false
                }
            }
            State::HalfOpen { trial_since } => {
                if trial_since.elapsed() < self.cooldown {
                    false
                } else {
                    *s = State::HalfOpen {
                        trial_since: Instant::now(),
                    };
                    true
                }
            }
        }
    }

    /// Record a success: the breaker closes.
    pub fn success(&self) {
        *self.state.lock() = State::Closed { failures: 0 };
    }

    /// Record a failure; may open the breaker.
    pub fn failure(&self) {
        let mut s = self.state.lock();
        *s = match *s {
            State::Closed { failures } if failures + 1 < self.threshold => State::Closed {
                failures: failures + 1,
            },
            _ => State::Open {
                until: Instant::now() + self.cooldown,
            },
        };
    }

    /// Current state.
    pub fn state(&self) -> BreakerState {
        match *self.state.lock() {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until } if Instant::now() >= until => BreakerState::HalfOpen,
            State::Open { .. } => BreakerState::Open,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let base = Duration::from_millis(100);
        for _ in 0..50 {
            let d0 = backoff(base, 0);
            assert!(
                d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(101),
                "{d0:?}"
            );
            let d3 = backoff(base, 3);
            assert!(
                d3 >= Duration::from_millis(400) && d3 <= Duration::from_millis(801),
                "{d3:?}"
            );
            assert!(backoff(base, 30) <= MAX_BACKOFF + Duration::from_millis(1));
        }
    }

    #[test]
    fn retry_after_forms() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:27:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("0.5", now),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:20:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("1e300", now), None);
        assert_eq!(parse_retry_after("NaN", now), None);
    }

    #[tokio::test(start_paused = true)]
    async fn breaker_opens_cools_down_and_half_opens_once() {
        let b = CircuitBreaker::new(3, Duration::from_secs(30));
        b.failure();
        b.failure();
        assert!(b.allow());
        b.failure();
        assert_eq!(b.state(), BreakerState::Open);
        assert!(!b.allow());
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(b.allow(), "first call after cool-down is the trial");
        assert!(!b.allow(), "only one trial at a time");
        b.failure();
        assert!(!b.allow(), "failed trial reopens");
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(b.allow());
        assert!(!b.allow());
        tokio::time::advance(Duration::from_secs(31)).await;
        assert!(b.allow(), "an unreported trial does not wedge the breaker");
        b.success();
        assert_eq!(b.state(), BreakerState::Closed);
        assert!(b.allow() && b.allow());
    }

    #[test]
    fn success_resets_the_failure_count() {
        let b = CircuitBreaker::new(2, Duration::from_secs(1));
        b.failure();
        b.success();
        b.failure();
        assert_eq!(b.state(), BreakerState::Closed);
    }
}
