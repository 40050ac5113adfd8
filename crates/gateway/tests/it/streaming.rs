//! Streaming in every direction, usage chunks, truncated upstream streams, and cancellation
//! when the client goes away.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Harness, anthropic_stream_text, anthropic_user, openai_stream_text, user};

fn streaming(mut v: Value) -> Value {
    v["stream"] = json!(true);
    v
}

#[tokio::test]
async fn openai_stream_passthrough_with_and_without_usage() {
    let h = Harness::start().await;
    let (s, ev) = h
        .stream(
            "/v1/chat/completions",
            &streaming(user("gpt", "hello there")),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(openai_stream_text(&ev), "mock:openai:hello there");
    assert_eq!(ev.last().unwrap().1, "[DONE]");
    assert!(
        !ev.iter().any(|(_, d)| d.contains("\"usage\":{")),
        "usage chunk only when asked: {ev:?}"
    );
    // The gateway asked upstream for usage anyway, for its own accounting.
    assert_eq!(
        h.mock.requests()[0].body["stream_options"]["include_usage"],
        true
    );

    let mut body = streaming(user("gpt", "x"));
    body["stream_options"] = json!({"include_usage": true});
    let (_, ev) = h.stream("/v1/chat/completions", &body).await;
    let usage: Vec<Value> = ev
        .iter()
        .filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok())
        .filter(|v| v["usage"].is_object())
        .collect();
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0]["usage"]["total_tokens"], 18);
}

#[tokio::test]
async fn openai_client_streams_from_anthropic_target() {
    let h = Harness::start().await;
    let mut body = streaming(user("claude", "hi you"));
    body["stream_options"] = json!({"include_usage": true});
    let (s, ev) = h.stream("/v1/chat/completions", &body).await;
    assert_eq!(s, 200);
    assert_eq!(openai_stream_text(&ev), "mock:anthropic:hi you");
    let chunks: Vec<Value> = ev
        .iter()
        .filter_map(|(_, d)| serde_json::from_str(d).ok())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "stop")
    );
    assert_eq!(chunks.last().unwrap()["usage"]["prompt_tokens"], 13);
    assert_eq!(ev.last().unwrap().1, "[DONE]");
}

#[tokio::test]
async fn anthropic_client_streams_from_openai_target() {
    let h = Harness::start().await;
    let r = h.messages(&streaming(anthropic_user("gpt", "hey"))).await;
    assert_eq!(
        r.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    let ev = crate::harness::parse_sse(&r.text().await.unwrap());
    assert_eq!(anthropic_stream_text(&ev), "mock:openai:hey");
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_deref().unwrap_or("")).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    let delta: Value = serde_json::from_str(&ev[ev.len() - 2].1).unwrap();
    assert_eq!(delta["usage"]["output_tokens"], 7);
}

#[tokio::test]
async fn anthropic_stream_passthrough() {
    let h = Harness::start().await;
    let r = h
        .messages(&streaming(anthropic_user("claude", "abc")))
        .await;
    let ev = crate::harness::parse_sse(&r.text().await.unwrap());
    assert_eq!(anthropic_stream_text(&ev), "mock:anthropic:abc");
    assert!(
        ev.iter().any(|(n, _)| n.as_deref() == Some("ping")),
        "unknown events pass through"
    );
}

