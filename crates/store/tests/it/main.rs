//! Integration tests of the store against a real SQLite file.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod audit;

use std::sync::Arc;

use chrono::{Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use tollgate_store::class::DataClass;
use tollgate_store::key::{Environment, KeyHasher, KeyRecord, KeyState, VirtualKey};
use tollgate_store::keystore::Keystore;
use tollgate_store::master::MasterKey;
use tollgate_store::sqlite::SqliteStore;
use tollgate_store::{KeyStore, SecretStore, Store};

async fn open() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
    (dir, Arc::new(store))
}

#[tokio::test]
async fn key_lifecycle_create_lookup_revoke_rotate() {
    let (_dir, db) = open().await;
    let hasher = KeyHasher::new([3; 32]);
    let key = VirtualKey::generate(Environment::Production);
    let mut rec = KeyRecord::new(&key, hasher.hash(&key), "svc");
    rec.team = Some("search".into());
    rec.allowed_models = vec!["gpt-4o".into()];
    rec.data_class = Some(DataClass::Pii);
    db.insert_key(&rec).await.unwrap();

    let found = db.key_by_hash(&hasher.hash(&key)).await.unwrap().unwrap();
    assert_eq!(found, rec);
    assert!(
        db.key_by_hash(&hasher.hash(&VirtualKey::generate(Environment::Production)))
            .await
            .unwrap()
            .is_none()
    );

    let succ = VirtualKey::generate(Environment::Production);
    let succ_rec = KeyRecord::new(&succ, hasher.hash(&succ), "svc");
    db.insert_key(&succ_rec).await.unwrap();
    let grace = Utc::now() + Duration::hours(1);
    db.mark_rotated(&rec.id, &succ_rec.id, grace).await.unwrap();
    let old = db.key_by_id(&rec.id).await.unwrap().unwrap();
    assert_eq!(old.rotated_to.as_deref(), Some(succ_rec.id.as_str()));
    assert_eq!(
        old.expires_at.unwrap().timestamp_millis(),
        grace.timestamp_millis()
    );
    let new = db.key_by_id(&succ_rec.id).await.unwrap().unwrap();
    assert_eq!(new.rotated_from.as_deref(), Some(rec.id.as_str()));
    assert_eq!(new.data_class, None);

    assert!(db.revoke_key(&rec.id, Utc::now()).await.unwrap());
    assert!(!db.revoke_key("key_nope", Utc::now()).await.unwrap());
    let old = db.key_by_id(&rec.id).await.unwrap().unwrap();
    assert_eq!(
        old.state(Utc::now() + Duration::seconds(1)),
        KeyState::Revoked
    );
    assert_eq!(db.list_keys().await.unwrap().len(), 2);

    let t = Utc::now();
    db.touch_keys(&[(succ_rec.id.clone(), t)]).await.unwrap();
    let new = db.key_by_id(&succ_rec.id).await.unwrap().unwrap();
    assert_eq!(
        new.last_used_at.unwrap().timestamp_millis(),
        t.timestamp_millis()
    );
}

#[tokio::test]
async fn an_unknown_stored_data_class_is_corrupt_not_a_default() {
    // A class this version does not know must not silently become "no class" (DP-4).
    use sqlx::Connection;
    let (dir, db) = open().await;
    let hasher = KeyHasher::new([3; 32]);
    let key = VirtualKey::generate(Environment::Production);
    let rec = KeyRecord::new(&key, hasher.hash(&key), "svc");
    db.insert_key(&rec).await.unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let mut raw = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("UPDATE virtual_keys SET data_class = 'secret' WHERE id = ?")
        .bind(&rec.id)
        .execute(&mut raw)
        .await
        .unwrap();
    let err = db.key_by_id(&rec.id).await.unwrap_err().to_string();
    assert!(err.contains("virtual_keys.data_class"), "{err}");
}

#[tokio::test]
async fn rotation_never_extends_an_earlier_expiry() {
    let (_dir, db) = open().await;
    let hasher = KeyHasher::new([3; 32]);
    let key = VirtualKey::generate(Environment::Staging);
    let mut rec = KeyRecord::new(&key, hasher.hash(&key), "a");
    let soon = Utc::now() + Duration::minutes(5);
    rec.expires_at = Some(soon);
    db.insert_key(&rec).await.unwrap();
    db.mark_rotated(&rec.id, "key_x", Utc::now() + Duration::days(3))
        .await
        .unwrap();
    let got = db.key_by_id(&rec.id).await.unwrap().unwrap();
    assert_eq!(
        got.expires_at.unwrap().timestamp_millis(),
        soon.timestamp_millis()
    );
}

#[tokio::test]
async fn keystore_round_trip_and_tamper_detection() {
    let (_dir, db) = open().await;
    let store = Store::from_backend(db.clone());
    let ks = Keystore::new(store.secrets.clone(), &MasterKey::from_bytes([5; 32]));
    ks.set("openai", &SecretString::from("sk-test-value".to_owned()))
        .await
        .unwrap();
    assert_eq!(
        ks.get("openai").await.unwrap().unwrap().expose_secret(),
        "sk-test-value"
    );
    assert!(ks.get("missing").await.unwrap().is_none());
    assert_eq!(ks.names().await.unwrap(), vec!["openai".to_owned()]);

    // The raw row never holds the plaintext.
    let (_, ct) = db.get_sealed("openai").await.unwrap().unwrap();
    assert!(!String::from_utf8_lossy(&ct).contains("sk-test-value"));

    // A different master key cannot open it.
    let other = Keystore::new(store.secrets.clone(), &MasterKey::from_bytes([6; 32]));
    assert!(other.get("openai").await.is_err());

    // A sealed value moved to another name fails to open (name is associated data).
    let (nonce, ct) = db.get_sealed("openai").await.unwrap().unwrap();
    db.put_sealed("anthropic", &nonce, &ct).await.unwrap();
    assert!(ks.get("anthropic").await.is_err());

    // Flipped ciphertext bits are detected.
    let mut bad = ct.clone();
    bad[0] ^= 1;
    db.put_sealed("openai", &nonce, &bad).await.unwrap();
    assert!(ks.get("openai").await.is_err());
    // A truncated nonce is an error, not a panic.
    db.put_sealed("openai", &nonce[..3], &ct).await.unwrap();
    assert!(ks.get("openai").await.is_err());

    assert!(
        ks.set("bad name!", &SecretString::from("x".to_owned()))
            .await
            .is_err()
    );
    assert!(ks.delete("openai").await.unwrap());
}
