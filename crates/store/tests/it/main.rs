//! Integration tests of the store. Every test runs on SQLite and on Postgres
//! ([`backend::on_each_backend!`]): `sqlite::…` and `postgres::…` in the test names.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod backend;

mod audit;
mod budget;
mod prompt;
mod review;
mod staging;

use chrono::{Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use tollgate_store::class::DataClass;
use tollgate_store::key::{Environment, KeyHasher, KeyRecord, KeyState, VirtualKey};
use tollgate_store::keystore::Keystore;
use tollgate_store::master::MasterKey;
use tollgate_store::{AdminCredential, AdminRevocation, Store, StoreError};

use backend::{Arg, TestDb, on_each_backend};

on_each_backend!(
    key_lifecycle_create_lookup_revoke_rotate,
    a_keys_role_round_trips_and_survives_rotation,
    an_unknown_stored_data_class_is_corrupt_not_a_default,
    rotation_never_extends_an_earlier_expiry,
    touching_keys_keeps_the_latest_use,
    keystore_round_trip_and_tamper_detection,
    admin_credentials_are_found_by_hash_until_revoked,
    admin_credentials_are_listed_and_revoked_but_the_last_owner_stays,
    two_owners_revoking_each_other_at_once_leave_one,
    corrupt_rows_are_errors_not_panics,
    a_store_location_opens_the_same_database,
    kill_switches_are_set_replaced_listed_and_cleared,
    an_expiring_switch_lifts_itself_and_never_shortens_a_permanent_one,
);

async fn kill_switches_are_set_replaced_listed_and_cleared(db: TestDb) {
    use tollgate_store::control::{KillSwitch, SwitchKind};
    let c = &db.store.control;
    assert!(c.switches().await.unwrap().is_empty());
    let mut s = KillSwitch {
        kind: SwitchKind::Provider,
        target: "openai".into(),
        reason: "outage".into(),
        set_by: "adm_1".into(),
        set_at: tollgate_store::now(),
        expires_at: None,
    };
    c.set_switch(&s).await.unwrap();
    s.reason = "still out".into();
    c.set_switch(&s).await.unwrap();
    c.set_switch(&KillSwitch {
        kind: SwitchKind::Lockdown,
        target: "*".into(),
        reason: "drill".into(),
        set_by: "adm_1".into(),
        set_at: tollgate_store::now(),
        expires_at: None,
    })
    .await
    .unwrap();
    let list = c.switches().await.unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.contains(&s), "the reason was replaced, not duplicated");
    assert!(
        c.clear_switch(SwitchKind::Provider, "openai")
            .await
            .unwrap()
    );
    assert!(
        !c.clear_switch(SwitchKind::Provider, "openai")
            .await
            .unwrap()
    );
    assert_eq!(c.switches().await.unwrap().len(), 1);
}

async fn an_expiring_switch_lifts_itself_and_never_shortens_a_permanent_one(db: TestDb) {
    use tollgate_store::control::{KillSwitch, SwitchKind};
    let c = &db.store.control;
    let now = tollgate_store::now();
    let switch = |target: &str, expires_at| KillSwitch {
        kind: SwitchKind::Key,
        target: target.into(),
        reason: "suspended automatically".into(),
        set_by: "abuse-detector".into(),
        set_at: now,
        expires_at,
    };
    // An automatic suspension is listed until it expires, with its expiry.
    let live = switch("key_live", Some(now + Duration::minutes(15)));
    c.set_switch(&live).await.unwrap();
    c.set_switch(&switch("key_over", Some(now - Duration::seconds(1))))
        .await
        .unwrap();
    assert_eq!(c.switches().await.unwrap(), vec![live.clone()]);
    // A person's switch replaces a suspension, and stays on...
    let mut manual = switch("key_live", None);
    manual.reason = "leaked".into();
    manual.set_by = "adm_1".into();
    c.set_switch(&manual).await.unwrap();
    assert_eq!(c.switches().await.unwrap(), vec![manual.clone()]);
    // ...and a later suspension of the same key does not make it lift itself.
    c.set_switch(&live).await.unwrap();
    assert_eq!(c.switches().await.unwrap(), vec![manual]);
    // An expired suspension is replaced by a new one.
    let again = switch("key_over", Some(now + Duration::minutes(5)));
    c.set_switch(&again).await.unwrap();
    assert_eq!(c.switches().await.unwrap().len(), 2);
    assert!(c.switches().await.unwrap().contains(&again));
    // Cleared early by a person.
    assert!(c.clear_switch(SwitchKind::Key, "key_over").await.unwrap());
    assert_eq!(c.switches().await.unwrap().len(), 1);
}

