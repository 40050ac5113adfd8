//! OpenTelemetry traces (MI-1): an in-process OTLP/HTTP collector on 127.0.0.1 receives the
//! gateway's spans as OTLP/JSON; the mock provider shows the `traceparent` it was sent.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_gateway::config::{Config, ConfigError};
use tollgate_testkit::MOCK_KEY;
use tollgate_testkit::collector::{MockCollector, attr};

use crate::harness::Harness;

/// A caller's span: W3C Trace Context's own example ids.
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

/// Wait (bounded) until at least `n` spans have arrived; all spans so far.
async fn wait_for(c: &MockCollector, n: usize) -> Vec<Value> {
    let spans = c.wait_for(n, Duration::from_secs(15)).await;
    assert!(
        spans.len() >= n,
        "fewer than {n} spans within 15s: {spans:?}"
    );
    spans
}

fn server_span(spans: &[Value], request_id: &str) -> Value {
    spans
        .iter()
        .find(|s| attr(s, "tollgate.request.id") == request_id)
        .cloned()
        .unwrap_or_else(|| panic!("no span for {request_id} in {spans:?}"))
}

fn telemetry_section(c: &MockCollector, extra: &str) -> String {
    format!(
        "[telemetry]\nendpoint = \"{}\"\nheaders = {{ authorization = \"file://{{CRED}}\" }}\n{extra}\n",
        c.url
    )
}

const SECRET_PROMPT: &str = "the launch code is purple-walrus-42, mail ana@example.com";