#[tokio::test]
async fn streamed_tool_calls_cross_providers() {
    let h = Harness::start().await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]);
    let body = json!({"model": "tool-claude", "stream": true, "tools": tools, "messages": [{"role": "user", "content": "w?"}]});
    let (_, ev) = h.stream("/v1/chat/completions", &body).await;
    let chunks: Vec<Value> = ev
        .iter()
        .filter_map(|(_, d)| serde_json::from_str(d).ok())
        .collect();
    let args: String = chunks
        .iter()
        .filter_map(|c| {
            c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(args, "{\"city\":\"Paris\"}");
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["delta"]["tool_calls"][0]["id"] == "toolu_mock")
    );
    assert!(
        chunks
            .iter()
            .any(|c| c["choices"][0]["finish_reason"] == "tool_calls")
    );

    let body = json!({"model": "tool", "stream": true, "max_tokens": 10, "messages": [{"role": "user", "content": "w?"}],
                      "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]});
    let r = h.messages(&body).await;
    let ev = crate::harness::parse_sse(&r.text().await.unwrap());
    let partial: String = ev
        .iter()
        .filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["delta"]["partial_json"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(partial, "{\"city\":\"Paris\"}");
    assert!(
        ev.iter()
            .any(|(_, d)| d.contains("\"stop_reason\":\"tool_use\""))
    );
}

#[tokio::test]
async fn truncated_upstream_stream_ends_with_a_well_formed_error_event() {
    let h = Harness::start().await;
    let (s, ev) = h
        .stream(
            "/v1/chat/completions",
            &streaming(user("truncate", "a b c d")),
        )
        .await;
    assert_eq!(s, 200);
    let last: Value = serde_json::from_str(&ev.last().unwrap().1).unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ended before"),
        "{last}"
    );
    assert_eq!(
        h.mock.count("truncate"),
        1,
        "no retry once the stream started"
    );

    let r = h
        .messages(&streaming(anthropic_user("truncate-claude", "a b c d")))
        .await;
    let ev = crate::harness::parse_sse(&r.text().await.unwrap());
    let (name, data) = ev.last().unwrap();
    assert_eq!(name.as_deref(), Some("error"));
    let v: Value = serde_json::from_str(data).unwrap();
    assert_eq!(v["type"], "error");
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_call() {
    let h = Harness::start().await;
    // Non-streamed: the provider never answers; the client gives up after 300 ms.
    let r = h
        .post("/v1/chat/completions", &user("hang", "x"))
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(r.is_err());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while h.mock.cancelled() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "upstream call was not cancelled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Streamed: read the first event, then hang up.
    let mut r = h
        .post(
            "/v1/chat/completions",
            &streaming(user("drip", "one two three four five six seven eight")),
        )
        .send()
        .await
        .unwrap();
    let first = r.chunk().await.unwrap().unwrap();
    assert!(String::from_utf8_lossy(&first).contains("data:"));
    drop(r);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while h.mock.streams_cut() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "upstream stream was not cancelled"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn echo_streams_in_both_formats() {
    let h = Harness::start().await;
    let (_, ev) = h
        .stream("/v1/chat/completions", &streaming(user("echo", "ping me")))
        .await;
    assert_eq!(openai_stream_text(&ev), "ping me");
    let r = h
        .messages(&streaming(anthropic_user("echo", "ping me")))
        .await;
    let ev = crate::harness::parse_sse(&r.text().await.unwrap());
    assert_eq!(anthropic_stream_text(&ev), "ping me");
}

/// A stream whose upstream reports no usage (it ignores `stream_options`) used to be
/// recorded and settled as zero tokens, refunding its whole token reservation and costing
/// nothing against budgets; it is estimated from the prompt and the streamed text instead.
#[tokio::test]
async fn a_stream_without_usage_is_estimated_for_limits_and_the_audit_record() {
    let h = Harness::start_extra(
        r#"
[routes.nousage]
targets = [{ provider = "oa", model = "no-usage" }]
limits = { key = { tpm = 1000 } }
"#,
    )
    .await;
    let mut body = streaming(user("nousage", "hello there, general kenobi"));
    body["max_tokens"] = json!(100);
    let (s, ev) = h.stream("/v1/chat/completions", &body).await;
    assert_eq!(s, 200);
    let text = openai_stream_text(&ev);
    assert!(!text.is_empty());
    h.gw.audit.flush().await;
    let recs =
        h.gw.store
            .audit
            .records_between(
                chrono::Utc::now() - chrono::Duration::minutes(5),
                chrono::Utc::now() + chrono::Duration::minutes(1),
                None,
                1000,
            )
            .await
            .unwrap();
    let rec: Value = recs
        .iter()
        .map(|r| serde_json::from_str::<Value>(&r.body).unwrap())
        .find(|v| v["route"] == "nousage")
        .expect("the stream's audit record");
    assert_eq!(rec["stream"], true, "{rec}");
    assert_eq!(
        rec["tokens_in"],
        tollgate_guard::tokens::estimate("hello there, general kenobi"),
        "{rec}"
    );
    assert_eq!(
        rec["tokens_out"],
        tollgate_guard::tokens::estimate(&text),
        "{rec}"
    );
}
