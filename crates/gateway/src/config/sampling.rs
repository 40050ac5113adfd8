//! `[review]` and `[routes.NAME.review]`: the share of interactions sampled into the review
//! queue, and the drift check (checklist MI-4). The queue itself is [`crate::review`], the
//! scoring [`crate::drift`].
//!
//! ```toml
//! [review]
//! sample_rate = 0.01        # share of completed chat interactions queued (0..=1; default 0)
//! max_text_chars = 4000     # prompt and completion are each cut to this (default 4000)
//! max_pending = 10000       # sampled items held in memory between flushes (default 10000)
//!
//! [review.drift]
//! enabled = true            # the scheduled drift check (default on)
//! recent_days = 1           # the window scored: the last N UTC days, today included
//! baseline_days = 14        # the window it is compared with: the N days before it
//! psi_threshold = 0.2       # a metric at or above this PSI has drifted
//! min_samples = 100         # a window with fewer observations of a metric is not scored
//! interval = "1h"           # how often the check runs
//!
//! [routes.support.review]
//! sample_rate = 0.05        # this route's share, over [review] sample_rate
//! ```
//!
//! The default sample rate is 0: the queue stores (masked) text, which a deployment should
//! decide to keep. The daily statistics behind drift hold no text and are always collected.

use serde::Deserialize;

use super::{ConfigDuration, Problem};

/// Default cut of each stored text, in characters.
pub const DEFAULT_MAX_TEXT_CHARS: usize = 4_000;
/// Largest accepted `max_text_chars`.
pub const MAX_TEXT_CHARS: usize = 100_000;
/// Default bound of sampled items waiting to be written.
pub const DEFAULT_MAX_PENDING: usize = 10_000;
/// Largest accepted `max_pending`.
pub const MAX_PENDING: usize = 1_000_000;
/// Default PSI at or above which a metric has drifted (the usual "significant shift" line).
pub const DEFAULT_PSI_THRESHOLD: f64 = 0.2;
/// Default drift check interval.
pub const DEFAULT_DRIFT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);
/// Shortest accepted drift check interval.
pub const MIN_DRIFT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
/// Longest window, in days, of either side of the comparison.
pub const MAX_WINDOW_DAYS: u32 = 366;

/// The `[review]` section.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewQueueConfig {
    /// Share of completed chat interactions queued for review, 0..=1 (default 0).
    #[serde(default)]
    pub sample_rate: f64,
    /// Prompt and completion are each cut to this many characters (default 4000).
    #[serde(default = "default_max_text_chars")]
    pub max_text_chars: usize,
    /// Sampled items held in memory between two flushes; beyond it new samples are dropped
    /// and counted (`tollgate_review_samples_total{outcome="dropped"}`).
    #[serde(default = "default_max_pending")]
    pub max_pending: usize,
    /// The drift check.
    #[serde(default)]
    pub drift: DriftConfig,
}

fn default_max_text_chars() -> usize {
    DEFAULT_MAX_TEXT_CHARS
}

fn default_max_pending() -> usize {
    DEFAULT_MAX_PENDING
}

impl Default for ReviewQueueConfig {
    fn default() -> Self {
        Self {
            sample_rate: 0.0,
            max_text_chars: DEFAULT_MAX_TEXT_CHARS,
            max_pending: DEFAULT_MAX_PENDING,
            drift: DriftConfig::default(),
        }
    }
}

/// `[review.drift]`: see [`crate::drift`] for the method.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftConfig {
    /// Run the scheduled check (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Days scored, today included (default 1).
    #[serde(default = "one")]
    pub recent_days: u32,
    /// Days before the recent window that form the baseline (default 14).
    #[serde(default = "fourteen")]
    pub baseline_days: u32,
    /// PSI at or above which a metric has drifted (default 0.2).
    #[serde(default = "default_psi")]
    pub psi_threshold: f64,
    /// Observations each window needs before a metric is scored (default 100).
    #[serde(default = "hundred")]
    pub min_samples: u64,
    /// How often the check runs (default 1h).
    pub interval: Option<ConfigDuration>,
}

fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}
fn fourteen() -> u32 {
    14
}
fn hundred() -> u64 {
    100
}
fn default_psi() -> f64 {
    DEFAULT_PSI_THRESHOLD
}

impl Default for DriftConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            recent_days: 1,
            baseline_days: 14,
            psi_threshold: DEFAULT_PSI_THRESHOLD,
            min_samples: 100,
            interval: None,
        }
    }
}

