//! Kill switches (MI-3): a switch set in the shared store (by another instance or the CLI)
//! takes effect within a second; provider switches make routes fall back; the admin API sets
//! and lifts them and both are audited.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_gateway::admin::rbac::Role;
use tollgate_store::AdminCredential;
use tollgate_store::control::{KillSwitch, SwitchKind};
use tollgate_store::key::{new_admin_credential, random_base62};

use crate::harness::{Harness, user};

fn switch(kind: SwitchKind, target: &str) -> KillSwitch {
    KillSwitch {
        kind,
        target: target.into(),
        reason: "drill".into(),
        set_by: "test".into(),
        set_at: tollgate_store::now(),
        expires_at: None,
    }
}

async fn status(h: &Harness, model: &str) -> u16 {
    h.post("/v1/chat/completions", &user(model, "hi"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_switch_written_to_the_store_elsewhere_takes_effect_within_a_second() {
    let h = Harness::start().await;
    assert_eq!(status(&h, "gpt").await, 200);
    let key_id = h.key_id().await;
    h.store
        .control
        .set_switch(&switch(SwitchKind::Key, &key_id))
        .await
        .unwrap();
    let t0 = Instant::now();
    loop {
        let s = status(&h, "gpt").await;
        if s == 403 {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(1), "still {s} after 1 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let r = h
        .post("/v1/chat/completions", &user("gpt", "hi"))
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "key_suspended");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("switched off")
    );
    assert!(
        h.store
            .control
            .clear_switch(SwitchKind::Key, &key_id)
            .await
            .unwrap()
    );
    let t0 = Instant::now();
    while status(&h, "gpt").await != 200 {
        assert!(t0.elapsed() < Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_provider_switch_makes_routes_fall_back_and_a_route_switch_refuses() {
    let h = Harness::start().await;
    h.store
        .control
        .set_switch(&switch(SwitchKind::Provider, "oa"))
        .await
        .unwrap();
    tollgate_gateway::refresh_switches(&h.gw).await;
    let before = h.mock.requests().len();
    // rate-limited = [oa/fail-429, an/claude-mock]: oa is skipped, Anthropic answers.
    assert_eq!(status(&h, "rate-limited").await, 200);
    let reqs = h.mock.requests();
    assert_eq!(reqs.len(), before + 1);
    assert!(
        reqs.last().unwrap().path.contains("messages"),
        "served by the anthropic target"
    );
    // A route whose only provider is off has nowhere to go.
    assert_eq!(status(&h, "gpt").await, 503);
    h.store
        .control
        .set_switch(&switch(SwitchKind::Route, "claude"))
        .await
        .unwrap();
    tollgate_gateway::refresh_switches(&h.gw).await;
    assert_eq!(status(&h, "claude").await, 403);
}

#[tokio::test]
async fn lockdown_through_the_admin_api_refuses_everyone_and_is_audited() {
    let h = Harness::start().await;
    let secret = new_admin_credential();
    let token = secrecy::ExposeSecret::expose_secret(&secret).to_owned();
    h.store
        .admins
        .insert_admin(&AdminCredential {
            id: format!("adm_{}", random_base62(12)),
            hash: h.hasher.hash_text(&token),
            name: "oncall".into(),
            role: Role::IncidentResponder.as_str().into(),
            created_at: tollgate_store::now(),
        })
        .await
        .unwrap();
    let r = h
        .client
        .post(format!("{}/admin/v1/killswitches", h.url))
        .bearer_auth(&token)
        .json(&json!({"kind": "lockdown", "reason": "drill 2026-11"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(status(&h, "gpt").await, 403);
    assert_eq!(status(&h, "claude").await, 403);
    let r = h
        .client
        .delete(format!("{}/admin/v1/killswitches/lockdown/*", h.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(status(&h, "gpt").await, 200);
    // Bad input is a 400.
    let r = h
        .client
        .post(format!("{}/admin/v1/killswitches", h.url))
        .bearer_auth(&token)
        .json(&json!({"kind": "everything", "reason": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    h.gw.audit.flush().await;
    let recs =
        h.gw.store
            .audit
            .records_between(
                chrono::Utc::now() - chrono::Duration::minutes(5),
                chrono::Utc::now() + chrono::Duration::minutes(1),
                None,
                10_000,
            )
            .await
            .unwrap();
    let actions: Vec<&str> = recs
        .iter()
        .filter(|r| r.kind == "admin")
        .map(|r| r.body.as_str())
        .collect();
    assert!(actions.iter().any(|b| b.contains("\"killswitch.set\"")));
    assert!(actions.iter().any(|b| b.contains("\"killswitch.clear\"")));
}
