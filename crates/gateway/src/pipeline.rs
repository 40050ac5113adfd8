//! The request pipeline, in the order of DESIGN.md:
//!
//! 1. **authn**: a valid virtual key ([`crate::auth`]), before the body is even read;
//! 2. **read**: the body, capped at `server.max_body_bytes` (413 beyond);
//! 3. **parse**: JSON and the fields we rely on (400 with what is wrong);
//! 4. **route**: model alias → targets (404), key scope (403), the request's data class;
//! 5. **upstream**: provider approval for the data class (403 when no target may receive
//!    it, [`crate::policy`]), retries, fallback, breakers ([`crate::upstream`]);
//! 6. **respond**: translate to the client's format, whole or streamed (streams: the
//!    [`stream`] submodule, with the output guards and the end-of-stream stages);
//! 7. **record**: one log line and metrics ([`RequestContext::finish`]).
//!
//! After the limits, the **budget** stage reserves the call's largest possible cost
//! ([`crate::budget`], DO-2); the reservation is settled when the context finishes.
//!
//! Guards (PII, injection, output validation, limits, budgets) slot in as further stages
//! between route and upstream, and between upstream and respond. The admission stages (caps,
//! limits, budgets, abuse suspension) live in `admission`, the ops endpoints (`/v1/models`,
//! health, readiness, metrics) in `ops`, and legacy text completions, which pass the same
//! stages through `Prompted` and the shared answer stages, in `completions`.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tollgate_store::audit::PayloadKind;
use tollgate_store::key::KeyRecord;

use tollgate_guard::mask::Masker;

use crate::context::RequestContext;
use crate::error::GatewayError;
use crate::guards::checks::{
    CheckReport, Checks, LeakAction, OnInvalid, RequestChecks, StreamChecker,
};
use crate::guards::schema;
use crate::guards::{GuardSet, InputReport, StreamOutputGuard, restore_json};
use crate::provider::{Endpoint, echo_chat, echo_chat_stream, echo_embeddings};
use crate::state::{Gateway, Route, Target};
use crate::upstream::{self, Call, Reply};
use crate::wire::request::{ChatRequest, EmbeddingsRequest, parse_json};
use crate::wire::stream::StreamTranslator;
use crate::wire::{WireFormat, response};

mod admission;
mod completions;
mod ops;
mod stream;

pub use admission::DEFAULT_RESERVED_OUTPUT_TOKENS;
use admission::{admit, count_abuse};
pub use completions::completions;
pub use ops::{fallback, healthz, metrics, models, readyz};

/// Shared state type of the router.
pub type AppState = Arc<Gateway>;

pub(crate) fn with_request_id(mut resp: Response, id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(id) {
        resp.headers_mut().insert("x-request-id", v.clone());
        resp.headers_mut().insert("request-id", v);
    }
    resp
}

/// Tell the caller what the guards did (counts by type, never values).
fn with_guard_summary(mut resp: Response, ctx: &RequestContext) -> Response {
    if let Some(v) = ctx
        .guards
        .summary()
        .and_then(|s| HeaderValue::from_str(&s).ok())
    {
        resp.headers_mut().insert("x-tollgate-guards", v);
    }
    if let Some(v) = ctx
        .prompt_ref
        .as_deref()
        .and_then(|p| HeaderValue::from_str(p).ok())
    {
        resp.headers_mut().insert("x-tollgate-prompt", v);
    }
    if let Some(v) = ctx
        .route_ref
        .as_deref()
        .and_then(|r| HeaderValue::from_str(r).ok())
    {
        resp.headers_mut().insert("x-tollgate-route", v);
    }
    resp
}

/// Finish `ctx` with `err` and build the error response.
pub(crate) fn reject(gw: &AppState, mut ctx: RequestContext, mut err: GatewayError) -> Response {
    if let crate::error::ErrorKind::Blocked(guard) = err.kind {
        err.message = format!("{} [request {}]", err.message, ctx.id);
        ctx.blocked_by = Some(guard);
    }
    count_abuse(gw, &ctx, &err);
    ctx.fail(&err);
    let id = ctx.id.clone();
    let format = ctx.format;
    ctx.finish(gw);
    with_request_id(err.into_response_for(format), &id)
}

