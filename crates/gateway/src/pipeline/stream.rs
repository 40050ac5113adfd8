//! The streamed response stage: upstream SSE bytes → parsed events → translated to the
//! client's format → output guards ([`StreamOutputGuard`]) → the end-of-stream stages →
//! client, with one audit record for the whole stream ([`StreamRecord`]).
//!
//! **End-of-stream stages.** Two guards can only judge a complete answer:
//!
//! - **JSON Schema** (`response_format: json_schema`/`json_object`, or the route's
//!   `output.json_schema`). A streamed structured answer is *buffered*: its events are held,
//!   up to `output.stream_buffer_bytes` (default
//!   [`crate::guards::checks::DEFAULT_STREAM_BUFFER_BYTES`]), and
//!   validated when the upstream finishes. Valid, they are released as they came; invalid,
//!   the route's policy runs exactly as for a whole answer (re-ask once, fallback message, or
//!   refusal) and the result is sent as a well-formed stream (or an error event). The client
//!   gets correct JSON or an error, never invalid JSON followed by a correction, at the cost
//!   of time to first token. An answer outgrowing the buffer is released and streamed live;
//!   if it then fails its schema the stream ends with an error event instead of its finish.
//! - **Guard model** (`content.guard_route`). With `content.guard_stream = "end"` (default)
//!   the answer streams with no added latency and the guard model judges the complete text
//!   before the stream's last events (from the first finishing event on, at most
//!   [`GUARD_TAIL_HOLD_BYTES`]) are released; an unsafe verdict replaces them with an error
//!   event, so SDKs raise instead of finishing cleanly, but the text streamed before the
//!   verdict was already seen. With `"buffer"` the whole answer is held (like a structured
//!   one) until the verdict: nothing unsafe is shown, at the cost of time to first token.
//!   The guard model's timeout and fail-open/closed settings apply unchanged.
//!
//! Either way the client's stream ends with its normal terminal event or with one error
//! event in its format, never truncated JSON.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use futures_util::StreamExt;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tollgate_guard::mask::Masker;

use super::{Answering, AppState, fallback_answer, revalidate, with_request_id};
use crate::context::RequestContext;
use crate::error::GatewayError;
use crate::guards::StreamOutputGuard;
use crate::guards::checks::RequestChecks;
use crate::guards::remote::GuardModel;
use crate::guards::schema;
use crate::guards::stream::{error_event, is_finishing};
use crate::sse::{SseEvent, SseParser};
use crate::state::Route;
use crate::upstream;
use crate::wire::WireFormat;
use crate::wire::request::ChatRequest;
use crate::wire::response;
use crate::wire::stream::StreamTranslator;

/// Most bytes of a stream's last events held back while the guard model judges the answer
/// (`guard_stream = "end"`); beyond it they go out and an unsafe verdict can only end the
/// stream with an error event.
pub const GUARD_TAIL_HOLD_BYTES: usize = 64 * 1024;

/// Where a stream stands with holding events back for the end-of-stream stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// Holding the whole answer (a schema applies, or `guard_stream = "buffer"`).
    Buffer,
    /// Releasing as events come, until the first finishing event.
    Live,
    /// Holding from the first finishing event on.
    Tail,
    /// The tail outgrew its cap: nothing more is held.
    Free,
}

/// A structured answer's request state, kept so a failing streamed answer can be re-asked
/// and its replacement guarded exactly like a whole answer. A text completion has no chat
/// `request` to re-ask: its failing answer is refused.
pub(super) struct Structured {
    pub(super) expect: schema::Expectation,
    pub(super) route: Arc<Route>,
    pub(super) headers: HeaderMap,
    pub(super) request: Option<ChatRequest>,
    pub(super) masker: Masker,
    pub(super) check_state: RequestChecks,
    pub(super) restore: bool,
    pub(super) fallback: Option<String>,
}

/// The guards that judge a stream once its answer is complete (see the module doc).
pub(super) struct EndStages {
    pub(super) guard_model: Option<GuardModel>,
    /// The prompt as the model saw it (masked), for the guard model.
    pub(super) prompt: String,
    /// Most bytes of events a buffered stream holds (`output.stream_buffer_bytes`).
    pub(super) buffer_cap: usize,
    pub(super) structured: Option<Structured>,
}

