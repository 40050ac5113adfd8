//! Retries, fallbacks across providers, circuit breakers, timeouts and upstream failures.

use serde_json::Value;

use crate::harness::{Harness, error_message, user};

#[tokio::test]
async fn flaky_target_succeeds_after_retries() {
    let h = Harness::start().await;
    let (s, v) = h.json("/v1/chat/completions", &user("flaky", "hi")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(h.mock.count("flaky-2"), 3, "two failures, then success");
}

#[tokio::test]
async fn failing_openai_target_falls_back_to_anthropic() {
    let h = Harness::start().await;
    let (s, v) = h
        .json("/v1/chat/completions", &user("fallback-cross", "hi"))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], "mock:anthropic:hi");
    assert_eq!(
        h.mock.count("fail-500"),
        3,
        "first attempt and two retries before falling back"
    );
}

#[tokio::test]
async fn failing_anthropic_target_falls_back_to_openai_for_anthropic_clients() {
    let h = Harness::start().await;
    let r = h
        .messages(&crate::harness::anthropic_user("fallback-cross-rev", "yo"))
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["content"][0]["text"], "mock:openai:yo");
}

#[tokio::test]
async fn rate_limited_target_honours_retry_after_then_falls_back() {
    let h = Harness::start().await;
    let (s, v) = h
        .json("/v1/chat/completions", &user("rate-limited", "hi"))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(h.mock.count("fail-429"), 3);
    assert_eq!(v["choices"][0]["message"]["content"], "mock:anthropic:hi");
}

#[tokio::test]
async fn breaker_opens_after_consecutive_failures_and_stops_calling() {
    let h = Harness::start().await;
    for _ in 0..3 {
        let (s, _) = h.json("/v1/chat/completions", &user("broken", "x")).await;
        assert_eq!(s, 502);
    }
    let (s, v) = h.json("/v1/chat/completions", &user("broken", "x")).await;
    assert_eq!(s, 503, "{v}");
    assert!(error_message(&v).contains("circuit breaker"));
    assert_eq!(
        h.mock.count("fail-500"),
        3,
        "an open breaker sends nothing upstream"
    );
}

#[tokio::test]
async fn first_byte_timeout_is_504() {
    let h = Harness::start().await;
    let started = std::time::Instant::now();
    let (s, v) = h.json("/v1/chat/completions", &user("slow", "x")).await;
    assert_eq!(s, 504, "{v}");
    assert!(error_message(&v).contains("first_byte_timeout"));
    assert!(started.elapsed() < std::time::Duration::from_millis(900));
}

#[tokio::test]
async fn garbage_from_upstream_is_502_with_a_clear_message() {
    let h = Harness::start().await;
    let (s, v) = h.json("/v1/chat/completions", &user("garbage", "x")).await;
    assert_eq!(s, 502);
    assert!(error_message(&v).contains("not valid JSON"));
}

#[tokio::test]
async fn upstream_client_errors_pass_through_without_fallback() {
    let h = Harness::start().await;
    let (s, v) = h.json("/v1/chat/completions", &user("bad", "x")).await;
    assert_eq!(s, 400);
    assert!(error_message(&v).contains("mock says the request is invalid"));
    assert_eq!(h.mock.count("bad-request"), 1);
}

#[tokio::test]
async fn rejected_provider_credential_falls_back_and_never_leaks() {
    let h = Harness::start().await;
    let (s, v) = h.json("/v1/chat/completions", &user("badcred", "x")).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], "mock:anthropic:x");
    let (s, v) = h
        .json("/v1/chat/completions", &user("badcred-only", "x"))
        .await;
    assert_eq!(s, 502);
    let msg = error_message(&v);
    assert!(msg.contains("rejected tollgate's credential"), "{msg}");
    assert!(!msg.contains("wrong-credential"));
}