/// Stage 1: authentication. Also records the key on the context.
pub(crate) async fn authenticate(
    gw: &AppState,
    ctx: &mut RequestContext,
    headers: &HeaderMap,
) -> Result<Arc<KeyRecord>, GatewayError> {
    match gw.auth.authenticate(headers).await {
        Ok(k) => {
            ctx.key_id = Some(k.id.clone());
            ctx.team = k.team.clone();
            ctx.environment = Some(k.environment.as_str());
            Ok(k)
        }
        Err((e, reason)) => {
            tracing::debug!(request_id = %ctx.id, reason = reason.as_str(), "authentication failed");
            Err(e)
        }
    }
}

/// Stage 2: read the body within the size cap.
pub(crate) async fn read_body(
    gw: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, GatewayError> {
    let limit = gw.config.server.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(GatewayError::too_large(limit));
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e).is_some_and(|s| {
            s.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
        }) || e.to_string().contains("length limit");
        if too_large {
            GatewayError::too_large(limit)
        } else {
            GatewayError::bad_request("could not read the request body")
        }
    })
}

/// Stage 3b: `"model": "prompt:NAME"` renders the prompt version deployed in the key's
/// environment into the body ([`crate::prompt`]); the request then goes on to its route.
fn apply_prompt(
    gw: &AppState,
    ctx: &mut RequestContext,
    key: &KeyRecord,
    format: WireFormat,
    headers: &HeaderMap,
    v: Value,
) -> Result<Value, GatewayError> {
    let Value::Object(mut body) = v else {
        return Ok(v);
    };
    let env = crate::prompt::env_of(key.environment);
    if let Some(a) = gw.prompts.apply(env, format, headers, &mut body)? {
        ctx.prompt_ref = Some(a.label());
    }
    Ok(Value::Object(body))
}

/// Stage 4: route lookup and key scope.
fn resolve(
    gw: &AppState,
    ctx: &mut RequestContext,
    key: &KeyRecord,
    model: &str,
) -> Result<Arc<Route>, GatewayError> {
    ctx.route = Some(model.to_owned());
    if !key.allows_model(model) {
        return Err(GatewayError::forbidden(format!(
            "key {} may not use model {model:?}; its allowed models are {:?}",
            key.id, key.allowed_models
        )));
    }
    // The route's deployed version for the key's environment, else the config's targets.
    let (route, version) = gw
        .route_versions
        .served(gw, model, crate::prompt::env_of(key.environment))
        .ok_or_else(|| GatewayError::model_not_found(model))?;
    ctx.route_ref = version.map(|v| format!("{model}@v{v}"));
    // The request's data class (DP-4): a key may raise its route's class, never lower it.
    ctx.data_class = Some(
        key.data_class
            .map_or(route.data_class, |k| k.max(route.data_class)),
    );
    Ok(route)
}

/// A chat request as an upstream call (also used by the guard-model check).
pub(crate) struct ChatCall<'a> {
    /// The request, in its client format.
    pub(crate) request: &'a ChatRequest,
}

impl Call for ChatCall<'_> {
    fn body_for(&self, target: &Target) -> Result<Value, GatewayError> {
        self.request
            .for_target(target.provider.wire(), &target.model)
    }

    fn echo(&self, body: &Value, _target: &Target) -> Reply {
        if self.request.stream {
            let bytes: Vec<Result<Bytes, GatewayError>> = echo_chat_stream(body, self.request)
                .iter()
                .map(|e| Ok(e.encode()))
                .collect();
            Reply::Stream(Box::pin(futures_util::stream::iter(bytes)))
        } else {
            Reply::Json(echo_chat(body, self.request))
        }
    }
}

/// `POST /v1/chat/completions`.
pub async fn chat_completions(
    State(gw): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    chat(gw, WireFormat::OpenAi, "chat", headers, body).await
}

/// `POST /v1/messages` (Anthropic).
pub async fn messages(State(gw): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    chat(gw, WireFormat::Anthropic, "messages", headers, body).await
}

