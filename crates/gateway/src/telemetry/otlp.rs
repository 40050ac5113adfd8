//! The OTLP/HTTP exporter: spans encoded as OTLP/JSON (`ExportTraceServiceRequest` in the
//! Protobuf JSON mapping, OTLP specification 1.x: ids as lower-case hex, 64-bit integers as
//! strings, enums as numbers), batched and POSTed to `{endpoint}/v1/traces` by one
//! background task.
//!
//! The task holds at most one batch; the bounded queue in front of it is the only buffer.
//! A collector that asks to be retried (HTTP 429, 502, 503, 504, as the OTLP specification
//! says) gets the batch again, at most [`EXPORT_RETRIES`] times, after its `Retry-After`
//! (capped at [`MAX_RETRY_DELAY`]) or an exponential backoff from [`RETRY_BACKOFF`]. Any
//! other failure, or a timeout, drops the batch and counts it: a collector outage must cost
//! the gateway neither memory nor latency, and replaying hours of spans afterwards would
//! only bury the collector. While a batch waits for its retry, new spans queue (and past
//! the queue's bound are dropped and counted), never the requests.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::config::telemetry::TelemetryConfig;
use crate::credential::{CredentialRef, CredentialSource};
use crate::secrets::SecretBackends;

/// Most spans in one export request.
pub const MAX_BATCH_SPANS: usize = 512;
/// How long a span may wait for a batch to fill before it is sent anyway.
pub const BATCH_DELAY: Duration = Duration::from_secs(1);
/// Least time between two warnings about failed exports (the counter has every failure).
const WARN_EVERY: Duration = Duration::from_secs(60);
/// Largest collector response read (for `partialSuccess`).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Retries of one batch that the collector asked to be retried.
pub const EXPORT_RETRIES: u32 = 2;
/// The first retry's delay when the collector names none; doubled for each further one.
pub const RETRY_BACKOFF: Duration = Duration::from_millis(500);
/// The longest a batch waits for one retry, whatever `Retry-After` says.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

/// Why a batch was not accepted: safe to log (never a header value), and whether the
/// collector asked for it again (and when).
struct SendError {
    why: String,
    retry_after: Option<Option<Duration>>,
}

impl From<String> for SendError {
    fn from(why: String) -> Self {
        Self {
            why,
            retry_after: None,
        }
    }
}

/// OTLP `Span.SpanKind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The gateway serving a request (`SPAN_KIND_SERVER`).
    Server = 2,
    /// The gateway calling a provider (`SPAN_KIND_CLIENT`).
    Client = 3,
}

/// OTLP `Status.StatusCode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not set: the default for a span that did not fail.
    Unset = 0,
    /// Failed.
    Error = 2,
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A float.
    Double(f64),
    /// A boolean.
    Bool(bool),
    /// A list of strings.
    Strs(Vec<String>),
}

/// One finished span.
#[derive(Debug, Clone)]
pub struct Span {
    /// Trace id.
    pub trace_id: [u8; 16],
    /// Span id.
    pub span_id: [u8; 8],
    /// Parent span id, if any.
    pub parent_span_id: Option<[u8; 8]>,
    /// W3C `tracestate` of the trace, if the caller sent one.
    pub trace_state: Option<String>,
    /// Span name (low cardinality: operation and model alias).
    pub name: String,
    /// Kind.
    pub kind: Kind,
    /// Start, Unix nanoseconds.
    pub start: u64,
    /// End, Unix nanoseconds.
    pub end: u64,
    /// Attributes, in order.
    pub attributes: Vec<(&'static str, AttrValue)>,
    /// Status code.
    pub status: Status,
    /// Status message (error class; never request content).
    pub status_message: Option<String>,
}

/// `{"stringValue": s}`.
struct StrValue<'a>(&'a str);

impl Serialize for StrValue<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(Some(1))?;
        m.serialize_entry("stringValue", self.0)?;
        m.end()
    }
}

/// `{"values": [{"stringValue": …}, …]}`.
struct StrArray<'a>(&'a [String]);