async fn a_keys_role_round_trips_and_survives_rotation(db: TestDb) {
    let db = &db.store.keys;
    let hasher = KeyHasher::new([4; 32]);
    let key = VirtualKey::generate(Environment::Production);
    let mut rec = KeyRecord::new(&key, hasher.hash(&key), "ft-pipeline");
    rec.role = Some("data-steward".into());
    db.insert_key(&rec).await.unwrap();
    let found = db.key_by_hash(&hasher.hash(&key)).await.unwrap().unwrap();
    assert_eq!(found.role.as_deref(), Some("data-steward"));
    // A rotated steward key stays a steward key; an app key stays an app key.
    let (_, succ) = found.successor(&hasher);
    assert_eq!(succ.role.as_deref(), Some("data-steward"));
    let plain = VirtualKey::generate(Environment::Staging);
    let plain_rec = KeyRecord::new(&plain, hasher.hash(&plain), "app");
    db.insert_key(&plain_rec).await.unwrap();
    let found = db.key_by_id(&plain_rec.id).await.unwrap().unwrap();
    assert_eq!(found.role, None);
}

async fn key_lifecycle_create_lookup_revoke_rotate(db: TestDb) {
    let db = &db.store.keys;
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

async fn an_unknown_stored_data_class_is_corrupt_not_a_default(db: TestDb) {
    // A class this version does not know must not silently become "no class" (DP-4).
    let hasher = KeyHasher::new([3; 32]);
    let key = VirtualKey::generate(Environment::Production);
    let rec = KeyRecord::new(&key, hasher.hash(&key), "svc");
    db.store.keys.insert_key(&rec).await.unwrap();
    db.exec(
        "UPDATE virtual_keys SET data_class = 'secret' WHERE id = ?",
        &[Arg::Text(&rec.id)],
    )
    .await;
    let err = db
        .store
        .keys
        .key_by_id(&rec.id)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("virtual_keys.data_class"), "{err}");
}

