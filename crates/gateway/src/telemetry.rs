//! OpenTelemetry traces (checklist MI-1): one server span per data-plane request and one
//! client span per upstream attempt, with the GenAI semantic conventions, exported over
//! OTLP/HTTP off the request path.
//!
//! How it fits together:
//! - the audit layer asks the [`Tracer`] to [`Tracer::begin`] a [`RequestTrace`] from the
//!   caller's W3C `traceparent` / `tracestate` ([`Parent`]; a malformed one is ignored and
//!   a new trace starts); the decision to record is made there, once, and respects the
//!   caller's sampled flag (`sample_ratio` applies to new traces only);
//! - [`crate::upstream`] sends each attempt with a `traceparent` naming that attempt's span
//!   (so a provider's own trace joins), and notes the attempt on the trace;
//! - when the request finishes, [`span`] turns the [`crate::context::RequestContext`] into
//!   spans, which go into a bounded queue; [`otlp`] batches and POSTs them as OTLP/JSON.
//!
//! A full queue or a dead collector drops spans (counted in
//! `tollgate_trace_spans_dropped_total`) and never slows or fails a request. Spans carry
//! counts, names and ids, never prompt or completion text, key values or client addresses.
//!
//! Why not the `opentelemetry` SDK: its batch processor does not report its drops to our
//! Prometheus registry, these spans are built after the fact from the request's context
//! rather than through a tracing API, and the SDK with its OTLP exporter adds a large,
//! fast-moving dependency tree for what is one POST. OTLP/JSON over the reqwest client the
//! gateway already has is a small, specified encoding (OTLP 1.x, "JSON Protobuf Encoding")
//! that every collector accepts. Moving to the SDK stays possible: only [`otlp`] encodes.

pub mod otlp;
pub mod span;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config::telemetry::TelemetryConfig;
use crate::secrets::SecretBackends;

pub use otlp::Span;

/// Longest `tracestate` kept (W3C Trace Context §3.3.1.5: 512 characters is the least a
/// vendor must propagate; longer ones may be dropped).
pub const MAX_TRACESTATE_LEN: usize = 512;
/// How long shutdown waits for queued spans to be exported.
pub const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The caller's span, from a valid W3C `traceparent` (and its `tracestate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parent {
    /// Trace id (16 bytes, not all zero).
    pub trace_id: [u8; 16],
    /// The caller's span id (8 bytes, not all zero).
    pub span_id: [u8; 8],
    /// The caller's sampled flag.
    pub sampled: bool,
    /// The caller's `tracestate`, passed on unchanged when short and printable.
    pub state: Option<String>,
}

fn hex_bytes<const N: usize>(s: &str) -> Option<[u8; N]> {
    // Lower-case only (W3C Trace Context §3.2.2.3); upper case is invalid, not folded.
    if s.len() != N * 2 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).ok()?;
    (out != [0u8; N]).then_some(out)
}

/// A two-digit lower-case hex byte.
fn lower_hex_u8(s: &str) -> Option<u8> {
    if s.len() != 2 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    u8::from_str_radix(s, 16).ok()
}

impl Parent {
    /// Read the caller's trace context from request headers; None when absent, repeated or
    /// malformed (a bad header starts a new trace, it is never an error).
    pub fn from_headers(headers: &HeaderMap) -> Option<Self> {
        let mut all = headers.get_all("traceparent").iter();
        let (Some(value), None) = (all.next(), all.next()) else {
            return None;
        };
        let state = {
            let mut states = headers.get_all("tracestate").iter();
            match (states.next(), states.next()) {
                (Some(v), None) => v.to_str().ok(),
                _ => None,
            }
        };
        Self::parse(value.to_str().ok()?, state)
    }

