//! Calling a route's targets: provider approval for the request's data class (DP-4,
//! [`crate::policy`]), retries with jittered backoff (honouring `Retry-After`), fallback to
//! the next target, per-target circuit breakers, and the first-byte timeout.
//!
//! Once a stream's headers are accepted the call is committed: nothing is retried after the
//! first byte could have reached the client. Dropping the returned future or stream (the
//! client went away) drops the upstream connection with it.

use std::pin::Pin;
use std::time::Duration;

use axum::http::HeaderMap;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde_json::Value;
use tokio::time::Instant;

use tollgate_store::audit::PayloadKind;
use tollgate_store::audit::payload::MAX_PAYLOAD_BYTES;

use crate::config::ProviderKind;
use crate::context::RequestContext;
use crate::error::GatewayError;
use crate::metrics::TargetLabels;
use crate::policy::Admission;
use crate::provider::Endpoint;
use crate::resilience::{backoff, parse_retry_after};
use crate::state::{Gateway, Route, Target};

/// Largest non-streamed upstream response body accepted.
pub const MAX_UPSTREAM_BODY_BYTES: usize = 32 * 1024 * 1024;
/// Largest upstream error body read (for its message).
pub const MAX_UPSTREAM_ERROR_BYTES: usize = 64 * 1024;

/// A stream of raw upstream bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, GatewayError>> + Send>>;

/// What a successful upstream call produced.
pub enum Reply {
    /// A complete JSON body.
    Json(Value),
    /// SSE bytes still arriving.
    Stream(ByteStream),
}

/// Produces the body and echo reply for a target; implemented per endpoint by the pipeline.
pub trait Call {
    /// Body to send to `target` (translated to its format), or why it cannot be sent there.
    fn body_for(&self, target: &Target) -> Result<Value, GatewayError>;
    /// The built-in echo provider's reply to `body`.
    fn echo(&self, body: &Value, target: &Target) -> Reply;
}

fn read_error_message(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let msg = v
        .get("error")
        .and_then(|e| e.get("message").or(Some(e)))
        .and_then(Value::as_str)
        .or_else(|| v.get("message").and_then(Value::as_str))
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned());
    msg.chars().take(500).collect()
}

async fn read_capped(resp: reqwest::Response, cap: usize) -> Result<Vec<u8>, reqwest::Error> {
    let mut out = Vec::new();
    let mut s = resp.bytes_stream();
    while let Some(chunk) = s.next().await {
        let chunk = chunk?;
        let room = cap.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= cap {
            break;
        }
    }
    Ok(out)
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return Some(Duration::from_millis(ms));
    }
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, chrono::Utc::now()))
}

fn transport_error(e: &reqwest::Error, target: &Target) -> GatewayError {
    if e.is_timeout() {
        GatewayError::upstream_timeout(format!("provider {} timed out", target.label))
    } else if e.is_connect() {
        GatewayError::upstream_bad(format!("cannot connect to provider {}", target.label))
    } else {
        GatewayError::upstream_bad(format!("provider {} connection failed", target.label))
    }
}

/// Outcome of one attempt.
enum Attempt {
    Done(Reply),
    /// Try again on the same target after the given delay (None = backoff); the flag says
    /// whether the failure counts against the target's health (a 429 does not).
    Retry(GatewayError, Option<Duration>, bool),
    /// Give up on this target, go to the next.
    Next(GatewayError),
    /// Stop: the request itself is wrong; no other target will do better.
    Stop(GatewayError),
}

