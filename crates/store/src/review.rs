//! Review queue and daily route statistics (checklist MI-4).
//!
//! - **Review queue.** The gateway samples a configurable share of completed interactions
//!   into [`ReviewItem`]s. What reaches the store is already PII-masked and truncated by the
//!   gateway (`tollgate_gateway::review`); the store never sees raw prompt text. A reviewer
//!   labels an item with a [`ReviewLabel`] (`tollgate review label`), and the store records
//!   who (the reviewer's name and the admin credential that did it), when, and an optional
//!   note. Items stay pending until labelled.
//! - **Route days.** Per route and UTC day, counters ([`RouteDayDelta`]) that every gateway
//!   instance *adds* to with one upsert, so several instances sharing a database sum up, and
//!   histograms (`bins`) of per-request metrics with bin edges chosen by the gateway. Read
//!   back as [`RouteDay`]s together with the review labels of that day's items and the
//!   evaluations recorded by `tollgate prompts test` ([`EvalRow`]).
//! - **Drift alerts.** [`ReviewStore::mark_drift_alert`] lets exactly one caller, on any
//!   instance, raise a route's drift alert per day (the budget thresholds work the same way).
//!
//! Days are `YYYY-MM-DD` text, which sorts chronologically.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Result;

/// Most items one [`ReviewStore::review_items`] call returns.
pub const MAX_REVIEW_PAGE: u32 = 10_000;

/// A reviewer's verdict on one interaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewLabel {
    /// The answer is right and appropriate.
    Good,
    /// The answer is wrong (but not invented: a mistake, a misunderstanding).
    Wrong,
    /// The answer is harmful (unsafe, offensive, leaking).
    Harmful,
    /// The model refused a request it should have answered.
    Refused,
    /// The answer states invented facts.
    Hallucinated,
}

impl ReviewLabel {
    /// Every label, in display order.
    pub const ALL: [Self; 5] = [
        Self::Good,
        Self::Wrong,
        Self::Harmful,
        Self::Refused,
        Self::Hallucinated,
    ];

    /// Stored and typed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::Wrong => "wrong",
            Self::Harmful => "harmful",
            Self::Refused => "refused",
            Self::Hallucinated => "hallucinated",
        }
    }

    /// Parse a stored or typed name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

/// One sampled interaction: masked text, and the label once a reviewer gave one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewItem {
    /// Stable id, `rev_…`.
    pub id: String,
    /// Route (model alias) that served it.
    pub route: String,
    /// The request's id (to find its audit record).
    pub request_id: String,
    /// When the request arrived.
    pub at: DateTime<Utc>,
    /// The prompt as sent upstream, PII-masked, truncated.
    pub prompt: String,
    /// The completion, PII-masked, truncated.
    pub completion: String,
    /// Whether either text was cut to the gateway's limit.
    pub truncated: bool,
    /// The verdict, once labelled.
    pub label: Option<ReviewLabel>,
    /// Who reviewed it (the name given to `--reviewer`).
    pub reviewer: Option<String>,
    /// The admin credential that recorded the label.
    pub labelled_by: Option<String>,
    /// The reviewer's note.
    pub note: Option<String>,
    /// When it was labelled.
    pub labelled_at: Option<DateTime<Utc>>,
}

/// A reviewer's label for one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Labelling<'a> {
    /// The verdict.
    pub label: ReviewLabel,
    /// Who reviewed.
    pub reviewer: &'a str,
    /// The admin credential recording it.
    pub labelled_by: &'a str,
    /// Optional note.
    pub note: Option<&'a str>,
    /// When.
    pub at: DateTime<Utc>,
}

/// Which items to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReviewQuery {
    /// Only this route.
    pub route: Option<String>,
    /// Only items without a label.
    pub pending_only: bool,
    /// At most this many (capped at [`MAX_REVIEW_PAGE`]).
    pub limit: u32,
}

/// The state of the queue, for `tollgate report` (MI-4 evidence: last review).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewSummary {
    /// Items waiting for a label.
    pub pending: i64,
    /// Items labelled.
    pub labelled: i64,
    /// When the latest label was given.
    pub last_labelled_at: Option<DateTime<Utc>>,
}

/// What one gateway instance adds to a route's day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteDayDelta {
    /// Route.
    pub route: String,
    /// UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// Counters to add.
    pub counts: DayCounts,
    /// Histogram counts to add: `(metric, bin) → count`.
    pub bins: BTreeMap<(String, i64), i64>,
}

