//! Non-streamed responses: translation between OpenAI chat completions and Anthropic
//! messages, and extraction of usage and text for logs.

use serde_json::{Value, json};

use super::{Usage, WireFormat, finish_to_stop_reason, stop_to_finish_reason, unix_now};
use crate::error::GatewayError;

/// Translate a provider response in `from` to the client's `to` format.
pub fn translate(body: Value, from: WireFormat, to: WireFormat) -> Result<Value, GatewayError> {
    if !body.is_object() {
        return Err(GatewayError::upstream_bad(
            "upstream response is not a JSON object",
        ));
    }
    match (from, to) {
        (WireFormat::OpenAi, WireFormat::OpenAi)
        | (WireFormat::Anthropic, WireFormat::Anthropic) => Ok(body),
        (WireFormat::Anthropic, WireFormat::OpenAi) => anthropic_to_openai(&body),
        (WireFormat::OpenAi, WireFormat::Anthropic) => openai_to_anthropic(&body),
    }
}

/// Usage in a response of format `f`.
pub fn usage(body: &Value, f: WireFormat) -> Option<Usage> {
    let u = body.get("usage")?;
    match f {
        WireFormat::OpenAi => Usage::from_openai(u),
        WireFormat::Anthropic => Usage::from_anthropic(u),
    }
}

/// The completion text of a response of format `f` (for logs, estimates and the output
/// guards). OpenAI: each choice's `message.content`, or its `text` in a legacy text
/// completion.
pub fn completion_text(body: &Value, f: WireFormat) -> String {
    match f {
        WireFormat::OpenAi => body
            .get("choices")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| {
                        c.get("message")
                            .and_then(|m| m.get("content"))
                            .or_else(|| c.get("text"))?
                            .as_str()
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default(),
        WireFormat::Anthropic => body
            .get("content")
            .and_then(Value::as_array)
            .map(|bs| {
                bs.iter()
                    .filter_map(|b| b.get("text")?.as_str())
                    .collect::<Vec<_>>()
                    .join("")
            })
            .unwrap_or_default(),
    }
}

fn anthropic_to_openai(body: &Value) -> Result<Value, GatewayError> {
    let blocks = body
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| GatewayError::upstream_bad("Anthropic response has no `content` array"))?;
    let mut text = String::new();
    let mut calls = Vec::new();
    for b in blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => {
                text.push_str(b.get("text").and_then(Value::as_str).unwrap_or_default())
            }
            Some("tool_use") => calls.push(json!({
                "id": b.get("id").cloned().unwrap_or(Value::Null),
                "type": "function",
                "function": {
                    "name": b.get("name").cloned().unwrap_or(Value::Null),
                    "arguments": b.get("input").cloned().unwrap_or_else(|| json!({})).to_string(),
                }
            })),
            _ => {}
        }
    }
    let mut message = json!({
        "role": "assistant",
        "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) },
        "refusal": null,
    });
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    let finish = body
        .get("stop_reason")
        .and_then(Value::as_str)
        .map_or("stop", stop_to_finish_reason);
    let u = usage(body, WireFormat::Anthropic).unwrap_or_default();
    Ok(json!({
        "id": body.get("id").and_then(Value::as_str).map_or_else(|| "chatcmpl-tollgate".to_owned(), |id| format!("chatcmpl-{id}")),
        "object": "chat.completion",
        "created": unix_now(),
        "model": body.get("model").cloned().unwrap_or(Value::Null),
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": null}],
        "usage": {"prompt_tokens": u.input, "completion_tokens": u.output, "total_tokens": u.input + u.output},
    }))
}

