//! The review sample and daily route statistics (checklist MI-4), the last step of the
//! pipeline ("… · review sample", DESIGN.md).
//!
//! Every finished chat request on a route adds to that route's counters for the UTC day
//! ([`Reviews::observe`]): a few additions under a mutex, plus the refusal detector on the
//! opening of the answer. A share of completed interactions (`[review] sample_rate`, per route
//! `[routes.NAME.review] sample_rate`) is also kept for review, streams included.
//!
//! Nothing here touches the store on the request path. Samples and counters wait in memory,
//! bounded (`max_pending` samples; beyond it a sample is dropped and counted in
//! `tollgate_review_samples_total{outcome="dropped"}`), and [`Reviews::flush`] writes them
//! every [`FLUSH_INTERVAL`] from a background task. PII masking happens there too, on a
//! blocking thread, so its cost never lands on a request:
//!
//! - the prompt is the one **sent upstream**, after the route's PII and secret guards;
//! - both texts are masked again with every built-in PII recognizer and the credential rules,
//!   replacing each finding with `[LABEL]` (`[EMAIL]`, `[SECRET]`), whatever the route's own
//!   policy (`allow` included): the queue never holds raw PII;
//! - both are cut to `max_text_chars` characters (default 4000) *after* masking, from a
//!   window [`MASK_MARGIN_CHARS`] longer, so a value straddling the cut is still recognised.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tollgate_guard::mask::{Action, Masker, Span};
use tollgate_guard::pii::PiiDetector;
use tollgate_store::review::{DayCounts, ReviewItem, ReviewStore, RouteDayDelta};

use crate::config::sampling::ReviewQueueConfig;
use crate::drift::{LATENCY_MS, LATENCY_MS_EDGES, OUTPUT_TOKEN_EDGES, OUTPUT_TOKENS, bin_of};
use crate::metrics::Metrics;

/// How often samples and counters are written to the store.
pub const FLUSH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);
/// Characters beyond `max_text_chars` that are masked before the cut (see the module doc).
pub const MASK_MARGIN_CHARS: usize = 256;
/// Most (route, day) counters held between flushes; beyond it new routes wait for a flush.
pub const MAX_DAY_KEYS: usize = 10_000;

static PII: LazyLock<PiiDetector> = LazyLock::new(PiiDetector::default);

/// `text` cut to at most `max` characters; whether it was cut.
pub fn cut(text: &str, max: usize) -> (String, bool) {
    match text.char_indices().nth(max) {
        Some((i, _)) => (text[..i].to_owned(), true),
        None => (text.to_owned(), false),
    }
}

/// `text` with every PII finding (all built-in recognizers) and every credential replaced by
/// `[LABEL]`.
pub fn mask(text: &str) -> String {
    let pii = PII.detect(text);
    let secrets = tollgate_guard::secret::find_secrets(text);
    let mut spans: Vec<Span<'_>> = pii
        .iter()
        .map(|d| Span {
            start: d.start,
            end: d.end,
            label: d.kind.label(),
            action: Action::Redact,
        })
        .collect();
    for s in &secrets {
        spans.push(Span {
            start: s.start,
            end: s.end,
            label: "SECRET",
            action: Action::Redact,
        });
    }
    if spans.is_empty() {
        return text.to_owned();
    }
    // Overlapping findings (a credential that also looks like a phone number) merge into
    // the first one, extended: the masker takes disjoint spans in order.
    spans.sort_by_key(|s| (s.start, std::cmp::Reverse(s.end)));
    let mut merged: Vec<Span<'_>> = Vec::with_capacity(spans.len());
    for s in spans {
        match merged.last_mut() {
            Some(last) if s.start < last.end => last.end = last.end.max(s.end),
            _ => merged.push(s),
        }
    }
    Masker::new([0; 32]).apply(text, &merged).text
}

/// What one finished request contributes.
#[derive(Debug, Clone, Default)]
pub struct Finished<'a> {
    /// Route alias.
    pub route: &'a str,
    /// When the request arrived.
    pub at: DateTime<Utc>,
    /// The completion's text (bounded), if the request was answered.
    pub answer: Option<&'a str>,
    /// Output tokens of the answer.
    pub output_tokens: u64,
    /// A guard blocked the request.
    pub blocked: bool,
    /// It failed otherwise.
    pub error: bool,
    /// End-to-end latency.
    pub latency_ms: f64,
    /// Cost, USD.
    pub cost_usd: Option<f64>,
}

/// A sample taken on the request path, masked at flush.
#[derive(Debug)]
struct RawSample {
    route: String,
    request_id: String,
    at: DateTime<Utc>,
    prompt: String,
    completion: String,
}

#[derive(Debug, Default)]
struct DayAcc {
    counts: DayCounts,
    bins: BTreeMap<(String, i64), i64>,
}