    /// Parse a `traceparent` value (W3C Trace Context §3.2) and an optional `tracestate`.
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<Self> {
        let tp = traceparent.trim();
        let version = lower_hex_u8(tp.get(0..2)?)?;
        // Version ff is forbidden; version 00 is exactly 55 characters; a later version
        // may append fields after a dash, which are ignored (§3.2.4.2).
        let fits = match version {
            0xff => false,
            0 => tp.len() == 55,
            _ => tp.len() == 55 || tp.as_bytes().get(55) == Some(&b'-'),
        };
        if !fits {
            return None;
        }
        let mut parts = tp.get(..55)?.split('-');
        let (_, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let trace_id = hex_bytes::<16>(trace)?;
        let span_id = hex_bytes::<8>(span)?;
        let flags = lower_hex_u8(flags)?;
        let state = tracestate
            .map(str::trim)
            .filter(|s| {
                !s.is_empty()
                    && s.len() <= MAX_TRACESTATE_LEN
                    && s.bytes().all(|b| (0x20..0x7f).contains(&b))
            })
            .map(str::to_owned);
        Some(Self {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
            state,
        })
    }
}

/// The `traceparent` value for span `span_id` of trace `trace_id`.
pub fn traceparent(trace_id: &[u8; 16], span_id: &[u8; 8], sampled: bool) -> String {
    format!(
        "00-{}-{}-{}",
        hex::encode(trace_id),
        hex::encode(span_id),
        if sampled { "01" } else { "00" }
    )
}

/// A random span id (never all zero).
pub fn new_span_id() -> [u8; 8] {
    loop {
        let id: [u8; 8] = rand::random();
        if id != [0; 8] {
            return id;
        }
    }
}

fn new_trace_id() -> [u8; 16] {
    loop {
        let id: [u8; 16] = rand::random();
        if id != [0; 16] {
            return id;
        }
    }
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Whether a new trace is recorded at `ratio`: decided by the trace id's low 8 bytes, as
/// OpenTelemetry's `TraceIdRatioBased` sampler does, so every service sampling at the same
/// ratio keeps the same traces.
pub fn ratio_sampled(trace_id: &[u8; 16], ratio: f64) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    if ratio <= 0.0 || ratio.is_nan() {
        return false;
    }
    let mut low = [0u8; 8];
    low.copy_from_slice(&trace_id[8..]);
    let x = u64::from_be_bytes(low) >> 1;
    // ratio is in (0, 1), so the bound fits in 63 bits.
    let bound = (ratio * (1u64 << 63) as f64) as u64;
    x < bound
}

/// One upstream attempt, noted for its client span.
#[derive(Debug, Clone)]
pub struct AttemptSpan {
    /// This attempt's span id (sent upstream in `traceparent`).
    pub span_id: [u8; 8],
    /// Configured provider name.
    pub provider: String,
    /// The provider's adapter (`openai`, `anthropic`, …).
    pub kind: crate::config::ProviderKind,
    /// Upstream model (Azure: deployment).
    pub model: String,
    /// Start, Unix nanoseconds.
    pub start: u64,
    /// End (response headers, or failure), Unix nanoseconds.
    pub end: u64,
    /// HTTP status the provider answered, if it answered.
    pub status: Option<u16>,
    /// What became of the attempt: `ok`, `retry`, `fallback`, `rejected`.
    pub outcome: &'static str,
    /// Error class of a failed attempt (`upstream_timeout`, `upstream_error`, …).
    pub error: Option<&'static str>,
}

/// The trace identity of one request, decided when it arrives.
#[derive(Debug, Clone)]
pub struct RequestTrace {
    /// Trace id: the caller's, or new.
    pub trace_id: [u8; 16],
    /// This request's (server) span id.
    pub span_id: [u8; 8],
    /// The caller's span id, when a valid `traceparent` came in.
    pub parent_span_id: Option<[u8; 8]>,
    /// Whether this request's spans are recorded (and the flag passed upstream).
    pub sampled: bool,
    /// The caller's `tracestate`, passed on.
    pub state: Option<String>,
    /// Arrival, Unix nanoseconds.
    pub start: u64,
    /// Arrival, monotonic: end times are `start` plus elapsed monotonic time, so a clock
    /// step during the request cannot make a span end before it starts.
    pub started: Instant,
    /// HTTP method of the request.
    pub method: String,
    /// Path of the request (never the query, which may carry anything).
    pub path: String,
    /// The upstream attempts made, noted only when sampled.
    pub attempts: Vec<AttemptSpan>,
}

impl RequestTrace {
    /// Unix nanoseconds now, on this trace's clock.
    pub fn now(&self) -> u64 {
        self.start
            .saturating_add(u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    /// A new child span id and the `traceparent` that names it, for an upstream call.
    pub fn child(&self) -> ([u8; 8], String) {
        let id = new_span_id();
        (id, traceparent(&self.trace_id, &id, self.sampled))
    }
}

struct Inner {
    service: String,
    ratio: f64,
    tx: mpsc::Sender<Span>,
    rx: Mutex<Option<mpsc::Receiver<Span>>>,
    exporter: otlp::Exporter,
    dropped: Counter,
    worker: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Set once the worker runs, so a request's submit costs one atomic load, not a lock.
    started: std::sync::atomic::AtomicBool,
    stop: tokio::sync::watch::Sender<bool>,
}

/// Builds and queues spans; a no-op without `[telemetry]`.
#[derive(Clone, Default)]
pub struct Tracer {
    inner: Option<Arc<Inner>>,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Some(i) => write!(f, "Tracer({})", i.exporter.url),
            None => f.write_str("Tracer(off)"),
        }
    }
}

impl Tracer {
    /// A tracer for `config` (off when None), counting into `metrics`, resolving header
    /// references with `backends`.
    pub fn new(
        config: Option<&TelemetryConfig>,
        backends: &SecretBackends,
        metrics: &crate::metrics::Metrics,
    ) -> Result<Self, String> {
        let Some(c) = config else {
            return Ok(Self::default());
        };
        let exporter = otlp::Exporter::new(c, backends, metrics)?;
        let (tx, rx) = mpsc::channel(c.queue_size.max(1));
        let (stop, _) = tokio::sync::watch::channel(false);
        Ok(Self {
            inner: Some(Arc::new(Inner {
                service: c.service_name.trim().to_owned(),
                ratio: c.sample_ratio,
                tx,
                rx: Mutex::new(Some(rx)),
                exporter,
                dropped: metrics.trace_spans_dropped.clone(),
                worker: Mutex::new(None),
                started: std::sync::atomic::AtomicBool::new(false),
                stop,
            })),
        })
    }

