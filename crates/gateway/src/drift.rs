//! Drift of a route's outputs over time (checklist MI-4): daily statistics scored against a
//! baseline window, and the scheduled check that raises an alert.
//!
//! **Statistics.** Per route and UTC day the gateway counts ([`crate::review`]) requests,
//! completions, output length in **tokens** (the provider's usage, else the estimate),
//! refusals ([`tollgate_guard::refusal`]), guard blocks, errors, latency and cost, and keeps
//! histograms of output tokens and latency with the fixed edges [`OUTPUT_TOKEN_EDGES`] and
//! [`LATENCY_MS_EDGES`]. The day's review labels and the pass rate of prompt evaluations
//! recorded that day for prompts running on the route (`tollgate prompts test`) complete the
//! series that `tollgate drift ROUTE` prints.
//!
//! **Windows.** The *recent* window is the last `recent_days` UTC days, today included (so a
//! shift is caught on the day it starts); the *baseline* is the `baseline_days` days just
//! before it. Both are sums of the stored days.
//!
//! **Score: population stability index.** For each metric, with `p_i` and `q_i` the shares of
//! the baseline's and the recent window's observations in bin `i`,
//!
//! ```text
//! PSI = Σ_i (q_i − p_i) · ln(q_i / p_i)      shares below 0.0001 count as 0.0001
//! ```
//!
//! Metrics scored: `output_tokens` and `latency_ms` over their histogram bins, and
//! `refusal_rate` and `guard_block_rate` as two-bin distributions (refused / not among
//! completions; blocked / not among requests). The usual reading is PSI < 0.1 stable,
//! 0.1–0.2 moderate, ≥ 0.2 significant; a metric has **drifted** at or above
//! `psi_threshold` (default 0.2). A metric is not scored unless both windows hold at least
//! `min_samples` observations of it (default 100), so a quiet route cannot alert on noise.
//! The route's score is its largest metric score.
//!
//! PSI was chosen over a two-sample Kolmogorov–Smirnov test because it works on binned
//! counts, which every gateway instance can add to atomically in the shared store; KS needs
//! the raw samples (or a fine empirical CDF) of both windows. Its thresholds are also
//! independent of the sample size, where KS's p-value flags tiny, irrelevant shifts on busy
//! routes. Cost and eval pass rate are shown, not scored: cost follows output length and
//! prices, and evaluations are too few a day for a distribution.
//!
//! **Alert.** [`check`] runs every `interval` (default 1 h): a route with a drifted metric
//! raises one `drift` alert (warning) through the [`crate::alert::Alerter`], at most once per
//! route and UTC day on any number of instances (the store marks it), on top of the
//! alerter's dedup and cooldown.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tollgate_store::review::{DayCounts, EvalRow, RouteDay};

use crate::alert::{Alert, Severity};
use crate::config::sampling::DriftConfig;
use crate::state::Gateway;

/// Lower edges of the output-length bins, tokens (the last bin is open-ended).
pub const OUTPUT_TOKEN_EDGES: [i64; 11] = [0, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];
/// Lower edges of the latency bins, milliseconds (the last bin is open-ended).
pub const LATENCY_MS_EDGES: [i64; 11] = [
    0, 100, 250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000,
];
/// Histogram name of output tokens in the store.
pub const OUTPUT_TOKENS: &str = "output_tokens";
/// Histogram name of latency in the store.
pub const LATENCY_MS: &str = "latency_ms";
/// Share that an empty bin counts as, so that the logarithm stays finite.
pub const PSI_FLOOR: f64 = 1e-4;

/// The bin of `value` given lower `edges` (values below the first edge go to bin 0).
pub fn bin_of(edges: &[i64], value: i64) -> i64 {
    edges.iter().rposition(|e| value >= *e).unwrap_or(0) as i64
}

/// Population stability index of `recent` against `baseline` (counts per bin, same bins);
/// None when either side is empty.
pub fn psi(baseline: &[u64], recent: &[u64]) -> Option<f64> {
    let nb: u64 = baseline.iter().sum();
    let nr: u64 = recent.iter().sum();
    if nb == 0 || nr == 0 || baseline.len() != recent.len() {
        return None;
    }
    let mut total = 0.0;
    for (b, r) in baseline.iter().zip(recent) {
        let p = (*b as f64 / nb as f64).max(PSI_FLOOR);
        let q = (*r as f64 / nr as f64).max(PSI_FLOOR);
        total += (q - p) * (q / p).ln();
    }
    Some(total)
}