async fn chat(
    gw: AppState,
    format: WireFormat,
    endpoint: &'static str,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut ctx = RequestContext::new(endpoint, format);
    let key = match authenticate(&gw, &mut ctx, &headers).await {
        Ok(k) => k,
        Err(e) => return reject(&gw, ctx, e),
    };
    let mut body_len = 0;
    let mut request = match read_body(&gw, &headers, body)
        .await
        .and_then(|b| {
            body_len = b.len();
            parse_json(&b)
        })
        .and_then(|v| apply_prompt(&gw, &mut ctx, &key, format, &headers, v))
        .and_then(|v| ChatRequest::parse(format, v))
    {
        Ok(r) => r,
        Err(e) => return reject(&gw, ctx, e),
    };
    ctx.stream = request.stream;
    let route = match resolve(&gw, &mut ctx, &key, &request.model) {
        Ok(r) => r,
        Err(e) => return reject(&gw, ctx, e),
    };
    ctx.max_tokens = ["max_tokens", "max_completion_tokens"]
        .iter()
        .find_map(|f| request.body.get(*f).and_then(Value::as_u64));
    let max_out = ctx.max_tokens.unwrap_or(DEFAULT_RESERVED_OUTPUT_TOKENS);
    let prompt_tokens = || tollgate_guard::tokens::estimate(&request.prompt_text());
    if let Err(e) = admit(
        &gw,
        &mut ctx,
        &key,
        &route,
        (&request.body, body_len),
        prompt_tokens,
        max_out,
    )
    .await
    {
        return reject(&gw, ctx, e);
    }
    let (masker, check_state) = match input_stages(&gw, &mut ctx, &route, &mut request).await {
        Ok(x) => x,
        Err(e) => return reject(&gw, ctx, e),
    };
    // What a structured answer must satisfy (MG-1); a malformed schema is the caller's error.
    let expect = match schema::expectation(
        format,
        &request.body,
        route.guards.checks.output.json_schema.as_ref(),
    ) {
        Ok(e) => e,
        Err(msg) => return reject(&gw, ctx, GatewayError::bad_request(msg)),
    };
    let fallback = route.guards.checks.output.fallback_message.clone();
    let outcome = upstream::call(
        &gw,
        &route,
        Endpoint::Chat,
        request.stream,
        &headers,
        &mut ctx,
        &ChatCall { request: &request },
    )
    .await;
    let (reply, target) = match outcome {
        Ok(x) => x,
        // Every target failed: the route's safe answer, if it has one (MG-3).
        Err(e)
            if e.fault == crate::error::Fault::Upstream
                && fallback.is_some()
                && !request.stream =>
        {
            ctx.checks.output.push("fallback");
            ctx.error_class = Some(e.class());
            ctx.error = Some(e.message.clone());
            let out = fallback_answer(
                format,
                &request.model,
                fallback.as_deref().unwrap_or_default(),
            );
            let id = ctx.id.clone();
            let resp = with_guard_summary(axum::Json(out).into_response(), &ctx);
            ctx.finish(&gw);
            return with_request_id(resp, &id);
        }
        Err(e) => return reject(&gw, ctx, e),
    };
    let upstream_format = target.provider.wire();
    // The echo provider shows what the model received, so its tokens stay visible.
    let restore = target.provider.kind != crate::config::ProviderKind::Echo;
    let prompt = request.prompt_text();
    let answering = Answering {
        route: &route,
        masker: &masker,
        check_state: &check_state,
        prompt: &prompt,
        format,
        restore,
    };
    match reply {
        Reply::Json(v) => {
            let usage = response::usage(&v, upstream_format);
            let mut text = response::completion_text(&v, upstream_format);
            let mut out = match response::translate(v, upstream_format, format) {
                Ok(out) => out,
                Err(e) => return reject(&gw, ctx, e),
            };
            if let Some(expect) = &expect {
                let answer = response::completion_text(&out, format);
                if let Err(problem) = schema::check(expect, &answer) {
                    ctx.checks.output.push("schema");
                    match revalidate(
                        &gw, &route, &headers, &mut ctx, &request, format, expect, &answer,
                        &problem,
                    )
                    .await
                    {
                        Ok(Some((again, again_text))) => {
                            out = again;
                            text = again_text;
                        }
                        Ok(None) => {
                            let out = fallback_answer(
                                format,
                                &request.model,
                                fallback.as_deref().unwrap_or_default(),
                            );
                            ctx.checks.output.push("fallback");
                            let id = ctx.id.clone();
                            let resp = with_guard_summary(axum::Json(out).into_response(), &ctx);
                            ctx.finish(&gw);
                            return with_request_id(resp, &id);
                        }
                        Err(e) => return reject(&gw, ctx, e),
                    }
                }
            }
            answering.respond(&gw, ctx, out, usage, text).await
        }
        Reply::Stream(bytes) => {
            let structured = expect.map(|expect| stream::Structured {
                expect,
                route: route.clone(),
                headers: headers.clone(),
                request: Some(request.clone()),
                masker: masker.clone(),
                check_state: check_state.clone(),
                restore,
                fallback,
            });
            answering.stream(
                gw,
                ctx,
                bytes,
                upstream_format,
                request.include_usage,
                structured,
            )
        }
    }
}

