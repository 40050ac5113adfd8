//! The audit chain against a real SQLite file: each kind of tampering is named at the right
//! sequence number, truncation is caught by a checkpoint, and retention (with time moved
//! forward) deletes and crypto-shreds payloads, honours legal holds and prunes records only
//! up to a signed checkpoint, after which the chain still verifies.

use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use sqlx::ConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tollgate_store::audit::payload::Keyring;
use tollgate_store::audit::verify::verify;
use tollgate_store::audit::{
    AuditStore, HoldScope, LegalHold, NewRecord, PayloadKind, PurgePlan, RecordKind, Signer,
    record_hash,
};
use tollgate_store::sqlite::SqliteStore;

const MAC: [u8; 32] = [1; 32];
const WRAP: [u8; 32] = [2; 32];

struct Fixture {
    dir: tempfile::TempDir,
    db: Arc<SqliteStore>,
    signer: Signer,
}

impl Fixture {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(SqliteStore::open(&dir.path().join("t.db")).await.unwrap());
        Self {
            dir,
            db,
            signer: Signer::generate(),
        }
    }

    async fn raw(&self) -> SqliteConnection {
        SqliteConnectOptions::from_str("sqlite://")
            .unwrap()
            .filename(self.dir.path().join("t.db"))
            .connect()
            .await
            .unwrap()
    }

    fn record(&self, i: u64, time: DateTime<Utc>, key: &str) -> NewRecord {
        NewRecord::new(
            time,
            RecordKind::Request,
            format!("req_{i}"),
            Some(key.to_owned()),
            Some("team-a".to_owned()),
            &json!({"i": i, "status": 200, "key_id": key, "team": "team-a"}),
        )
    }

    /// `n` records on chain `gw`, then a signed checkpoint at the head.
    async fn chain(&self, n: u64) {
        let batch: Vec<NewRecord> = (1..=n).map(|i| self.record(i, Utc::now(), "k1")).collect();
        let head = self.db.append("gw", &batch, &MAC).await.unwrap();
        assert_eq!(head.seq, n);
        self.checkpoint().await;
    }

    async fn checkpoint(&self) {
        let head = self.db.head("gw").await.unwrap().unwrap();
        let cp = self.signer.checkpoint("gw", head.seq, &head.hash);
        self.db.put_checkpoint(&cp).await.unwrap();
    }

    /// The first problem `verify` reports, with the MAC checked and the key pinned.
    async fn first_bad(&self) -> Option<(u64, String)> {
        self.first_bad_with(&[]).await
    }

    async fn first_bad_with(
        &self,
        external: &[tollgate_store::audit::Checkpoint],
    ) -> Option<(u64, String)> {
        let vk = self.signer.verifying_key();
        let r = verify(self.db.as_ref(), Some(&MAC), Some(&vk), external)
            .await
            .unwrap();
        let c = r.chains.iter().find(|c| c.instance == "gw")?;
        c.problem
            .clone()
            .or_else(|| c.checkpoint_problems.first().cloned())
            .map(|p| (p.seq, p.what))
    }
}

#[tokio::test]
async fn an_untouched_chain_verifies_across_batches_and_writers() {
    let f = Fixture::new().await;
    f.chain(10).await;
    // A second batch continues the same chain; another instance has its own.
    let more: Vec<NewRecord> = (11..=15).map(|i| f.record(i, Utc::now(), "k1")).collect();
    assert_eq!(f.db.append("gw", &more, &MAC).await.unwrap().seq, 15);
    f.db.append("cli", &[f.record(99, Utc::now(), "k9")], &MAC)
        .await
        .unwrap();
    let r = verify(
        f.db.as_ref(),
        Some(&MAC),
        Some(&f.signer.verifying_key()),
        &[],
    )
    .await
    .unwrap();
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.chains.len(), 2);
    let gw = r.chains.iter().find(|c| c.instance == "gw").unwrap();
    assert_eq!((gw.first_seq, gw.last_seq, gw.records), (1, 15, 15));
    assert_eq!(gw.checkpoints_verified, 1);
    assert_eq!(gw.unsigned_tail, 5);
}

