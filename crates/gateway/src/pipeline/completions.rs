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
//!   check runs.

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
            let bytes: Vec<Result<Bytes, GatewayError>> = echo_completion_stream(body, self.request)
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
            let usage = response::usage(&out, WireFormat::OpenAi);
            let text = response::completion_text(&out, WireFormat::OpenAi);
            answering.respond(&gw, ctx, out, usage, text).await
        }
        Reply::Stream(bytes) => answering.stream(
            gw,
            ctx,
            bytes,
            WireFormat::OpenAi,
            request.include_usage,
            None,
        ),
    }
}