/// What the input stages need of a request, so that chat and text completions pass the same
/// stages in the same order ([`input_stages`]).
pub(crate) trait Prompted {
    /// All text of the prompt, for the guard model, token estimates and payload logging.
    fn prompt_text(&self) -> String;
    /// Injection and content scoring of the text as the user wrote it.
    fn check_input(&self, checks: &Checks, report: &mut CheckReport) -> Result<(), GatewayError>;
    /// Mask PII and credentials in every text position, in place.
    fn mask(
        &mut self,
        guards: &GuardSet,
        masker: &mut Masker,
        report: &mut InputReport,
    ) -> Result<(), GatewayError>;
    /// Spotlighting and the canary, where the request has a place for them.
    fn prepare(&mut self, checks: &Checks) -> RequestChecks;
}

impl Prompted for ChatRequest {
    fn prompt_text(&self) -> String {
        ChatRequest::prompt_text(self)
    }

    fn check_input(&self, checks: &Checks, report: &mut CheckReport) -> Result<(), GatewayError> {
        checks.check_input(self.format, &self.body, report)
    }

    fn mask(
        &mut self,
        guards: &GuardSet,
        masker: &mut Masker,
        report: &mut InputReport,
    ) -> Result<(), GatewayError> {
        guards.mask_chat(self.format, &mut self.body, masker, report)
    }

    fn prepare(&mut self, checks: &Checks) -> RequestChecks {
        checks.prepare(self.format, &mut self.body)
    }
}

/// The stages between admission and upstream, in order: which payloads the audit record
/// keeps, then the input guards on the text as the user wrote it (injection and content
/// scoring, the guard model), masking of PII and credentials before anything leaves,
/// spotlight and canary, and the review sample. Returns the request's token map and check
/// state for the answer stages.
async fn input_stages(
    gw: &AppState,
    ctx: &mut RequestContext,
    route: &Route,
    request: &mut impl Prompted,
) -> Result<(Masker, RequestChecks), GatewayError> {
    ctx.response_payload = route
        .payloads
        .completions
        .then_some(PayloadKind::Completion);
    if route.payloads.original_prompts {
        // Only routes that ask explicitly keep the unmasked prompt (sealed, DP-2).
        ctx.payloads.push((
            PayloadKind::OriginalPrompt,
            request.prompt_text().into_bytes(),
        ));
    }
    let checks = &route.guards.checks;
    request.check_input(checks, &mut ctx.checks)?;
    if let Some(gm) = checks
        .content
        .as_ref()
        .filter(|c| c.inputs)
        .and_then(|c| c.guard_model.as_ref())
    {
        crate::guards::remote::check(gw, gm, ctx, None, &request.prompt_text()).await?;
    }
    let mut masker = Masker::new(gw.mask_key);
    request.mask(&route.guards, &mut masker, &mut ctx.guards)?;
    let check_state = request.prepare(checks);
    // The review sample (MI-4) keeps the prompt exactly as it goes upstream, masked by the
    // guards above; the review queue masks it again before it is stored.
    if gw.reviews.sample(&route.alias) {
        ctx.review_prompt =
            Some(crate::review::cut(&request.prompt_text(), gw.reviews.window_chars()).0);
    }
    if gw.config.logging.log_payloads {
        ctx.prompt = Some(request.prompt_text());
    }
    Ok((masker, check_state))
}

/// What the answer stages need to finish a whole answer (a non-streamed one, or a buffered
/// stream's re-asked answer).
struct Answering<'a> {
    route: &'a Route,
    masker: &'a Masker,
    check_state: &'a RequestChecks,
    /// The prompt as the model saw it (masked), for the guard model.
    prompt: &'a str,
    format: WireFormat,
    restore: bool,
}

