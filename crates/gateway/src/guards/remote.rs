//! The optional guard-model check (MG-2): a route may ask another configured route — for
//! example Llama Guard served by vLLM — whether a text is safe, with a timeout and an
//! explicit fail-open or fail-closed choice for when the guard model is down.

use std::time::Duration;

use serde_json::{Value, json};

use crate::context::RequestContext;
use crate::error::GatewayError;
use crate::provider::Endpoint;
use crate::state::Gateway;
use crate::upstream::{self, Reply};
use crate::wire::WireFormat;
use crate::wire::request::ChatRequest;

/// Longest text sent to a guard model; classification does not need more.
pub const MAX_GUARD_TEXT_BYTES: usize = 16 * 1024;

/// How a route uses a guard model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuardModel {
    /// Route alias of the guard model.
    pub route: String,
    /// Time allowed for its verdict.
    pub timeout: Duration,
    /// Refuse when the guard model cannot answer (default: let through and log).
    pub fail_closed: bool,
    /// On streams, hold the whole answer until the verdict (`guard_stream = "buffer"`)
    /// rather than only its last events (`"end"`, the default); see
    /// `crate::pipeline` (streamed responses) for the trade-off.
    pub buffer_streams: bool,
}

/// The guard model's verdict: Llama Guard answers `safe` or `unsafe` (then the category
/// codes); a JSON answer with `flagged` or `safe` is accepted too.
pub fn parse_verdict(answer: &str) -> Option<bool> {
    let t = answer.trim();
    if let Ok(v) = serde_json::from_str::<Value>(t) {
        if let Some(f) = v.get("flagged").and_then(Value::as_bool) {
            return Some(!f);
        }
        if let Some(s) = v.get("safe").and_then(Value::as_bool) {
            return Some(s);
        }
    }
    let first = t
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match first.as_str() {
        "safe" => Some(true),
        "unsafe" => Some(false),
        _ => None,
    }
}

fn truncated(text: &str) -> &str {
    let mut end = text.len().min(MAX_GUARD_TEXT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Ask the guard model about `text` (as the user turn, or as the assistant's answer to
/// `prompt`) for the request of `ctx`, whose data class the guard model's providers must be
/// approved for (DP-4). Its upstream attempts join the request's trace (MI-1): each gets a
/// client span under the request's span and sends its `traceparent`. `Err` is the block to
/// send.
pub async fn check(
    gw: &Gateway,
    guard: &GuardModel,
    ctx: &mut RequestContext,
    prompt: Option<&str>,
    text: &str,
) -> Result<(), GatewayError> {
    let failed = |why: &str| {
        tracing::warn!(guard_route = %guard.route, reason = why, fail_closed = guard.fail_closed, "guard model unavailable");
        if guard.fail_closed {
            Err(GatewayError::unavailable(format!(
                "the guard model is unavailable ({why}) and this route fails closed"
            )))
        } else {
            Ok(())
        }
    };
    let Some(route) = gw.routes.get(&guard.route).cloned() else {
        return failed("no such route");
    };
    let messages = match prompt {
        Some(p) => {
            json!([{"role": "user", "content": truncated(p)}, {"role": "assistant", "content": truncated(text)}])
        }
        None => json!([{"role": "user", "content": truncated(text)}]),
    };
    let body =
        json!({"model": guard.route, "messages": messages, "max_tokens": 20, "temperature": 0});
    let request = match ChatRequest::parse(WireFormat::OpenAi, body) {
        Ok(r) => r,
        Err(_) => return failed("could not build the request"),
    };
    let mut scratch = RequestContext::new("guard", WireFormat::OpenAi);
    scratch.data_class = ctx.data_class;
    // The request's trace without its attempts: the guard call's attempts are its children,
    // and come back to the request below.
    scratch.trace = ctx.trace.as_ref().map(|t| {
        Box::new(crate::telemetry::RequestTrace {
            attempts: Vec::new(),
            ..(**t).clone()
        })
    });
    let headers = axum::http::HeaderMap::new();
    let chat = crate::pipeline::ChatCall { request: &request };
    let call = upstream::call(
        gw,
        &route,
        Endpoint::Chat,
        false,
        &headers,
        &mut scratch,
        &chat,
    );
    let answered = tokio::time::timeout(guard.timeout, call).await;
    if let (Some(t), Some(s)) = (ctx.trace.as_mut(), scratch.trace.take()) {
        t.attempts.extend(s.attempts);
    }
    let (reply, target) = match answered {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => return failed(&e.message),
        Err(_) => return failed("timed out"),
    };
    let Reply::Json(v) = reply else {
        return failed("streamed answer");
    };
    let answer = crate::wire::response::completion_text(&v, target.provider.wire());
    match parse_verdict(&answer) {
        Some(true) => Ok(()),
        Some(false) => Err(GatewayError::blocked(
            "content",
            "unsafe per the guard model",
        )),
        None => failed("unreadable verdict"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        assert_eq!(parse_verdict("safe"), Some(true));
        assert_eq!(parse_verdict("unsafe\nS1,S10"), Some(false));
        assert_eq!(parse_verdict(" Unsafe "), Some(false));
        assert_eq!(parse_verdict(r#"{"flagged": true}"#), Some(false));
        assert_eq!(parse_verdict(r#"{"safe": true}"#), Some(true));
        assert_eq!(parse_verdict("I think it is fine"), None);
        assert_eq!(parse_verdict(""), None);
    }
}
