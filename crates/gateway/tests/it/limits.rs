//! Limits (DO-1) and costs (DO-2) through the real router: a limit of N admits exactly N with
//! the headers the OpenAI SDKs read, tokens are reserved and settled, concurrency is held for
//! the life of a request, request caps refuse clearly, abuse suspends a key, and every call
//! is priced into its audit record.

use serde_json::{Value, json};

use crate::harness::{Harness, KeyOpts, anthropic_user, user};

#[tokio::test]
async fn a_route_limit_of_n_admits_exactly_n_with_rate_limit_headers() {
    let h = Harness::start().await;
    let mut ok = 0;
    let mut refused = Vec::new();
    for _ in 0..6 {
        let r = h
            .post("/v1/chat/completions", &user("limited", "hi"))
            .send()
            .await
            .unwrap();
        match r.status().as_u16() {
            200 => {
                ok += 1;
                assert_eq!(r.headers()["x-ratelimit-limit-requests"], "3");
                assert!(r.headers().contains_key("x-ratelimit-remaining-requests"));
                assert!(r.headers().contains_key("x-ratelimit-reset-requests"));
            }
            429 => refused.push(r),
            s => panic!("unexpected status {s}"),
        }
    }
    assert_eq!(ok, 3, "exactly N admitted");
    assert_eq!(refused.len(), 3);
    let r = refused.remove(0);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=21).contains(&retry), "retry-after {retry}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("route limit of 3 requests per minute")
    );
    assert_eq!(
        h.mock.count("gpt-mock"),
        3,
        "refused requests never reach the provider"
    );
    // Anthropic shape too.
    let mut b = anthropic_user("limited", "hi");
    b["model"] = json!("limited");
    let r = h.messages(&b).await;
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");
}

#[tokio::test]
async fn tokens_per_minute_reserve_max_tokens_and_settle_to_usage() {
    let h = Harness::start().await;
    // 300 tokens a minute: a request asking for 250 output tokens fits once...
    let mut b = user("tpm", "hello");
    b["max_tokens"] = json!(250);
    let r = h.post("/v1/chat/completions", &b).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-ratelimit-limit-tokens"], "300");
    // ...and the mock used far fewer, so the reservation was settled and a second fits too.
    let r = h.post("/v1/chat/completions", &b).send().await.unwrap();
    assert_eq!(
        r.status(),
        200,
        "settled reservation returned the unused tokens"
    );
    // Without settlement this would have needed 500 + tokens; now a burst of large asks fails.
    b["max_tokens"] = json!(299);
    let mut refused = false;
    for _ in 0..3 {
        let r = h.post("/v1/chat/completions", &b).send().await.unwrap();
        if r.status() == 429 {
            let body: Value = r.json().await.unwrap();
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("tokens per minute")
            );
            refused = true;
            break;
        }
    }
    assert!(refused);
}

#[tokio::test]
async fn concurrency_is_held_until_the_response_is_done() {
    let h = Harness::start().await;
    let first = {
        let rb = h.post("/v1/chat/completions", &user("single", "slow one"));
        tokio::spawn(async move { rb.send().await.unwrap().status().as_u16() })
    };
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let r = h
        .post("/v1/chat/completions", &user("single", "second"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("concurrent")
    );
    assert_eq!(first.await.unwrap(), 200);
    let r = h
        .post("/v1/chat/completions", &user("single", "third"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "the slot is released when the first finishes"
    );
}

#[tokio::test]
async fn request_caps_refuse_with_a_clear_400() {
    let h = Harness::start().await;
    let three = json!({"model": "capped", "messages": [
        {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]});
    let r = h.post("/v1/chat/completions", &three).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("3 messages")
    );
    let mut b = user("capped", "hi");
    b["n"] = json!(3);
    let r = h.post("/v1/chat/completions", &b).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let mut b = user("capped", "hi");
    b["max_tokens"] = json!(5000);
    let r = h.post("/v1/chat/completions", &b).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens")
    );
    assert_eq!(h.mock.requests().len(), 0);
    let r = h
        .post("/v1/chat/completions", &user("capped", "ok"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn repeated_denials_suspend_the_key_and_are_audited() {
    let h = Harness::start().await;
    let (key, key_id) = h
        .create_key(KeyOpts {
            models: vec!["gpt"],
            ..KeyOpts::default()
        })
        .await;
    let send = |model: &'static str| {
        h.client
            .post(format!("{}/v1/chat/completions", h.url))
            .bearer_auth(&key)
            .json(&user(model, "hi"))
            .send()
    };
    assert_eq!(send("gpt").await.unwrap().status(), 200);
    // The harness sets [limits.abuse] denials = 5.
    for _ in 0..5 {
        assert_eq!(send("claude").await.unwrap().status(), 403);
    }
    let r = send("gpt").await.unwrap();
    assert_eq!(r.status(), 403, "suspended, even for an allowed model");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "key_suspended");
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
    assert!(recs.iter().any(|r| {
        r.body.contains("\"keys.suspend\"") && r.key_id.as_deref() == Some(key_id.as_str())
    }));
}

#[tokio::test]
async fn each_call_is_priced_into_its_audit_record() {
    let h = Harness::start().await;
    let r = h
        .post("/v1/chat/completions", &user("priced", "price me"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let recs = h.gw.store.audit.records_by_ref(&id).await.unwrap();
    let body: Value = serde_json::from_str(&recs[0].body).unwrap();
    let (tin, tout) = (
        body["tokens_in"].as_f64().unwrap(),
        body["tokens_out"].as_f64().unwrap(),
    );
    let expected = (tin * 2.50 + tout * 10.0) / 1e6;
    let cost = body["cost_usd"].as_f64().unwrap();
    assert!((cost - expected).abs() < 1e-7, "{cost} vs {expected}");
    // An unknown model has no price rather than a made-up one.
    let r = h
        .post("/v1/chat/completions", &user("gpt", "hi"))
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let recs = h.gw.store.audit.records_by_ref(&id).await.unwrap();
    let body: Value = serde_json::from_str(&recs[0].body).unwrap();
    assert_eq!(body["cost_usd"], Value::Null);
}