/// One upstream call. `traceparent` names this attempt's span (W3C Trace Context), so a
/// provider that traces joins the caller's trace; `answered` gets the provider's status.
#[expect(
    clippy::too_many_arguments,
    reason = "one call's facts; a struct would only rename them"
)]
async fn attempt(
    gw: &Gateway,
    target: &Target,
    endpoint: Endpoint,
    body: &Bytes,
    headers: &HeaderMap,
    stream: bool,
    ctx: &mut RequestContext,
    traceparent: Option<&str>,
    answered: &mut Option<u16>,
) -> Attempt {
    let p = &target.provider;
    let r = p.resilience;
    let mut rb = match p
        .request(endpoint, &target.model, body.clone(), headers)
        .await
    {
        Ok(rb) => rb,
        Err(e) => return Attempt::Next(e),
    };
    if let Some(tp) = traceparent {
        rb = rb.header("traceparent", tp);
        if let Some(state) = ctx.trace.as_ref().and_then(|t| t.state.as_deref()) {
            rb = rb.header("tracestate", state);
        }
    }
    let t0 = Instant::now();
    let sent = tokio::time::timeout(r.first_byte_timeout, rb.send()).await;
    let resp = match sent {
        Err(_) => {
            return Attempt::Retry(
                GatewayError::upstream_timeout(format!(
                    "provider {} sent no response within {:?} (first_byte_timeout)",
                    target.label, r.first_byte_timeout
                )),
                None,
                true,
            );
        }
        Ok(Err(e)) => return Attempt::Retry(transport_error(&e, target), None, true),
        Ok(Ok(resp)) => resp,
    };
    let upstream_ms = t0.elapsed().as_secs_f64() * 1000.0;
    gw.metrics
        .upstream_seconds
        .get_or_create(&TargetLabels {
            target: target.label.clone(),
        })
        .observe(upstream_ms / 1000.0);
    let status = resp.status().as_u16();
    *answered = Some(status);
    if resp.status().is_success() {
        ctx.upstream_ms = Some(upstream_ms);
        if stream {
            let is_sse = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/event-stream"));
            if !is_sse {
                return Attempt::Next(GatewayError::upstream_bad(format!(
                    "provider {} answered a streaming request without an event stream",
                    target.label
                )));
            }
            let label = target.label.clone();
            let s = resp.bytes_stream().map(move |r| {
                r.map_err(|e| {
                    if e.is_timeout() {
                        GatewayError::upstream_timeout(format!(
                            "provider {label} stream exceeded total_timeout"
                        ))
                    } else {
                        GatewayError::upstream_bad(format!("provider {label} stream failed"))
                    }
                })
            });
            return Attempt::Done(Reply::Stream(Box::pin(s)));
        }
        let bytes = match read_capped(resp, MAX_UPSTREAM_BODY_BYTES + 1).await {
            Ok(b) => b,
            Err(e) => return Attempt::Retry(transport_error(&e, target), None, true),
        };
        if bytes.len() > MAX_UPSTREAM_BODY_BYTES {
            return Attempt::Next(GatewayError::upstream_bad(format!(
                "provider {} response is too large",
                target.label
            )));
        }
        return match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) if v.is_object() => Attempt::Done(Reply::Json(v)),
            _ => Attempt::Next(GatewayError::upstream_bad(format!(
                "provider {} returned a response that is not valid JSON",
                target.label
            ))),
        };
    }
    let wait = retry_after(resp.headers());
    let body = read_capped(resp, MAX_UPSTREAM_ERROR_BYTES)
        .await
        .unwrap_or_default();
    let msg = read_error_message(&body);
    match status {
        408 | 409 | 429 | 500 | 502 | 503 | 504 | 529 => {
            let mut e = if status == 429 {
                GatewayError::unavailable(format!(
                    "provider {} is rate limiting (429): {msg}",
                    target.label
                ))
            } else {
                GatewayError::upstream_bad(format!(
                    "provider {} failed with HTTP {status}: {msg}",
                    target.label
                ))
            };
            if let Some(w) = wait {
                e.retry_after = Some(w.as_secs().max(1));
            }
            Attempt::Retry(e, wait, status != 429)
        }
        401 | 403 => {
            // Our credential for the provider was refused: re-read it (it may have been
            // rotated) and let another target answer meanwhile.
            p.invalidate_credential();
            tracing::warn!(provider = %p.name, status, "provider rejected the configured credential");
            Attempt::Next(GatewayError::upstream_bad(format!(
                "provider {} rejected tollgate's credential (HTTP {status}); check its api_key reference",
                target.label
            )))
        }
        404 => Attempt::Next(GatewayError::upstream_bad(format!(
            "provider {} does not know model {:?} (HTTP 404): {msg}",
            target.label, target.model
        ))),
        400..=499 => Attempt::Stop(GatewayError::upstream_rejected(
            status,
            format!("provider rejected the request: {msg}"),
        )),
        _ => Attempt::Next(GatewayError::upstream_bad(format!(
            "provider {} answered HTTP {status}",
            target.label
        ))),
    }
}

/// Note an attempt for its client span, when the request's trace is recorded.
fn note_attempt(
    ctx: &mut RequestContext,
    target: &Target,
    span_id: [u8; 8],
    start: u64,
    status: Option<u16>,
    result: &Attempt,
) {
    let Some(trace) = ctx.trace.as_mut().filter(|t| t.sampled) else {
        return;
    };
    let (outcome, error) = match result {
        Attempt::Done(_) => ("ok", None),
        Attempt::Retry(e, ..) => ("retry", Some(e.class())),
        Attempt::Next(e) => ("fallback", Some(e.class())),
        Attempt::Stop(e) => ("rejected", Some(e.class())),
    };
    let end = trace.now();
    trace.attempts.push(crate::telemetry::AttemptSpan {
        span_id,
        provider: target.provider.name.clone(),
        kind: target.provider.kind,
        model: target.model.clone(),
        start,
        end,
        status,
        outcome,
        error,
    });
}