    /// Whether traces are exported at all.
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Where spans go, when on.
    pub fn endpoint(&self) -> Option<&str> {
        self.inner.as_ref().map(|i| i.exporter.url.as_str())
    }

    /// The trace of a request arriving with `headers`: the caller's trace continued, or a
    /// new one; None when tracing is off.
    pub fn begin(&self, method: &str, path: &str, headers: &HeaderMap) -> Option<RequestTrace> {
        let inner = self.inner.as_ref()?;
        let parent = Parent::from_headers(headers);
        let (trace_id, sampled) = match &parent {
            Some(p) => (p.trace_id, p.sampled),
            None => {
                let id = new_trace_id();
                (id, ratio_sampled(&id, inner.ratio))
            }
        };
        Some(RequestTrace {
            trace_id,
            span_id: new_span_id(),
            parent_span_id: parent.as_ref().map(|p| p.span_id),
            sampled,
            state: parent.and_then(|p| p.state),
            start: unix_nanos(SystemTime::now()),
            started: Instant::now(),
            method: method.to_owned(),
            path: path.to_owned(),
            attempts: Vec::new(),
        })
    }

    /// Queue `spans` for export without waiting: when the queue is full (a slow or dead
    /// collector) they are dropped and counted.
    pub fn submit(&self, spans: Vec<Span>) {
        let Some(inner) = &self.inner else {
            return;
        };
        if !inner.started.load(std::sync::atomic::Ordering::Acquire) {
            self.start();
        }
        for s in spans {
            if inner.tx.try_send(s).is_err() {
                inner.dropped.inc();
            }
        }
    }