async fn rotation_never_extends_an_earlier_expiry(db: TestDb) {
    let db = &db.store.keys;
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

async fn keystore_round_trip_and_tamper_detection(db: TestDb) {
    let store = &db.store;
    let db = &db.store.secrets;
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

async fn touching_keys_keeps_the_latest_use(db: TestDb) {
    let keys = &db.store.keys;
    let hasher = KeyHasher::new([3; 32]);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let key = VirtualKey::generate(Environment::Production);
        let rec = KeyRecord::new(&key, hasher.hash(&key), "svc");
        keys.insert_key(&rec).await.unwrap();
        ids.push(rec.id);
    }
    let t0 = tollgate_store::now();
    let (t1, t2) = (t0 + Duration::seconds(1), t0 + Duration::seconds(2));
    // One batch naming a key twice, out of order, and a key that does not exist.
    keys.touch_keys(&[
        (ids[0].clone(), t2),
        (ids[1].clone(), t1),
        (ids[0].clone(), t0),
        ("key_gone".to_owned(), t2),
    ])
    .await
    .unwrap();
    // A later batch with an older time never moves a use backwards.
    keys.touch_keys(&[(ids[1].clone(), t0)]).await.unwrap();
    keys.touch_keys(&[]).await.unwrap();
    let used = |id: &str| {
        let id = id.to_owned();
        async move { keys.key_by_id(&id).await.unwrap().unwrap().last_used_at }
    };
    assert_eq!(used(&ids[0]).await, Some(t2));
    assert_eq!(used(&ids[1]).await, Some(t1));
    assert_eq!(used(&ids[2]).await, None);
}

async fn admin_credentials_are_found_by_hash_until_revoked(db: TestDb) {
    let admins = &db.store.admins;
    let hasher = KeyHasher::new([4; 32]);
    assert_eq!(admins.active_admin_count().await.unwrap(), 0);
    let cred = AdminCredential {
        id: "adm_1".into(),
        hash: hasher.hash_text("tga_secret_1"),
        name: "ops".into(),
        role: "owner".into(),
        created_at: tollgate_store::now(),
    };
    admins.insert_admin(&cred).await.unwrap();
    assert!(admins.insert_admin(&cred).await.is_err(), "ids are unique");
    assert_eq!(admins.active_admin_count().await.unwrap(), 1);
    assert_eq!(
        admins.admin_by_hash(&cred.hash).await.unwrap(),
        Some(cred.clone())
    );
    assert_eq!(
        admins
            .admin_by_hash(&hasher.hash_text("tga_other"))
            .await
            .unwrap(),
        None
    );
    db.exec(
        "UPDATE admin_credentials SET revoked_at = ? WHERE id = ?",
        &[Arg::Int(1), Arg::Text("adm_1")],
    )
    .await;
    assert_eq!(admins.active_admin_count().await.unwrap(), 0);
    assert_eq!(admins.admin_by_hash(&cred.hash).await.unwrap(), None);
}

fn admin(id: &str, role: &str, hasher: &KeyHasher, at_ms: i64) -> AdminCredential {
    AdminCredential {
        id: id.into(),
        hash: hasher.hash_text(&format!("tga_secret_{id}")),
        name: format!("person {id}"),
        role: role.into(),
        created_at: chrono::DateTime::from_timestamp_millis(at_ms).unwrap(),
    }
}

async fn admin_credentials_are_listed_and_revoked_but_the_last_owner_stays(db: TestDb) {
    let admins = &db.store.admins;
    let hasher = KeyHasher::new([4; 32]);
    assert!(admins.list_admins().await.unwrap().is_empty());
    let owner = admin("adm_a", "owner", &hasher, 1_000);
    let auditor = admin("adm_b", "auditor", &hasher, 2_000);
    admins.insert_admin(&auditor).await.unwrap();
    admins.insert_admin(&owner).await.unwrap();
    let list = admins.list_admins().await.unwrap();
    let ids: Vec<&str> = list.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["adm_a", "adm_b"], "oldest first");
    assert_eq!(list[1].role, "auditor");
    assert_eq!(list[1].name, "person adm_b");
    assert_eq!(list[1].created_at, auditor.created_at);
    assert!(list.iter().all(|a| a.revoked_at.is_none()));

    let at = chrono::DateTime::from_timestamp_millis(5_000).unwrap();
    let revoke = |id: &'static str| admins.revoke_admin(id, at);
    assert_eq!(revoke("adm_b").await.unwrap(), AdminRevocation::Revoked);
    assert_eq!(
        revoke("adm_b").await.unwrap(),
        AdminRevocation::AlreadyRevoked
    );
    assert_eq!(
        revoke("adm_nobody").await.unwrap(),
        AdminRevocation::NotFound
    );
    assert_eq!(admins.admin_by_hash(&auditor.hash).await.unwrap(), None);
    // The only owner cannot be revoked: nobody could make an owner again.
    assert_eq!(revoke("adm_a").await.unwrap(), AdminRevocation::LastOwner);
    assert_eq!(
        admins.admin_by_hash(&owner.hash).await.unwrap(),
        Some(owner.clone())
    );
    // A revoked owner does not count as the second one.
    let gone = admin("adm_c", "owner", &hasher, 3_000);
    admins.insert_admin(&gone).await.unwrap();
    assert_eq!(revoke("adm_c").await.unwrap(), AdminRevocation::Revoked);
    assert_eq!(revoke("adm_a").await.unwrap(), AdminRevocation::LastOwner);
    // With a second active owner, the first may go.
    admins
        .insert_admin(&admin("adm_d", "owner", &hasher, 4_000))
        .await
        .unwrap();
    assert_eq!(revoke("adm_a").await.unwrap(), AdminRevocation::Revoked);
    let list = admins.list_admins().await.unwrap();
    let revoked: Vec<&str> = list
        .iter()
        .filter(|a| a.revoked_at == Some(at))
        .map(|a| a.id.as_str())
        .collect();
    assert_eq!(revoked, ["adm_a", "adm_b", "adm_c"]);
    assert_eq!(admins.active_admin_count().await.unwrap(), 1);
}

async fn two_owners_revoking_each_other_at_once_leave_one(db: TestDb) {
    let admins = &db.store.admins;
    let hasher = KeyHasher::new([4; 32]);
    for round in 0..20 {
        let (a, b) = (format!("adm_x{round}"), format!("adm_y{round}"));
        admins
            .insert_admin(&admin(&a, "owner", &hasher, 1_000))
            .await
            .unwrap();
        admins
            .insert_admin(&admin(&b, "owner", &hasher, 1_000))
            .await
            .unwrap();
        let at = tollgate_store::now();
        let (ra, rb) = tokio::join!(admins.revoke_admin(&a, at), admins.revoke_admin(&b, at));
        let mut outcomes = [ra.unwrap(), rb.unwrap()];
        outcomes.sort_by_key(|o| *o == AdminRevocation::Revoked);
        assert_eq!(
            outcomes,
            [AdminRevocation::LastOwner, AdminRevocation::Revoked],
            "round {round}"
        );
        let active: Vec<_> = admins
            .list_admins()
            .await
            .unwrap()
            .into_iter()
            .filter(|x| x.role == "owner" && x.revoked_at.is_none())
            .collect();
        assert_eq!(active.len(), 1, "round {round}");
        // Leave the next round with no owner of this round's making.
        db.exec(
            "UPDATE admin_credentials SET revoked_at = 1 WHERE id = ?",
            &[Arg::Text(&active[0].id)],
        )
        .await;
    }
}

