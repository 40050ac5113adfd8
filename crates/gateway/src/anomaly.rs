//! Anomaly detection on per-minute usage (checklist MI-2).
//!
//! For each subject (`key:ID`, `team:NAME`, and `global` for authentication failures, whose
//! key is unknown) and each [`Metric`], the [`Detector`] keeps one-minute buckets: the
//! current minute and up to `baseline_minutes` (default 60) completed ones, minutes without
//! traffic counting as zero.
//!
//! **Method: median and MAD.** The baseline is the median `m` of the completed minutes and
//! its spread the median absolute deviation scaled to a standard deviation
//! (`s = 1.4826 · MAD`). The current minute is a spike when
//!
//! ```text
//! value >= floor(metric)  and  value > m + k · max(s, 0.1 · m, floor(metric) / k / 10)
//! ```
//!
//! with `k` = `sensitivity` (default 6). Median and MAD are chosen over a mean and standard
//! deviation or an EWMA because one earlier spike, or a few busy minutes, barely move them:
//! an attacker cannot "train" the baseline upward with one burst, and a single outlier in
//! the history does not mask the next one. The `0.1 · m` term keeps a perfectly flat
//! baseline (MAD 0) from alerting on a 1 % wobble, and the absolute floor (`min_requests`,
//! `min_tokens`, `min_cost_usd`, `min_errors`, `min_guard_blocks`, `min_auth_failures`)
//! keeps quiet keys, whose baseline is all zeros, from alerting on noise. Nothing alerts
//! until `min_baseline_minutes` (default 10) of history exist for the series.
//!
//! The check runs as each observation arrives, so a spike is caught within its minute; a
//! series alerts at most once per minute, and the alerter's dedup cooldown
//! ([`crate::alert`]) turns a spike lasting several minutes into one alert.

use std::collections::{HashMap, VecDeque};

use crate::config::alerts::AnomalyConfig;

/// Most series kept; beyond it, stale series are dropped and new ones wait.
pub const MAX_SERIES: usize = 100_000;

/// What is counted per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Requests.
    Requests,
    /// Input plus output tokens.
    Tokens,
    /// Cost in USD.
    Cost,
    /// Failed requests.
    Errors,
    /// Requests blocked by a guard.
    GuardBlocks,
    /// Authentication failures.
    AuthFailures,
}

impl Metric {
    /// Name in alerts.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Requests => "requests",
            Self::Tokens => "tokens",
            Self::Cost => "cost_usd",
            Self::Errors => "errors",
            Self::GuardBlocks => "guard_blocks",
            Self::AuthFailures => "auth_failures",
        }
    }

    fn floor(self, c: &AnomalyConfig) -> f64 {
        match self {
            Self::Requests => c.min_requests,
            Self::Tokens => c.min_tokens,
            Self::Cost => c.min_cost_usd,
            Self::Errors => c.min_errors,
            Self::GuardBlocks => c.min_guard_blocks,
            Self::AuthFailures => c.min_auth_failures,
        }
    }
}

/// A minute far above its baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct Spike {
    /// Whose.
    pub subject: String,
    /// Which metric.
    pub metric: Metric,
    /// The minute (Unix minutes).
    pub minute: i64,
    /// Its value so far.
    pub value: f64,
    /// Median of the baseline.
    pub median: f64,
    /// Scaled MAD of the baseline.
    pub spread: f64,
    /// The value it passed.
    pub threshold: f64,
}

#[derive(Debug)]
struct Series {
    minute: i64,
    current: f64,
    history: VecDeque<f64>,
    fired: bool,
}

/// Per-minute buckets and the spike test; see the module doc.
#[derive(Debug)]
pub struct Detector {
    cfg: AnomalyConfig,
    series: HashMap<(String, Metric), Series>,
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

impl Detector {
    /// A detector with these settings.
    pub fn new(cfg: AnomalyConfig) -> Self {
        Self {
            cfg,
            series: HashMap::new(),
        }
    }