/// Sampling and daily statistics; see the module doc.
pub struct Reviews {
    cfg: ReviewQueueConfig,
    rates: HashMap<String, f64>,
    store: Arc<dyn ReviewStore>,
    samples: Mutex<Vec<RawSample>>,
    days: Mutex<HashMap<(String, String), DayAcc>>,
    /// Serialises flushes so that two never write the same counters twice.
    flushing: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Reviews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reviews")
            .field("rates", &self.rates)
            .finish_non_exhaustive()
    }
}

impl Reviews {
    /// Sampling for `cfg` with per-route `rates`, writing to `store`.
    pub fn new(
        cfg: ReviewQueueConfig,
        rates: HashMap<String, f64>,
        store: Arc<dyn ReviewStore>,
    ) -> Self {
        Self {
            cfg,
            rates,
            store,
            samples: Mutex::new(Vec::new()),
            days: Mutex::new(HashMap::new()),
            flushing: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether this request on `route` is sampled (one random draw; no draw at rate 0).
    pub fn sample(&self, route: &str) -> bool {
        let rate = self
            .rates
            .get(route)
            .copied()
            .unwrap_or(self.cfg.sample_rate);
        rate > 0.0 && (rate >= 1.0 || rand::random::<f64>() < rate)
    }

    /// How much text to keep from the request path for a sample (masked and cut at flush).
    pub fn window_chars(&self) -> usize {
        self.cfg.max_text_chars.saturating_add(MASK_MARGIN_CHARS)
    }

    /// Add a finished request to its route's day; refusals are detected on `answer`.
    pub fn observe(&self, f: &Finished<'_>) {
        let day = f.at.date_naive().to_string();
        let answered = f.answer.is_some();
        let refused = f.answer.is_some_and(tollgate_guard::refusal::is_refusal);
        let latency = f.latency_ms.max(0.0).round() as i64;
        let mut days = self.days.lock();
        let key = (f.route.to_owned(), day);
        if !days.contains_key(&key) && days.len() >= MAX_DAY_KEYS {
            return;
        }
        let acc = days.entry(key).or_default();
        let c = &mut acc.counts;
        c.requests += 1;
        c.latency_ms_total = c.latency_ms_total.saturating_add(latency);
        c.cost_nanos = c
            .cost_nanos
            .saturating_add(tollgate_store::budget::usd_to_nanos(
                f.cost_usd.unwrap_or(0.0),
            ));
        if f.blocked {
            c.guard_blocks += 1;
        } else if f.error {
            c.errors += 1;
        }
        *acc.bins
            .entry((LATENCY_MS.to_owned(), bin_of(&LATENCY_MS_EDGES, latency)))
            .or_default() += 1;
        if answered {
            let out = i64::try_from(f.output_tokens).unwrap_or(i64::MAX);
            let c = &mut acc.counts;
            c.completions += 1;
            c.output_tokens = c.output_tokens.saturating_add(out);
            if refused {
                c.refusals += 1;
            }
            *acc.bins
                .entry((OUTPUT_TOKENS.to_owned(), bin_of(&OUTPUT_TOKEN_EDGES, out)))
                .or_default() += 1;
        }
    }

    /// Keep a sampled interaction: `prompt` as sent upstream and `completion`, both raw and
    /// already bounded by the caller to [`Self::window_chars`]; masked at flush. False (and
    /// counted) when the queue is full.
    pub fn keep(
        &self,
        metrics: &Metrics,
        route: &str,
        request_id: &str,
        at: DateTime<Utc>,
        prompt: String,
        completion: String,
    ) -> bool {
        let mut s = self.samples.lock();
        if s.len() >= self.cfg.max_pending {
            drop(s);
            metrics.review_sample("dropped");
            return false;
        }
        s.push(RawSample {
            route: route.to_owned(),
            request_id: request_id.to_owned(),
            at,
            prompt,
            completion,
        });
        drop(s);
        metrics.review_sample("queued");
        true
    }

    /// Write what accumulated: mask and cut the samples (on a blocking thread), add the
    /// counters to the store. On a store error the counters are put back for the next flush;
    /// the samples of a failed write are dropped (and logged), never retried unbounded.
    pub async fn flush(&self) {
        let _one = self.flushing.lock().await;
        let samples = std::mem::take(&mut *self.samples.lock());
        let days = std::mem::take(&mut *self.days.lock());
        if !samples.is_empty() {
            let max = self.cfg.max_text_chars;
            let n = samples.len();
            let masked = tokio::task::spawn_blocking(move || {
                samples
                    .into_iter()
                    .map(|s| {
                        let (prompt, cut_p) = cut(&mask(&s.prompt), max);
                        let (completion, cut_c) = cut(&mask(&s.completion), max);
                        ReviewItem {
                            id: format!("rev_{}", uuid::Uuid::now_v7().simple()),
                            route: s.route,
                            request_id: s.request_id,
                            at: s.at,
                            prompt,
                            completion,
                            truncated: cut_p || cut_c,
                            label: None,
                            reviewer: None,
                            labelled_by: None,
                            note: None,
                            labelled_at: None,
                        }
                    })
                    .collect::<Vec<_>>()
            })
            .await;
            match masked {
                Ok(items) => {
                    if let Err(e) = self.store.enqueue_reviews(&items).await {
                        tracing::warn!(error = %e, dropped = n, "cannot store review samples; they are dropped");
                    }
                }
                Err(e) => tracing::warn!(error = %e, dropped = n, "masking review samples failed"),
            }
        }
        if days.is_empty() {
            return;
        }
        let deltas: Vec<RouteDayDelta> = days
            .iter()
            .map(|((route, day), acc)| RouteDayDelta {
                route: route.clone(),
                day: day.clone(),
                counts: acc.counts,
                bins: acc.bins.clone(),
            })
            .collect();
        if let Err(e) = self.store.add_route_days(&deltas).await {
            tracing::warn!(error = %e, "cannot store route statistics; keeping them for the next flush");
            let mut now = self.days.lock();
            for (key, acc) in days {
                if !now.contains_key(&key) && now.len() >= MAX_DAY_KEYS {
                    continue;
                }
                let e = now.entry(key).or_default();
                e.counts.add(&acc.counts);
                for (b, n) in acc.bins {
                    *e.bins.entry(b).or_default() += n;
                }
            }
        }
    }
}

/// Longest reviewer name a label records.
pub const MAX_REVIEWER_CHARS: usize = 128;
/// Longest note a label records.
pub const MAX_NOTE_CHARS: usize = 2_000;

/// A page of the review queue: what `tollgate review` prints and `GET /admin/v1/review`
/// returns, read the same way by both ([`queue_page`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QueuePage {
    /// Pending and labelled counts and the latest label's time.
    pub summary: tollgate_store::review::ReviewSummary,
    /// The items asked for, oldest first.
    pub items: Vec<ReviewItem>,
    /// Whether any route samples at all (otherwise an empty queue says nothing).
    pub sampling: bool,
}

/// Whether `config` samples any route into the queue.
pub fn sampling_configured(config: &crate::config::Config) -> bool {
    config.review.sample_rate > 0.0
        || config
            .routes
            .values()
            .any(|r| r.review.and_then(|r| r.sample_rate).unwrap_or(0.0) > 0.0)
}

/// Read a page of the queue (`q.limit` capped at [`tollgate_store::review::MAX_REVIEW_PAGE`]).
pub async fn queue_page(
    store: &tollgate_store::Store,
    config: &crate::config::Config,
    q: &tollgate_store::review::ReviewQuery,
) -> tollgate_store::Result<QueuePage> {
    let q = tollgate_store::review::ReviewQuery {
        limit: q.limit.min(tollgate_store::review::MAX_REVIEW_PAGE),
        ..q.clone()
    };
    let (items, summary) = tokio::try_join!(
        store.reviews.review_items(&q),
        store.reviews.review_summary()
    )?;
    Ok(QueuePage {
        summary,
        items,
        sampling: sampling_configured(config),
    })
}

/// What is wrong with a label's free text, if anything: the reviewer's name is 1 to
/// [`MAX_REVIEWER_CHARS`] characters, the note at most [`MAX_NOTE_CHARS`].
pub fn labelling_problem(reviewer: Option<&str>, note: Option<&str>) -> Option<String> {
    if reviewer.is_some_and(|r| r.trim().is_empty() || r.chars().count() > MAX_REVIEWER_CHARS) {
        return Some(format!(
            "reviewer: give a name of 1 to {MAX_REVIEWER_CHARS} characters"
        ));
    }
    if note.is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS) {
        return Some(format!("note: at most {MAX_NOTE_CHARS} characters"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_removes_pii_and_credentials() {
        let text = "mail jane.doe@example.com; key sk-proj-aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7dE9fG1hJ3";
        let m = mask(text);
        assert!(!m.contains("jane.doe@example.com"), "{m}");
        assert!(!m.contains("aB3dE5fG7hJ9"), "{m}");
        assert!(m.contains("[SECRET]"), "{m}");
        assert!(m.contains("[EMAIL]"), "{m}");
        assert_eq!(mask("nothing to see"), "nothing to see");
    }

    #[test]
    fn cutting_counts_characters_not_bytes() {
        assert_eq!(cut("héllo", 2), ("hé".to_owned(), true));
        assert_eq!(cut("héllo", 5), ("héllo".to_owned(), false));
        assert_eq!(cut("", 0), (String::new(), false));
    }

    #[test]
    fn a_value_at_the_cut_is_masked_before_it_is_cut() {
        // The address starts 3 characters before the cut: masked whole, then cut.
        let text = format!("{}jane.doe@example.com", "a ".repeat(50));
        let (kept, truncated) = cut(&mask(&text), 103);
        assert!(truncated);
        assert!(!kept.contains("jan"), "{kept}");
    }
}