impl EndStages {
    fn any(&self) -> bool {
        self.guard_model.is_some() || self.structured.is_some()
    }

    /// Whether the whole answer is held from its first event.
    fn buffers(&self) -> bool {
        self.structured.is_some() || self.guard_model.as_ref().is_some_and(|g| g.buffer_streams)
    }

    /// Judge the complete answer. `None`: release the held events as they are; `Some`: send
    /// these events instead (a replacement answer, or one error event).
    async fn verdict(
        &self,
        gw: &AppState,
        ctx: &mut RequestContext,
        output: Option<&StreamOutputGuard>,
        format: WireFormat,
        released_early: bool,
    ) -> Option<Vec<SseEvent>> {
        if let Some(s) = self.structured.as_ref() {
            let text = output.and_then(StreamOutputGuard::captured);
            let problem = match text {
                Some(t) => schema::check(&s.expect, t).err(),
                None => Some(format!(
                    "the answer is longer than {} bytes and cannot be validated",
                    schema::MAX_STREAM_TEXT_BYTES
                )),
            };
            if let Some(problem) = problem {
                ctx.checks.output.push("schema");
                if released_early {
                    let e = GatewayError::blocked(
                        "output",
                        &format!(
                            "an answer failing its JSON schema ({problem}), streamed past the {}-byte buffer",
                            self.buffer_cap
                        ),
                    );
                    return Some(vec![refuse(ctx, format, e)]);
                }
                let Some(request) = s.request.as_ref() else {
                    // A text completion has no conversation to re-ask in, and its events
                    // were held: refuse rather than release an invalid answer.
                    let e = GatewayError::blocked(
                        "output",
                        &format!("an answer failing its JSON schema ({problem})"),
                    );
                    return Some(vec![refuse(ctx, format, e)]);
                };
                let answer = text.unwrap_or_default().to_owned();
                let include_usage = request.include_usage;
                let again = revalidate(
                    gw, &s.route, &s.headers, ctx, request, format, &s.expect, &answer, &problem,
                )
                .await;
                let mut out = match again {
                    Ok(Some((out, _))) => out,
                    Ok(None) => {
                        ctx.checks.output.push("fallback");
                        let out = fallback_answer(
                            format,
                            &request.model,
                            s.fallback.as_deref().unwrap_or_default(),
                        );
                        return Some(response::as_events(&out, format, include_usage));
                    }
                    Err(e) => return Some(vec![refuse(ctx, format, e)]),
                };
                let answering = Answering {
                    route: &s.route,
                    masker: &s.masker,
                    check_state: &s.check_state,
                    prompt: &self.prompt,
                    format,
                    restore: s.restore,
                };
                // The replacement passes every output stage, the guard model included.
                return Some(match answering.guard(gw, ctx, &mut out).await {
                    Ok(()) => response::as_events(&out, format, include_usage),
                    Err(e) => vec![refuse(ctx, format, e)],
                });
            }
        }
        if let Some(gm) = &self.guard_model {
            let text = output
                .map(StreamOutputGuard::captured_head)
                .unwrap_or_default();
            if let Err(e) =
                crate::guards::remote::check(gw, gm, ctx, Some(&self.prompt), text).await
            {
                return Some(vec![refuse(ctx, format, e)]);
            }
        }
        None
    }
}

/// Record a refusal of the stream's end on the context and build its error event.
fn refuse(ctx: &mut RequestContext, format: WireFormat, mut e: GatewayError) -> SseEvent {
    if let crate::error::ErrorKind::Blocked(guard) = e.kind {
        e.message = format!("{} [request {}]", e.message, ctx.id);
        ctx.blocked_by = Some(guard);
    }
    ctx.error_class = Some(e.class());
    ctx.error = Some(e.message.clone());
    error_event(format, &e)
}

/// Whether a client-format event is an error event (the stream's last).
fn is_error(format: WireFormat, ev: &SseEvent) -> bool {
    match format {
        WireFormat::OpenAi => {
            serde_json::from_str::<Value>(&ev.data).is_ok_and(|v| v.get("error").is_some())
        }
        WireFormat::Anthropic => ev.event.as_deref() == Some("error"),
    }
}