impl Answering<'_> {
    /// The output stages of a whole client-format answer, in order: output checks, the guard
    /// model, required patterns, then redaction of leaked PII and restoration of tokens.
    /// `Err` is the refusal to send.
    async fn guard(
        &self,
        gw: &AppState,
        ctx: &mut RequestContext,
        out: &mut Value,
    ) -> Result<(), GatewayError> {
        let checks = &self.route.guards.checks;
        let answer = response::completion_text(out, self.format);
        checks.check_output(&answer, self.check_state, &mut ctx.checks)?;
        if let Some(gm) = checks.content.as_ref().and_then(|c| c.guard_model.as_ref()) {
            crate::guards::remote::check(gw, gm, ctx, Some(self.prompt), &answer).await?;
        }
        checks.check_complete(&answer, &mut ctx.checks)?;
        if checks.output.pii_leak == LeakAction::Redact {
            crate::guards::redact_leaks(out);
        }
        if self.restore {
            restore_json(out, self.masker);
        }
        Ok(())
    }

    /// The last stages of a whole answer `out` (client format): the output guards, then the
    /// record (usage, estimated when the provider reported none; the review excerpt; the
    /// opt-in payload log) and the response. `text` is the answer as the provider wrote it.
    async fn respond(
        &self,
        gw: &AppState,
        mut ctx: RequestContext,
        mut out: Value,
        usage: Option<crate::wire::Usage>,
        text: String,
    ) -> Response {
        if let Err(e) = self.guard(gw, &mut ctx, &mut out).await {
            return reject(gw, ctx, e);
        }
        ctx.usage = Some(usage.unwrap_or_else(|| crate::wire::Usage {
            input: tollgate_guard::tokens::estimate(self.prompt),
            output: tollgate_guard::tokens::estimate(&text),
        }));
        ctx.answer = Some(crate::review::cut(&text, gw.reviews.window_chars()).0);
        if gw.config.logging.log_payloads {
            ctx.completion = Some(text);
        }
        let id = ctx.id.clone();
        let resp = with_guard_summary(axum::Json(out).into_response(), &ctx);
        ctx.finish(gw);
        with_request_id(resp, &id)
    }

    /// Stream the answer: translation from the `upstream` format, the output guards on each
    /// text channel, and the end-of-stream stages (the guard model; a `structured` answer's
    /// schema). Text is always captured (bounded): drift statistics read every answer's
    /// opening for refusals, and a sampled stream is kept for review.
    fn stream(
        &self,
        gw: AppState,
        ctx: RequestContext,
        bytes: upstream::ByteStream,
        upstream: WireFormat,
        include_usage: bool,
        structured: Option<stream::Structured>,
    ) -> Response {
        let translator = StreamTranslator::new(upstream, self.format, include_usage, true)
            .with_prompt_estimate(tollgate_guard::tokens::estimate(self.prompt));
        let checks = &self.route.guards.checks;
        let checker = StreamChecker::new(checks.clone(), self.check_state.clone());
        let guard_model = checks.content.as_ref().and_then(|c| c.guard_model.clone());
        let capture = if structured.is_some() {
            schema::MAX_STREAM_TEXT_BYTES
        } else if guard_model.is_some() {
            crate::guards::remote::MAX_GUARD_TEXT_BYTES
        } else {
            0
        };
        let output = StreamOutputGuard::new(self.format, self.masker, self.restore, Some(checker))
            .map(|g| g.with_capture(capture));
        let end = stream::EndStages {
            guard_model,
            prompt: self.prompt.to_owned(),
            buffer_cap: checks.output.stream_buffer_bytes,
            structured,
        };
        stream::respond(gw, ctx, bytes, translator, output, end)
    }
}

/// An answer failed its schema. Per the route's policy: re-ask once quoting the problem
/// (`Ok(Some)` with a valid answer), give the fallback (`Ok(None)`), or refuse (`Err`).
#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the pieces are the request's state"
)]
async fn revalidate(
    gw: &AppState,
    route: &Route,
    headers: &HeaderMap,
    ctx: &mut RequestContext,
    request: &ChatRequest,
    format: WireFormat,
    expect: &schema::Expectation,
    answer: &str,
    problem: &str,
) -> Result<Option<(Value, String)>, GatewayError> {
    let policy = &route.guards.checks.output;
    let give_up = || match policy.fallback_message {
        Some(_) => Ok(None),
        None => Err(GatewayError::blocked(
            "output",
            &format!("an answer failing its JSON schema ({problem})"),
        )),
    };
    if policy.on_invalid == OnInvalid::Fallback {
        return give_up();
    }
    if policy.on_invalid == OnInvalid::Block {
        return Err(GatewayError::blocked(
            "output",
            "an answer failing its JSON schema",
        ));
    }
    // The re-ask is a whole answer even when the client streams: it is validated before
    // anything of it is sent.
    let mut again = request.clone();
    again.stream = false;
    again.include_usage = false;
    again.body.remove("stream");
    again.body.remove("stream_options");
    schema::add_reask(format, &mut again.body, answer, problem);
    let (reply, target) = upstream::call(
        gw,
        route,
        Endpoint::Chat,
        false,
        headers,
        ctx,
        &ChatCall { request: &again },
    )
    .await?;
    let Reply::Json(v) = reply else {
        return give_up();
    };
    let wire = target.provider.wire();
    let text = response::completion_text(&v, wire);
    let out = response::translate(v, wire, format)?;
    let again = response::completion_text(&out, format);
    match schema::check(expect, &again) {
        Ok(()) => {
            ctx.checks.output.push("reask_ok");
            Ok(Some((out, text)))
        }
        Err(_) => give_up(),
    }
}

