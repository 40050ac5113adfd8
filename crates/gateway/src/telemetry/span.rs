//! A finished request's spans, with the OpenTelemetry GenAI semantic conventions
//! (`gen_ai.*`, semconv 1.3x), the HTTP server conventions and tollgate's own `tollgate.*`.
//!
//! Only what the log line and the audit record already show goes in: ids, names, counts,
//! scores, status. Never prompt or completion text, key values, error messages (a provider's
//! message may quote the prompt) or the client's address.

use crate::config::ProviderKind;
use crate::context::RequestContext;
use crate::state::Gateway;
use crate::telemetry::otlp::{AttrValue, Kind, Span, Status};
use crate::telemetry::{AttemptSpan, RequestTrace};

/// `gen_ai.operation.name` of an endpoint; None for endpoints that are not a model call.
pub fn operation(endpoint: &str) -> Option<&'static str> {
    match endpoint {
        "chat" | "messages" => Some("chat"),
        "completions" => Some("text_completion"),
        "embeddings" => Some("embeddings"),
        _ => None,
    }
}

/// `gen_ai.system` / `gen_ai.provider.name` of a provider adapter (the semconv's
/// well-known values; the echo provider is tollgate's own).
pub fn system(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Openai => "openai",
        ProviderKind::Azure => "azure.ai.openai",
        ProviderKind::Anthropic => "anthropic",
        ProviderKind::Echo => "tollgate.echo",
    }
}