/// Logs and audits a streamed request when the stream ends, however it ends (the client may
/// go away), with the digest of every byte sent.
struct StreamRecord {
    gw: AppState,
    ctx: Option<RequestContext>,
    sent: Sha256,
    /// The response bytes, if the route stores completions (bounded).
    kept: Option<Vec<u8>>,
}

impl StreamRecord {
    fn merge_output(&mut self, g: StreamOutputGuard) {
        if let Some(ctx) = self.ctx.as_mut() {
            ctx.checks.output.extend(g.report.output);
            ctx.checks.content.extend(g.report.content);
            if let Some(e) = g.violation {
                if let crate::error::ErrorKind::Blocked(guard) = e.kind {
                    ctx.blocked_by = Some(guard);
                }
                ctx.error_class = Some(e.class());
                ctx.error = Some(e.message);
            }
        }
    }

    /// Account for bytes about to be sent.
    fn observe(&mut self, chunk: &[u8]) {
        self.sent.update(chunk);
        if let Some(k) = self.kept.as_mut() {
            if k.len() + chunk.len() <= tollgate_store::audit::payload::MAX_PAYLOAD_BYTES {
                k.extend_from_slice(chunk);
            } else {
                self.kept = None;
            }
        }
    }

    fn complete(
        &mut self,
        t: &StreamTranslator,
        error: Option<&GatewayError>,
    ) -> Option<crate::audit::Ticket> {
        let mut ctx = self.ctx.take()?;
        // An upstream that reports no usage in its stream is estimated, as a whole answer
        // is: the tokens were spent either way, and limits and budgets must count them.
        ctx.usage = Some(t.usage_or_estimate());
        ctx.answer = Some(crate::review::cut(t.text(), self.gw.reviews.window_chars()).0);
        if self.gw.config.logging.log_payloads {
            ctx.completion = Some(t.text().to_owned());
        }
        if let Some(e) = error {
            // Status was already sent as 200; the class says what happened mid-stream.
            ctx.error_class = Some(e.class());
            ctx.error = Some(e.message.clone());
        }
        let digest: [u8; 32] = std::mem::take(&mut self.sent).finalize().into();
        Some(ctx.finish_stream(&self.gw, digest, self.kept.take()))
    }
}

impl Drop for StreamRecord {
    fn drop(&mut self) {
        if let Some(mut ctx) = self.ctx.take() {
            ctx.error_class = Some("client_disconnected");
            ctx.error = Some("client closed the stream before it ended".to_owned());
            let digest: [u8; 32] = std::mem::take(&mut self.sent).finalize().into();
            drop(ctx.finish_stream(&self.gw, digest, self.kept.take()));
        }
    }
}

