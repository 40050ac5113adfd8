//! Every authentication failure case of AC-2, in both wire formats.

use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use tollgate_store::key::{Environment, VirtualKey};

use crate::harness::{Harness, KeyOpts, anthropic_user, user};

async fn status_with(
    h: &Harness,
    path: &str,
    header: Option<(&str, String)>,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let mut rb = h.client.post(format!("{}{path}", h.url)).json(body);
    if let Some((name, value)) = header {
        rb = rb.header(name, value);
    }
    let r = rb.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn missing_key_is_401_in_each_providers_shape() {
    let h = Harness::start().await;
    let (s, b) = status_with(&h, "/v1/chat/completions", None, &user("gpt", "hi")).await;
    assert_eq!(s, 401);
    assert_eq!(b["error"]["type"], "authentication_error");
    let (s, b) = status_with(&h, "/v1/messages", None, &anthropic_user("claude", "hi")).await;
    assert_eq!(s, 401);
    assert_eq!(b["type"], "error");
    assert_eq!(b["error"]["type"], "authentication_error");
    let (s, _) = status_with(
        &h,
        "/v1/embeddings",
        None,
        &json!({"model": "embed", "input": "x"}),
    )
    .await;
    assert_eq!(s, 401);
    let r = h
        .client
        .get(format!("{}/v1/models", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(h.mock.requests().len(), 0, "nothing reached the provider");
}

#[tokio::test]
async fn malformed_unknown_and_provider_keys_are_401() {
    let h = Harness::start().await;
    let good = h.key.clone();
    let mut typo = good.clone().into_bytes();
    typo[20] = if typo[20] == b'x' { b'y' } else { b'x' };
    let unknown = VirtualKey::generate(Environment::Production)
        .expose()
        .to_owned();
    for (bad, want) in [
        ("tg_live_short".to_owned(), "malformed"),
        (String::from_utf8(typo).unwrap(), "checksum"),
        (
            "sk-proj-abcdefabcdefabcdefabcdef".to_owned(),
            "not a tollgate key",
        ),
        (unknown, "unknown key"),
        ("x".repeat(10_000), "malformed"),
    ] {
        let (s, b) = status_with(
            &h,
            "/v1/chat/completions",
            Some(("authorization", format!("Bearer {bad}"))),
            &user("gpt", "hi"),
        )
        .await;
        assert_eq!(s, 401, "{bad}");
        let msg = b["error"]["message"].as_str().unwrap();
        assert!(msg.contains(want), "{msg} should mention {want}");
        assert!(
            bad.len() < 20 || !msg.contains(&bad),
            "the key must not be echoed"
        );
    }
}

#[tokio::test]
async fn x_api_key_header_is_accepted() {
    let h = Harness::start().await;
    let (s, _) = status_with(
        &h,
        "/v1/messages",
        Some(("x-api-key", h.key.clone())),
        &anthropic_user("claude", "hi"),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = status_with(
        &h,
        "/v1/chat/completions",
        Some(("x-api-key", h.key.clone())),
        &user("gpt", "hi"),
    )
    .await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn expired_key_is_401() {
    let h = Harness::start().await;
    let (key, _) = h
        .create_key(KeyOpts {
            expires_at: Some(Utc::now() - chrono::Duration::seconds(5)),
            ..KeyOpts::default()
        })
        .await;
    let (s, b) = status_with(
        &h,
        "/v1/chat/completions",
        Some(("authorization", format!("Bearer {key}"))),
        &user("gpt", "hi"),
    )
    .await;
    assert_eq!(s, 401);
    assert!(b["error"]["message"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn revocation_takes_effect_within_one_second() {
    let h = Harness::start().await;
    let (key, id) = h.create_key(KeyOpts::default()).await;
    let body = user("echo", "hi");
    let call = || {
        status_with(
            &h,
            "/v1/chat/completions",
            Some(("authorization", format!("Bearer {key}"))),
            &body,
        )
    };
    assert_eq!(call().await.0, 200);
    h.store
        .keys
        .revoke_key(&id, tollgate_store::now())
        .await
        .unwrap();
    let revoked_at = tokio::time::Instant::now();
    loop {
        let (s, b) = call().await;
        if s == 401 {
            assert!(b["error"]["message"].as_str().unwrap().contains("revoked"));
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "still accepted a second after revocation"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn out_of_scope_model_is_403_and_models_lists_only_allowed() {
    let h = Harness::start().await;
    let (key, _) = h
        .create_key(KeyOpts {
            models: vec!["gpt", "claude*"],
            ..KeyOpts::default()
        })
        .await;
    let auth = || Some(("authorization", format!("Bearer {key}")));
    let (s, b) = status_with(&h, "/v1/chat/completions", auth(), &user("echo", "hi")).await;
    assert_eq!(s, 403);
    assert_eq!(b["error"]["type"], "permission_error");
    let (s, b) = status_with(&h, "/v1/messages", auth(), &anthropic_user("echo", "hi")).await;
    assert_eq!(s, 403);
    assert_eq!(b["error"]["type"], "permission_error");
    // Out of scope even if the model does not exist: no probing of the route table.
    let (s, _) = status_with(
        &h,
        "/v1/chat/completions",
        auth(),
        &user("nonexistent", "hi"),
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(
        status_with(&h, "/v1/chat/completions", auth(), &user("gpt", "hi"))
            .await
            .0,
        200
    );
    assert_eq!(
        status_with(&h, "/v1/chat/completions", auth(), &user("claude", "hi"))
            .await
            .0,
        200
    );

    let r = h
        .client
        .get(format!("{}/v1/models", h.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["claude", "gpt"]);
    let r = h
        .client
        .get(format!("{}/v1/models", h.url))
        .header("x-api-key", &key)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["data"][0]["type"], "model");
    assert_eq!(v["has_more"], false);
}

#[tokio::test]
async fn ops_endpoints_health_open_metrics_authenticated() {
    let h = Harness::start().await;
    assert_eq!(
        h.client
            .get(format!("{}/healthz", h.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        h.client
            .get(format!("{}/readyz", h.url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        h.client
            .get(format!("{}/metrics", h.url))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    h.json("/v1/chat/completions", &user("gpt", "hi")).await;
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
    assert!(text.contains("tollgate_requests_total"), "{text}");
    assert!(text.contains("route=\"gpt\""));
    assert!(text.contains("tollgate_request_duration_seconds_bucket"));
    assert!(text.contains("tollgate_tokens_total"));
}

#[tokio::test]
async fn unknown_paths_need_a_key_before_saying_404() {
    // `/v1/assistants`, not `/v1/files`: the fine-tuning endpoints exist now (data stewards).
    let h = Harness::start().await;
    let r = h
        .client
        .get(format!("{}/v1/assistants", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = h
        .client
        .get(format!("{}/v1/assistants", h.url))
        .bearer_auth(&h.key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = h
        .client
        .get(format!("{}/admin", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn the_clients_key_never_reaches_the_provider() {
    let h = Harness::start().await;
    h.json("/v1/chat/completions", &user("gpt", "hi")).await;
    h.json("/v1/chat/completions", &user("claude", "hi")).await;
    for r in h.mock.requests() {
        for v in r.headers.values() {
            assert!(
                !v.contains(&h.key),
                "virtual key leaked upstream in {:?}",
                r.headers
            );
        }
    }
}