fn openai_to_anthropic(body: &Value) -> Result<Value, GatewayError> {
    let choice = body
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .ok_or_else(|| GatewayError::upstream_bad("OpenAI response has no choices"))?;
    let msg = choice.get("message").cloned().unwrap_or(Value::Null);
    let mut content = Vec::new();
    if let Some(t) = msg.get("content").and_then(Value::as_str) {
        if !t.is_empty() {
            content.push(json!({"type": "text", "text": t}));
        }
    }
    if let Some(calls) = msg.get("tool_calls").and_then(Value::as_array) {
        for c in calls {
            let f = c.get("function").cloned().unwrap_or(Value::Null);
            let args = f.get("arguments").and_then(Value::as_str).unwrap_or("{}");
            // A model can emit malformed arguments; keep them visible rather than failing.
            let input = serde_json::from_str::<Value>(args)
                .unwrap_or_else(|_| json!({"_raw_arguments": args}));
            content.push(json!({
                "type": "tool_use",
                "id": c.get("id").cloned().unwrap_or(Value::Null),
                "name": f.get("name").cloned().unwrap_or(Value::Null),
                "input": input,
            }));
        }
    }
    let stop = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .map_or("end_turn", finish_to_stop_reason);
    let u = usage(body, WireFormat::OpenAi).unwrap_or_default();
    Ok(json!({
        "id": body.get("id").and_then(Value::as_str).map_or_else(|| "msg_tollgate".to_owned(), |id| format!("msg_{id}")),
        "type": "message",
        "role": "assistant",
        "model": body.get("model").cloned().unwrap_or(Value::Null),
        "content": content,
        "stop_reason": stop,
        "stop_sequence": null,
        "usage": {"input_tokens": u.input, "output_tokens": u.output},
    }))
}