#[tokio::test]
async fn each_request_exports_a_span_with_the_genai_attributes_and_no_prompt_text() {
    let c = MockCollector::start().await.unwrap();
    let h = Harness::start_extra(&telemetry_section(&c, "service_name = \"gw-test\"")).await;
    let body = json!({"model": "gpt", "max_tokens": 50, "messages": [{"role": "user", "content": SECRET_PROMPT}]});
    let r = h.post("/v1/chat/completions", &body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let answer: Value = r.json().await.unwrap();
    let answer = answer["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(answer.contains("launch code"), "{answer}");
    let spans = wait_for(&c, 2).await;
    let s = server_span(&spans, &id);
    assert_eq!(s["kind"], 2, "{s}");
    assert_eq!(s["name"], "chat gpt");
    assert_eq!(attr(&s, "gen_ai.operation.name"), "chat");
    assert_eq!(attr(&s, "gen_ai.system"), "openai");
    assert_eq!(attr(&s, "gen_ai.request.model"), "gpt");
    assert_eq!(attr(&s, "gen_ai.response.model"), "gpt-mock");
    assert_eq!(attr(&s, "gen_ai.request.max_tokens"), "50");
    assert!(
        attr(&s, "gen_ai.usage.input_tokens").as_str().is_some(),
        "{s}"
    );
    assert!(
        attr(&s, "gen_ai.usage.output_tokens").as_str().is_some(),
        "{s}"
    );
    assert_eq!(attr(&s, "http.request.method"), "POST");
    assert_eq!(attr(&s, "http.response.status_code"), "200");
    assert_eq!(attr(&s, "url.path"), "/v1/chat/completions");
    assert_eq!(attr(&s, "tollgate.key.id"), h.key_id().await);
    assert_eq!(attr(&s, "tollgate.team"), "qa");
    assert_eq!(attr(&s, "tollgate.route"), "gpt");
    assert_eq!(attr(&s, "tollgate.upstream.target"), "oa/gpt-mock");
    assert_eq!(attr(&s, "tollgate.upstream.attempts"), "1");
    assert_eq!(attr(&s, "tollgate.guard.pii.types"), json!(["EMAIL"]));
    assert_eq!(attr(&s, "tollgate.guard.pii.count"), "1");
    assert_eq!(s["status"]["code"], 0);
    assert!(s.get("parentSpanId").is_none(), "a new trace: {s}");
    let start: u64 = s["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
    let end: u64 = s["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
    assert!(start > 1_600_000_000_000_000_000 && end >= start, "{s}");
    // The attempt's client span is the server span's child, and the provider was told so.
    let attempt = spans
        .iter()
        .find(|x| x["parentSpanId"] == s["spanId"])
        .unwrap_or_else(|| panic!("no attempt span in {spans:?}"));
    assert_eq!(attempt["kind"], 3);
    assert_eq!(attempt["traceId"], s["traceId"]);
    assert_eq!(attr(attempt, "gen_ai.request.model"), "gpt-mock");
    assert_eq!(attr(attempt, "tollgate.provider"), "oa");
    assert_eq!(attr(attempt, "http.response.status_code"), "200");
    let sent = &h.mock.requests()[0].headers["traceparent"];
    assert_eq!(
        sent,
        &format!(
            "00-{}-{}-01",
            s["traceId"].as_str().unwrap(),
            attempt["spanId"].as_str().unwrap()
        )
    );
    // Resource, and the export's header resolved from its reference.
    let bodies = c.exports();
    let (headers, first) = &bodies[0];
    assert_eq!(headers["authorization"], MOCK_KEY);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        first["resourceSpans"][0]["resource"]["attributes"][0]["value"]["stringValue"],
        "gw-test"
    );
    // Never the prompt, the answer, the client key or the provider key.
    let raw = c.raw();
    for secret in ["purple-walrus", "ana@example.com", answer.as_str(), &h.key] {
        assert!(!raw.contains(secret), "{secret:?} leaked into {raw}");
    }
    assert!(!raw.contains(MOCK_KEY), "the provider key leaked");
    // The collector answered before the exporter counted: stopping it settles the count.
    h.gw.tracer.shutdown(Duration::from_secs(5)).await;
    assert!(
        h.gw.metrics
            .render()
            .contains("tollgate_trace_spans_exported_total 2")
    );
}

#[tokio::test]
async fn every_data_plane_endpoint_gets_its_operation_and_refusals_are_errors() {
    let c = MockCollector::start().await.unwrap();
    let h = Harness::start_extra(&telemetry_section(&c, "")).await;
    let mut ids = Vec::new();
    let mut send = |r: reqwest::Response| {
        ids.push(r.headers()["x-request-id"].to_str().unwrap().to_owned());
        r.status().as_u16()
    };
    let emb = json!({"model": "embed", "input": "hello"});
    assert_eq!(
        send(h.post("/v1/embeddings", &emb).send().await.unwrap()),
        200
    );
    let comp = json!({"model": "gpt", "prompt": "say hi", "max_tokens": 7});
    assert_eq!(
        send(h.post("/v1/completions", &comp).send().await.unwrap()),
        200
    );
    let msg = json!({"model": "claude", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]});
    let r = h
        .client
        .post(format!("{}/v1/messages", h.url))
        .header("x-api-key", &h.key)
        .json(&msg)
        .send()
        .await
        .unwrap();
    assert_eq!(send(r), 200);
    let models = h
        .client
        .get(format!("{}/v1/models", h.url))
        .bearer_auth(&h.key)
        .send()
        .await
        .unwrap();
    assert_eq!(send(models), 200);
    let ssn = json!({"model": "strict", "messages": [{"role": "user", "content": "my ssn is 123-45-6789"}]});
    assert_eq!(
        send(h.post("/v1/chat/completions", &ssn).send().await.unwrap()),
        400
    );
    let broken = json!({"model": "broken", "messages": [{"role": "user", "content": "hi"}]});
    let s = send(
        h.post("/v1/chat/completions", &broken)
            .send()
            .await
            .unwrap(),
    );
    assert!(s >= 500, "{s}");
    // Server spans: 6; attempts: embeddings, completions, messages, broken (1 try).
    let spans = wait_for(&c, 10).await;
    let op = |i: usize| attr(&server_span(&spans, &ids[i]), "gen_ai.operation.name");
    assert_eq!(op(0), "embeddings");
    assert_eq!(op(1), "text_completion");
    assert_eq!(op(2), "chat");
    assert_eq!(op(3), Value::Null);
    let completion = server_span(&spans, &ids[1]);
    assert_eq!(attr(&completion, "gen_ai.request.max_tokens"), "7");
    let messages = server_span(&spans, &ids[2]);
    assert_eq!(attr(&messages, "gen_ai.system"), "anthropic");
    assert_eq!(attr(&messages, "tollgate.format"), "anthropic");
    let models = server_span(&spans, &ids[3]);
    assert_eq!(attr(&models, "http.request.method"), "GET");
    assert_eq!(models["name"], "GET models");
    let blocked = server_span(&spans, &ids[4]);
    assert_eq!(blocked["status"]["code"], 2, "{blocked}");
    assert_eq!(attr(&blocked, "tollgate.guard.blocked_by"), "pii");
    assert_eq!(attr(&blocked, "http.response.status_code"), "400");
    let failed = server_span(&spans, &ids[5]);
    assert_eq!(failed["status"]["code"], 2, "{failed}");
    assert!(attr(&failed, "error.type").as_str().is_some(), "{failed}");
    let failed_attempt = spans
        .iter()
        .find(|x| x["parentSpanId"] == failed["spanId"])
        .unwrap();
    assert_eq!(attr(failed_attempt, "http.response.status_code"), "500");
    assert_eq!(failed_attempt["status"]["code"], 2);
    assert!(!c.raw().contains("123-45-6789"));
}

#[tokio::test]
async fn an_incoming_traceparent_is_continued_and_reaches_the_provider() {
    let c = MockCollector::start().await.unwrap();
    let h = Harness::start_extra(&telemetry_section(&c, "sample_ratio = 0.0")).await;
    let body = json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]});
    // The caller did not sample: nothing is recorded, but the provider still learns the
    // trace, unsampled.
    let r = h
        .post("/v1/chat/completions", &body)
        .header("traceparent", format!("00-{TRACE}-{CALLER_SPAN}-00"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let sent = h.mock.requests()[0].headers["traceparent"].clone();
    assert!(
        sent.starts_with(&format!("00-{TRACE}-")) && sent.ends_with("-00"),
        "{sent}"
    );
    assert!(
        !sent.contains(CALLER_SPAN),
        "the attempt is its own span: {sent}"
    );
    // The caller sampled: recorded even at sample_ratio 0, under the caller's trace.
    let other = "0af7651916cd43dd8448eb211c80319c";
    let r = h
        .post("/v1/chat/completions", &body)
        .header("traceparent", format!("00-{other}-b7ad6b7169203331-01"))
        .header("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let spans = wait_for(&c, 2).await;
    let s = server_span(&spans, &id);
    assert_eq!(s["traceId"], other);
    assert_eq!(s["parentSpanId"], "b7ad6b7169203331");
    assert_eq!(s["traceState"], "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    assert!(
        spans.iter().all(|x| x["traceId"] == other),
        "the unsampled trace was exported: {spans:?}"
    );
    let up = &h.mock.requests()[1].headers;
    assert!(
        up["traceparent"].starts_with(&format!("00-{other}-")),
        "{up:?}"
    );
    assert!(up["traceparent"].ends_with("-01"));
    assert_eq!(up["tracestate"], "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
}

#[tokio::test]
async fn a_malformed_traceparent_starts_a_new_trace_and_is_no_error() {
    let c = MockCollector::start().await.unwrap();
    let h = Harness::start_extra(&telemetry_section(&c, "")).await;
    let body = json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]});
    let mut ids = Vec::new();
    for bad in [
        "garbage",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ] {
        let r = h
            .post("/v1/chat/completions", &body)
            .header("traceparent", bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{bad}");
        ids.push(r.headers()["x-request-id"].to_str().unwrap().to_owned());
    }
    let spans = wait_for(&c, 8).await;
    for id in &ids {
        let s = server_span(&spans, id);
        assert!(s.get("parentSpanId").is_none(), "{s}");
        assert_ne!(s["traceId"], TRACE.to_lowercase());
        assert_ne!(s["traceId"], "00000000000000000000000000000000");
    }
}

#[tokio::test]
async fn a_dead_or_hanging_collector_neither_fails_nor_slows_requests() {
    // A collector that accepts connections and never answers: the worst case.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = hang.local_addr().unwrap();
    let _hold = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = hang.accept().await {
            open.push(s);
        }
    });
    let h = Harness::start_extra(&format!(
        "[telemetry]\nendpoint = \"http://{addr}\"\nqueue_size = 4\nexport_timeout = \"500ms\"\n"
    ))
    .await;
    let body = json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]});
    let t0 = Instant::now();
    for _ in 0..30 {
        let (s, v) = h.json("/v1/chat/completions", &body).await;
        assert_eq!(s, 200, "{v}");
    }
    // Generous: 30 calls to the mock take well under a second; a request waiting on the
    // collector would take 30 × 500 ms.
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    // The spans are dropped and counted once the export times out.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let dropped = h.gw.metrics.trace_spans_dropped.get();
        if dropped > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no dropped spans counted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        h.gw.metrics
            .render()
            .contains("tollgate_trace_spans_dropped_total")
    );
    // A dead collector (connection refused) is the same.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let h = Harness::start_extra(&format!("[telemetry]\nendpoint = \"http://{dead}\"\n")).await;
    for _ in 0..5 {
        let (s, _) = h.json("/v1/chat/completions", &body).await;
        assert_eq!(s, 200);
    }
    // Shutdown flushes within its bound even when every export fails.
    let t0 = Instant::now();
    h.gw.tracer.shutdown(Duration::from_secs(5)).await;
    assert!(t0.elapsed() < Duration::from_secs(6));
    assert_eq!(h.gw.metrics.trace_spans_dropped.get(), 10);
}