impl Serialize for StrArray<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(Some(1))?;
        let values: Vec<StrValue<'_>> = self.0.iter().map(|v| StrValue(v)).collect();
        m.serialize_entry("values", &values)?;
        m.end()
    }
}

impl Serialize for AttrValue {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(Some(1))?;
        match self {
            Self::Str(v) => m.serialize_entry("stringValue", v)?,
            // Protobuf JSON: 64-bit integers are strings.
            Self::Int(i) => m.serialize_entry("intValue", &i.to_string())?,
            Self::Double(d) if d.is_finite() => m.serialize_entry("doubleValue", d)?,
            Self::Double(_) => m.serialize_entry("stringValue", "NaN")?,
            Self::Bool(b) => m.serialize_entry("boolValue", b)?,
            Self::Strs(v) => m.serialize_entry("arrayValue", &StrArray(v))?,
        }
        m.end()
    }
}

/// `{"key": k, "value": v}`.
struct KeyValue<'a>(&'a str, &'a AttrValue);

impl Serialize for KeyValue<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(Some(2))?;
        m.serialize_entry("key", self.0)?;
        m.serialize_entry("value", self.1)?;
        m.end()
    }
}

/// `{"code": c[, "message": m]}`.
struct StatusJson<'a>(Status, Option<&'a str>);

impl Serialize for StatusJson<'_> {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(None)?;
        m.serialize_entry("code", &(self.0 as i32))?;
        if let Some(msg) = self.1 {
            m.serialize_entry("message", msg)?;
        }
        m.end()
    }
}

/// An OTLP/JSON `Span`: ids as lower-case hex, times as decimal strings.
impl Serialize for Span {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut m = ser.serialize_map(None)?;
        m.serialize_entry("traceId", &hex::encode(self.trace_id))?;
        m.serialize_entry("spanId", &hex::encode(self.span_id))?;
        if let Some(p) = &self.parent_span_id {
            m.serialize_entry("parentSpanId", &hex::encode(p))?;
        }
        if let Some(st) = &self.trace_state {
            m.serialize_entry("traceState", st)?;
        }
        m.serialize_entry("name", &self.name)?;
        m.serialize_entry("kind", &(self.kind as i32))?;
        m.serialize_entry("startTimeUnixNano", &self.start.to_string())?;
        m.serialize_entry("endTimeUnixNano", &self.end.max(self.start).to_string())?;
        let attributes: Vec<KeyValue<'_>> = self
            .attributes
            .iter()
            .map(|(k, v)| KeyValue(k, v))
            .collect();
        m.serialize_entry("attributes", &attributes)?;
        m.serialize_entry(
            "status",
            &StatusJson(self.status, self.status_message.as_deref()),
        )?;
        m.end()
    }
}

/// The body of one export, encoded: `spans` under one resource (`service.name`) and one
/// scope. Written straight from the spans (no intermediate JSON tree): the exporter runs on
/// the same cores as the requests.
pub fn export_body(service: &str, spans: &[Span]) -> Result<Vec<u8>, serde_json::Error> {
    let version = AttrValue::Str(env!("CARGO_PKG_VERSION").to_owned());
    let service = AttrValue::Str(service.to_owned());
    let sdk = AttrValue::Str("tollgate".to_owned());
    let rust = AttrValue::Str("rust".to_owned());
    let resource = [
        KeyValue("service.name", &service),
        KeyValue("service.version", &version),
        KeyValue("telemetry.sdk.name", &sdk),
        KeyValue("telemetry.sdk.language", &rust),
    ];
    serde_json::to_vec(&Export {
        resource_spans: [ResourceSpans {
            resource: Resource {
                attributes: resource,
            },
            scope_spans: [ScopeSpans {
                scope: Scope {
                    name: "tollgate-gateway",
                    version: env!("CARGO_PKG_VERSION"),
                },
                spans,
            }],
        }],
    })
}

/// `ExportTraceServiceRequest`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Export<'a> {
    resource_spans: [ResourceSpans<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceSpans<'a> {
    resource: Resource<'a>,
    scope_spans: [ScopeSpans<'a>; 1],
}

#[derive(Serialize)]
struct Resource<'a> {
    attributes: [KeyValue<'a>; 4],
}

#[derive(Serialize)]
struct ScopeSpans<'a> {
    scope: Scope,
    spans: &'a [Span],
}