/// A complete client-format answer as the event stream a streaming client expects: what a
/// buffered stream (a structured answer validated, re-asked or replaced before release) is
/// sent as. OpenAI: a role chunk, the text and tool calls, the finish chunk, the usage chunk
/// when asked, `[DONE]`; Anthropic: `message_start`, each content block, `message_delta`,
/// `message_stop`.
pub fn as_events(
    body: &Value,
    format: WireFormat,
    include_usage: bool,
) -> Vec<crate::sse::SseEvent> {
    use crate::sse::SseEvent;
    let mut out = Vec::new();
    match format {
        WireFormat::OpenAi => {
            let id = body.get("id").cloned().unwrap_or(Value::Null);
            let model = body.get("model").cloned().unwrap_or(Value::Null);
            let created = body
                .get("created")
                .cloned()
                .unwrap_or_else(|| json!(unix_now()));
            let chunk = |delta: Value, finish: Value| {
                SseEvent::data(
                    json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                           "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}]})
                    .to_string(),
                )
            };
            let message = &body["choices"][0]["message"];
            out.push(chunk(
                json!({"role": "assistant", "content": ""}),
                Value::Null,
            ));
            if let Some(t) = message["content"].as_str().filter(|t| !t.is_empty()) {
                out.push(chunk(json!({"content": t}), Value::Null));
            }
            if let Some(calls) = message["tool_calls"].as_array() {
                for (i, c) in calls.iter().enumerate() {
                    let mut c = c.clone();
                    c["index"] = json!(i);
                    out.push(chunk(json!({"tool_calls": [c]}), Value::Null));
                }
            }
            let finish = body["choices"][0]["finish_reason"]
                .as_str()
                .unwrap_or("stop");
            out.push(chunk(json!({}), json!(finish)));
            if include_usage {
                out.push(SseEvent::data(
                    json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                           "choices": [], "usage": body.get("usage").cloned().unwrap_or(Value::Null)})
                    .to_string(),
                ));
            }
            out.push(SseEvent::data("[DONE]"));
        }
        WireFormat::Anthropic => {
            let mut start = body.clone();
            start["content"] = json!([]);
            start["stop_reason"] = Value::Null;
            start["stop_sequence"] = Value::Null;
            out.push(SseEvent::named(
                "message_start",
                json!({"type": "message_start", "message": start}).to_string(),
            ));
            let blocks = body["content"].as_array().cloned().unwrap_or_default();
            for (i, b) in blocks.iter().enumerate() {
                let (empty, delta) = match b["type"].as_str() {
                    Some("tool_use") => {
                        let mut empty = b.clone();
                        empty["input"] = json!({});
                        (
                            empty,
                            json!({"type": "input_json_delta", "partial_json": b["input"].to_string()}),
                        )
                    }
                    _ => (
                        json!({"type": "text", "text": ""}),
                        json!({"type": "text_delta", "text": b["text"].as_str().unwrap_or_default()}),
                    ),
                };
                out.push(SseEvent::named(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": i, "content_block": empty})
                        .to_string(),
                ));
                out.push(SseEvent::named(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": i, "delta": delta}).to_string(),
                ));
                out.push(SseEvent::named(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": i}).to_string(),
                ));
            }
            out.push(SseEvent::named(
                "message_delta",
                json!({"type": "message_delta",
                       "delta": {"stop_reason": body["stop_reason"].as_str().unwrap_or("end_turn"), "stop_sequence": null},
                       "usage": {"output_tokens": body["usage"]["output_tokens"].as_u64().unwrap_or(0)}})
                .to_string(),
            ));
            out.push(SseEvent::named(
                "message_stop",
                "{\"type\":\"message_stop\"}",
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_answers_become_streams_a_translator_reads_back() {
        let a = json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
            "content": [{"type": "text", "text": "hi"}, {"type": "tool_use", "id": "tu", "name": "f", "input": {"x": 1}}],
            "stop_reason": "tool_use", "usage": {"input_tokens": 3, "output_tokens": 4}
        });
        let events = as_events(&a, WireFormat::Anthropic, false);
        assert_eq!(
            events.first().unwrap().event.as_deref(),
            Some("message_start")
        );
        assert_eq!(
            events.last().unwrap().event.as_deref(),
            Some("message_stop")
        );
        // Read back as an OpenAI stream: the text, the tool call and the finish survive.
        let mut t = super::super::stream::StreamTranslator::new(
            WireFormat::Anthropic,
            WireFormat::OpenAi,
            false,
            true,
        );
        let mut out = Vec::new();
        for e in events {
            t.push(e, &mut out).unwrap();
        }
        assert!(t.completed());
        assert_eq!(t.text(), "hi");
        let all: String = out.iter().map(|e| e.data.clone()).collect();
        assert!(all.contains("\"finish_reason\":\"tool_calls\""), "{all}");
        assert!(all.contains("{\\\"x\\\":1}"), "{all}");

        let o = json!({"id": "c1", "model": "gpt", "created": 1,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "{\"a\":1}"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}});
        let events = as_events(&o, WireFormat::OpenAi, true);
        let mut t = super::super::stream::StreamTranslator::new(
            WireFormat::OpenAi,
            WireFormat::OpenAi,
            true,
            true,
        );
        let mut out = Vec::new();
        for e in events {
            t.push(e, &mut out).unwrap();
        }
        assert!(t.completed());
        assert_eq!(t.text(), "{\"a\":1}");
        assert_eq!(t.usage().map(|u| u.output), Some(2));
        assert_eq!(out.last().unwrap().data, "[DONE]");
    }

    #[test]
    fn anthropic_response_becomes_openai() {
        let a = json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
            "content": [{"type": "text", "text": "hi"}, {"type": "tool_use", "id": "tu", "name": "f", "input": {"x": 1}}],
            "stop_reason": "tool_use", "usage": {"input_tokens": 10, "output_tokens": 3, "cache_read_input_tokens": 2}
        });
        let o = translate(a, WireFormat::Anthropic, WireFormat::OpenAi).unwrap();
        assert_eq!(o["object"], "chat.completion");
        assert_eq!(o["choices"][0]["message"]["content"], "hi");
        assert_eq!(o["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(
            o["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"x\":1}"
        );
        assert_eq!(o["usage"]["prompt_tokens"], 12);
        assert_eq!(o["usage"]["total_tokens"], 15);
    }

    #[test]
    fn openai_response_becomes_anthropic() {
        let o = json!({
            "id": "c1", "object": "chat.completion", "model": "gpt",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "yo", "tool_calls": [{"id": "call", "type": "function", "function": {"name": "f", "arguments": "not json"}}]}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6}
        });
        let a = translate(o, WireFormat::OpenAi, WireFormat::Anthropic).unwrap();
        assert_eq!(a["type"], "message");
        assert_eq!(a["content"][0]["text"], "yo");
        assert_eq!(a["content"][1]["input"]["_raw_arguments"], "not json");
        assert_eq!(a["stop_reason"], "max_tokens");
        assert_eq!(a["usage"]["input_tokens"], 4);
    }

    #[test]
    fn garbage_upstream_bodies_are_502_errors() {
        assert!(translate(json!([1]), WireFormat::OpenAi, WireFormat::OpenAi).is_err());
        assert!(
            translate(
                json!({"choices": []}),
                WireFormat::OpenAi,
                WireFormat::Anthropic
            )
            .is_err()
        );
        assert!(translate(json!({"x": 1}), WireFormat::Anthropic, WireFormat::OpenAi).is_err());
    }

    #[test]
    fn text_and_usage_extraction() {
        let o = json!({"choices": [{"message": {"content": "a"}}], "usage": {"prompt_tokens": 1, "completion_tokens": 2}});
        assert_eq!(completion_text(&o, WireFormat::OpenAi), "a");
        assert_eq!(
            usage(&o, WireFormat::OpenAi),
            Some(Usage {
                input: 1,
                output: 2
            })
        );
    }
}