/// Stream the answer to the client through the output guards and the end-of-stream stages.
pub(super) fn respond(
    gw: AppState,
    ctx: RequestContext,
    mut upstream: upstream::ByteStream,
    mut translator: StreamTranslator,
    mut output: Option<StreamOutputGuard>,
    end: EndStages,
) -> Response {
    let id = ctx.id.clone();
    let format = ctx.format;
    let summary = ctx.guards.summary();
    let kept = ctx.response_payload.map(|_| Vec::new());
    let fail_closed = gw.audit.fail_closed();
    let mut record = StreamRecord {
        gw,
        ctx: Some(ctx),
        sent: Sha256::new(),
        kept,
    };
    let body = async_stream::stream! {
        let mut parser = SseParser::new();
        let mut events = Vec::new();
        let mut out = Vec::new();
        let mut failure: Option<GatewayError> = None;
        // Events withheld for the end-of-stream stages: the whole answer when buffering,
        // else (and after a buffer overflowed) from the first finishing event on; each
        // bounded by its cap, past which the held events go out and the stream runs live.
        let mut held: Vec<SseEvent> = Vec::new();
        let mut held_bytes = 0usize;
        let mut hold = if end.buffers() { Hold::Buffer } else { Hold::Live };
        let mut released_early = false;
        loop {
            let ended = match upstream.next().await {
                Some(Ok(chunk)) => {
                    if let Err(e) = parser.feed(&chunk, &mut events) {
                        failure = Some(GatewayError::upstream_bad(e.to_string()));
                    }
                    false
                }
                Some(Err(e)) => {
                    failure = Some(e);
                    true
                }
                None => {
                    if let Err(e) = parser.finish(&mut events) {
                        failure = Some(GatewayError::upstream_bad(e.to_string()));
                    }
                    true
                }
            };
            for ev in events.drain(..) {
                if let Err(e) = translator.push(ev, &mut out) {
                    failure = Some(e);
                    break;
                }
            }
            if ended && failure.is_none() {
                translator.finish(&mut out);
            }
            let mut guarded = Vec::new();
            for ev in out.drain(..) {
                match output.as_mut() {
                    Some(g) => g.process(ev, &mut guarded),
                    None => guarded.push(ev),
                }
            }
            let mut ready: Vec<SseEvent> = Vec::new();
            for ev in guarded {
                if hold == Hold::Live && end.any() && is_finishing(format, &ev) {
                    hold = Hold::Tail;
                }
                if matches!(hold, Hold::Buffer | Hold::Tail) {
                    held_bytes += ev.data.len();
                    held.push(ev);
                } else {
                    ready.push(ev);
                }
                let cap = match hold {
                    Hold::Buffer => end.buffer_cap,
                    _ => GUARD_TAIL_HOLD_BYTES,
                };
                if held_bytes > cap {
                    released_early = true;
                    hold = if hold == Hold::Buffer { Hold::Live } else { Hold::Free };
                    ready.append(&mut held);
                    held_bytes = 0;
                }
            }
            let violated = output.as_ref().is_some_and(StreamOutputGuard::ended);
            let stop = if violated || translator.is_done() {
                true
            } else if let Some(e) = &failure {
                ready.push(translator.error_event(e));
                true
            } else {
                ended
            };
            if stop {
                let clean = failure.is_none() && !violated && translator.completed();
                if clean && end.any() {
                    let verdict = match record.ctx.as_mut() {
                        Some(ctx) => {
                            end.verdict(&record.gw, ctx, output.as_ref(), format, released_early)
                                .await
                        }
                        None => None,
                    };
                    match verdict {
                        Some(instead) => ready = instead,
                        None => ready.append(&mut held),
                    }
                } else {
                    // The stream ends with an error: what was held stays unseen.
                    held.retain(|ev| is_error(format, ev));
                    ready.append(&mut held);
                }
            }
            let mut chunks: Vec<Bytes> = ready.iter().map(SseEvent::encode).collect();
            // The final event waits until the audit record is durable (DP-2).
            let last = if stop { chunks.pop() } else { None };
            for c in chunks {
                record.observe(&c);
                yield Ok::<Bytes, Infallible>(c);
            }
            if !stop {
                continue;
            }
            if let Some(c) = &last {
                record.observe(c);
            }
            if let Some(g) = output.take() {
                record.merge_output(g);
            }
            let durable = match record.complete(&translator, failure.as_ref()) {
                Some(ticket) => ticket.durable().await,
                None => Ok(()),
            };
            match (durable, last) {
                (Err(e), _) if fail_closed => {
                    tracing::error!(error = %e, "stream end withheld: its audit record could not be written");
                    let err = GatewayError::unavailable(
                        "the audit trail cannot be written, so tollgate withholds the end of this response (audit.fail_closed)",
                    );
                    yield Ok(translator.error_event(&err).encode());
                }
                (_, Some(c)) => yield Ok(c),
                (_, None) => {}
            }
            break;
        }
        if let Some(g) = output.take() {
            record.merge_output(g);
        }
        if let Some(ticket) = record.complete(&translator, failure.as_ref()) {
            drop(ticket);
        }
    };
    let mut resp = Response::new(Body::from_stream(body));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    if let Some(v) = summary.and_then(|s| HeaderValue::from_str(&s).ok()) {
        h.insert("x-tollgate-guards", v);
    }
    with_request_id(resp, &id)
}