/// Rows altered behind the store's back (wrong-length hashes, unknown names, negative
/// sequence numbers) are reported as corrupt, naming the column, and never panic.
async fn corrupt_rows_are_errors_not_panics(db: TestDb) {
    use tollgate_store::audit::{NewRecord, RecordKind};

    fn corrupt<T: std::fmt::Debug>(r: Result<T, StoreError>, column: &str) {
        match r {
            Err(StoreError::Corrupt { what }) => assert_eq!(what, column),
            other => panic!("{column}: expected Corrupt, got {other:?}"),
        }
    }

    let hasher = KeyHasher::new([3; 32]);
    let key = VirtualKey::generate(Environment::Production);
    let rec = KeyRecord::new(&key, hasher.hash(&key), "svc");
    db.store.keys.insert_key(&rec).await.unwrap();
    db.exec(
        "UPDATE virtual_keys SET hash = ? WHERE id = ?",
        &[Arg::Bytes(&[7; 31]), Arg::Text(&rec.id)],
    )
    .await;
    corrupt(db.store.keys.key_by_id(&rec.id).await, "virtual_keys.hash");
    corrupt(db.store.keys.list_keys().await, "virtual_keys.hash");
    db.exec(
        "UPDATE virtual_keys SET hash = ?, environment = 'moon' WHERE id = ?",
        &[Arg::Bytes(&rec.hash.0), Arg::Text(&rec.id)],
    )
    .await;
    corrupt(
        db.store.keys.key_by_hash(&rec.hash).await,
        "virtual_keys.environment",
    );

    let audit = &db.store.audit;
    let batch: Vec<NewRecord> = (1..=3)
        .map(|i| {
            NewRecord::new(
                Utc::now(),
                RecordKind::Request,
                format!("req_{i}"),
                None,
                None,
                &serde_json::json!({"i": i}),
            )
        })
        .collect();
    audit.append("gw", &batch, &[1; 32]).await.unwrap();
    db.exec(
        "UPDATE audit_records SET prev_hash = ? WHERE seq = 2",
        &[Arg::Bytes(b"short")],
    )
    .await;
    corrupt(audit.record_at("gw", 2).await, "audit_records.prev_hash");
    corrupt(audit.records("gw", 1, 10).await, "audit_records.prev_hash");
    db.exec("UPDATE audit_records SET seq = -3 WHERE seq = 3", &[])
        .await;
    corrupt(audit.records_by_ref("req_3").await, "audit_records.seq");
    db.exec(
        "UPDATE audit_heads SET hash = ? WHERE instance = 'gw'",
        &[Arg::Bytes(&[0; 33])],
    )
    .await;
    corrupt(audit.head("gw").await, "audit_heads.hash");
    // The writer refuses to extend a chain whose head it cannot read.
    assert!(audit.append("gw", &batch, &[1; 32]).await.is_err());
    db.exec(
        "INSERT INTO legal_holds (scope, value, reason, placed_by, placed_at) VALUES ('galaxy', 'x', '', '', 0)",
        &[],
    )
    .await;
    corrupt(audit.holds().await, "legal_holds.scope");
}

/// `--store` locations: a SQLite path, or a Postgres URL (here with the test's schema as a
/// startup option), open the same database the test made.
async fn a_store_location_opens_the_same_database(db: TestDb) {
    let hasher = KeyHasher::new([3; 32]);
    let key = VirtualKey::generate(Environment::Staging);
    let rec = KeyRecord::new(&key, hasher.hash(&key), "svc");
    db.store.keys.insert_key(&rec).await.unwrap();
    let other = Store::connect(&db.location()).await.unwrap();
    other.keys.ping().await.unwrap();
    other.audit.writable().await.unwrap();
    assert_eq!(other.keys.key_by_id(&rec.id).await.unwrap(), Some(rec));
}

/// A server that accepts the connection but never answers (a hung Postgres, a black-holed
/// port) fails `connect` within the configured timeout instead of hanging start-up.
#[tokio::test]
async fn a_postgres_server_that_never_answers_times_out() {
    use tollgate_store::postgres::{PgOptions, PgStore};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let opts = PgOptions {
        connect_timeout: std::time::Duration::from_millis(300),
        ..PgOptions::default()
    };
    let started = std::time::Instant::now();
    let err = PgStore::connect(&format!("postgres://u@127.0.0.1:{port}/db"), &opts)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ConnectTimeout(_)), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}
