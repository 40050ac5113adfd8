//! `POST /v1/completions`: legacy OpenAI text completions, for the SDKs' `completions.create`,
//! vLLM/Ollama-style servers and LangChain's `OpenAI` LLM class.
//!
//! The request passes the same stages as a chat, in the same order (the handler reuses
//! them): authentication, body cap, parse ([`CompletionRequest`]), route, admission (caps,
//! limits, budgets; the answer is reserved at `max_tokens`, else the legacy default of 16),
//! the input stages on every prompt and the suffix ([`super::input_stages`]), upstream with
//! retries, fallback and provider policy, and the output stages on each `choices[].text`,
//! whole or streamed ([`super::Answering`]).
//!
//! Two differences, both deliberate:
//! - a text completion is forwarded natively to OpenAI-compatible providers only. A route
//!   whose every target speaks Anthropic's format is refused with a 400 that names the route
//!   (its prompt is not a conversation, so it is never silently rewritten as a chat); in a
//!   mixed route such targets are skipped like any target that cannot serve the call;
//! - a text prompt has no system prompt, so the system-prompt canary and spotlighting are
//!   not inserted (they would change the text the model continues); every other output
//!   check runs;
//! - an answer failing the route's JSON Schema (or a `response_format`, which vLLM accepts
//!   here) cannot be re-asked, as there is no conversation to add the problem to: it gets
//!   the route's fallback message where `on_invalid` allows one, else it is refused. A
//!   streamed one is held (bounded, as for chat) and refused with an error event.

use super::*;
use crate::provider::{echo_completion, echo_completion_stream};
use crate::wire::completion::CompletionRequest;

/// A text completion as an upstream call.
struct CompletionCall<'a> {
    request: &'a CompletionRequest,
}

impl Call for CompletionCall<'_> {
    fn body_for(&self, target: &Target) -> Result<Value, GatewayError> {
        if target.provider.wire() != WireFormat::OpenAi {
            return Err(anthropic_refusal(target));
        }
        Ok(self.request.for_target(&target.model))
    }

    fn echo(&self, body: &Value, _target: &Target) -> Reply {
        if self.request.stream {
            let bytes: Vec<Result<Bytes, GatewayError>> =
                echo_completion_stream(body, self.request)
                    .iter()
                    .map(|e| Ok(e.encode()))
                    .collect();
            Reply::Stream(Box::pin(futures_util::stream::iter(bytes)))
        } else {
            Reply::Json(echo_completion(body, self.request))
        }
    }
}

fn anthropic_refusal(target: &Target) -> GatewayError {
    GatewayError::bad_request(format!(
        "provider {} speaks Anthropic's Messages API, which does not serve text completions; use /v1/chat/completions or /v1/messages",
        target.label
    ))
}

impl Prompted for CompletionRequest {
    fn prompt_text(&self) -> String {
        CompletionRequest::prompt_text(self)
    }

    fn check_input(&self, checks: &Checks, report: &mut CheckReport) -> Result<(), GatewayError> {
        checks.check_prompts(&self.texts(), report)
    }

    fn mask(
        &mut self,
        guards: &GuardSet,
        masker: &mut Masker,
        report: &mut InputReport,
    ) -> Result<(), GatewayError> {
        guards.mask_completion(self, masker, report)
    }

    fn prepare(&mut self, _checks: &Checks) -> RequestChecks {
        // No system prompt to hold a canary or the spotlight instructions (module doc).
        RequestChecks::default()
    }
}

/// Refuse a route none of whose targets can serve a text completion, naming the route.
fn served(route: &Route) -> Result<(), GatewayError> {
    if route
        .targets
        .iter()
        .any(|t| t.provider.supports(Endpoint::Completions))
    {
        return Ok(());
    }
    let providers: Vec<&str> = route
        .targets
        .iter()
        .map(|t| t.provider.name.as_str())
        .collect();
    Err(GatewayError::bad_request(format!(
        "route {:?} cannot serve text completions (/v1/completions): its providers ({}) speak Anthropic's Messages API, which does not serve text completions; use /v1/chat/completions or /v1/messages, or route this model to an OpenAI-compatible provider",
        route.alias,
        providers.join(", ")
    )))
}