/// One metric's comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricScore {
    /// `output_tokens`, `latency_ms`, `refusal_rate` or `guard_block_rate`.
    pub metric: String,
    /// PSI, when both windows had enough observations.
    pub psi: Option<f64>,
    /// Observations in the baseline window.
    pub baseline_n: u64,
    /// Observations in the recent window.
    pub recent_n: u64,
    /// Mean (or rate) in the baseline window.
    pub baseline_mean: Option<f64>,
    /// Mean (or rate) in the recent window.
    pub recent_mean: Option<f64>,
    /// `psi >= psi_threshold`.
    pub drifted: bool,
}

/// One day of the printed series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayRow {
    /// UTC day.
    pub day: String,
    /// `baseline` or `recent`.
    pub window: String,
    /// Counters as stored.
    pub counts: DayCounts,
    /// Mean output tokens per completion.
    pub mean_output_tokens: Option<f64>,
    /// Refusals per completion.
    pub refusal_rate: Option<f64>,
    /// Guard blocks per request.
    pub guard_block_rate: Option<f64>,
    /// Mean latency per request, ms.
    pub mean_latency_ms: Option<f64>,
    /// Cost of the day, USD.
    pub cost_usd: f64,
    /// Share of prompt evaluations that passed, for prompts on this route.
    pub eval_pass_rate: Option<f64>,
    /// Evaluations recorded.
    pub evals: u64,
    /// Review labels of the day's items.
    pub labels: BTreeMap<String, i64>,
}

/// A route's drift report: verdict, per-metric scores and the daily series. `tollgate drift`
/// prints it and `GET /admin/v1/drift/{route}` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftReport {
    /// Route.
    pub route: String,
    /// First and last day of the baseline.
    pub baseline: (String, String),
    /// First and last day of the recent window.
    pub recent: (String, String),
    /// The threshold applied.
    pub psi_threshold: f64,
    /// Observations a window needs before a metric is scored.
    pub min_samples: u64,
    /// Largest metric PSI, if any metric was scored.
    pub score: Option<f64>,
    /// Whether any metric drifted.
    pub drifted: bool,
    /// Per metric.
    pub metrics: Vec<MetricScore>,
    /// Every stored day of both windows, oldest first.
    pub series: Vec<DayRow>,
}

#[derive(Default)]
struct Window {
    counts: DayCounts,
    bins: BTreeMap<String, BTreeMap<i64, i64>>,
}

impl Window {
    fn add(&mut self, d: &RouteDay) {
        self.counts.add(&d.counts);
        for (metric, bins) in &d.bins {
            let e = self.bins.entry(metric.clone()).or_default();
            for (b, n) in bins {
                *e.entry(*b).or_default() += n;
            }
        }
    }

    fn hist(&self, metric: &str, bins: usize) -> Vec<u64> {
        let mut v = vec![0u64; bins];
        if let Some(m) = self.bins.get(metric) {
            for (b, n) in m {
                let i = (*b).clamp(0, bins as i64 - 1) as usize;
                v[i] = v[i].saturating_add((*n).max(0) as u64);
            }
        }
        v
    }
}

fn ratio(a: i64, b: i64) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

fn nonneg(v: i64) -> u64 {
    v.max(0) as u64
}

/// The route a prompt version runs on, from its canonical content.
fn route_of(eval: &EvalRow) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(&eval.content)
        .ok()?
        .get("route")?
        .as_str()
        .map(str::to_owned)
}

/// The first and last days of the baseline and recent windows for `today`.
pub fn windows(
    today: NaiveDate,
    recent_days: u32,
    baseline_days: u32,
) -> [(NaiveDate, NaiveDate); 2] {
    let recent_from = today - Duration::days(i64::from(recent_days.max(1)) - 1);
    let base_to = recent_from - Duration::days(1);
    let base_from = base_to - Duration::days(i64::from(baseline_days.max(1)) - 1);
    [(base_from, base_to), (recent_from, today)]
}

