//! The audit layer around the data-plane routes: what it learns about a request before the
//! handler runs (client address, trace; task-local [`RequestScope`]), where the handler
//! leaves its record ([`deposit`]), fail-closed admission, and the wait for a complete
//! response's record to be durable before the response goes out ([`audit_layer`]); plus the
//! scheduled retention run.

use std::cell::RefCell;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use chrono::Utc;
use serde_json::{Map, json};

use super::{Auditor, Draft};
use crate::error::GatewayError;
use crate::state::Gateway;
use crate::wire::WireFormat;

tokio::task_local! {
    /// Where a handler's `RequestContext::finish` leaves its draft for [`audit_layer`].
    static SLOT: RefCell<Option<Draft>>;
    /// The client address and rate-limit headroom of the request being handled.
    static SCOPE: RefCell<RequestScope>;
}

/// Facts the layer learns about a request before its handler runs, or that the handler
/// reports back for the response headers.
#[derive(Debug, Clone, Default)]
pub struct RequestScope {
    /// The client's address (trusted-proxy aware).
    pub client_ip: Option<std::net::IpAddr>,
    /// Rate-limit headroom to report in `x-ratelimit-*` headers.
    pub headroom: Option<crate::limits::Headroom>,
    /// The request's trace (MI-1), taken by its [`crate::context::RequestContext`].
    pub trace: Option<crate::telemetry::RequestTrace>,
}

/// The client address of the request being handled (None outside the layer).
pub fn client_ip() -> Option<std::net::IpAddr> {
    SCOPE.try_with(|s| s.borrow().client_ip).ok().flatten()
}

/// Take the trace begun for the request being handled (None outside the layer, when
/// tracing is off, or once taken: one request, one server span).
pub fn take_trace() -> Option<crate::telemetry::RequestTrace> {
    SCOPE
        .try_with(|s| s.borrow_mut().trace.take())
        .ok()
        .flatten()
}

/// Report rate-limit headroom for the response headers.
pub fn set_headroom(h: crate::limits::Headroom) {
    let _ = SCOPE.try_with(|s| s.borrow_mut().headroom = Some(h));
}

fn rate_headers(resp: &mut Response, h: &crate::limits::Headroom) {
    let hs = resp.headers_mut();
    let mut put = |name: &'static str, v: String| {
        if let Ok(v) = axum::http::HeaderValue::from_str(&v) {
            hs.insert(name, v);
        }
    };
    if let Some(l) = h.requests_limit {
        put("x-ratelimit-limit-requests", l.to_string());
        put(
            "x-ratelimit-remaining-requests",
            h.requests_remaining.to_string(),
        );
        put(
            "x-ratelimit-reset-requests",
            crate::limits::reset_text(h.requests_reset),
        );
    }
    if let Some(l) = h.tokens_limit {
        put("x-ratelimit-limit-tokens", l.to_string());
        put(
            "x-ratelimit-remaining-tokens",
            h.tokens_remaining.to_string(),
        );
        put(
            "x-ratelimit-reset-tokens",
            crate::limits::reset_text(h.tokens_reset),
        );
    }
}

/// Leave `draft` for the enclosing [`audit_layer`]; if there is none (a stream finishing on
/// its own), submit it without waiting.
pub fn deposit(auditor: &Auditor, draft: Draft) {
    let mut draft = Some(draft);
    let _ = SLOT.try_with(|s| {
        let mut slot = s.borrow_mut();
        if slot.is_none() {
            *slot = draft.take();
        }
    });
    // Outside a layer, or a second record in one handler: write it straight away.
    if let Some(d) = draft {
        auditor.record(d);
    }
}