#[derive(Serialize)]
struct Scope {
    name: &'static str,
    version: &'static str,
}

/// Where and how batches are sent.
#[derive(Clone)]
pub struct Exporter {
    /// `{endpoint}/v1/traces`.
    pub url: reqwest::Url,
    client: reqwest::Client,
    headers: Arc<BTreeMap<String, CredentialSource>>,
    timeout: Duration,
    dropped: Counter,
    exported: Counter,
}

impl Exporter {
    /// An exporter for `c`, counting into `metrics`.
    pub fn new(
        c: &TelemetryConfig,
        backends: &SecretBackends,
        metrics: &crate::metrics::Metrics,
    ) -> Result<Self, String> {
        let url = c
            .traces_url()
            .map_err(|e| format!("telemetry.endpoint: {e}"))?;
        let mut headers = BTreeMap::new();
        for (name, reference) in &c.headers {
            let r = CredentialRef::parse(reference)
                .map_err(|e| format!("telemetry.headers.{name}: {e}"))?;
            headers.insert(
                name.to_ascii_lowercase(),
                CredentialSource::with_backends(r, backends.clone()),
            );
        }
        let client = reqwest::Client::builder()
            .timeout(c.export_timeout.0)
            .connect_timeout(c.export_timeout.0.min(Duration::from_secs(5)))
            .build()
            .map_err(|e| format!("telemetry: cannot build the HTTP client: {e}"))?;
        Ok(Self {
            url,
            client,
            headers: Arc::new(headers),
            timeout: c.export_timeout.0,
            dropped: metrics.trace_spans_dropped.clone(),
            exported: metrics.trace_spans_exported.clone(),
        })
    }

    /// Send one batch; the number of spans the collector refused, or why it failed.
    async fn send(&self, service: &str, spans: &[Span]) -> Result<u64, SendError> {
        let body = export_body(service, spans).map_err(|e| format!("cannot encode spans: {e}"))?;
        let mut rb = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .timeout(self.timeout)
            .body(body);
        for (name, source) in self.headers.iter() {
            let v = source.get().await.map_err(|e| e.to_string())?;
            let mut value = reqwest::header::HeaderValue::from_str(
                secrecy::ExposeSecret::expose_secret(&*v).trim(),
            )
            .map_err(|_| {
                format!(
                    "{} does not hold a valid header value",
                    source.reference().describe()
                )
            })?;
            value.set_sensitive(true);
            rb = rb.header(name.as_str(), value);
        }
        let resp = rb.send().await.map_err(|e| {
            if e.is_timeout() {
                "the collector did not answer in time".to_owned()
            } else if e.is_connect() {
                "cannot connect to the collector".to_owned()
            } else {
                "the export failed".to_owned()
            }
        })?;
        let status = resp.status();
        if status.as_u16() == 401 || status.as_u16() == 403 {
            // A rotated token: read it again before the next batch.
            for source in self.headers.values() {
                source.invalidate();
            }
        }
        if !status.is_success() {
            let retry = matches!(status.as_u16(), 429 | 502 | 503 | 504);
            let after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Err(SendError {
                why: format!("the collector answered HTTP {}", status.as_u16()),
                retry_after: retry.then_some(after),
            });
        }
        // A partial success names how many spans the collector refused.
        let bytes = resp.bytes().await.unwrap_or_default();
        let rejected =
            serde_json::from_slice::<Value>(&bytes[..bytes.len().min(MAX_RESPONSE_BYTES)])
                .ok()
                .and_then(|v| {
                    let r = &v["partialSuccess"]["rejectedSpans"];
                    r.as_u64()
                        .or_else(|| r.as_str().and_then(|s| s.parse().ok()))
                })
                .unwrap_or(0);
        Ok(rejected)
    }