#[tokio::test]
async fn a_modified_record_is_named() {
    let f = Fixture::new().await;
    f.chain(10).await;
    let mut raw = f.raw().await;
    sqlx::query("UPDATE audit_records SET body = replace(body, '\"status\":200', '\"status\":201') WHERE seq = 5")
        .execute(&mut raw)
        .await
        .unwrap();
    let (seq, what) = f.first_bad().await.unwrap();
    assert_eq!(seq, 5);
    assert!(what.contains("modified"), "{what}");
}

#[tokio::test]
async fn a_modified_time_or_key_column_is_named() {
    let f = Fixture::new().await;
    f.chain(6).await;
    let mut raw = f.raw().await;
    sqlx::query("UPDATE audit_records SET ts = ts + 1 WHERE seq = 3")
        .execute(&mut raw)
        .await
        .unwrap();
    assert_eq!(f.first_bad().await.unwrap().0, 3);
    sqlx::query("UPDATE audit_records SET ts = ts - 1 WHERE seq = 3")
        .execute(&mut raw)
        .await
        .unwrap();
    assert_eq!(f.first_bad().await, None);
    sqlx::query("UPDATE audit_records SET key_id = 'someone-else' WHERE seq = 4")
        .execute(&mut raw)
        .await
        .unwrap();
    let (seq, what) = f.first_bad().await.unwrap();
    assert_eq!(seq, 4);
    assert!(what.contains("column"), "{what}");
}

#[tokio::test]
async fn a_deleted_record_is_named() {
    let f = Fixture::new().await;
    f.chain(10).await;
    let mut raw = f.raw().await;
    sqlx::query("DELETE FROM audit_records WHERE seq = 4")
        .execute(&mut raw)
        .await
        .unwrap();
    let (seq, what) = f.first_bad().await.unwrap();
    assert_eq!(seq, 4);
    assert!(what.contains("missing"), "{what}");
}

#[tokio::test]
async fn reordered_records_are_named() {
    let f = Fixture::new().await;
    f.chain(10).await;
    let mut raw = f.raw().await;
    for q in [
        "UPDATE audit_records SET seq = -1 WHERE seq = 6",
        "UPDATE audit_records SET seq = 6 WHERE seq = 7",
        "UPDATE audit_records SET seq = 7 WHERE seq = -1",
    ] {
        sqlx::query(q).execute(&mut raw).await.unwrap();
    }
    assert_eq!(f.first_bad().await.unwrap().0, 6);
}

#[tokio::test]
async fn an_inserted_record_is_named_even_with_a_recomputed_hash() {
    let f = Fixture::new().await;
    f.chain(8).await;
    let mut raw = f.raw().await;
    // Make room at 5 and insert a record whose prev_hash and hash are correct: only the MAC,
    // which needs the master key, gives it away.
    for s in (5..=8).rev() {
        sqlx::query("UPDATE audit_records SET seq = seq + 1 WHERE seq = ?")
            .bind(s)
            .execute(&mut raw)
            .await
            .unwrap();
    }
    let prev = f.db.record_at("gw", 4).await.unwrap().unwrap();
    let body = r#"{"i":0,"key_id":"k1","status":200,"team":"team-a"}"#;
    let ts = Utc::now().timestamp_millis();
    let hash = record_hash("gw", 5, ts, "request", "req_forged", &prev.hash, body);
    sqlx::query(
        "INSERT INTO audit_records (instance, seq, ts, kind, ref_id, key_id, team, body, prev_hash, hash, mac)
         VALUES ('gw', 5, ?, 'request', 'req_forged', 'k1', 'team-a', ?, ?, ?, ?)",
    )
    .bind(ts)
    .bind(body)
    .bind(&prev.hash[..])
    .bind(&hash[..])
    .bind(&[0u8; 32][..])
    .execute(&mut raw)
    .await
    .unwrap();
    let (seq, what) = f.first_bad().await.unwrap();
    assert_eq!(seq, 5);
    assert!(what.contains("MAC"), "{what}");
    // Without the master key the chain still breaks, one record later.
    let r = verify(f.db.as_ref(), None, None, &[]).await.unwrap();
    assert_eq!(r.chains[0].problem.as_ref().unwrap().seq, 6);
}