/// Score `days` (a route's stored days covering both windows) for `today`; `evals` are the
/// prompt evaluations since the baseline began (any route; filtered here).
pub fn score(
    route: &str,
    days: &[RouteDay],
    evals: &[EvalRow],
    today: NaiveDate,
    cfg: &DriftConfig,
) -> DriftReport {
    let [(bf, bt), (rf, rt)] = windows(today, cfg.recent_days, cfg.baseline_days);
    let (bf, bt, rf, rt) = (
        bf.to_string(),
        bt.to_string(),
        rf.to_string(),
        rt.to_string(),
    );
    let mut evals_by_day: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for e in evals {
        if route_of(e).as_deref() == Some(route) {
            let d = evals_by_day
                .entry(e.at.date_naive().to_string())
                .or_default();
            d.1 += 1;
            if e.passed {
                d.0 += 1;
            }
        }
    }
    let (mut base, mut recent) = (Window::default(), Window::default());
    let mut series = Vec::new();
    let mut days_seen: Vec<&str> = Vec::new();
    for d in days {
        let window = if d.day >= rf && d.day <= rt {
            recent.add(d);
            "recent"
        } else if d.day >= bf && d.day <= bt {
            base.add(d);
            "baseline"
        } else {
            continue;
        };
        days_seen.push(&d.day);
        let c = &d.counts;
        let (passed, evals) = evals_by_day.get(&d.day).copied().unwrap_or_default();
        series.push(DayRow {
            day: d.day.clone(),
            window: window.to_owned(),
            counts: *c,
            mean_output_tokens: ratio(c.output_tokens, c.completions),
            refusal_rate: ratio(c.refusals, c.completions),
            guard_block_rate: ratio(c.guard_blocks, c.requests),
            mean_latency_ms: ratio(c.latency_ms_total, c.requests),
            cost_usd: tollgate_store::budget::nanos_to_usd(c.cost_nanos),
            eval_pass_rate: (evals > 0).then(|| passed as f64 / evals as f64),
            evals,
            labels: d.labels.clone(),
        });
    }
    // Evaluations on days without traffic still belong in the series.
    for (day, (passed, n)) in &evals_by_day {
        let window = if *day >= rf && *day <= rt {
            "recent"
        } else if *day >= bf && *day <= bt {
            "baseline"
        } else {
            continue;
        };
        if !days_seen.contains(&day.as_str()) {
            series.push(DayRow {
                day: day.clone(),
                window: window.to_owned(),
                counts: DayCounts::default(),
                mean_output_tokens: None,
                refusal_rate: None,
                guard_block_rate: None,
                mean_latency_ms: None,
                cost_usd: 0.0,
                eval_pass_rate: Some(*passed as f64 / *n as f64),
                evals: *n,
                labels: BTreeMap::new(),
            });
        }
    }
    series.sort_by(|a, b| a.day.cmp(&b.day));

    let min = cfg.min_samples;
    let mut metrics = Vec::new();
    let mut push =
        |metric: &'static str, b: Vec<u64>, r: Vec<u64>, bm: Option<f64>, rm: Option<f64>| {
            let (nb, nr) = (b.iter().sum::<u64>(), r.iter().sum::<u64>());
            let psi = (nb >= min && nr >= min).then(|| psi(&b, &r)).flatten();
            metrics.push(MetricScore {
                metric: metric.to_owned(),
                psi,
                baseline_n: nb,
                recent_n: nr,
                baseline_mean: bm,
                recent_mean: rm,
                drifted: psi.is_some_and(|p| p >= cfg.psi_threshold),
            });
        };
    push(
        OUTPUT_TOKENS,
        base.hist(OUTPUT_TOKENS, OUTPUT_TOKEN_EDGES.len()),
        recent.hist(OUTPUT_TOKENS, OUTPUT_TOKEN_EDGES.len()),
        ratio(base.counts.output_tokens, base.counts.completions),
        ratio(recent.counts.output_tokens, recent.counts.completions),
    );
    let two = |hit: i64, of: i64| vec![nonneg(hit), nonneg(of.saturating_sub(hit))];
    push(
        "refusal_rate",
        two(base.counts.refusals, base.counts.completions),
        two(recent.counts.refusals, recent.counts.completions),
        ratio(base.counts.refusals, base.counts.completions),
        ratio(recent.counts.refusals, recent.counts.completions),
    );
    push(
        "guard_block_rate",
        two(base.counts.guard_blocks, base.counts.requests),
        two(recent.counts.guard_blocks, recent.counts.requests),
        ratio(base.counts.guard_blocks, base.counts.requests),
        ratio(recent.counts.guard_blocks, recent.counts.requests),
    );
    push(
        LATENCY_MS,
        base.hist(LATENCY_MS, LATENCY_MS_EDGES.len()),
        recent.hist(LATENCY_MS, LATENCY_MS_EDGES.len()),
        ratio(base.counts.latency_ms_total, base.counts.requests),
        ratio(recent.counts.latency_ms_total, recent.counts.requests),
    );
    let score = metrics
        .iter()
        .filter_map(|m| m.psi)
        .fold(None, |a: Option<f64>, p| Some(a.map_or(p, |a| a.max(p))));
    DriftReport {
        route: route.to_owned(),
        baseline: (bf, bt),
        recent: (rf, rt),
        psi_threshold: cfg.psi_threshold,
        min_samples: cfg.min_samples,
        score,
        drifted: metrics.iter().any(|m| m.drifted),
        metrics,
        series,
    }
}

