//! Versioned prompts (DO-3, DO-4): staging keys get the staging version, production keys the
//! production one; a promotion reaches the gateway within a second; the audit record names
//! the version; missing variables are a clear 400.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_gateway::prompt::{MessageTemplate, Params, Prompt, VARIABLES_HEADER};
use tollgate_store::key::Environment;
use tollgate_store::prompt::{NewPromptVersion, PromptEnv};

use crate::harness::{Harness, KeyOpts};

fn prompt(system: &str) -> Prompt {
    Prompt {
        name: "support".into(),
        description: String::new(),
        route: "gpt".into(),
        system: Some(system.into()),
        messages: vec![MessageTemplate {
            role: "user".into(),
            content: "Customer {{customer}} asks:".into(),
        }],
        params: Params {
            temperature: Some(0.1),
            ..Params::default()
        },
    }
}

async fn push(h: &Harness, p: &Prompt) -> i64 {
    let content = p.canonical();
    h.store
        .prompts
        .add_prompt_version(&NewPromptVersion {
            name: &p.name,
            content: &content,
            content_hash: &tollgate_gateway::prompt::content_hash(&content),
            author: "adm_test",
            diff: "",
            at: tollgate_store::now(),
        })
        .await
        .unwrap()
        .version
}

/// The system text the mock upstream received for a `prompt:support` call with `key`, and
/// the response.
async fn call(h: &Harness, key: &str) -> (u16, Option<String>, reqwest::header::HeaderMap) {
    let before = h.mock.requests().len();
    let r = h
        .client
        .post(format!("{}/v1/chat/completions", h.url))
        .bearer_auth(key)
        .json(&json!({
            "model": "prompt:support",
            "variables": {"customer": "Ada"},
            "messages": [{"role": "user", "content": "where is my order?"}],
        }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let _ = r.bytes().await;
    let reqs = h.mock.requests();
    let system = (reqs.len() > before).then(|| {
        let body = &reqs.last().unwrap().body;
        assert_eq!(
            body["model"], "gpt-mock",
            "the prompt's route chose the target"
        );
        assert!(
            body.get("variables").is_none(),
            "variables never go upstream"
        );
        assert_eq!(body["temperature"], 0.1);
        assert_eq!(body["messages"][1]["content"], "Customer Ada asks:");
        assert_eq!(body["messages"][2]["content"], "where is my order?");
        body["messages"][0]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    });
    (status, system, headers)
}

#[tokio::test]
async fn a_staged_prompt_change_reaches_staging_keys_only() {
    let h = Harness::start().await;
    let (staging_key, _) = h
        .create_key(KeyOpts {
            env: Environment::Staging,
            ..KeyOpts::default()
        })
        .await;
    let v1 = push(&h, &prompt("You are v1.")).await;
    h.store
        .prompts
        .deploy_prompt("support", PromptEnv::Production, v1, "adm_test", "promote")
        .await
        .unwrap();
    let v2 = push(&h, &prompt("You are v2.")).await;
    assert_eq!(v2, 2);
    tollgate_gateway::refresh_prompts(&h.gw).await;

    let (s, system, headers) = call(&h, &h.key).await;
    assert_eq!(s, 200);
    assert_eq!(system.as_deref(), Some("You are v1."));
    assert_eq!(headers["x-tollgate-prompt"], "support@v1");
    let (s, system, headers) = call(&h, &staging_key).await;
    assert_eq!(s, 200);
    assert_eq!(system.as_deref(), Some("You are v2."));
    assert_eq!(headers["x-tollgate-prompt"], "support@v2");

    // The audit record names the prompt and version.
    let id = headers["x-request-id"].to_str().unwrap().to_owned();
    let recs = h.gw.store.audit.records_by_ref(&id).await.unwrap();
    assert!(
        recs[0].body.contains("\"prompt\":\"support@v2\""),
        "{}",
        recs[0].body
    );

    // A promotion written to the store (by the CLI, elsewhere) is served within a second.
    h.store
        .prompts
        .deploy_prompt("support", PromptEnv::Production, v2, "adm_test", "promote")
        .await
        .unwrap();
    let t0 = Instant::now();
    loop {
        let (_, system, _) = call(&h, &h.key).await;
        if system.as_deref() == Some("You are v2.") {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "still {system:?} after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn prompt_requests_without_their_variables_or_a_deployed_version_are_refused_clearly() {
    let h = Harness::start().await;
    push(&h, &prompt("You help {{customer}}.")).await;
    tollgate_gateway::refresh_prompts(&h.gw).await;
    let (staging_key, _) = h
        .create_key(KeyOpts {
            env: Environment::Staging,
            ..KeyOpts::default()
        })
        .await;
    let before = h.mock.requests().len();
    let r = h
        .client
        .post(format!("{}/v1/chat/completions", h.url))
        .bearer_auth(&staging_key)
        .json(&json!({"model": "prompt:support", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.unwrap();
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("needs the variables customer"), "{msg}");
    // The header carries them just as well.
    let r = h
        .client
        .post(format!("{}/v1/chat/completions", h.url))
        .bearer_auth(&staging_key)
        .header(VARIABLES_HEADER, r#"{"customer": "Ada"}"#)
        .json(&json!({"model": "prompt:support"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // Production has no version yet.
    let (s, body) = h
        .json(
            "/v1/chat/completions",
            &json!({"model": "prompt:support", "variables": {"customer": "Ada"}}),
        )
        .await;
    assert_eq!(s, 404);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("production")
    );
    assert_eq!(h.mock.requests().len(), before + 1);
}

/// The upstream model the mock received for a `gpt` call with `key`.
async fn upstream_model(h: &Harness, key: &str) -> String {
    let r = h
        .client
        .post(format!("{}/v1/chat/completions", h.url))
        .bearer_auth(key)
        .json(&json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let _ = r.bytes().await;
    h.mock.requests().last().unwrap().body["model"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn push_route(h: &Harness, model: &str) -> i64 {
    use tollgate_gateway::rollout::{RouteSpec, TargetSpec};
    let spec = RouteSpec {
        route: "gpt".into(),
        targets: vec![TargetSpec {
            provider: "oa".into(),
            model: model.into(),
        }],
    };
    let content = spec.canonical();
    h.store
        .prompts
        .add_prompt_version(&NewPromptVersion {
            name: &spec.store_name(),
            content: &content,
            content_hash: &tollgate_gateway::prompt::content_hash(&content),
            author: "adm_test",
            diff: "",
            at: tollgate_store::now(),
        })
        .await
        .unwrap()
        .version
}

#[tokio::test]
async fn route_versions_override_the_config_per_environment_and_roll_back() {
    let h = Harness::start().await;
    let (staging_key, _) = h
        .create_key(KeyOpts {
            env: Environment::Staging,
            ..KeyOpts::default()
        })
        .await;
    let v1 = push_route(&h, "gpt-next").await;
    tollgate_gateway::refresh_prompts(&h.gw).await;
    // Staging keys get the staged targets; production keys keep the config's.
    assert_eq!(upstream_model(&h, &staging_key).await, "gpt-next");
    assert_eq!(upstream_model(&h, &h.key).await, "gpt-mock");
    let deploy = |v: i64, action: &'static str| {
        let store = h.store.clone();
        async move {
            store
                .prompts
                .deploy_prompt("route:gpt", PromptEnv::Production, v, "adm_test", action)
                .await
                .unwrap();
        }
    };
    deploy(v1, "promote").await;
    tollgate_gateway::refresh_prompts(&h.gw).await;
    assert_eq!(upstream_model(&h, &h.key).await, "gpt-next");
    let v2 = push_route(&h, "gpt-broken-update").await;
    deploy(v2, "promote").await;
    tollgate_gateway::refresh_prompts(&h.gw).await;
    assert_eq!(upstream_model(&h, &h.key).await, "gpt-broken-update");
    deploy(v1, "rollback").await;
    tollgate_gateway::refresh_prompts(&h.gw).await;
    assert_eq!(upstream_model(&h, &h.key).await, "gpt-next");
    assert_eq!(
        h.gw.route_versions.version("gpt", PromptEnv::Production),
        Some(v1)
    );
}

async fn admin_credential(h: &Harness, role: &str) -> (String, String) {
    let secret = tollgate_store::key::new_admin_credential();
    let text = secrecy::ExposeSecret::expose_secret(&secret).to_owned();
    let id = format!("adm_{}", tollgate_store::key::random_base62(12));
    h.store
        .admins
        .insert_admin(&tollgate_store::AdminCredential {
            id: id.clone(),
            hash: h.hasher.hash_text(&text),
            name: role.into(),
            role: role.into(),
            created_at: tollgate_store::now(),
        })
        .await
        .unwrap();
    (text, id)
}

#[tokio::test]
async fn the_admin_api_promotes_only_evaluated_versions_and_rolls_back() {
    let h = Harness::start().await;
    let (approver, _) = admin_credential(&h, "approver").await;
    let (engineer, _) = admin_credential(&h, "prompt-engineer").await;
    let post = |path: String, token: &str, body: Value| {
        h.client
            .post(format!("{}{path}", h.url))
            .bearer_auth(token)
            .json(&body)
    };
    let v1 = push(&h, &prompt("You are v1.")).await;
    // Not evaluated: refused, with why.
    let r = post(
        "/admin/v1/prompts/support/promote".into(),
        &approver,
        json!({}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not been evaluated")
    );
    let passed = tollgate_store::prompt::EvalRecord {
        passed: true,
        report: "{}".into(),
        at: tollgate_store::now(),
    };
    h.store
        .prompts
        .record_prompt_eval("support", v1, &passed)
        .await
        .unwrap();
    // A prompt engineer may read the history but not promote.
    let r = post(
        "/admin/v1/prompts/support/promote".into(),
        &engineer,
        json!({}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 403);
    let r = post(
        "/admin/v1/prompts/support/promote".into(),
        &approver,
        json!({}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    // This instance serves it at once.
    let (s, system, _) = call(&h, &h.key).await;
    assert_eq!((s, system.as_deref()), (200, Some("You are v1.")));
    let v2 = push(&h, &prompt("You are v2.")).await;
    h.store
        .prompts
        .record_prompt_eval("support", v2, &passed)
        .await
        .unwrap();
    let r = post(
        "/admin/v1/prompts/support/promote".into(),
        &approver,
        json!({}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(call(&h, &h.key).await.1.as_deref(), Some("You are v2."));
    let r = post(
        "/admin/v1/prompts/support/rollback".into(),
        &approver,
        json!({}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(call(&h, &h.key).await.1.as_deref(), Some("You are v1."));
    let r = h
        .client
        .get(format!("{}/admin/v1/prompts/support", h.url))
        .bearer_auth(&engineer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let hist: Value = r.json().await.unwrap();
    assert_eq!(hist["production"], 1);
    assert_eq!(hist["versions"].as_array().unwrap().len(), 2);
    // Nothing older than v1 to restore.
    let r = post(
        "/admin/v1/prompts/support/rollback".into(),
        &approver,
        json!({}),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 409);
}