/// `POST /v1/completions`.
pub async fn completions(State(gw): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let mut ctx = RequestContext::new("completions", WireFormat::OpenAi);
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
        .and_then(CompletionRequest::parse)
    {
        Ok(r) => r,
        Err(e) => return reject(&gw, ctx, e),
    };
    ctx.stream = request.stream;
    if request.model.starts_with(crate::prompt::MODEL_PREFIX) {
        let e = GatewayError::bad_request(
            "versioned prompts (`\"model\": \"prompt:NAME\"`) are conversations; call them on /v1/chat/completions or /v1/messages",
        );
        return reject(&gw, ctx, e);
    }
    let route = match resolve(&gw, &mut ctx, &key, &request.model).and_then(|r| {
        served(&r)?;
        Ok(r)
    }) {
        Ok(r) => r,
        Err(e) => return reject(&gw, ctx, e),
    };
    let max_out = request.max_tokens();
    ctx.max_tokens = request
        .body
        .get("max_tokens")
        .and_then(serde_json::Value::as_u64);
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
        WireFormat::OpenAi,
        &request.body,
        route.guards.checks.output.json_schema.as_ref(),
    ) {
        Ok(e) => e,
        Err(msg) => return reject(&gw, ctx, GatewayError::bad_request(msg)),
    };
    let fallback = route.guards.checks.output.fallback_message.clone();
    let (reply, target) = match upstream::call(
        &gw,
        &route,
        Endpoint::Completions,
        request.stream,
        &headers,
        &mut ctx,
        &CompletionCall { request: &request },
    )
    .await
    {
        Ok(x) => x,
        // Every target failed: the route's safe answer, if it has one (MG-3).
        Err(e) if e.fault == crate::error::Fault::Upstream && !request.stream => {
            match fallback.as_deref() {
                Some(message) => {
                    ctx.checks.output.push("fallback");
                    ctx.error_class = Some(e.class());
                    ctx.error = Some(e.message.clone());
                    return safe_answer(&gw, ctx, &request.model, message);
                }
                None => return reject(&gw, ctx, e),
            }
        }
        Err(e) => return reject(&gw, ctx, e),
    };
    let prompt = request.prompt_text();
    let answering = Answering {
        route: &route,
        masker: &masker,
        check_state: &check_state,
        prompt: &prompt,
        format: WireFormat::OpenAi,
        // The echo provider shows what the model received, so its tokens stay visible.
        restore: target.provider.kind != crate::config::ProviderKind::Echo,
    };
    match reply {
        Reply::Json(out) => {
            if let Some(problem) = expect.as_ref().and_then(|x| invalid_choice(x, &out)) {
                ctx.checks.output.push("schema");
                let policy = &route.guards.checks.output;
                return match fallback.as_deref() {
                    Some(message) if policy.on_invalid != OnInvalid::Block => {
                        ctx.checks.output.push("fallback");
                        safe_answer(&gw, ctx, &request.model, message)
                    }
                    _ => {
                        let e = GatewayError::blocked(
                            "output",
                            &format!("an answer failing its JSON schema ({problem})"),
                        );
                        reject(&gw, ctx, e)
                    }
                };
            }
            let usage = response::usage(&out, WireFormat::OpenAi);
            let text = response::completion_text(&out, WireFormat::OpenAi);
            answering.respond(&gw, ctx, out, usage, text).await
        }
        Reply::Stream(bytes) => {
            let structured = expect.map(|expect| stream::Structured {
                expect,
                route: route.clone(),
                headers: headers.clone(),
                request: None,
                masker: masker.clone(),
                check_state: check_state.clone(),
                restore: answering.restore,
                fallback,
            });
            answering.stream(
                gw,
                ctx,
                bytes,
                WireFormat::OpenAi,
                request.include_usage,
                structured,
            )
        }
    }
}

/// The first problem of a choice's text with the expected structure (each choice is its own
/// answer), if any.
fn invalid_choice(expect: &schema::Expectation, out: &Value) -> Option<String> {
    out.get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find_map(|c| schema::check(expect, c.get("text").and_then(Value::as_str)?).err())
}

/// Answer with the route's safe message, shaped as a text completion.
fn safe_answer(gw: &AppState, ctx: RequestContext, model: &str, message: &str) -> Response {
    let out = json!({
        "id": format!("cmpl-fallback-{}", uuid::Uuid::new_v4().simple()),
        "object": "text_completion", "created": crate::wire::unix_now(), "model": model,
        "choices": [{"index": 0, "text": message, "finish_reason": "stop", "logprobs": null}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    });
    let id = ctx.id.clone();
    let resp = with_guard_summary(axum::Json(out).into_response(), &ctx);
    ctx.finish(gw);
    with_request_id(resp, &id)
}