/// Counters of one route and day.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCounts {
    /// Requests that reached the route (allowed or not).
    pub requests: i64,
    /// Requests answered with a completion.
    pub completions: i64,
    /// Output tokens of the completions.
    pub output_tokens: i64,
    /// Completions the refusal detector classed as refusals.
    pub refusals: i64,
    /// Requests blocked by a guard.
    pub guard_blocks: i64,
    /// Requests that failed for any other reason.
    pub errors: i64,
    /// Sum of the latencies, milliseconds.
    pub latency_ms_total: i64,
    /// Sum of the costs, nano-USD.
    pub cost_nanos: i64,
}

impl DayCounts {
    /// Add `other` to these counters (saturating).
    pub fn add(&mut self, other: &Self) {
        self.requests = self.requests.saturating_add(other.requests);
        self.completions = self.completions.saturating_add(other.completions);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.refusals = self.refusals.saturating_add(other.refusals);
        self.guard_blocks = self.guard_blocks.saturating_add(other.guard_blocks);
        self.errors = self.errors.saturating_add(other.errors);
        self.latency_ms_total = self.latency_ms_total.saturating_add(other.latency_ms_total);
        self.cost_nanos = self.cost_nanos.saturating_add(other.cost_nanos);
    }
}

/// One route's day as stored: counters, histograms and the labels of the day's items.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RouteDay {
    /// UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// Counters.
    pub counts: DayCounts,
    /// `metric → bin → count`.
    pub bins: BTreeMap<String, BTreeMap<i64, i64>>,
    /// Labels given to items of this day: `label → count`.
    pub labels: BTreeMap<String, i64>,
}

/// One recorded prompt evaluation (from `tollgate prompts test`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalRow {
    /// Prompt name.
    pub name: String,
    /// Version evaluated.
    pub version: i64,
    /// The version's content (canonical JSON naming its route).
    pub content: String,
    /// Whether every case passed.
    pub passed: bool,
    /// When the evaluation was recorded.
    pub at: DateTime<Utc>,
}

/// Review queue and route statistics persistence.
#[async_trait]
pub trait ReviewStore: Send + Sync {
    /// Store sampled items (one transaction).
    async fn enqueue_reviews(&self, items: &[ReviewItem]) -> Result<()>;
    /// Items matching `q`, oldest first.
    async fn review_items(&self, q: &ReviewQuery) -> Result<Vec<ReviewItem>>;
    /// One item.
    async fn review_item(&self, id: &str) -> Result<Option<ReviewItem>>;
    /// Label an item (a later label replaces an earlier one; the audit trail keeps both).
    /// False if there is no such item.
    async fn label_review(&self, id: &str, l: &Labelling<'_>) -> Result<bool>;
    /// Counts of pending and labelled items and the time of the latest label.
    async fn review_summary(&self) -> Result<ReviewSummary>;
    /// Add counters and histogram counts to route days (one transaction).
    async fn add_route_days(&self, deltas: &[RouteDayDelta]) -> Result<()>;
    /// The stored days of `route` from `from` to `to` inclusive, oldest first; days without
    /// traffic or labels are absent.
    async fn route_days(&self, route: &str, from: &str, to: &str) -> Result<Vec<RouteDay>>;
    /// Routes with any stored day at or after `from`.
    async fn routes_with_days(&self, from: &str) -> Result<Vec<String>>;
    /// Prompt evaluations recorded at or after `since`.
    async fn prompt_evals_since(&self, since: DateTime<Utc>) -> Result<Vec<EvalRow>>;
    /// Record that `route` raised its drift alert on `day`; true only for the first caller.
    async fn mark_drift_alert(&self, route: &str, day: &str, at: DateTime<Utc>) -> Result<bool>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_and_unknown_ones_are_refused() {
        for l in ReviewLabel::ALL {
            assert_eq!(ReviewLabel::parse(l.as_str()), Some(l));
        }
        assert_eq!(ReviewLabel::parse("Good"), None);
        assert_eq!(ReviewLabel::parse("bad"), None);
    }

    #[test]
    fn day_counts_add_and_saturate() {
        let mut a = DayCounts {
            requests: 2,
            cost_nanos: i64::MAX - 1,
            ..DayCounts::default()
        };
        a.add(&DayCounts {
            requests: 3,
            cost_nanos: 5,
            refusals: 1,
            ..DayCounts::default()
        });
        assert_eq!(a.requests, 5);
        assert_eq!(a.refusals, 1);
        assert_eq!(a.cost_nanos, i64::MAX);
    }
}
