//! Key rotation (AC-4) with time moved forward: due keys get a successor, the old one works
//! through the grace period, the owner's webhook is told (never the key), and the successor
//! is written to the configured destination.

use std::path::Path;
use std::sync::Arc;

use chrono::{Duration, Utc};
use parking_lot::Mutex;
use secrecy::ExposeSecret;
use serde_json::Value;
use tollgate_gateway::config::Config;
use tollgate_gateway::rotation::{KeyAge, classify, rotate_due};
use tollgate_gateway::secrets::SecretBackends;
use tollgate_store::key::{Environment, KeyRecord, KeyState, VirtualKey};
use tollgate_store::keystore::Keystore;
use tollgate_store::master::MasterKey;

use crate::harness::Harness;

async fn webhook() -> (String, Arc<Mutex<Vec<Value>>>) {
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |axum::Json(v): axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().push(v);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

#[tokio::test]
async fn due_keys_are_rotated_delivered_and_announced_without_the_key() {
    let h = Harness::start().await;
    let (url, got) = webhook().await;
    let (config, _) = Config::parse(
        &format!(
            r#"
[rotation]
production = {{ max_age = "90d", warn_before = "14d" }}
grace = "1h"
webhook = "{url}"
[rotation.deliver]
billing = "keystore://apps/billing/key"
"#
        ),
        Path::new("t.toml"),
    )
    .unwrap();
    let cfg = config.rotation.clone().unwrap();
    // Three keys: 100 days old (due), 80 days old (due soon), new (fine).
    let mut made = Vec::new();
    for (name, age) in [("billing", 100), ("search", 80), ("fresh", 0)] {
        let key = VirtualKey::generate(Environment::Production);
        let mut rec = KeyRecord::new(&key, h.hasher.hash(&key), name);
        rec.owner = Some("ops@example.org".into());
        rec.created_at = Utc::now() - Duration::days(age);
        h.store.keys.insert_key(&rec).await.unwrap();
        made.push((key, rec));
    }
    let now = Utc::now();
    assert!(matches!(
        classify(&made[0].1, &cfg, now),
        KeyAge::Due { .. }
    ));
    assert!(matches!(
        classify(&made[1].1, &cfg, now),
        KeyAge::DueSoon { .. }
    ));
    assert!(matches!(classify(&made[2].1, &cfg, now), KeyAge::Ok { .. }));

    let keystore = Keystore::new(h.store.secrets.clone(), &MasterKey::from_bytes([3; 32]));
    let secrets = SecretBackends::from_config(&config.secrets, Some(keystore.clone())).unwrap();
    let done = rotate_due(&h.store, &h.hasher, &secrets, &cfg, now)
        .await
        .unwrap();
    // The harness's own key is new, so only "billing" is due.
    assert_eq!(done.len(), 1, "{done:?}");
    let r = &done[0];
    assert_eq!(r.old_id, made[0].1.id);
    assert_eq!(
        r.delivered_to.as_deref(),
        Some("keystore://apps/billing/key")
    );
    assert!(r.notified);

    // The successor was written to the destination, and it works as a key.
    let delivered = keystore.get("apps/billing/key").await.unwrap().unwrap();
    let successor = VirtualKey::parse(delivered.expose_secret()).unwrap();
    let rec = h
        .store
        .keys
        .key_by_hash(&h.hasher.hash(&successor))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.id, r.new_id);
    assert_eq!(rec.rotated_from.as_deref(), Some(made[0].1.id.as_str()));
    // The old key works for the grace period, then not.
    let old = h
        .store
        .keys
        .key_by_id(&made[0].1.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.state(now + Duration::minutes(59)), KeyState::Active);
    assert_eq!(old.state(now + Duration::minutes(61)), KeyState::Expired);
    // The owner was told which key, never the key itself.
    let notices = got.lock().clone();
    assert_eq!(notices.len(), 1);
    let text = notices[0].to_string();
    assert!(text.contains(&made[0].1.id) && text.contains(&r.new_id));
    assert!(!text.contains(made[0].0.expose()) && !text.contains(successor.expose()));

    // A second run does nothing: the old key has a successor, the new one is young.
    let again = rotate_due(&h.store, &h.hasher, &secrets, &cfg, now)
        .await
        .unwrap();
    assert!(again.is_empty());
    // Moved forward 15 days, "search" is due too.
    let later = rotate_due(
        &h.store,
        &h.hasher,
        &secrets,
        &cfg,
        now + Duration::days(15),
    )
    .await
    .unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].old_id, made[1].1.id);
    assert!(later[0].delivered_to.is_none());
}

#[tokio::test]
async fn bad_rotation_config_is_reported() {
    let err = Config::parse(
        r#"
[rotation]
production = { max_age = "10d", warn_before = "20d" }
webhook = "ftp://x"
[rotation.deliver]
app = "file:///tmp/key"
"#,
        Path::new("t.toml"),
    )
    .unwrap_err()
    .to_string();
    for needle in [
        "rotation.production",
        "rotation.webhook",
        "rotation.deliver.app",
    ] {
        assert!(err.contains(needle), "{err}");
    }
}
