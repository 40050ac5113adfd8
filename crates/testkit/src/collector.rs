//! An in-process OpenTelemetry collector: `POST /v1/traces` on 127.0.0.1 accepting OTLP/JSON
//! (what tollgate's exporter sends), keeping every export with its headers, so tests can
//! read the spans a gateway produced.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::watch;

type Exports = Arc<Mutex<Vec<(HeaderMap, Value)>>>;

/// A running mock collector.
pub struct MockCollector {
    /// Base URL (`http://127.0.0.1:PORT`), what a `[telemetry] endpoint` names.
    pub url: String,
    exports: Exports,
    spans: watch::Receiver<usize>,
    _task: tokio::task::JoinHandle<()>,
}

async fn collect(
    State((exports, count)): State<(Exports, Arc<watch::Sender<usize>>)>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::Json<Value> {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let n = spans_of(&v).len();
    exports.lock().push((headers, v));
    count.send_modify(|c| *c += n);
    axum::Json(json!({}))
}

/// The spans of one OTLP/JSON `ExportTraceServiceRequest`.
pub fn spans_of(v: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for rs in v["resourceSpans"].as_array().into_iter().flatten() {
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            out.extend(ss["spans"].as_array().into_iter().flatten().cloned());
        }
    }
    out
}

/// The value of attribute `key` of `span`, unwrapped from its OTLP/JSON `AnyValue` (a string
/// array becomes a JSON array of strings); `Null` when absent.
pub fn attr(span: &Value, key: &str) -> Value {
    for a in span["attributes"].as_array().into_iter().flatten() {
        if a["key"] == key {
            let v = &a["value"];
            for k in ["stringValue", "intValue", "doubleValue", "boolValue"] {
                if let Some(x) = v.get(k) {
                    return x.clone();
                }
            }
            if let Some(vals) = v["arrayValue"]["values"].as_array() {
                return Value::Array(vals.iter().map(|x| x["stringValue"].clone()).collect());
            }
        }
    }
    Value::Null
}

impl MockCollector {
    /// Start on 127.0.0.1 with an OS-assigned port.
    pub async fn start() -> std::io::Result<Self> {
        let exports: Exports = Arc::default();
        let (tx, spans) = watch::channel(0);
        let app = Router::new()
            .route("/v1/traces", post(collect))
            .with_state((exports.clone(), Arc::new(tx)));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url,
            exports,
            spans,
            _task: task,
        })
    }

    /// Wait until at least `n` spans have arrived or `limit` passes; every span so far
    /// (fewer than `n` when the time ran out).
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Value> {
        let mut rx = self.spans.clone();
        let _ = tokio::time::timeout(limit, rx.wait_for(|c| *c >= n)).await;
        self.spans()
    }

    /// Every span received so far, in arrival order.
    pub fn spans(&self) -> Vec<Value> {
        self.exports
            .lock()
            .iter()
            .flat_map(|(_, v)| spans_of(v))
            .collect()
    }

    /// Every export request received: its headers and its body.
    pub fn exports(&self) -> Vec<(HeaderMap, Value)> {
        self.exports.lock().clone()
    }

    /// Every export body as text, concatenated (to look for what must never be there).
    pub fn raw(&self) -> String {
        self.exports
            .lock()
            .iter()
            .map(|(_, v)| v.to_string())
            .collect()
    }
}