/// Read a route's days and evaluations from `store` and score them for `today`.
pub async fn report(
    store: &tollgate_store::Store,
    route: &str,
    today: NaiveDate,
    cfg: &DriftConfig,
) -> tollgate_store::Result<DriftReport> {
    let [(from, _), _] = windows(today, cfg.recent_days, cfg.baseline_days);
    let days = store
        .reviews
        .route_days(route, &from.to_string(), &today.to_string())
        .await?;
    let since = from
        .and_hms_opt(0, 0, 0)
        .map_or(DateTime::<Utc>::MIN_UTC, |t| t.and_utc());
    let evals = store.reviews.prompt_evals_since(since).await?;
    Ok(score(route, &days, &evals, today, cfg))
}

/// One scheduled check at `now` (the alerter's clock): score every configured route and raise
/// a `drift` alert for each that drifted, once per route and UTC day. Returns the reports
/// of the routes that drifted.
pub async fn check(gw: &Gateway, now: DateTime<Utc>) -> Vec<DriftReport> {
    let cfg = gw.config.review.drift;
    let today = now.date_naive();
    let mut drifted = Vec::new();
    for route in gw.routes.keys() {
        let r = match report(&gw.store, route, today, &cfg).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(route = %route, error = %e, "cannot read route statistics for the drift check");
                continue;
            }
        };
        if !r.drifted {
            continue;
        }
        let day = today.to_string();
        match gw.store.reviews.mark_drift_alert(route, &day, now).await {
            Ok(true) => {}
            Ok(false) => {
                drifted.push(r);
                continue;
            }
            Err(e) => {
                tracing::warn!(route = %route, error = %e, "cannot record a drift alert");
                continue;
            }
        }
        let shifted: Vec<String> = r
            .metrics
            .iter()
            .filter(|m| m.drifted)
            .map(|m| format!("{} (PSI {:.2})", m.metric, m.psi.unwrap_or_default()))
            .collect();
        gw.alerts.raise(Alert {
            kind: "drift",
            severity: Severity::Warning,
            subject: format!("route:{route}"),
            dedup_key: format!("drift:{route}:{day}"),
            message: format!(
                "outputs of route {route} drifted from their baseline ({} to {}): {}; see `tollgate drift {route}`",
                r.baseline.0,
                r.baseline.1,
                shifted.join(", ")
            ),
            details: json!({
                "route": route, "score": r.score, "psi_threshold": r.psi_threshold,
                "baseline": r.baseline, "recent": r.recent, "metrics": r.metrics,
            }),
        });
        drifted.push(r);
    }
    drifted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_follow_their_lower_edges() {
        assert_eq!(bin_of(&OUTPUT_TOKEN_EDGES, -5), 0);
        assert_eq!(bin_of(&OUTPUT_TOKEN_EDGES, 0), 0);
        assert_eq!(bin_of(&OUTPUT_TOKEN_EDGES, 7), 0);
        assert_eq!(bin_of(&OUTPUT_TOKEN_EDGES, 8), 1);
        assert_eq!(bin_of(&OUTPUT_TOKEN_EDGES, 100), 4);
        assert_eq!(bin_of(&OUTPUT_TOKEN_EDGES, 1_000_000), 10);
        assert_eq!(bin_of(&LATENCY_MS_EDGES, 250), 2);
    }

    #[test]
    fn psi_is_zero_for_equal_shares_and_grows_with_the_shift() {
        assert_eq!(psi(&[10, 20, 30], &[1, 2, 3]), Some(0.0));
        assert_eq!(psi(&[0, 0], &[1, 2]), None);
        assert_eq!(psi(&[1, 2], &[1, 2, 3]), None);
        let small = psi(&[50, 50], &[55, 45]).unwrap_or_default();
        let large = psi(&[50, 50], &[90, 10]).unwrap_or_default();
        assert!(small > 0.0 && small < 0.1, "{small}");
        assert!(large > 0.2, "{large}");
        // A bin empty on one side is floored, not infinite.
        let moved = psi(&[100, 0], &[0, 100]).unwrap_or_default();
        assert!(moved.is_finite() && moved > 10.0, "{moved}");
        // Refusals from 2 % to 20 % is significant; 2 % to 2.5 % is not.
        assert!(psi(&[2, 98], &[20, 80]).unwrap_or_default() > 0.2);
        assert!(psi(&[20, 980], &[25, 975]).unwrap_or_default() < 0.1);
    }

    #[test]
    fn windows_end_today_and_the_baseline_precedes_them() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap_or_default();
        let [(bf, bt), (rf, rt)] = windows(today, 1, 14);
        assert_eq!((rf, rt), (today, today));
        assert_eq!(bt.to_string(), "2026-11-28");
        assert_eq!(bf.to_string(), "2026-11-15");
        let [(bf, bt), (rf, _)] = windows(today, 3, 7);
        assert_eq!(rf.to_string(), "2026-11-27");
        assert_eq!(
            (bf.to_string(), bt.to_string()),
            ("2026-11-20".into(), "2026-11-26".into())
        );
    }
}
