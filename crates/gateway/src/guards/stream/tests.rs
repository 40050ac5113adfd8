//! Unit tests of `stream`.

use serde_json::json;

use super::*;

#[test]
fn openai_stream_tokens_split_across_chunks_are_restored() {
    let mut masker = Masker::new([0; 32]);
    masker.apply(
        "bob@x.io",
        &[Span {
            start: 0,
            end: 8,
            label: "EMAIL",
            action: Action::Token,
        }],
    );
    let mut g = StreamOutputGuard::new(WireFormat::OpenAi, &masker, true, None).unwrap();
    let chunk = |c: &str| {
        SseEvent::data(json!({"id": "x", "choices": [{"index": 0, "delta": {"content": c}, "finish_reason": null}]}).to_string())
    };
    let mut out = Vec::new();
    for piece in ["Mail <EM", "AIL_", "1> now <EMAIL_"] {
        g.process(chunk(piece), &mut out);
    }
    g.process(
        SseEvent::data(
            json!({"id": "x", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                .to_string(),
        ),
        &mut out,
    );
    g.process(SseEvent::data("[DONE]"), &mut out);
    let text: String = out
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(text, "Mail bob@x.io now <EMAIL_");
}

#[test]
fn anthropic_stream_is_flushed_before_block_stop() {
    let mut masker = Masker::new([0; 32]);
    masker.apply(
        "bob@x.io",
        &[Span {
            start: 0,
            end: 8,
            label: "EMAIL",
            action: Action::Token,
        }],
    );
    let mut g = StreamOutputGuard::new(WireFormat::Anthropic, &masker, true, None).unwrap();
    let mut out = Vec::new();
    for piece in ["Hi <EMA", "IL_1"] {
        g.process(SseEvent::named("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}).to_string()), &mut out);
    }
    g.process(
        SseEvent::named(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}).to_string(),
        ),
        &mut out,
    );
    let text: String = out
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok())
        .filter_map(|v| v["delta"]["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, "Hi <EMAIL_1");
    assert_eq!(
        out.last().unwrap().event.as_deref(),
        Some("content_block_stop")
    );
}

fn checker(toml_cfg: &str) -> (checks::StreamChecker, Option<String>) {
    let cfg: crate::config::GuardsConfig = toml::from_str(toml_cfg).unwrap();
    let c = checks::Checks::build(&cfg, None).unwrap();
    let mut body: serde_json::Map<String, Value> =
        serde_json::from_value(json!({"messages": [{"role": "user", "content": "hi"}]})).unwrap();
    let state = c.prepare(WireFormat::OpenAi, &mut body);
    let canary = state.canary.clone();
    (checks::StreamChecker::new(c, state), canary)
}

fn openai_chunk(choice: i64, text: &str) -> SseEvent {
    SseEvent::data(
            json!({"id": "x", "choices": [{"index": choice, "delta": {"content": text}, "finish_reason": null}]})
                .to_string(),
        )
}

fn anthropic_delta(text: &str) -> SseEvent {
    SseEvent::named(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}).to_string(),
        )
}

fn openai_text(out: &[SseEvent], choice: usize) -> String {
    out.iter()
        .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok())
        .filter_map(|v| {
            v["choices"]
                .as_array()?
                .iter()
                .find(|c| c["index"] == json!(choice))?["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

#[test]
fn a_canary_split_across_chunks_ends_the_stream_in_both_formats() {
    for format in [WireFormat::OpenAi, WireFormat::Anthropic] {
        let (c, canary) = checker("injection = { canary = true }");
        let canary = canary.unwrap();
        let mut g = StreamOutputGuard::new(format, &Masker::new([0; 32]), true, Some(c)).unwrap();
        let text = format!("Sure. My marker is {canary}, as you asked.");
        let mut out = Vec::new();
        for piece in text.as_bytes().chunks(5) {
            let piece = std::str::from_utf8(piece).unwrap();
            let ev = match format {
                WireFormat::OpenAi => openai_chunk(0, piece),
                WireFormat::Anthropic => anthropic_delta(piece),
            };
            g.process(ev, &mut out);
        }
        assert!(g.ended(), "{format:?}");
        let shown: String = out.iter().map(|e| e.data.clone()).collect();
        assert!(!shown.contains(&canary[..6]), "{format:?}: {shown}");
        let last = out.last().unwrap();
        let v: Value = serde_json::from_str(&last.data).unwrap();
        assert!(
            v["error"]["message"].as_str().unwrap().contains("canary"),
            "{v}"
        );
        if format == WireFormat::Anthropic {
            assert_eq!(last.event.as_deref(), Some("error"));
        }
        // Nothing more goes out after the error event.
        let n = out.len();
        g.process(anthropic_delta("more"), &mut out);
        assert_eq!(out.len(), n);
    }
}

#[test]
fn redaction_holds_a_split_value_whole_and_releases_all_else() {
    let (c, _) = checker("output = { pii_leak = \"redact\" }");
    let mut g = StreamOutputGuard::new(WireFormat::OpenAi, &Masker::new([0; 32]), true, Some(c))
        .unwrap()
        .with_capture(1024);
    let filler = "word ".repeat(40);
    let mut out = Vec::new();
    g.process(openai_chunk(0, &filler), &mut out);
    // All but the hold-back window is out at once.
    assert_eq!(
        openai_text(&out, 0).len(),
        filler.len() - checks::STREAM_HOLD_BACK
    );
    for piece in ["write to jane.d", "oe@co", "rp.com now"] {
        g.process(openai_chunk(0, piece), &mut out);
    }
    g.process(
        SseEvent::data(
            json!({"id": "x", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
                .to_string(),
        ),
        &mut out,
    );
    g.process(SseEvent::data("[DONE]"), &mut out);
    assert_eq!(
        openai_text(&out, 0),
        format!("{filler}write to [EMAIL] now")
    );
    assert_eq!(
        g.captured(),
        Some(format!("{filler}write to [EMAIL] now").as_str())
    );
    assert_eq!(out.last().unwrap().data, "[DONE]");
}

#[test]
fn text_completion_streams_are_restored_and_guarded_in_their_own_shape() {
    let mut masker = Masker::new([0; 32]);
    masker.apply(
        "bob@x.io",
        &[Span {
            start: 0,
            end: 8,
            label: "EMAIL",
            action: Action::Token,
        }],
    );
    let chunk = |c: &str, finish: Value| {
        SseEvent::data(json!({"id": "cmpl", "object": "text_completion", "choices": [{"index": 0, "text": c, "finish_reason": finish, "logprobs": null}]}).to_string())
    };
    let (c, _) = checker("output = { deny_patterns = [\"(?i)project bluebird\"] }");
    let mut g = StreamOutputGuard::new(WireFormat::OpenAi, &masker, true, Some(c)).unwrap();
    let mut out = Vec::new();
    for piece in ["Mail <EM", "AIL_", "1> now"] {
        g.process(chunk(piece, Value::Null), &mut out);
    }
    g.process(chunk("", json!("stop")), &mut out);
    g.process(SseEvent::data("[DONE]"), &mut out);
    let text: String = out
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok())
        .filter_map(|v| v["choices"][0]["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, "Mail bob@x.io now");
    // No chat-shaped delta is invented for a text completion's tail.
    assert!(out.iter().all(|e| !e.data.contains("\"delta\"")));
    assert_eq!(out.last().unwrap().data, "[DONE]");

    let (c, _) = checker("output = { deny_patterns = [\"(?i)project bluebird\"] }");
    let mut g = StreamOutputGuard::new(WireFormat::OpenAi, &masker, true, Some(c)).unwrap();
    let mut out = Vec::new();
    for piece in ["about proj", "ect blue", "bird plans"] {
        g.process(chunk(piece, Value::Null), &mut out);
    }
    assert!(g.ended());
    let shown: String = out.iter().map(|e| e.data.clone()).collect();
    assert!(!shown.to_lowercase().contains("bluebird"), "{shown}");
    let v: Value = serde_json::from_str(&out.last().unwrap().data).unwrap();
    assert_eq!(v["error"]["code"], "content_filter");
}

#[test]
fn every_choice_of_a_stream_is_guarded() {
    // `n = 2`: the second choice must not be a way around the output checks.
    let (c, _) = checker("output = { deny_patterns = [\"(?i)project bluebird\"] }");
    let mut g =
        StreamOutputGuard::new(WireFormat::OpenAi, &Masker::new([0; 32]), true, Some(c)).unwrap();
    let mut out = Vec::new();
    g.process(openai_chunk(0, "all fine here"), &mut out);
    g.process(openai_chunk(1, "about Project Blue"), &mut out);
    assert!(!g.ended());
    g.process(openai_chunk(1, "bird"), &mut out);
    assert!(g.ended());
    assert!(!openai_text(&out, 1).contains("Blue"));
}

#[test]
fn text_in_an_anthropic_block_start_is_guarded_too() {
    let (c, _) = checker("output = { deny_patterns = [\"(?i)project bluebird\"] }");
    let mut g = StreamOutputGuard::new(WireFormat::Anthropic, &Masker::new([0; 32]), true, Some(c))
        .unwrap();
    let mut out = Vec::new();
    g.process(
        SseEvent::named(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
                       "content_block": {"type": "text", "text": "about Project Bluebird"}})
            .to_string(),
        ),
        &mut out,
    );
    assert!(g.ended());
    let shown: String = out.iter().map(|e| e.data.clone()).collect();
    assert!(!shown.contains("Bluebird"), "{shown}");
    assert_eq!(out.last().unwrap().event.as_deref(), Some("error"));
}

#[test]
fn capture_is_bounded_and_says_when_it_overflowed() {
    let (c, _) = checker("");
    let mut g = StreamOutputGuard::new(WireFormat::Anthropic, &Masker::new([0; 32]), true, Some(c))
        .unwrap()
        .with_capture(8);
    let mut out = Vec::new();
    g.process(anthropic_delta("0123456789"), &mut out);
    g.process(
        SseEvent::named(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}).to_string(),
        ),
        &mut out,
    );
    assert_eq!(g.captured(), None);
    assert_eq!(g.captured_head(), "01234567");
}