    async fn export(
        &self,
        service: &str,
        batch: &mut Vec<Span>,
        last_warning: &mut Option<tokio::time::Instant>,
    ) {
        if batch.is_empty() {
            return;
        }
        let n = batch.len() as u64;
        let mut sent = self.send(service, batch).await;
        let mut backoff = RETRY_BACKOFF;
        for _ in 0..EXPORT_RETRIES {
            let Err(SendError {
                retry_after: Some(after),
                ..
            }) = &sent
            else {
                break;
            };
            tokio::time::sleep(after.unwrap_or(backoff).min(MAX_RETRY_DELAY)).await;
            backoff *= 2;
            sent = self.send(service, batch).await;
        }
        match sent.map_err(|e| e.why) {
            Ok(rejected) => {
                let rejected = rejected.min(n);
                self.exported.inc_by(n - rejected);
                self.dropped.inc_by(rejected);
            }
            Err(why) => {
                self.dropped.inc_by(n);
                if last_warning.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                    *last_warning = Some(tokio::time::Instant::now());
                    tracing::warn!(
                        endpoint = %self.url,
                        spans = n,
                        reason = %why,
                        "trace export failed; spans dropped (see tollgate_trace_spans_dropped_total)"
                    );
                }
            }
        }
        batch.clear();
    }
}

/// The export task: batch spans from `rx` (up to [`MAX_BATCH_SPANS`], at most
/// [`BATCH_DELAY`] old) and send them; on `stop`, send what is queued and end.
pub async fn run(
    mut rx: mpsc::Receiver<Span>,
    exporter: Exporter,
    service: String,
    mut stop: watch::Receiver<bool>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH_SPANS);
    let mut last_warning = None;
    let mut tick = tokio::time::interval(BATCH_DELAY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            s = rx.recv() => match s {
                Some(s) => {
                    batch.push(s);
                    if batch.len() >= MAX_BATCH_SPANS {
                        exporter.export(&service, &mut batch, &mut last_warning).await;
                    }
                }
                None => break,
            },
            _ = tick.tick() => exporter.export(&service, &mut batch, &mut last_warning).await,
        }
    }
    // Shutdown: what is queued now goes out, in full batches; the caller bounds the time.
    rx.close();
    while let Some(s) = rx.recv().await {
        batch.push(s);
        if batch.len() >= MAX_BATCH_SPANS {
            exporter
                .export(&service, &mut batch, &mut last_warning)
                .await;
        }
    }
    exporter
        .export(&service, &mut batch, &mut last_warning)
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_encode_as_otlp_json() {
        let s = Span {
            trace_id: [0xab; 16],
            span_id: [1; 8],
            parent_span_id: Some([2; 8]),
            trace_state: None,
            name: "chat gpt".into(),
            kind: Kind::Server,
            start: 1_700_000_000_000_000_000,
            end: 1_700_000_000_500_000_000,
            attributes: vec![
                ("gen_ai.usage.input_tokens", AttrValue::Int(12)),
                ("tollgate.cost_usd", AttrValue::Double(0.5)),
                ("tollgate.stream", AttrValue::Bool(false)),
                (
                    "tollgate.guard.pii.types",
                    AttrValue::Strs(vec!["EMAIL".into()]),
                ),
            ],
            status: Status::Error,
            status_message: Some("upstream_timeout".into()),
        };
        let v: Value = serde_json::from_slice(&export_body("tollgate", &[s]).unwrap()).unwrap();
        let span = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(span["traceId"], "abababababababababababababababab");
        assert_eq!(span["spanId"], "0101010101010101");
        assert_eq!(span["parentSpanId"], "0202020202020202");
        assert_eq!(span["kind"], 2);
        assert_eq!(span["startTimeUnixNano"], "1700000000000000000");
        assert_eq!(span["attributes"][0]["value"]["intValue"], "12");
        assert_eq!(span["attributes"][1]["value"]["doubleValue"], 0.5);
        assert_eq!(span["attributes"][2]["value"]["boolValue"], false);
        assert_eq!(
            span["attributes"][3]["value"]["arrayValue"]["values"][0]["stringValue"],
            "EMAIL"
        );
        assert_eq!(span["status"]["code"], 2);
        assert_eq!(
            v["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"],
            "tollgate"
        );
    }
}