    /// The `service.name` of exported spans.
    pub fn service(&self) -> Option<&str> {
        self.inner.as_ref().map(|i| i.service.as_str())
    }

    /// Start the background exporter (once; later calls do nothing). Needs a Tokio runtime;
    /// without one spans stay queued until one starts it.
    pub fn start(&self) {
        let Some(inner) = &self.inner else {
            return;
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Some(rx) = inner.rx.lock().take() else {
            return;
        };
        let task = handle.spawn(otlp::run(
            rx,
            inner.exporter.clone(),
            inner.service.clone(),
            inner.stop.subscribe(),
        ));
        *inner.worker.lock() = Some(task);
        inner
            .started
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Export what is queued and stop, waiting at most `limit`; what is left then is lost
    /// (and logged).
    pub async fn shutdown(&self, limit: Duration) {
        let Some(inner) = &self.inner else {
            return;
        };
        let _ = inner.stop.send(true);
        let task = inner.worker.lock().take();
        if let Some(mut task) = task {
            if tokio::time::timeout(limit, &mut task).await.is_err() {
                task.abort();
                tracing::warn!(
                    "trace export did not finish within {limit:?} of shutdown; queued spans are lost"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_read() {
        let p = Parent::parse(TP, Some("congo=t61rcWkgMzE")).unwrap();
        assert_eq!(hex::encode(p.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex::encode(p.span_id), "00f067aa0ba902b7");
        assert!(p.sampled);
        assert_eq!(p.state.as_deref(), Some("congo=t61rcWkgMzE"));
        let unsampled = TP.replace("-01", "-00");
        assert!(!Parent::parse(&unsampled, None).unwrap().sampled);
        // A later version may append fields.
        let future = format!("{}-extra", TP.replacen("00", "01", 1));
        assert!(Parent::parse(&future, None).is_some());
    }

    #[test]
    fn malformed_traceparents_are_ignored() {
        for bad in [
            "",
            "00",
            "garbage",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-011",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
            "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
        ] {
            assert!(Parent::parse(bad, None).is_none(), "{bad:?}");
        }
        let long = "a=".to_owned() + &"b".repeat(MAX_TRACESTATE_LEN);
        assert_eq!(Parent::parse(TP, Some(&long)).unwrap().state, None);
    }

    #[test]
    fn repeated_traceparent_headers_are_ignored() {
        let mut h = HeaderMap::new();
        h.append("traceparent", TP.parse().unwrap());
        assert!(Parent::from_headers(&h).is_some());
        h.append("traceparent", TP.parse().unwrap());
        assert!(Parent::from_headers(&h).is_none());
    }

    #[test]
    fn traceparent_round_trips() {
        let p = Parent::parse(TP, None).unwrap();
        assert_eq!(traceparent(&p.trace_id, &p.span_id, true), TP);
    }

    #[test]
    fn ratio_sampling_is_by_trace_id() {
        let low = [0u8; 16];
        let mut high = [0xffu8; 16];
        high[0] = 1;
        assert!(ratio_sampled(&low, 1.0) && ratio_sampled(&high, 1.0));
        assert!(!ratio_sampled(&low, 0.0) && !ratio_sampled(&high, 0.0));
        assert!(ratio_sampled(&low, 0.5) && !ratio_sampled(&high, 0.5));
        let kept = (0..10_000)
            .filter(|_| ratio_sampled(&new_trace_id(), 0.25))
            .count();
        assert!((2_000..3_000).contains(&kept), "{kept}");
    }
}
