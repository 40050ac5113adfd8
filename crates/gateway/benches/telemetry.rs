//! Trace cost on the request path (MI-1): what a request pays with `[telemetry]` on, which
//! is beginning its trace from a `traceparent`, building its spans when it finishes and
//! queueing them; and, off the request path, encoding a span as OTLP/JSON.
//!
//! The queue is drained by the real exporter, sending to a closed local port, so the
//! figures include the channel's contention with a live consumer.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "criterion_group! generates undocumented items; a bench may unwrap"
)]

use axum::http::HeaderMap;
use criterion::{Criterion, criterion_group, criterion_main};
use tollgate_gateway::config::ProviderKind;
use tollgate_gateway::config::telemetry::TelemetryConfig;
use tollgate_gateway::context::RequestContext;
use tollgate_gateway::metrics::Metrics;
use tollgate_gateway::secrets::SecretBackends;
use tollgate_gateway::telemetry::{Tracer, otlp, span};
use tollgate_gateway::wire::{Usage, WireFormat};

fn finished(tracer: &Tracer, headers: &HeaderMap) -> RequestContext {
    let mut ctx = RequestContext::new("chat", WireFormat::OpenAi);
    ctx.trace = tracer
        .begin("POST", "/v1/chat/completions", headers)
        .map(Box::new);
    ctx.key_id = Some("key_01HZX".into());
    ctx.team = Some("payments".into());
    ctx.route = Some("gpt-4o".into());
    ctx.target = Some("openai/gpt-4o-2024-08-06".into());
    ctx.usage = Some(Usage {
        input: 512,
        output: 128,
    });
    ctx.cost_usd = Some(0.00256);
    ctx.max_tokens = Some(256);
    ctx.attempts = 1;
    ctx.guards.pii.insert("EMAIL".into(), 1);
    ctx
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let cfg: TelemetryConfig = toml::from_str(&format!(
        "endpoint = \"http://{dead}\"\nqueue_size = 100000"
    ))
    .unwrap();
    let metrics = Metrics::new();
    let tracer = Tracer::new(Some(&cfg), &SecretBackends::keystore_only(None), &metrics).unwrap();
    tracer.start();
    let mut headers = HeaderMap::new();
    headers.insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap(),
    );
    c.bench_function("trace begin (traceparent in)", |b| {
        b.iter(|| tracer.begin("POST", "/v1/chat/completions", &headers))
    });
    let ctx = finished(&tracer, &headers);
    let trace = ctx.trace.as_deref().unwrap();
    c.bench_function("request spans built", |b| {
        b.iter(|| span::spans_with(&ctx, trace, Some(ProviderKind::Openai)))
    });
    c.bench_function("request spans built and queued", |b| {
        b.iter(|| tracer.submit(span::spans_with(&ctx, trace, Some(ProviderKind::Openai))))
    });
    let spans = span::spans_with(&ctx, trace, Some(ProviderKind::Openai));
    c.bench_function("span encoded as OTLP/JSON (exporter side)", |b| {
        b.iter(|| otlp::export_body("tollgate", &spans).unwrap())
    });
    drop(_guard);
}

criterion_group!(benches, bench);
criterion_main!(benches);
