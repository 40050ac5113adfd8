//! Bad input gets a clear error with the right status: never a panic or a hang.

use bytes::Bytes;
use serde_json::{Value, json};

use crate::harness::{Harness, error_message};

async fn raw(h: &Harness, path: &str, body: impl Into<reqwest::Body>) -> (u16, Value) {
    let r = h
        .client
        .post(format!("{}{path}", h.url))
        .bearer_auth(&h.key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn oversized_bodies_are_413_with_or_without_content_length() {
    let h = Harness::start().await;
    let big = format!(
        "{{\"model\":\"gpt\",\"messages\":[{{\"role\":\"user\",\"content\":\"{}\"}}]}}",
        "a".repeat(5000)
    );
    let (s, v) = raw(&h, "/v1/chat/completions", big.clone()).await;
    assert_eq!(s, 413);
    assert!(error_message(&v).contains("4096-byte limit"));
    // Chunked: no Content-Length to trust.
    let chunks: Vec<Result<Bytes, std::io::Error>> = big
        .as_bytes()
        .chunks(100)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    let (s, _) = raw(
        &h,
        "/v1/chat/completions",
        reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)),
    )
    .await;
    assert_eq!(s, 413);
    let (s, v) = raw(&h, "/v1/messages", big).await;
    assert_eq!(s, 413);
    assert_eq!(v["error"]["type"], "request_too_large");
    assert!(h.mock.requests().is_empty());
}

#[tokio::test]
async fn malformed_json_and_missing_fields_are_400_saying_what_is_wrong() {
    let h = Harness::start().await;
    let cases: Vec<(&str, String, &str)> = vec![
        ("/v1/chat/completions", "{not json".into(), "not valid JSON"),
        ("/v1/chat/completions", "".into(), "empty"),
        ("/v1/chat/completions", "[1,2]".into(), "JSON object"),
        (
            "/v1/chat/completions",
            json!({"messages": [{"role": "user", "content": "x"}]}).to_string(),
            "`model`",
        ),
        (
            "/v1/chat/completions",
            json!({"model": "gpt"}).to_string(),
            "`messages`",
        ),
        (
            "/v1/chat/completions",
            json!({"model": "gpt", "messages": "hi"}).to_string(),
            "array",
        ),
        (
            "/v1/chat/completions",
            json!({"model": 5, "messages": []}).to_string(),
            "`model`",
        ),
        (
            "/v1/messages",
            json!({"model": "claude", "messages": [{"role": "user", "content": "x"}]}).to_string(),
            "max_tokens",
        ),
        (
            "/v1/embeddings",
            json!({"model": "embed"}).to_string(),
            "`input`",
        ),
        (
            "/v1/chat/completions",
            "\u{0}\u{1}garbage\u{ff}".into(),
            "not valid JSON",
        ),
    ];
    for (path, body, want) in cases {
        let (s, v) = raw(&h, path, body.clone()).await;
        assert_eq!(s, 400, "{path} {body}: {v}");
        let msg = &v["error"]["message"];
        assert!(
            msg.as_str().unwrap().contains(want),
            "{msg} should mention {want}"
        );
    }
    let (s, _) = raw(&h, "/v1/chat/completions", vec![0xffu8, 0xfe, 0x00]).await;
    assert_eq!(s, 400);
    assert!(h.mock.requests().is_empty());
}

#[tokio::test]
async fn untranslatable_request_for_cross_provider_route_is_400() {
    let h = Harness::start().await;
    let body = json!({"model": "claude", "n": 3, "messages": [{"role": "user", "content": "x"}]});
    let (s, v) = h.json("/v1/chat/completions", &body).await;
    assert_eq!(s, 400, "{v}");
    assert!(error_message(&v).contains("cannot be translated"));
}

#[tokio::test]
async fn deeply_nested_json_is_rejected_not_a_stack_overflow() {
    let h = Harness::start().await;
    let deep = format!("{}{}", "[".repeat(3000), "]".repeat(3000));
    let (s, _) = raw(&h, "/v1/chat/completions", deep).await;
    assert_eq!(s, 413, "over the 4 KiB cap of this harness");
    let deep = format!("{}{}", "[".repeat(1500), "]".repeat(1500));
    let (s, v) = raw(&h, "/v1/chat/completions", deep).await;
    assert_eq!(s, 400, "{v}");
}
