//! Input guards in the live path: masked values never reach the provider, and reversible
//! tokens are restored for the client, streamed or not, across providers.

use serde_json::{Value, json};

use crate::harness::{Harness, anthropic_stream_text, anthropic_user, openai_stream_text, user};

const PROMPT: &str =
    "Email jane.doe@corp.com or call +1 415-555-2671 about card 4111 1111 1111 1111";

fn upstream_saw(h: &Harness) -> String {
    h.mock
        .requests()
        .iter()
        .map(|r| r.body.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn assert_nothing_leaked(h: &Harness) {
    let seen = upstream_saw(h);
    for secret in ["jane.doe@corp.com", "415-555-2671", "4111 1111 1111 1111"] {
        assert!(
            !seen.contains(secret),
            "{secret} reached the provider: {seen}"
        );
    }
}

#[tokio::test]
async fn pii_is_tokenized_upstream_and_restored_for_the_client() {
    let h = Harness::start().await;
    let r = h
        .post("/v1/chat/completions", &user("gpt", PROMPT))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["x-tollgate-guards"],
        "pii=CARD:1,EMAIL:1,PHONE:1"
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        format!("mock:openai:{PROMPT}")
    );
    assert_nothing_leaked(&h);
    assert!(upstream_saw(&h).contains("<EMAIL_1>"));
}

#[tokio::test]
async fn streamed_answers_are_restored_in_both_formats_and_across_providers() {
    let h = Harness::start().await;
    let mut body = user("gpt", PROMPT);
    body["stream"] = json!(true);
    let (_, ev) = h.stream("/v1/chat/completions", &body).await;
    assert_eq!(openai_stream_text(&ev), format!("mock:openai:{PROMPT}"));

    let mut body = user("claude", PROMPT);
    body["stream"] = json!(true);
    let (_, ev) = h.stream("/v1/chat/completions", &body).await;
    assert_eq!(openai_stream_text(&ev), format!("mock:anthropic:{PROMPT}"));

    let mut body = anthropic_user("gpt", PROMPT);
    body["stream"] = json!(true);
    let r = h
        .client
        .post(format!("{}/v1/messages", h.url))
        .header("x-api-key", &h.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let ev = crate::harness::parse_sse(&r.text().await.unwrap());
    assert_eq!(anthropic_stream_text(&ev), format!("mock:openai:{PROMPT}"));

    let mut body = anthropic_user("claude", PROMPT);
    body["stream"] = json!(true);
    let r = h
        .client
        .post(format!("{}/v1/messages", h.url))
        .header("x-api-key", &h.key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let ev = crate::harness::parse_sse(&r.text().await.unwrap());
    assert_eq!(
        anthropic_stream_text(&ev),
        format!("mock:anthropic:{PROMPT}")
    );
    assert_nothing_leaked(&h);
}

#[tokio::test]
async fn credentials_in_prompts_are_redacted_and_never_come_back() {
    let h = Harness::start().await;
    let key = "AIzaSyD4bC7dE9fG1hJ3kL5mN7pQ9rS1tU3vW5x";
    let (s, v) = h
        .json(
            "/v1/chat/completions",
            &user("gpt", &format!("debug this: {key}")),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "mock:openai:debug this: [SECRET]"
    );
    assert!(!upstream_saw(&h).contains(key));
}

#[tokio::test]
async fn route_policy_can_block_redact_and_hash() {
    let h = Harness::start().await;
    let (s, v) = h
        .json(
            "/v1/chat/completions",
            &user("strict", "my SSN is 123-45-6789"),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(v["error"]["code"], "content_filter");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("pii guard") && msg.contains("SSN") && msg.contains("req_"),
        "{msg}"
    );
    assert!(!msg.contains("6789"));
    let r = h
        .client
        .post(format!("{}/v1/messages", h.url))
        .header("x-api-key", &h.key)
        .json(&anthropic_user("strict", "SSN 123-45-6789"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(
        h.mock.requests().is_empty(),
        "a blocked request reaches no provider"
    );

    let (s, v) = h
        .json(
            "/v1/chat/completions",
            &user("strict", "mail bob@corp.com about EMP-123456"),
        )
        .await;
    assert_eq!(s, 200);
    let answer = v["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        answer.starts_with("mock:openai:mail [EMAIL] about [EMPLOYEE_ID:"),
        "{answer}"
    );

    let key = "AIzaSyD4bC7dE9fG1hJ3kL5mN7pQ9rS1tU3vW5x";
    let (s, _) = h.json("/v1/chat/completions", &user("strict", key)).await;
    assert_eq!(s, 400);

    let (s, v) = h
        .json("/v1/chat/completions", &user("nopii", "mail bob@corp.com"))
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "mock:openai:mail bob@corp.com"
    );
}

#[tokio::test]
async fn echo_shows_what_the_model_received() {
    let h = Harness::start().await;
    let (_, v) = h
        .json(
            "/v1/chat/completions",
            &user("echo", "I am jane.doe@corp.com"),
        )
        .await;
    assert_eq!(v["choices"][0]["message"]["content"], "I am <EMAIL_1>");
}

#[tokio::test]
async fn embeddings_inputs_are_masked() {
    let h = Harness::start().await;
    let (s, _) = h
        .json(
            "/v1/embeddings",
            &json!({"model": "embed", "input": ["jane.doe@corp.com", "plain"]}),
        )
        .await;
    assert_eq!(s, 200);
    let sent = &h.mock.requests()[0].body;
    assert_eq!(sent["input"][0], "<EMAIL_1>");
    assert_eq!(sent["input"][1], "plain");
}

#[tokio::test]
async fn guard_metrics_are_exported() {
    let h = Harness::start().await;
    h.json("/v1/chat/completions", &user("gpt", PROMPT)).await;
    h.json("/v1/chat/completions", &user("strict", "SSN 123-45-6789"))
        .await;
    let text = h
        .client
        .get(format!("{}/metrics", h.url))
        .bearer_auth(&h.key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            "tollgate_guard_detections_total{route=\"gpt\",guard=\"pii\",kind=\"EMAIL\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("tollgate_guard_blocks_total{route=\"strict\",guard=\"pii\",kind=\"-\"} 1"),
        "{text}"
    );
}