/// The 503 of an audit refusal in the provider's error shape, naming the request (when it has
/// an id yet) in `x-request-id` as every other answer does.
fn refusal_body(format: WireFormat, message: &str, request_id: Option<&str>) -> Response {
    let mut resp = GatewayError::unavailable(message.to_owned()).into_response_for(format);
    if let Some(v) = request_id.and_then(|id| axum::http::HeaderValue::from_str(id).ok()) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// Middleware for the data-plane routes: admission under fail-closed, and durability of the
/// record before a complete response is returned.
pub async fn audit_layer(State(gw): State<Arc<Gateway>>, req: Request, next: Next) -> Response {
    let format = if req.uri().path().starts_with("/v1/messages") {
        WireFormat::Anthropic
    } else {
        WireFormat::OpenAi
    };
    if gw.audit.refusing() {
        let id = format!("req_{}", uuid::Uuid::now_v7().simple());
        let mut fields = Map::new();
        fields.insert("endpoint".to_owned(), json!(req.uri().path()));
        fields.insert("status".to_owned(), json!(503));
        fields.insert("error_class".to_owned(), json!("audit_unavailable"));
        gw.audit.record(Draft {
            request_id: id.clone(),
            time: Utc::now(),
            key_id: None,
            team: None,
            fields,
            payloads: Vec::new(),
            response_payload: None,
        });
        return refusal_body(
            format,
            &format!(
                "the audit trail cannot be written, so tollgate refuses requests (audit.fail_closed) [request {id}]"
            ),
            Some(&id),
        );
    }
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let client_ip = peer.map(|p| {
        crate::limits::client_ip(
            p,
            req.headers()
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok()),
            &gw.proxies,
        )
    });
    let scope = RequestScope {
        client_ip,
        headroom: None,
        trace: gw
            .tracer
            .begin(req.method().as_str(), req.uri().path(), req.headers()),
    };
    let (mut resp, draft, headroom) = SCOPE
        .scope(
            RefCell::new(scope),
            SLOT.scope(RefCell::new(None), async move {
                let resp = next.run(req).await;
                let draft = SLOT.with(|s| s.borrow_mut().take());
                let headroom = SCOPE.with(|s| s.borrow().headroom);
                (resp, draft, headroom)
            }),
        )
        .await;
    if let Some(h) = &headroom {
        rate_headers(&mut resp, h);
    }
    let Some(mut draft) = draft else {
        return resp;
    };
    let (parts, body) = resp.into_parts();
    let bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(_) => {
            gw.audit.record(draft);
            return refusal_body(format, "response body could not be read", None);
        }
    };
    draft.set_response(&bytes);
    let id = draft.request_id.clone();
    match gw.audit.submit(draft).durable().await {
        Ok(()) => Response::from_parts(parts, Body::from(bytes)),
        Err(e) if gw.audit.fail_closed() => {
            tracing::error!(request_id = %id, error = %e, "response withheld: its audit record could not be written");
            refusal_body(
                format,
                &format!(
                    "the audit trail cannot be written, so tollgate withholds the response (audit.fail_closed) [request {id}]"
                ),
                Some(&id),
            )
        }
        Err(_) => Response::from_parts(parts, Body::from(bytes)),
    }
}

/// One scheduled retention run (DP-3): delete expired payloads and review items, crypto-shred emptied days,
/// prune old records up to a signed checkpoint, and record what was done.
pub async fn run_retention(gw: &Gateway) {
    let now = Utc::now();
    let plan = gw.config.retention.plan(now, false);
    match gw.store.audit.purge(&plan, now).await {
        Ok(report) => {
            tracing::info!(
                payloads = ?report.payloads_deleted,
                held = report.payloads_held,
                day_keys_destroyed = report.day_keys_destroyed.len(),
                records_pruned = ?report.records_pruned,
                reviews_deleted = report.reviews_deleted,
                "retention run"
            );
            let mut fields = Map::new();
            fields.insert("action".to_owned(), json!("retention.run"));
            fields.insert("actor".to_owned(), json!("scheduler"));
            fields.insert("outcome".to_owned(), json!("ok"));
            fields.insert("details".to_owned(), json!(report));
            gw.audit.record(Draft {
                request_id: format!("act_{}", uuid::Uuid::now_v7().simple()),
                time: now,
                key_id: None,
                team: None,
                fields,
                payloads: Vec::new(),
                response_payload: None,
            });
        }
        Err(e) => tracing::error!(target: "tollgate::alert", error = %e, "retention run failed"),
    }
}