#[tokio::test]
async fn truncation_is_caught_by_a_checkpoint_kept_elsewhere() {
    let f = Fixture::new().await;
    f.chain(10).await;
    let saved = f.db.checkpoints("gw").await.unwrap();
    let mut raw = f.raw().await;
    // A thorough attacker removes the tail, rewinds the head and drops the stored checkpoint.
    let h8 = f.db.record_at("gw", 8).await.unwrap().unwrap().hash;
    for q in [
        "DELETE FROM audit_records WHERE seq > 8",
        "DELETE FROM audit_checkpoints",
    ] {
        sqlx::query(q).execute(&mut raw).await.unwrap();
    }
    sqlx::query("UPDATE audit_heads SET seq = 8, hash = ? WHERE instance = 'gw'")
        .bind(&h8[..])
        .execute(&mut raw)
        .await
        .unwrap();
    assert_eq!(
        f.first_bad().await,
        None,
        "undetectable without the saved checkpoint"
    );
    let (seq, what) = f.first_bad_with(&saved).await.unwrap();
    assert_eq!(seq, 9);
    assert!(what.contains("truncated"), "{what}");
}

#[tokio::test]
async fn a_lazy_truncation_is_caught_by_the_head_or_stored_checkpoint() {
    let f = Fixture::new().await;
    f.chain(10).await;
    let mut raw = f.raw().await;
    sqlx::query("DELETE FROM audit_records WHERE seq > 7")
        .execute(&mut raw)
        .await
        .unwrap();
    let (seq, what) = f.first_bad().await.unwrap();
    assert_eq!(seq, 8);
    assert!(what.contains("truncated"), "{what}");
}

#[tokio::test]
async fn a_checkpoint_signed_by_another_key_or_altered_fails() {
    let f = Fixture::new().await;
    f.chain(5).await;
    let other = Signer::generate();
    let head = f.db.head("gw").await.unwrap().unwrap();
    let forged = other.checkpoint("gw", head.seq, &head.hash);
    let (_, what) = f.first_bad_with(&[forged]).await.unwrap();
    assert!(
        what.contains("another key") || what.contains("other than"),
        "{what}"
    );
    let mut cp = f.db.checkpoints("gw").await.unwrap().remove(0);
    cp.seq = 4;
    let (_, what) = f.first_bad_with(&[cp]).await.unwrap();
    assert!(what.contains("signature"), "{what}");
}

async fn sealed(
    keyring: &Keyring,
    f: &Fixture,
    i: u64,
    time: DateTime<Utc>,
    key: &str,
) -> NewRecord {
    let mut r = f.record(i, time, key);
    r.payloads.push(
        keyring
            .seal(
                &r.ref_id,
                PayloadKind::Prompt,
                time,
                format!("prompt {i}").as_bytes(),
            )
            .await
            .unwrap(),
    );
    r.payloads.push(
        keyring
            .seal(
                &r.ref_id,
                PayloadKind::Completion,
                time,
                format!("answer {i}").as_bytes(),
            )
            .await
            .unwrap(),
    );
    r
}