/// The route's safe answer in the client's format.
fn fallback_answer(format: WireFormat, model: &str, message: &str) -> Value {
    let id = uuid::Uuid::new_v4().simple().to_string();
    match format {
        WireFormat::OpenAi => json!({
            "id": format!("chatcmpl-fallback-{id}"), "object": "chat.completion", "created": crate::wire::unix_now(), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": message, "refusal": null}, "finish_reason": "stop", "logprobs": null}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }),
        WireFormat::Anthropic => json!({
            "id": format!("msg_fallback_{id}"), "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": message}], "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }),
    }
}

struct EmbeddingsCall<'a> {
    request: &'a EmbeddingsRequest,
}

impl Call for EmbeddingsCall<'_> {
    fn body_for(&self, target: &Target) -> Result<Value, GatewayError> {
        let mut body = self.request.body.clone();
        body.insert("model".into(), Value::String(target.model.clone()));
        Ok(Value::Object(body))
    }

    fn echo(&self, _body: &Value, target: &Target) -> Reply {
        Reply::Json(echo_embeddings(self.request, &target.model))
    }
}

/// `POST /v1/embeddings`.
pub async fn embeddings(State(gw): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let mut ctx = RequestContext::new("embeddings", WireFormat::OpenAi);
    let key = match authenticate(&gw, &mut ctx, &headers).await {
        Ok(k) => k,
        Err(e) => return reject(&gw, ctx, e),
    };
    let mut body_len = 0;
    let mut request = match read_body(&gw, &headers, body)
        .await
        .and_then(|b| {
            body_len = b.len();
            parse_json(&b)
        })
        .and_then(EmbeddingsRequest::parse)
    {
        Ok(r) => r,
        Err(e) => return reject(&gw, ctx, e),
    };
    let route = match resolve(&gw, &mut ctx, &key, &request.model) {
        Ok(r) => r,
        Err(e) => return reject(&gw, ctx, e),
    };
    let input_tokens = || {
        tollgate_guard::tokens::estimate(
            &serde_json::to_string(request.body.get("input").unwrap_or(&Value::Null))
                .unwrap_or_default(),
        )
    };
    if let Err(e) = admit(
        &gw,
        &mut ctx,
        &key,
        &route,
        (&request.body, body_len),
        input_tokens,
        0,
    )
    .await
    {
        return reject(&gw, ctx, e);
    }
    ctx.response_payload = route
        .payloads
        .embedding_vectors
        .then_some(PayloadKind::EmbeddingVector);
    let mut masker = Masker::new(gw.mask_key);
    if let Err(e) = route
        .guards
        .mask_embeddings(&mut request.body, &mut masker, &mut ctx.guards)
    {
        return reject(&gw, ctx, e);
    }
    match upstream::call(
        &gw,
        &route,
        Endpoint::Embeddings,
        false,
        &headers,
        &mut ctx,
        &EmbeddingsCall { request: &request },
    )
    .await
    {
        Ok((Reply::Json(v), _)) => {
            let input = v
                .get("usage")
                .and_then(|u| u.get("prompt_tokens"))
                .and_then(Value::as_u64)
                .unwrap_or_else(|| {
                    request
                        .texts()
                        .iter()
                        .map(|t| tollgate_guard::tokens::estimate(t))
                        .sum()
                });
            ctx.usage = Some(crate::wire::Usage { input, output: 0 });
            let id = ctx.id.clone();
            let resp = with_guard_summary(axum::Json(v).into_response(), &ctx);
            ctx.finish(&gw);
            with_request_id(resp, &id)
        }
        Ok((Reply::Stream(_), _)) => reject(
            &gw,
            ctx,
            GatewayError::upstream_bad("provider streamed an embeddings response"),
        ),
        Err(e) => reject(&gw, ctx, e),
    }
}
