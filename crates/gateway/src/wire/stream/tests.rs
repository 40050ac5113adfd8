//! Unit tests of `stream`.

use super::*;

#[test]
fn a_stream_without_usage_is_estimated_like_its_whole_text() {
    let mut t = StreamTranslator::new(WireFormat::OpenAi, WireFormat::OpenAi, false, false)
        .with_prompt_estimate(7);
    let mut out = Vec::new();
    // A word split across two chunks is one word, as in the whole text.
    for piece in ["Hel", "lo wor", "ld,  this is", " a streamed answer"] {
        let data = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}]});
        t.push(
            SseEvent {
                event: None,
                data: data.to_string(),
            },
            &mut out,
        )
        .unwrap();
    }
    assert_eq!(t.usage(), None);
    let whole = "Hello world,  this is a streamed answer";
    let u = t.usage_or_estimate();
    assert_eq!(u.input, 7);
    assert_eq!(u.output, tollgate_guard::tokens::estimate(whole));
    let mut words = Tally::default();
    words.add("a b c d e f g h");
    words.add(" i");
    assert_eq!(
        words.estimate(),
        9,
        "by words when they outnumber bytes / 4"
    );
}

fn run(t: &mut StreamTranslator, events: Vec<SseEvent>) -> Vec<SseEvent> {
    let mut out = Vec::new();
    for e in events {
        t.push(e, &mut out).unwrap();
    }
    t.finish(&mut out);
    out
}

fn openai_stream() -> Vec<SseEvent> {
    vec![
        SseEvent::data(
            r#"{"id":"c1","model":"gpt","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
        ),
        SseEvent::data(
            r#"{"id":"c1","model":"gpt","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#,
        ),
        SseEvent::data(
            r#"{"id":"c1","model":"gpt","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]}"#,
        ),
        SseEvent::data(
            r#"{"id":"c1","model":"gpt","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]},"finish_reason":null}]}"#,
        ),
        SseEvent::data(
            r#"{"id":"c1","model":"gpt","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":1}"}}]},"finish_reason":null}]}"#,
        ),
        SseEvent::data(
            r#"{"id":"c1","model":"gpt","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        ),
        SseEvent::data(
            r#"{"id":"c1","model":"gpt","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"#,
        ),
        SseEvent::data("[DONE]"),
    ]
}

fn anthropic_stream() -> Vec<SseEvent> {
    vec![
        SseEvent::named(
            "message_start",
            r#"{"type":"message_start","message":{"id":"m1","model":"claude","usage":{"input_tokens":9,"output_tokens":1}}}"#,
        ),
        SseEvent::named(
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        ),
        SseEvent::named("ping", r#"{"type":"ping"}"#),
        SseEvent::named(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
        ),
        SseEvent::named(
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
        SseEvent::named(
            "content_block_start",
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"tu","name":"f","input":{}}}"#,
        ),
        SseEvent::named(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\""}}"#,
        ),
        SseEvent::named(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":":1}"}}"#,
        ),
        SseEvent::named(
            "content_block_stop",
            r#"{"type":"content_block_stop","index":1}"#,
        ),
        SseEvent::named(
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":4}}"#,
        ),
        SseEvent::named("message_stop", r#"{"type":"message_stop"}"#),
    ]
}

#[test]
fn openai_passthrough_strips_usage_chunk_unless_asked() {
    let mut t = StreamTranslator::new(WireFormat::OpenAi, WireFormat::OpenAi, false, true);
    let out = run(&mut t, openai_stream());
    assert_eq!(out.len(), 7);
    assert_eq!(
        t.usage(),
        Some(Usage {
            input: 5,
            output: 7
        })
    );
    assert_eq!(t.text(), "Hello");
    let mut t = StreamTranslator::new(WireFormat::OpenAi, WireFormat::OpenAi, true, false);
    assert_eq!(run(&mut t, openai_stream()).len(), 8);
}

#[test]
fn openai_stream_becomes_anthropic_events() {
    let mut t = StreamTranslator::new(WireFormat::OpenAi, WireFormat::Anthropic, false, false);
    let out = run(&mut t, openai_stream());
    let names: Vec<_> = out
        .iter()
        .map(|e| e.event.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    let delta: Value = serde_json::from_str(&out[8].data).unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(delta["usage"]["output_tokens"], 7);
    let tool: Value = serde_json::from_str(&out[6].data).unwrap();
    assert_eq!(tool["delta"]["partial_json"], "{\"a\":1}");
}

#[test]
fn anthropic_stream_becomes_openai_chunks() {
    let mut t = StreamTranslator::new(WireFormat::Anthropic, WireFormat::OpenAi, true, true);
    let out = run(&mut t, anthropic_stream());
    assert_eq!(out.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = out[..out.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "Hi");
    assert_eq!(
        chunks[2]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
        "f"
    );
    let args: String = chunks[3..5]
        .iter()
        .map(|c| {
            c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(args, "{\"a\":1}");
    assert_eq!(chunks[5]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(chunks[6]["usage"]["prompt_tokens"], 9);
    assert_eq!(chunks[6]["usage"]["completion_tokens"], 4);
    assert_eq!(t.text(), "Hi");
}

#[test]
fn anthropic_passthrough_tracks_usage() {
    let mut t = StreamTranslator::new(WireFormat::Anthropic, WireFormat::Anthropic, false, false);
    let out = run(&mut t, anthropic_stream());
    assert_eq!(out.len(), 11);
    assert!(t.is_done());
    assert_eq!(
        t.usage(),
        Some(Usage {
            input: 9,
            output: 4
        })
    );
}

#[test]
fn truncated_stream_ends_with_an_error_event() {
    let mut t = StreamTranslator::new(WireFormat::OpenAi, WireFormat::OpenAi, false, false);
    let out = run(&mut t, openai_stream()[..3].to_vec());
    let last: Value = serde_json::from_str(&out.last().unwrap().data).unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ended before")
    );
    let mut t = StreamTranslator::new(WireFormat::OpenAi, WireFormat::Anthropic, false, false);
    let out = run(&mut t, openai_stream()[..3].to_vec());
    assert_eq!(out.last().unwrap().event.as_deref(), Some("error"));
}

#[test]
fn stream_finished_without_done_marker_is_completed() {
    let mut t = StreamTranslator::new(WireFormat::OpenAi, WireFormat::OpenAi, false, false);
    let out = run(&mut t, openai_stream()[..6].to_vec());
    assert_eq!(out.last().unwrap().data, "[DONE]");
}

#[test]
fn malformed_and_error_events() {
    let mut t = StreamTranslator::new(WireFormat::OpenAi, WireFormat::Anthropic, false, false);
    let mut out = Vec::new();
    assert!(t.push(SseEvent::data("{not json"), &mut out).is_err());
    t.push(
        SseEvent::data(r#"{"error":{"message":"overloaded"}}"#),
        &mut out,
    )
    .unwrap();
    assert_eq!(out.last().unwrap().event.as_deref(), Some("error"));
    assert!(t.is_done());
    let mut t = StreamTranslator::new(WireFormat::Anthropic, WireFormat::OpenAi, false, false);
    let mut out = Vec::new();
    t.push(
        SseEvent::named(
            "error",
            r#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#,
        ),
        &mut out,
    )
    .unwrap();
    let v: Value = serde_json::from_str(&out[0].data).unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("busy"));
}