#[tokio::test]
async fn retention_deletes_shreds_and_prunes_but_holds_and_the_chain_survive() {
    let f = Fixture::new().await;
    let keyring = Keyring::new(f.db.clone(), WRAP);
    let now = Utc::now();
    let old = now - Duration::days(40);
    let recent = now - Duration::hours(1);
    // 6 old records (4 of key k1, 2 of the held key k2), a checkpoint, then 3 recent ones.
    let mut batch = Vec::new();
    for i in 1..=6 {
        let key = if i == 5 || i == 6 { "k2" } else { "k1" };
        batch.push(sealed(&keyring, &f, i, old, key).await);
    }
    f.db.append("gw", &batch, &MAC).await.unwrap();
    f.checkpoint().await;
    let mut batch = Vec::new();
    for i in 7..=9 {
        batch.push(sealed(&keyring, &f, i, recent, "k1").await);
    }
    f.db.append("gw", &batch, &MAC).await.unwrap();
    f.checkpoint().await;
    f.db.put_hold(&LegalHold {
        scope: HoldScope::Key,
        value: "k2".into(),
        reason: "case 7".into(),
        placed_by: "adm_x".into(),
        placed_at: now,
    })
    .await
    .unwrap();

    let plan = |dry_run| PurgePlan {
        payloads: vec![
            (PayloadKind::Prompt, now - Duration::days(30)),
            (PayloadKind::Completion, now - Duration::days(30)),
        ],
        metadata_before: Some(now - Duration::days(30)),
        dry_run,
    };
    // A dry run reports and changes nothing.
    let dry = f.db.purge(&plan(true), now).await.unwrap();
    assert_eq!(dry.payloads_deleted["prompt"], 4);
    assert_eq!(dry.payloads_held, 4);
    assert!(
        dry.day_keys_destroyed.is_empty(),
        "the held payloads keep the day's key"
    );
    assert_eq!(
        dry.records_pruned.get("gw"),
        None,
        "held records block pruning past them"
    );
    assert_eq!(f.db.payloads("req_1").await.unwrap().len(), 2);

    let done = f.db.purge(&plan(false), now).await.unwrap();
    assert_eq!(done.payloads_deleted["prompt"], 4);
    assert_eq!(done.payloads_deleted["completion"], 4);
    assert!(f.db.payloads("req_1").await.unwrap().is_empty());
    let held = f.db.payloads("req_5").await.unwrap();
    assert_eq!(held.len(), 2, "legal hold keeps k2's payloads");
    assert_eq!(
        keyring
            .open("req_5", &held[0].sealed)
            .await
            .unwrap()
            .unwrap(),
        b"answer 5"
    );
    assert_eq!(
        f.db.payloads("req_8").await.unwrap().len(),
        2,
        "recent ones stay"
    );

    // Lift the hold: the rest goes, the old day's key is destroyed, and records are pruned
    // up to the checkpoint at 6; the chain still verifies from its anchor.
    assert!(f.db.remove_hold(HoldScope::Key, "k2").await.unwrap());
    let done = f.db.purge(&plan(false), now).await.unwrap();
    assert_eq!(done.payloads_deleted["prompt"], 2);
    assert_eq!(
        done.day_keys_destroyed,
        vec![tollgate_store::audit::payload::day_of(old)]
    );
    assert_eq!(done.records_pruned.get("gw"), Some(&6));
    assert!(f.db.record_at("gw", 6).await.unwrap().is_none());
    assert!(f.db.record_at("gw", 7).await.unwrap().is_some());
    let vk = f.signer.verifying_key();
    let r = verify(f.db.as_ref(), Some(&MAC), Some(&vk), &[])
        .await
        .unwrap();
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.chains[0].first_seq, 7);

    // Crypto-shredding: a payload of that day (restored from a backup, say) cannot be opened.
    let fresh = Keyring::new(f.db.clone(), WRAP);
    let restored = sealed(&keyring, &f, 100, old, "k1").await;
    assert!(
        fresh
            .open(&restored.ref_id, &restored.payloads[0])
            .await
            .unwrap()
            .is_none()
    );
    // Deleting the anchor's checkpoint is noticed.
    let mut raw = f.raw().await;
    sqlx::query("DELETE FROM audit_checkpoints WHERE seq = 6")
        .execute(&mut raw)
        .await
        .unwrap();
    let r = verify(f.db.as_ref(), Some(&MAC), Some(&vk), &[])
        .await
        .unwrap();
    assert!(!r.ok());
}

#[tokio::test]
async fn a_payload_moved_to_another_request_does_not_open() {
    let f = Fixture::new().await;
    let keyring = Keyring::new(f.db.clone(), WRAP);
    let p = keyring
        .seal("req_a", PayloadKind::Prompt, Utc::now(), b"secret prompt")
        .await
        .unwrap();
    assert!(keyring.open("req_b", &p).await.is_err());
    let mut tampered = p.clone();
    tampered.ciphertext[0] ^= 1;
    assert!(keyring.open("req_a", &tampered).await.is_err());
    assert_eq!(
        keyring.open("req_a", &p).await.unwrap().unwrap(),
        b"secret prompt"
    );
    // A keyring with another wrap key (another master key) cannot open the day key.
    let wrong = Keyring::new(f.db.clone(), [9; 32]);
    assert!(wrong.open("req_a", &p).await.is_err());
}