#[tokio::test]
async fn shutdown_flushes_the_queued_spans() {
    let c = MockCollector::start().await.unwrap();
    let h = Harness::start_extra(&telemetry_section(&c, "")).await;
    let body = json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]});
    for _ in 0..3 {
        let (s, _) = h.json("/v1/chat/completions", &body).await;
        assert_eq!(s, 200);
    }
    h.gw.tracer.shutdown(Duration::from_secs(5)).await;
    // No waiting: shutdown returned after the export.
    assert_eq!(c.spans().len(), 6, "{:?}", c.spans());
}

#[tokio::test]
async fn without_a_telemetry_section_nothing_is_traced_or_propagated() {
    let h = Harness::start().await;
    assert!(!h.gw.tracer.enabled());
    let body = json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]});
    let r = h
        .post("/v1/chat/completions", &body)
        .header("traceparent", format!("00-{TRACE}-{CALLER_SPAN}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let sent = &h.mock.requests()[0].headers;
    assert!(!sent.contains_key("traceparent"), "{sent:?}");
    assert!(!sent.contains_key("tracestate"));
    assert_eq!(h.gw.metrics.trace_spans_exported.get(), 0);
    assert_eq!(h.gw.metrics.trace_spans_dropped.get(), 0);
}

#[test]
fn bad_telemetry_settings_are_config_errors_with_their_location() {
    let text = r#"
[telemetry]
endpoint = "collector:4317"
sample_ratio = 2.0
headers = { "x-api-key" = "hunter2-literal" }
"#;
    match Config::parse(text, Path::new("t.toml")) {
        Err(ConfigError::Invalid { problems, .. }) => {
            let all = problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n");
            assert!(all.contains("telemetry.endpoint"), "{all}");
            assert!(all.contains("telemetry.sample_ratio"), "{all}");
            assert!(all.contains("telemetry.headers.x-api-key"), "{all}");
            assert!(!all.contains("hunter2"), "{all}");
        }
        other => panic!("expected problems, got {other:?}"),
    }
    assert!(
        Config::parse(
            "[telemetry]\nendpoint = \"http://c:4318\"\nsampler = 1\n",
            Path::new("t.toml")
        )
        .is_err()
    );
    let (ok, _) = Config::parse(
        "[telemetry]\nendpoint = \"http://c:4318\"\nsample_ratio = 0.25\n",
        Path::new("t.toml"),
    )
    .unwrap();
    assert!(ok.telemetry.is_some());
}

#[tokio::test]
async fn a_streamed_answer_gets_its_span_when_the_stream_ends() {
    let c = MockCollector::start().await.unwrap();
    let h = Harness::start_extra(&telemetry_section(&c, "")).await;
    let body = json!({"model": "gpt", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "stream me"}]});
    let r = h.post("/v1/chat/completions", &body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let text = r.text().await.unwrap();
    assert!(text.contains("[DONE]"), "{text}");
    let spans = wait_for(&c, 2).await;
    let s = server_span(&spans, &id);
    assert_eq!(attr(&s, "tollgate.stream"), true);
    assert_eq!(attr(&s, "gen_ai.operation.name"), "chat");
    assert_eq!(attr(&s, "http.response.status_code"), "200");
    assert!(!c.raw().contains("stream me"));
}