impl DriftConfig {
    /// How often the check runs.
    pub fn interval(&self) -> std::time::Duration {
        self.interval.map_or(DEFAULT_DRIFT_INTERVAL, |d| d.0)
    }
}

/// `[routes.NAME.review]`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteReviewConfig {
    /// This route's share of interactions queued, 0..=1, over `[review] sample_rate`.
    pub sample_rate: Option<f64>,
}

fn rate_ok(r: f64) -> bool {
    r.is_finite() && (0.0..=1.0).contains(&r)
}

impl ReviewQueueConfig {
    /// The sample rate of a route with `route` settings.
    pub fn rate_for(&self, route: Option<&RouteReviewConfig>) -> f64 {
        route
            .and_then(|r| r.sample_rate)
            .unwrap_or(self.sample_rate)
    }

    /// Check values; push every problem.
    pub fn validate<'a>(
        &self,
        routes: impl Iterator<Item = (&'a String, Option<&'a RouteReviewConfig>)>,
        problems: &mut Vec<Problem>,
    ) {
        let mut bad = |path: String, message: &str| {
            problems.push(Problem {
                path,
                line: None,
                message: message.to_owned(),
            })
        };
        if !rate_ok(self.sample_rate) {
            bad(
                "review.sample_rate".into(),
                "must be a share from 0 to 1 (0.05 = 5 %)",
            );
        }
        if self.max_text_chars == 0 || self.max_text_chars > MAX_TEXT_CHARS {
            bad(
                "review.max_text_chars".into(),
                &format!("must be 1 to {MAX_TEXT_CHARS}"),
            );
        }
        if self.max_pending == 0 || self.max_pending > MAX_PENDING {
            bad(
                "review.max_pending".into(),
                &format!("must be 1 to {MAX_PENDING}"),
            );
        }
        let d = &self.drift;
        for (name, v) in [
            ("recent_days", d.recent_days),
            ("baseline_days", d.baseline_days),
        ] {
            if v == 0 || v > MAX_WINDOW_DAYS {
                bad(
                    format!("review.drift.{name}"),
                    &format!("must be 1 to {MAX_WINDOW_DAYS} days"),
                );
            }
        }
        if !d.psi_threshold.is_finite() || d.psi_threshold <= 0.0 {
            bad(
                "review.drift.psi_threshold".into(),
                "must be a positive number (0.1 = moderate, 0.2 = significant shift)",
            );
        }
        if d.min_samples == 0 {
            bad("review.drift.min_samples".into(), "must be at least 1");
        }
        if d.interval.is_some_and(|i| i.0 < MIN_DRIFT_INTERVAL) {
            bad("review.drift.interval".into(), "must be at least 1m");
        }
        for (alias, r) in routes {
            if let Some(rate) = r.and_then(|r| r.sample_rate) {
                if !rate_ok(rate) {
                    bad(
                        format!("routes.{alias}.review.sample_rate"),
                        "must be a share from 0 to 1 (0.05 = 5 %)",
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ReviewQueueConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn defaults_sample_nothing_and_check_drift_daily_against_two_weeks() {
        let c = parse("").unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(c.sample_rate, 0.0);
        assert_eq!(c.max_text_chars, DEFAULT_MAX_TEXT_CHARS);
        assert!(c.drift.enabled);
        assert_eq!((c.drift.recent_days, c.drift.baseline_days), (1, 14));
        assert_eq!(c.drift.interval(), DEFAULT_DRIFT_INTERVAL);
        let route = RouteReviewConfig {
            sample_rate: Some(0.5),
        };
        assert_eq!(c.rate_for(Some(&route)), 0.5);
        assert_eq!(c.rate_for(None), 0.0);
    }

    #[test]
    fn every_bad_value_is_reported_with_its_path() {
        let c = parse(
            "sample_rate = 1.5\nmax_text_chars = 0\nmax_pending = 0\n[drift]\nrecent_days = 0\nbaseline_days = 400\npsi_threshold = -1.0\nmin_samples = 0\ninterval = \"1s\"\n",
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        let alias = "gpt".to_owned();
        let route = RouteReviewConfig {
            sample_rate: Some(f64::NAN),
        };
        let mut problems = Vec::new();
        c.validate([(&alias, Some(&route))].into_iter(), &mut problems);
        let paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "review.sample_rate",
                "review.max_text_chars",
                "review.max_pending",
                "review.drift.recent_days",
                "review.drift.baseline_days",
                "review.drift.psi_threshold",
                "review.drift.min_samples",
                "review.drift.interval",
                "routes.gpt.review.sample_rate",
            ]
        );
        assert!(parse("sample_rte = 0.1").is_err(), "a typo is an error");
    }
}