fn int(n: u64) -> AttrValue {
    AttrValue::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

fn s(v: impl Into<String>) -> AttrValue {
    AttrValue::Str(v.into())
}

/// The spans of a finished request: its server span, then one client span per attempt.
pub fn request_spans(ctx: &RequestContext, trace: &RequestTrace, gw: &Gateway) -> Vec<Span> {
    let kind = ctx
        .target
        .as_deref()
        .and_then(|t| t.split_once('/'))
        .and_then(|(p, _)| gw.providers.get(p))
        .map(|p| p.kind);
    spans_with(ctx, trace, kind)
}

/// [`request_spans`] with the answering provider's adapter already looked up.
pub fn spans_with(
    ctx: &RequestContext,
    trace: &RequestTrace,
    kind: Option<ProviderKind>,
) -> Vec<Span> {
    let op = operation(ctx.endpoint);
    let (provider, model) = match ctx.target.as_deref().and_then(|t| t.split_once('/')) {
        Some((p, m)) => (Some(p), Some(m)),
        None => (None, None),
    };
    let mut a: Vec<(&'static str, AttrValue)> = Vec::with_capacity(40);
    if let Some(op) = op {
        a.push(("gen_ai.operation.name", s(op)));
    }
    if let Some(k) = kind {
        a.push(("gen_ai.system", s(system(k))));
        a.push(("gen_ai.provider.name", s(system(k))));
    }
    if let Some(r) = &ctx.route {
        a.push(("gen_ai.request.model", s(r.clone())));
    }
    if let (Some(m), None) = (model, ctx.error_class) {
        a.push(("gen_ai.response.model", s(m)));
    }
    if let Some(max) = ctx.max_tokens {
        a.push(("gen_ai.request.max_tokens", int(max)));
    }
    if let Some(u) = ctx.usage {
        a.push(("gen_ai.usage.input_tokens", int(u.input)));
        a.push(("gen_ai.usage.output_tokens", int(u.output)));
    }
    a.push(("http.request.method", s(trace.method.clone())));
    a.push((
        "http.response.status_code",
        AttrValue::Int(i64::from(ctx.status)),
    ));
    a.push(("url.path", s(trace.path.clone())));
    if let Some(class) = ctx.error_class {
        a.push(("error.type", s(class)));
    }
    a.push(("tollgate.request.id", s(ctx.id.clone())));
    a.push(("tollgate.endpoint", s(ctx.endpoint)));
    a.push(("tollgate.format", s(ctx.format.as_str())));
    if let Some(r) = &ctx.route {
        a.push(("tollgate.route", s(r.clone())));
    }
    if let Some(v) = &ctx.route_ref {
        a.push(("tollgate.route.version", s(v.clone())));
    }
    if let Some(p) = &ctx.prompt_ref {
        a.push(("tollgate.prompt.version", s(p.clone())));
    }
    if let Some(k) = &ctx.key_id {
        a.push(("tollgate.key.id", s(k.clone())));
    }
    if let Some(t) = &ctx.team {
        a.push(("tollgate.team", s(t.clone())));
    }
    if let Some(e) = ctx.environment {
        a.push(("tollgate.environment", s(e)));
    }
    if let Some(c) = ctx.data_class {
        a.push(("tollgate.data_class", s(c.as_str())));
    }
    a.push(("tollgate.stream", AttrValue::Bool(ctx.stream)));
    if let Some(c) = ctx.cost_usd {
        a.push(("tollgate.cost_usd", AttrValue::Double(c)));
    }
    if let Some(t) = &ctx.target {
        a.push(("tollgate.upstream.target", s(t.clone())));
    }
    if let Some(p) = provider {
        a.push(("tollgate.provider", s(p)));
    }
    a.push((
        "tollgate.upstream.attempts",
        AttrValue::Int(i64::from(ctx.attempts)),
    ));
    // A fallback: the answer (or last failure) came from another target than the first tried.
    let fallback = trace.attempts.first().is_some_and(|first| {
        ctx.target.as_deref() != Some(&format!("{}/{}", first.provider, first.model))
    });
    a.push(("tollgate.upstream.fallback", AttrValue::Bool(fallback)));
    if let Some(ms) = ctx.upstream_ms {
        a.push(("tollgate.upstream.latency_ms", AttrValue::Double(ms)));
    }
    if !ctx.policy_skips.is_empty() {
        a.push((
            "tollgate.policy.skipped_targets",
            int(ctx.policy_skips.len() as u64),
        ));
    }
    for (types, count, m) in [
        (
            "tollgate.guard.pii.types",
            "tollgate.guard.pii.count",
            &ctx.guards.pii,
        ),
        (
            "tollgate.guard.secrets.types",
            "tollgate.guard.secrets.count",
            &ctx.guards.secrets,
        ),
    ] {
        if !m.is_empty() {
            a.push((types, AttrValue::Strs(m.keys().cloned().collect())));
            a.push((count, int(m.values().map(|n| *n as u64).sum())));
        }
    }
    if let Some((score, rules)) = &ctx.checks.injection {
        a.push((
            "tollgate.guard.injection.score",
            AttrValue::Double((f64::from(*score) * 1000.0).round() / 1000.0),
        ));
        if !rules.is_empty() {
            a.push((
                "tollgate.guard.injection.rules",
                AttrValue::Strs(rules.iter().map(|r| (*r).to_owned()).collect()),
            ));
        }
    }
    for (key, flags) in [
        ("tollgate.guard.content", &ctx.checks.content),
        ("tollgate.guard.output", &ctx.checks.output),
    ] {
        if !flags.is_empty() {
            a.push((
                key,
                AttrValue::Strs(flags.iter().map(|f| (*f).to_owned()).collect()),
            ));
        }
    }
    if let Some(b) = ctx.blocked_by {
        a.push(("tollgate.guard.blocked_by", s(b)));
    }
    // Server spans: 5xx is an error, 4xx is the caller's (HTTP semconv) — except a guard's
    // refusal, which is exactly what an operator looks for.
    let (status, message) = if let Some(b) = ctx.blocked_by {
        (Status::Error, Some(format!("blocked by guard {b}")))
    } else if ctx.status >= 500 {
        (
            Status::Error,
            Some(ctx.error_class.unwrap_or("server_error").to_owned()),
        )
    } else {
        (Status::Unset, None)
    };
    let name = match (op, &ctx.route) {
        (Some(op), Some(r)) => format!("{op} {r}"),
        (Some(op), None) => op.to_owned(),
        (None, _) => format!("{} {}", trace.method, ctx.endpoint),
    };
    let mut spans = Vec::with_capacity(1 + trace.attempts.len());
    spans.push(Span {
        trace_id: trace.trace_id,
        span_id: trace.span_id,
        parent_span_id: trace.parent_span_id,
        trace_state: trace.state.clone(),
        name,
        kind: Kind::Server,
        start: trace.start,
        end: trace.now(),
        attributes: a,
        status,
        status_message: message,
    });
    for at in &trace.attempts {
        spans.push(attempt_span(trace, op, at));
    }
    spans
}

fn attempt_span(trace: &RequestTrace, op: Option<&'static str>, at: &AttemptSpan) -> Span {
    let mut a: Vec<(&'static str, AttrValue)> = Vec::with_capacity(12);
    if let Some(op) = op {
        a.push(("gen_ai.operation.name", s(op)));
    }
    a.push(("gen_ai.system", s(system(at.kind))));
    a.push(("gen_ai.provider.name", s(system(at.kind))));
    a.push(("gen_ai.request.model", s(at.model.clone())));
    a.push(("tollgate.provider", s(at.provider.clone())));
    a.push((
        "tollgate.upstream.target",
        s(format!("{}/{}", at.provider, at.model)),
    ));
    a.push(("tollgate.upstream.outcome", s(at.outcome)));
    if let Some(code) = at.status {
        a.push(("http.response.status_code", AttrValue::Int(i64::from(code))));
    }
    if let Some(e) = at.error {
        a.push(("error.type", s(e)));
    }
    let failed = at.outcome != "ok";
    Span {
        trace_id: trace.trace_id,
        span_id: at.span_id,
        parent_span_id: Some(trace.span_id),
        trace_state: trace.state.clone(),
        name: match op {
            Some(op) => format!("{op} {}", at.model),
            None => at.model.clone(),
        },
        kind: Kind::Client,
        start: at.start,
        end: at.end,
        attributes: a,
        status: if failed { Status::Error } else { Status::Unset },
        status_message: failed.then(|| at.error.unwrap_or(at.outcome).to_owned()),
    }
}
