//! Unit tests of `request`.

use super::*;

fn chat(format: WireFormat, v: Value) -> Result<ChatRequest, GatewayError> {
    ChatRequest::parse(format, v)
}

#[test]
fn validation_messages_say_what_is_wrong() {
    let e = |v: Value| chat(WireFormat::OpenAi, v).unwrap_err().message;
    assert!(e(json!([])).contains("JSON object"));
    assert!(e(json!({"messages": []})).contains("`model`"));
    assert!(e(json!({"model": "m"})).contains("`messages`"));
    assert!(e(json!({"model": "m", "messages": []})).contains("must not be empty"));
    assert!(e(json!({"model": "m", "messages": [{}]})).contains("role"));
    assert!(
        e(json!({"model": "m", "messages": [{"role": "user"}], "stream": "yes"}))
            .contains("boolean")
    );
    let a = chat(
        WireFormat::Anthropic,
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert!(a.unwrap_err().message.contains("max_tokens"));
    let a = chat(
        WireFormat::Anthropic,
        json!({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "hi"}]}),
    );
    assert!(a.unwrap_err().message.contains("top-level `system`"));
    assert!(
        parse_json(b"{nope")
            .unwrap_err()
            .message
            .contains("not valid JSON")
    );
    assert!(parse_json(b"").unwrap_err().message.contains("empty"));
}

#[test]
fn openai_to_anthropic_maps_system_tools_and_tool_results() {
    let req = chat(
            WireFormat::OpenAi,
            json!({
                "model": "alias", "stream": true, "temperature": 1.7, "stop": "END", "parallel_tool_calls": false,
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": [{"type": "text", "text": "weather?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
                    {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
                ],
                "tools": [{"type": "function", "function": {"name": "get_weather", "description": "d", "parameters": {"type": "object"}}}],
                "tool_choice": "required",
                "response_format": {"type": "json_object"}
            }),
        )
        .unwrap();
    let out = req.for_target(WireFormat::Anthropic, "claude-x").unwrap();
    assert_eq!(out["model"], "claude-x");
    assert!(out["system"].as_str().unwrap().starts_with("be brief"));
    assert!(out["system"].as_str().unwrap().contains("JSON"));
    assert_eq!(out["max_tokens"], DEFAULT_ANTHROPIC_MAX_TOKENS);
    assert_eq!(out["temperature"], 1.0);
    assert_eq!(out["stop_sequences"], json!(["END"]));
    assert_eq!(
        out["messages"][0]["content"][1]["source"]["media_type"],
        "image/png"
    );
    assert_eq!(out["messages"][1]["content"][0]["type"], "tool_use");
    assert_eq!(out["messages"][1]["content"][0]["input"]["city"], "Paris");
    assert_eq!(out["messages"][2]["content"][0]["type"], "tool_result");
    assert_eq!(out["tools"][0]["input_schema"]["type"], "object");
    assert_eq!(
        out["tool_choice"],
        json!({"type": "any", "disable_parallel_tool_use": true})
    );
    assert!(out.get("stream_options").is_none());
}

#[test]
fn anthropic_to_openai_maps_blocks_and_tools() {
    let req = chat(
            WireFormat::Anthropic,
            json!({
                "model": "alias", "max_tokens": 100, "system": [{"type": "text", "text": "sys"}], "stream": true,
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": [{"type": "text", "text": "calling"}, {"type": "tool_use", "id": "tu_1", "name": "f", "input": {"a": 1}}]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu_1", "content": [{"type": "text", "text": "42"}]}, {"type": "text", "text": "thanks"}]}
                ],
                "tools": [{"name": "f", "input_schema": {"type": "object"}}],
                "tool_choice": {"type": "tool", "name": "f"}
            }),
        )
        .unwrap();
    let out = req.for_target(WireFormat::OpenAi, "gpt-x").unwrap();
    let m = out["messages"].as_array().unwrap();
    assert_eq!(m[0], json!({"role": "system", "content": "sys"}));
    assert_eq!(m[1], json!({"role": "user", "content": "hi"}));
    assert_eq!(m[2]["tool_calls"][0]["function"]["arguments"], "{\"a\":1}");
    assert_eq!(
        m[3],
        json!({"role": "tool", "tool_call_id": "tu_1", "content": "42"})
    );
    assert_eq!(m[4], json!({"role": "user", "content": "thanks"}));
    assert_eq!(out["tool_choice"]["function"]["name"], "f");
    assert_eq!(out["stream_options"]["include_usage"], true);
}

#[test]
fn untranslatable_requests_are_400_not_panics() {
    let req = chat(
        WireFormat::OpenAi,
        json!({"model": "m", "n": 2, "messages": [{"role": "user", "content": "x"}]}),
    )
    .unwrap();
    assert!(req.for_target(WireFormat::Anthropic, "c").is_err());
    let req = chat(WireFormat::OpenAi, json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"function": {"arguments": "{bad"}}]}]})).unwrap();
    assert!(req.for_target(WireFormat::Anthropic, "c").is_err());
    let req = chat(
        WireFormat::OpenAi,
        json!({"model": "m", "messages": [{"role": "user", "content": 5}]}),
    )
    .unwrap();
    assert!(req.for_target(WireFormat::Anthropic, "c").is_err());
    let req = chat(WireFormat::Anthropic, json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "document"}]}]})).unwrap();
    assert!(req.for_target(WireFormat::OpenAi, "c").is_err());
}

fn arb_json() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-z ]{0,8}".prop_map(Value::String),
        Just(json!("user")),
        Just(json!("assistant")),
        Just(json!("tool")),
        Just(json!("text")),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("role".to_owned()),
                    Just("content".to_owned()),
                    Just("type".to_owned()),
                    Just("text".to_owned()),
                    Just("tool_calls".to_owned()),
                    Just("tools".to_owned()),
                    Just("messages".to_owned()),
                    "[a-z]{1,6}"
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest::proptest! {
    #[test]
    fn translation_of_arbitrary_messages_never_panics(messages in proptest::collection::vec(arb_json(), 1..4), extra in arb_json()) {
        for format in [WireFormat::OpenAi, WireFormat::Anthropic] {
            let mut body = json!({"model": "m", "max_tokens": 5, "messages": messages.clone()});
            if let Value::Object(e) = &extra {
                for (k, v) in e {
                    if k != "model" && k != "messages" {
                        body[k] = v.clone();
                    }
                }
            }
            if let Ok(req) = ChatRequest::parse(format, body) {
                let _ = req.for_target(WireFormat::OpenAi, "x");
                let _ = req.for_target(WireFormat::Anthropic, "x");
                let _ = req.prompt_text();
            }
        }
    }
}

#[test]
fn embeddings_validation() {
    assert!(EmbeddingsRequest::parse(json!({"model": "e", "input": "x"})).is_ok());
    assert!(EmbeddingsRequest::parse(json!({"model": "e", "input": [[1, 2]]})).is_ok());
    assert!(EmbeddingsRequest::parse(json!({"model": "e", "input": [{}]})).is_err());
    assert!(EmbeddingsRequest::parse(json!({"model": "e"})).is_err());
    assert!(EmbeddingsRequest::parse(json!({"model": "e", "input": []})).is_err());
}
