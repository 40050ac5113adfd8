//! Wire formats and routing: same-format pass-through, cross-provider translation, tools,
//! embeddings, Azure.

use serde_json::json;
use tollgate_testkit::MOCK_KEY;

use crate::harness::{Harness, anthropic_user, error_message, user};

#[tokio::test]
async fn openai_to_openai_passes_fields_through() {
    let h = Harness::start().await;
    // A model that answers JSON, since the gateway now enforces the requested schema.
    let body = json!({
        "model": "json-valid", "messages": [{"role": "user", "content": "hi"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
        "seed": 7, "logit_bias": {"50256": -100}
    });
    let (s, v) = h.json("/v1/chat/completions", &body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], r#"{"city":"Paris"}"#);
    assert_eq!(v["usage"]["total_tokens"], 18);
    let r = &h.mock.requests()[0];
    assert_eq!(r.model, "json-valid");
    assert_eq!(r.body["response_format"]["type"], "json_schema");
    assert_eq!(r.body["seed"], 7);
    assert_eq!(r.headers["authorization"], format!("Bearer {MOCK_KEY}"));
}

#[tokio::test]
async fn openai_client_to_anthropic_target_and_back() {
    let h = Harness::start().await;
    let body = json!({"model": "claude", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]});
    let (s, v) = h.json("/v1/chat/completions", &body).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "mock:anthropic:hello"
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["prompt_tokens"], 13);
    let r = &h.mock.requests()[0];
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(r.body["system"], "be brief");
    assert_eq!(r.body["max_tokens"], 4096);
    assert_eq!(r.headers["x-api-key"], MOCK_KEY);
    assert_eq!(r.headers["anthropic-version"], "2023-06-01");
}

#[tokio::test]
async fn anthropic_client_to_openai_target_and_back() {
    let h = Harness::start().await;
    let mut body = anthropic_user("gpt", "hello");
    body["system"] = json!("sys");
    let r = h
        .client
        .post(format!("{}/v1/messages", h.url))
        .header("x-api-key", &h.key)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], "mock:openai:hello");
    assert_eq!(v["stop_reason"], "end_turn");
    assert_eq!(v["usage"]["input_tokens"], 11);
    let sent = &h.mock.requests()[0];
    assert_eq!(
        sent.body["messages"][0],
        json!({"role": "system", "content": "sys"})
    );
}

#[tokio::test]
async fn anthropic_to_anthropic_keeps_client_version_header() {
    let h = Harness::start().await;
    let r = h
        .client
        .post(format!("{}/v1/messages", h.url))
        .header("x-api-key", &h.key)
        .header("anthropic-version", "2023-01-01")
        .header("anthropic-beta", "tools-2024")
        .json(&anthropic_user("claude", "yo"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["content"][0]["text"], "mock:anthropic:yo");
    let sent = &h.mock.requests()[0];
    assert_eq!(sent.headers["anthropic-version"], "2023-01-01");
    assert_eq!(sent.headers["anthropic-beta"], "tools-2024");
}

#[tokio::test]
async fn tool_calls_cross_both_ways() {
    let h = Harness::start().await;
    let tools = json!([{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
    // OpenAI client, Anthropic target answering with tool_use.
    let body = json!({"model": "tool-claude", "messages": [{"role": "user", "content": "weather?"}], "tools": tools, "tool_choice": "auto"});
    let (s, v) = h.json("/v1/chat/completions", &body).await;
    assert_eq!(s, 200, "{v}");
    let call = &v["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(call["function"]["arguments"], "{\"city\":\"Paris\"}");
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let sent = &h.mock.requests()[0];
    assert_eq!(sent.body["tools"][0]["name"], "get_weather");
    assert_eq!(sent.body["tool_choice"]["type"], "auto");

    // Anthropic client, OpenAI target answering with tool_calls.
    let body = json!({"model": "tool", "max_tokens": 50, "messages": [{"role": "user", "content": "weather?"}],
                      "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]});
    let r = h.messages(&body).await;
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["content"][0]["type"], "tool_use");
    assert_eq!(v["content"][0]["input"]["city"], "Paris");
    assert_eq!(v["stop_reason"], "tool_use");

    // Tool results sent back from an OpenAI client reach Anthropic as tool_result blocks.
    let body = json!({"model": "claude", "tools": tools, "messages": [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
    ]});
    let (s, _) = h.json("/v1/chat/completions", &body).await;
    assert_eq!(s, 200);
    let sent = h.mock.requests().last().unwrap().clone();
    assert_eq!(sent.body["messages"][1]["content"][0]["type"], "tool_use");
    assert_eq!(
        sent.body["messages"][2]["content"][0]["tool_use_id"],
        "call_1"
    );
}

#[tokio::test]
async fn embeddings_through_openai_and_echo() {
    let h = Harness::start().await;
    let (s, v) = h
        .json(
            "/v1/embeddings",
            &json!({"model": "embed", "input": ["a", "b"]}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(h.mock.requests()[0].model, "embed-mock");
    let (s, v) = h
        .json(
            "/v1/embeddings",
            &json!({"model": "embed-echo", "input": "hello", "dimensions": 8}),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["data"][0]["embedding"].as_array().unwrap().len(), 8);
    // Anthropic serves no embeddings: a clear 400, not a provider error.
    let (s, v) = h
        .json(
            "/v1/embeddings",
            &json!({"model": "embed-claude", "input": "x"}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(error_message(&v).contains("does not serve"));
}

#[tokio::test]
async fn azure_uses_deployment_url_and_api_key_header() {
    let h = Harness::start().await;
    let (s, v) = h.json("/v1/chat/completions", &user("azure", "hi")).await;
    assert_eq!(s, 200, "{v}");
    let r = &h.mock.requests()[0];
    assert_eq!(
        r.path,
        "/openai/deployments/my-deployment/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(r.headers["api-key"], MOCK_KEY);
    assert!(!r.headers.contains_key("authorization"));
}

#[tokio::test]
async fn unknown_model_is_404_in_each_shape() {
    let h = Harness::start().await;
    let (s, v) = h.json("/v1/chat/completions", &user("nope", "hi")).await;
    assert_eq!(s, 404);
    assert_eq!(v["error"]["code"], "model_not_found");
    let r = h.messages(&anthropic_user("nope", "x")).await;
    assert_eq!(r.status(), 404);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "not_found_error");
}

#[tokio::test]
async fn responses_carry_a_request_id() {
    let h = Harness::start().await;
    let r = h
        .post("/v1/chat/completions", &user("gpt", "hi"))
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap();
    assert!(id.starts_with("req_"));
}