/// A collector that answers the first `failures` exports with `status` (and `Retry-After: 0`),
/// then accepts: the number of exports it has seen.
async fn flaky_collector(
    status: u16,
    failures: usize,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let seen = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                if n < failures {
                    (
                        axum::http::StatusCode::from_u16(status).unwrap(),
                        [("retry-after", "0")],
                        "{}",
                    )
                } else {
                    (axum::http::StatusCode::OK, [("retry-after", "0")], "{}")
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), seen)
}

#[tokio::test]
async fn a_collector_asking_for_a_retry_gets_the_batch_again_and_a_bad_request_does_not() {
    use std::sync::atomic::Ordering;
    let body = json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]});
    // 503 twice, then accepted: the batch arrives on the third try, nothing is dropped.
    let (url, seen) = flaky_collector(503, 2).await;
    let h = Harness::start_extra(&format!("[telemetry]\nendpoint = \"{url}\"\n")).await;
    let (s, v) = h.json("/v1/chat/completions", &body).await;
    assert_eq!(s, 200, "{v}");
    let deadline = Instant::now() + Duration::from_secs(15);
    while h.gw.metrics.trace_spans_exported.get() == 0 {
        assert!(
            Instant::now() < deadline,
            "no span exported after the retries"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen.load(Ordering::SeqCst), 3);
    assert_eq!(h.gw.metrics.trace_spans_dropped.get(), 0);

    // 400 is final: one try, the batch dropped and counted.
    let (url, seen) = flaky_collector(400, 1).await;
    let h = Harness::start_extra(&format!("[telemetry]\nendpoint = \"{url}\"\n")).await;
    let (s, v) = h.json("/v1/chat/completions", &body).await;
    assert_eq!(s, 200, "{v}");
    let deadline = Instant::now() + Duration::from_secs(15);
    while h.gw.metrics.trace_spans_dropped.get() == 0 {
        assert!(
            Instant::now() < deadline,
            "the refused batch was not counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen.load(Ordering::SeqCst), 1);
    assert_eq!(h.gw.metrics.trace_spans_exported.get(), 0);
}

#[tokio::test]
async fn the_guard_model_call_is_a_client_span_of_the_request_and_carries_its_trace() {
    let c = MockCollector::start().await.unwrap();
    let h = Harness::start_extra(&telemetry_section(&c, "")).await;
    let body =
        json!({"model": "guarded", "messages": [{"role": "user", "content": "tell me a story"}]});
    let r = h.post("/v1/chat/completions", &body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let spans = wait_for(&c, 3).await;
    let s = server_span(&spans, &id);
    let children: Vec<&Value> = spans
        .iter()
        .filter(|x| x["parentSpanId"] == s["spanId"])
        .collect();
    assert_eq!(
        children.len(),
        2,
        "the answer's attempt and the guard model's: {spans:?}"
    );
    let guard = children
        .iter()
        .find(|x| attr(x, "gen_ai.request.model") == "guard")
        .unwrap_or_else(|| panic!("no guard-model span in {children:?}"));
    assert_eq!(guard["traceId"], s["traceId"]);
    let sent = h
        .mock
        .requests()
        .into_iter()
        .find(|r| r.model == "guard")
        .expect("the guard model was asked");
    assert_eq!(
        sent.headers["traceparent"],
        format!(
            "00-{}-{}-01",
            s["traceId"].as_str().unwrap(),
            guard["spanId"].as_str().unwrap()
        )
    );
}
