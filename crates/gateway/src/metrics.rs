//! Prometheus metrics (first part of checklist MI-1): requests, latency, tokens and errors by
//! route and target, served as text at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of a finished request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// API endpoint (`chat`, `messages`, `embeddings`, `models`).
    pub endpoint: String,
    /// Model alias, or `-` when none was resolved.
    pub route: String,
    /// `provider/model` that answered, or `-`.
    pub target: String,
    /// HTTP status.
    pub status: String,
}

/// Labels of latency histograms and token counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// Model alias.
    pub route: String,
}

/// Labels of upstream observations.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    /// `provider/model`.
    pub target: String,
}

/// Labels of token counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    /// Model alias.
    pub route: String,
    /// `input` or `output`.
    pub direction: String,
}

/// Labels of error counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Model alias or `-`.
    pub route: String,
    /// Error class (`auth`, `upstream_timeout`, …).
    pub class: String,
}

/// Labels of guard verdicts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GuardLabels {
    /// Model alias.
    pub route: String,
    /// Guard (`pii`, `secrets`, …).
    pub guard: String,
    /// Detected type, or `-`.
    pub kind: String,
}

/// Labels of limit refusals.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    /// `key`, `team`, `ip` or `route`.
    pub scope: String,
    /// `requests`, `tokens` or `concurrency`.
    pub limit: String,
}

/// Labels of upstream attempts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    /// `provider/model`.
    pub target: String,
    /// `ok`, `retry`, `fallback`, `breaker_open`, `rejected`.
    pub outcome: String,
}

/// Labels of review samples.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SampleLabels {
    /// `queued` or `dropped` (the in-memory queue was full).
    pub outcome: String,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms .. ~65 s: gateway overhead is sub-millisecond, model calls take seconds.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0005, 2.0, 18,
    ))
}

fn score_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::linear_buckets(
        0.1, 0.1, 10,
    ))
}

/// All gateway metrics and the registry that renders them.
pub struct Metrics {
    registry: Registry,
    /// Finished requests.
    pub requests: Family<RequestLabels, Counter>,
    /// End-to-end latency by route.
    pub request_seconds: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// Upstream latency (to headers for streams) by target.
    pub upstream_seconds: Family<TargetLabels, Histogram, fn() -> Histogram>,
    /// Tokens by route and direction.
    pub tokens: Family<TokenLabels, Counter>,
    /// Errors by route and class.
    pub errors: Family<ErrorLabels, Counter>,
    /// Requests refused by a limit (429).
    pub rate_limited: Family<LimitLabels, Counter>,
    /// Cost in micro-USD by route (integer counter; divide by 1e6).
    pub cost_micro_usd: Family<RouteLabels, Counter>,
    /// Upstream attempts by outcome.
    pub attempts: Family<AttemptLabels, Counter>,
    /// Guard detections by type.
    pub guard_detections: Family<GuardLabels, Counter>,
    /// Requests blocked by a guard.
    pub guard_blocks: Family<GuardLabels, Counter>,
    /// Highest prompt-injection score per request, by route.
    pub injection_score: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// Interactions sampled for review, by outcome (MI-4).
    pub review_samples: Family<SampleLabels, Counter>,
    /// Trace spans dropped: export queue full, collector failing or refusing them (MI-1).
    pub trace_spans_dropped: Counter,
    /// Trace spans the collector accepted (MI-1).
    pub trace_spans_exported: Counter,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Create and register every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tollgate");
        let requests = Family::<RequestLabels, Counter>::default();
        let request_seconds =
            Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        let upstream_seconds =
            Family::<TargetLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        let tokens = Family::<TokenLabels, Counter>::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let attempts = Family::<AttemptLabels, Counter>::default();
        let guard_detections = Family::<GuardLabels, Counter>::default();
        let guard_blocks = Family::<GuardLabels, Counter>::default();
        let rate_limited = Family::<LimitLabels, Counter>::default();
        let cost_micro_usd = Family::<RouteLabels, Counter>::default();
        registry.register(
            "rate_limited",
            "Requests refused by a rate, token or concurrency limit",
            rate_limited.clone(),
        );
        registry.register(
            "cost_micro_usd",
            "Cost of upstream calls from the price table, in millionths of a US dollar",
            cost_micro_usd.clone(),
        );
        let injection_score =
            Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                score_histogram,
            );
        let review_samples = Family::<SampleLabels, Counter>::default();
        registry.register(
            "review_samples",
            "Interactions sampled for the review queue, by outcome (dropped: queue full)",
            review_samples.clone(),
        );
        let trace_spans_dropped = Counter::default();
        let trace_spans_exported = Counter::default();
        registry.register(
            "trace_spans_dropped",
            "Trace spans dropped because the export queue was full or the collector failed",
            trace_spans_dropped.clone(),
        );
        registry.register(
            "trace_spans_exported",
            "Trace spans accepted by the OTLP collector",
            trace_spans_exported.clone(),
        );
        registry.register("requests", "Finished requests", requests.clone());
        registry.register(
            "request_duration_seconds",
            "End-to-end request latency",
            request_seconds.clone(),
        );
        registry.register(
            "upstream_duration_seconds",
            "Upstream latency to response headers",
            upstream_seconds.clone(),
        );
        registry.register("tokens", "Tokens by direction", tokens.clone());
        registry.register("errors", "Errors by class", errors.clone());
        registry.register(
            "upstream_attempts",
            "Upstream attempts by outcome",
            attempts.clone(),
        );
        registry.register(
            "guard_detections",
            "Guard detections by type",
            guard_detections.clone(),
        );
        registry.register(
            "guard_blocks",
            "Requests blocked by a guard",
            guard_blocks.clone(),
        );
        registry.register(
            "injection_score",
            "Highest prompt-injection score per request",
            injection_score.clone(),
        );
        Self {
            registry,
            requests,
            request_seconds,
            upstream_seconds,
            tokens,
            errors,
            attempts,
            guard_detections,
            guard_blocks,
            injection_score,
            rate_limited,
            cost_micro_usd,
            review_samples,
            trace_spans_dropped,
            trace_spans_exported,
        }
    }

    /// Count a review sample's outcome.
    pub fn review_sample(&self, outcome: &str) {
        self.review_samples
            .get_or_create(&SampleLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Count a limit refusal.
    pub fn rate_limited(&self, scope: &str, limit: &str) {
        self.rate_limited
            .get_or_create(&LimitLabels {
                scope: scope.to_owned(),
                limit: limit.to_owned(),
            })
            .inc();
    }

    /// Count an upstream attempt outcome.
    pub fn attempt(&self, target: &str, outcome: &str) {
        self.attempts
            .get_or_create(&AttemptLabels {
                target: target.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Render in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