    /// Add `value` of `metric` for `subject` in `minute` (Unix minutes); a spike if this
    /// makes the minute anomalous for the first time.
    pub fn add(&mut self, subject: &str, metric: Metric, value: f64, minute: i64) -> Option<Spike> {
        let cap = self.cfg.baseline_minutes.max(1);
        let key = (subject.to_owned(), metric);
        if !self.series.contains_key(&key) {
            if self.series.len() >= MAX_SERIES {
                self.series
                    .retain(|_, s| minute.saturating_sub(s.minute) < cap as i64);
                if self.series.len() >= MAX_SERIES {
                    return None;
                }
            }
            self.series.insert(
                key.clone(),
                Series {
                    minute,
                    current: 0.0,
                    history: VecDeque::new(),
                    fired: false,
                },
            );
        }
        let s = self.series.get_mut(&key)?;
        if minute < s.minute {
            // Late (another thread's clock read): counted nowhere rather than in the wrong
            // minute.
            return None;
        }
        if minute > s.minute {
            s.history.push_back(s.current);
            let gap = (minute - s.minute - 1).min(cap as i64);
            for _ in 0..gap {
                s.history.push_back(0.0);
            }
            while s.history.len() > cap {
                s.history.pop_front();
            }
            s.minute = minute;
            s.current = 0.0;
            s.fired = false;
        }
        s.current += value;
        let floor = metric.floor(&self.cfg);
        if s.fired || s.history.len() < self.cfg.min_baseline_minutes || s.current < floor {
            return None;
        }
        let mut h: Vec<f64> = s.history.iter().copied().collect();
        let m = median(&mut h);
        let mut dev: Vec<f64> = h.iter().map(|x| (x - m).abs()).collect();
        let spread = 1.4826 * median(&mut dev);
        let k = self.cfg.sensitivity;
        let threshold = m + k * spread.max(0.1 * m).max(floor / k / 10.0);
        if s.current > threshold {
            s.fired = true;
            return Some(Spike {
                subject: subject.to_owned(),
                metric,
                minute,
                value: s.current,
                median: m,
                spread,
                threshold,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det() -> Detector {
        Detector::new(AnomalyConfig {
            min_cost_usd: 1.0,
            min_requests: 30.0,
            ..AnomalyConfig::default()
        })
    }

    /// Feed `per_minute` requests a minute for minutes `0..n`.
    fn steady(d: &mut Detector, per_minute: &[f64]) -> usize {
        let mut spikes = 0;
        for (minute, v) in per_minute.iter().enumerate() {
            spikes += usize::from(
                d.add("key:k", Metric::Requests, *v, minute as i64)
                    .is_some(),
            );
        }
        spikes
    }

    #[test]
    fn a_spike_far_above_a_noisy_baseline_fires_once_in_its_minute() {
        let mut d = det();
        let base: Vec<f64> = (0..30).map(|i| 40.0 + f64::from(i % 7)).collect();
        assert_eq!(steady(&mut d, &base), 0, "ordinary noise never fires");
        let mut fired = Vec::new();
        for _ in 0..200 {
            if let Some(s) = d.add("key:k", Metric::Requests, 1.0, 30) {
                fired.push(s);
            }
        }
        assert_eq!(fired.len(), 1, "once per minute");
        let s = &fired[0];
        assert!((s.median - 43.0).abs() < 1.0, "{s:?}");
        assert!(s.value > s.threshold && s.threshold < 100.0, "{s:?}");
    }

    #[test]
    fn a_moderate_rise_within_the_spread_does_not_fire() {
        let mut d = det();
        let base: Vec<f64> = (0..30).map(|i| 40.0 + f64::from(i % 7)).collect();
        steady(&mut d, &base);
        assert!(d.add("key:k", Metric::Requests, 55.0, 30).is_none());
    }

    #[test]
    fn quiet_keys_do_not_alert_below_the_floor() {
        let mut d = det();
        steady(
            &mut d,
            &[0.0, 1.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
        );
        // 20 requests after a near-silent hour is a big ratio, but under min_requests.
        assert!(d.add("key:k", Metric::Requests, 20.0, 12).is_none());
        assert!(d.add("key:k", Metric::Requests, 20.0, 12).is_some());
    }

    #[test]
    fn nothing_fires_without_enough_history() {
        let mut d = det();
        steady(&mut d, &[1.0; 5]);
        assert!(d.add("key:k", Metric::Requests, 1_000.0, 5).is_none());
    }

    #[test]
    fn idle_minutes_count_as_zero_in_the_baseline() {
        let mut d = det();
        d.add("key:k", Metric::Cost, 0.01, 0);
        // Three hours later: the history is sixty zero minutes, so $5 in a minute fires.
        let s = d.add("key:k", Metric::Cost, 5.0, 180).unwrap();
        assert_eq!(s.median, 0.0);
    }

    #[test]
    fn one_old_outlier_does_not_mask_the_next_spike() {
        let mut d = det();
        let mut base: Vec<f64> = vec![40.0; 30];
        base[10] = 5_000.0;
        steady(&mut d, &base);
        assert!(d.add("key:k", Metric::Requests, 400.0, 30).is_some());
    }

    #[test]
    fn subjects_and_metrics_are_separate_series() {
        let mut d = det();
        for m in 0..20 {
            d.add("key:a", Metric::Requests, 40.0, m);
            d.add("key:b", Metric::Requests, 400.0, m);
        }
        assert!(d.add("key:b", Metric::Requests, 400.0, 20).is_none());
        assert!(d.add("key:a", Metric::Requests, 400.0, 20).is_some());
        assert!(
            d.add("key:a", Metric::Tokens, 1e9, 20).is_none(),
            "no history yet"
        );
    }

    #[test]
    fn late_observations_are_ignored() {
        let mut d = det();
        d.add("key:k", Metric::Requests, 1.0, 10);
        assert!(d.add("key:k", Metric::Requests, 1e9, 9).is_none());
    }
}