/// Call `route`'s targets in order until one answers.
pub async fn call(
    gw: &Gateway,
    route: &Route,
    endpoint: Endpoint,
    stream: bool,
    headers: &HeaderMap,
    ctx: &mut RequestContext,
    call: &impl Call,
) -> Result<(Reply, Target), GatewayError> {
    let mut last: Option<GatewayError> = None;
    // The request's class, raised to the route's (a guard-model route may carry more).
    let class = ctx
        .data_class
        .map_or(route.data_class, |c| c.max(route.data_class));
    ctx.data_class = Some(class);
    let today = crate::config::review::today();
    let on_expired = gw.config.policy.expired_review;
    let mut refused = Vec::new();
    for target in &route.targets {
        // Provider approval (DP-4) comes first: nothing is built for, let alone sent to, a
        // provider that may not receive this request's data.
        match crate::policy::admit(&target.provider, class, today, on_expired) {
            Admission::Allowed => {}
            Admission::AllowedExpired(warning) => {
                tracing::warn!(request_id = %ctx.id, provider = %target.provider.name, "{warning}");
            }
            Admission::Refused(reason) => {
                tracing::debug!(request_id = %ctx.id, target = %target.label, reason = %reason, "target skipped by provider policy");
                gw.metrics.attempt(&target.label, "policy");
                ctx.policy_skips.push(reason.clone());
                refused.push(reason);
                continue;
            }
        }
        // A provider or model switched off for an incident (MI-3) is skipped like a failed
        // target, so the route falls back to what is still allowed.
        if let Some(why) = gw
            .switches
            .target_blocked(&target.provider.name, &target.model)
        {
            gw.metrics.attempt(&target.label, "switched_off");
            last = Some(GatewayError::unavailable(why));
            continue;
        }
        ctx.target = Some(target.label.clone());
        if !target.provider.supports(endpoint) {
            let what = match endpoint {
                Endpoint::Completions => "text completions (/v1/completions)",
                _ => "this endpoint",
            };
            // An earlier target's real failure says more than this target's shape.
            if last.is_none() {
                last = Some(GatewayError::bad_request(format!(
                    "provider {} does not serve {what}",
                    target.label
                )));
            }
            continue;
        }
        let body = match call.body_for(target) {
            Ok(b) => b,
            Err(e) => {
                last = Some(e);
                continue;
            }
        };
        // Encoded once: these exact bytes go upstream and their digest goes into the audit
        // record, so the record proves what the provider was sent.
        let bytes = match serde_json::to_vec(&body) {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                last = Some(GatewayError::internal(format!(
                    "cannot encode request: {e}"
                )));
                continue;
            }
        };
        ctx.request_digest = Some(tollgate_store::audit::payload::digest(&bytes));
        let keep_sent = |ctx: &mut RequestContext| {
            if route.payloads.prompts && bytes.len() <= MAX_PAYLOAD_BYTES {
                let kind = if endpoint == Endpoint::Embeddings {
                    PayloadKind::EmbeddingInput
                } else {
                    PayloadKind::Prompt
                };
                ctx.payloads.push((kind, bytes.to_vec()));
            }
        };
        if target.provider.kind == ProviderKind::Echo {
            ctx.attempts += 1;
            gw.metrics.attempt(&target.label, "ok");
            keep_sent(ctx);
            return Ok((call.echo(&body, target), target.clone()));
        }
        let r = target.provider.resilience;
        let mut tries = 0;
        loop {
            if !target.breaker.allow() {
                gw.metrics.attempt(&target.label, "breaker_open");
                last = Some(GatewayError::unavailable(format!(
                    "provider {} is failing; its circuit breaker is open",
                    target.label
                )));
                break;
            }
            ctx.attempts += 1;
            let child = ctx.trace.as_ref().map(|t| (t.child(), t.now()));
            let mut answered = None;
            let result = attempt(
                gw,
                target,
                endpoint,
                &bytes,
                headers,
                stream,
                ctx,
                child.as_ref().map(|((_, tp), _)| tp.as_str()),
                &mut answered,
            )
            .await;
            if let Some(((span_id, _), start)) = child {
                note_attempt(ctx, target, span_id, start, answered, &result);
            }
            match result {
                Attempt::Done(reply) => {
                    target.breaker.success();
                    gw.metrics.attempt(&target.label, "ok");
                    keep_sent(ctx);
                    return Ok((reply, target.clone()));
                }
                Attempt::Stop(e) => {
                    // The provider is healthy; the request is at fault.
                    target.breaker.success();
                    gw.metrics.attempt(&target.label, "rejected");
                    return Err(e);
                }
                Attempt::Next(e) => {
                    target.breaker.failure();
                    gw.metrics.attempt(&target.label, "fallback");
                    last = Some(e);
                    break;
                }
                Attempt::Retry(e, wait, unhealthy) => {
                    if unhealthy {
                        target.breaker.failure();
                    }
                    tracing::debug!(request_id = %ctx.id, target = %target.label, error = %e, "upstream attempt failed");
                    let delay = wait.unwrap_or_else(|| backoff(r.retry_backoff, tries));
                    last = Some(e);
                    if tries >= r.max_retries || delay > r.max_retry_after {
                        gw.metrics.attempt(&target.label, "fallback");
                        break;
                    }
                    gw.metrics.attempt(&target.label, "retry");
                    tries += 1;
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
    if refused.len() == route.targets.len() && !refused.is_empty() {
        return Err(crate::policy::refusal(&refused));
    }
    Err(last.unwrap_or_else(|| GatewayError::unavailable("route has no usable target")))
}
