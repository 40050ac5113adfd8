//! The audit chain on each backend: each kind of tampering is named at the right sequence
//! number, truncation is caught by a checkpoint, concurrent writers to one chain queue
//! instead of forking it, and retention (with time moved forward) deletes and crypto-shreds
//! payloads, honours legal holds and prunes records only up to a signed checkpoint, after
//! which the chain still verifies.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use tollgate_store::audit::payload::Keyring;
use tollgate_store::audit::verify::verify;
use tollgate_store::audit::{
    AuditStore, HoldScope, LegalHold, NewRecord, PayloadKind, PurgePlan, RecordKind, Signer,
    record_hash,
};

use crate::backend::{Arg, TestDb, on_each_backend};

const MAC: [u8; 32] = [1; 32];
const WRAP: [u8; 32] = [2; 32];

on_each_backend!(
    an_untouched_chain_verifies_across_batches_and_writers,
    a_modified_record_is_named,
    a_modified_time_or_key_column_is_named,
    a_deleted_record_is_named,
    reordered_records_are_named,
    an_inserted_record_is_named_even_with_a_recomputed_hash,
    truncation_is_caught_by_a_checkpoint_kept_elsewhere,
    a_lazy_truncation_is_caught_by_the_head_or_stored_checkpoint,
    a_checkpoint_signed_by_another_key_or_altered_fails,
    concurrent_writers_to_one_chain_queue_instead_of_forking_it,
    a_large_batch_with_payloads_is_one_append,
    retention_deletes_shreds_and_prunes_but_holds_and_the_chain_survive,
    a_dry_run_with_nothing_to_delete_shreds_a_past_day_without_payloads,
    a_payload_moved_to_another_request_does_not_open,
    the_oldest_payload_per_kind_follows_the_purge,
);

struct Fixture {
    /// The database, for raw SQL.
    raw: TestDb,
    db: Arc<dyn AuditStore>,
    signer: Signer,
}

impl Fixture {
    fn new(raw: TestDb) -> Self {
        Self {
            db: raw.store.audit.clone(),
            raw,
            signer: Signer::generate(),
        }
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

async fn an_untouched_chain_verifies_across_batches_and_writers(db: TestDb) {
    let f = Fixture::new(db);
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

async fn a_modified_record_is_named(db: TestDb) {
    let f = Fixture::new(db);
    f.chain(10).await;
    f.raw.exec("UPDATE audit_records SET body = replace(body, '\"status\":200', '\"status\":201') WHERE seq = 5", &[]).await;
    let (seq, what) = f.first_bad().await.unwrap();
    assert_eq!(seq, 5);
    assert!(what.contains("modified"), "{what}");
}

async fn a_modified_time_or_key_column_is_named(db: TestDb) {
    let f = Fixture::new(db);
    f.chain(6).await;
    f.raw
        .exec("UPDATE audit_records SET ts = ts + 1 WHERE seq = 3", &[])
        .await;
    assert_eq!(f.first_bad().await.unwrap().0, 3);
    f.raw
        .exec("UPDATE audit_records SET ts = ts - 1 WHERE seq = 3", &[])
        .await;
    assert_eq!(f.first_bad().await, None);
    f.raw
        .exec(
            "UPDATE audit_records SET key_id = 'someone-else' WHERE seq = 4",
            &[],
        )
        .await;
    let (seq, what) = f.first_bad().await.unwrap();
    assert_eq!(seq, 4);
    assert!(what.contains("column"), "{what}");
}

async fn a_deleted_record_is_named(db: TestDb) {
    let f = Fixture::new(db);
    f.chain(10).await;
    f.raw
        .exec("DELETE FROM audit_records WHERE seq = 4", &[])
        .await;
    let (seq, what) = f.first_bad().await.unwrap();
    assert_eq!(seq, 4);
    assert!(what.contains("missing"), "{what}");
}

async fn reordered_records_are_named(db: TestDb) {
    let f = Fixture::new(db);
    f.chain(10).await;
    for q in [
        "UPDATE audit_records SET seq = -1 WHERE seq = 6",
        "UPDATE audit_records SET seq = 6 WHERE seq = 7",
        "UPDATE audit_records SET seq = 7 WHERE seq = -1",
    ] {
        f.raw.exec(q, &[]).await;
    }
    assert_eq!(f.first_bad().await.unwrap().0, 6);
}

async fn an_inserted_record_is_named_even_with_a_recomputed_hash(db: TestDb) {
    let f = Fixture::new(db);
    f.chain(8).await;
    // Make room at 5 and insert a record whose prev_hash and hash are correct: only the MAC,
    // which needs the master key, gives it away.
    for s in (5..=8).rev() {
        f.raw
            .exec(
                "UPDATE audit_records SET seq = seq + 1 WHERE seq = ?",
                &[Arg::Int(s)],
            )
            .await;
    }
    let prev = f.db.record_at("gw", 4).await.unwrap().unwrap();
    let body = r#"{"i":0,"key_id":"k1","status":200,"team":"team-a"}"#;
    let ts = Utc::now().timestamp_millis();
    let hash = record_hash("gw", 5, ts, "request", "req_forged", &prev.hash, body);
    f.raw
        .exec(
            "INSERT INTO audit_records (instance, seq, ts, kind, ref_id, key_id, team, body, prev_hash, hash, mac)
             VALUES ('gw', 5, ?, 'request', 'req_forged', 'k1', 'team-a', ?, ?, ?, ?)",
            &[
                Arg::Int(ts),
                Arg::Text(body),
                Arg::Bytes(&prev.hash),
                Arg::Bytes(&hash),
                Arg::Bytes(&[0; 32]),
            ],
        )
        .await;
    let (seq, what) = f.first_bad().await.unwrap();
    assert_eq!(seq, 5);
    assert!(what.contains("MAC"), "{what}");
    // Without the master key the chain still breaks, one record later.
    let r = verify(f.db.as_ref(), None, None, &[]).await.unwrap();
    assert_eq!(r.chains[0].problem.as_ref().unwrap().seq, 6);
}

async fn truncation_is_caught_by_a_checkpoint_kept_elsewhere(db: TestDb) {
    let f = Fixture::new(db);
    f.chain(10).await;
    let saved = f.db.checkpoints("gw").await.unwrap();
    // A thorough attacker removes the tail, rewinds the head and drops the stored checkpoint.
    let h8 = f.db.record_at("gw", 8).await.unwrap().unwrap().hash;
    for q in [
        "DELETE FROM audit_records WHERE seq > 8",
        "DELETE FROM audit_checkpoints",
    ] {
        f.raw.exec(q, &[]).await;
    }
    f.raw
        .exec(
            "UPDATE audit_heads SET seq = 8, hash = ? WHERE instance = 'gw'",
            &[Arg::Bytes(&h8)],
        )
        .await;
    assert_eq!(
        f.first_bad().await,
        None,
        "undetectable without the saved checkpoint"
    );
    let (seq, what) = f.first_bad_with(&saved).await.unwrap();
    assert_eq!(seq, 9);
    assert!(what.contains("truncated"), "{what}");
}

async fn a_lazy_truncation_is_caught_by_the_head_or_stored_checkpoint(db: TestDb) {
    let f = Fixture::new(db);
    f.chain(10).await;
    f.raw
        .exec("DELETE FROM audit_records WHERE seq > 7", &[])
        .await;
    let (seq, what) = f.first_bad().await.unwrap();
    assert_eq!(seq, 8);
    assert!(what.contains("truncated"), "{what}");
}

async fn a_checkpoint_signed_by_another_key_or_altered_fails(db: TestDb) {
    let f = Fixture::new(db);
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

/// Two handles on one database (as two processes configured with the same instance id, or
/// a gateway and the CLI would have) append to one chain at once: the appends queue on the
/// chain's head, so the chain has every record exactly once and verifies.
async fn concurrent_writers_to_one_chain_queue_instead_of_forking_it(db: TestDb) {
    const WRITERS: u64 = 4;
    const BATCHES: u64 = 15;
    const PER_BATCH: u64 = 3;
    let f = Fixture::new(db);
    let second = f.raw.reopen().await.audit;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = if w % 2 == 0 {
            f.db.clone()
        } else {
            second.clone()
        };
        let records: Vec<Vec<NewRecord>> = (0..BATCHES)
            .map(|b| {
                (0..PER_BATCH)
                    .map(|i| f.record((w * 1000) + b * PER_BATCH + i, Utc::now(), "k1"))
                    .collect()
            })
            .collect();
        tasks.push(tokio::spawn(async move {
            for batch in records {
                store.append("gw", &batch, &MAC).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let total = WRITERS * BATCHES * PER_BATCH;
    assert_eq!(f.db.head("gw").await.unwrap().unwrap().seq, total);
    f.checkpoint().await;
    let r = verify(
        f.db.as_ref(),
        Some(&MAC),
        Some(&f.signer.verifying_key()),
        &[],
    )
    .await
    .unwrap();
    assert!(r.ok(), "{r:?}");
    let gw = &r.chains[0];
    assert_eq!((gw.first_seq, gw.last_seq, gw.records), (1, total, total));
    let mut refs: Vec<String> =
        f.db.records("gw", 1, u32::MAX)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.ref_id)
            .collect();
    refs.sort();
    refs.dedup();
    assert_eq!(refs.len() as u64, total, "every record exactly once");
}

/// A batch larger than one multi-row INSERT, with two payloads a record, lands whole.
async fn a_large_batch_with_payloads_is_one_append(db: TestDb) {
    let f = Fixture::new(db);
    let keyring = Keyring::new(f.db.clone(), WRAP);
    let now = Utc::now();
    let mut batch = Vec::new();
    for i in 1..=600 {
        batch.push(sealed(&keyring, &f, i, now, "k1").await);
    }
    assert_eq!(f.db.append("gw", &batch, &MAC).await.unwrap().seq, 600);
    assert_eq!(f.db.records("gw", 1, 1000).await.unwrap().len(), 600);
    let p = f.db.payloads("req_599").await.unwrap();
    assert_eq!(p.len(), 2);
    assert_eq!(
        keyring
            .open("req_599", &p[0].sealed)
            .await
            .unwrap()
            .unwrap(),
        b"answer 599"
    );
    f.checkpoint().await;
    assert_eq!(f.first_bad().await, None);
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

async fn retention_deletes_shreds_and_prunes_but_holds_and_the_chain_survive(db: TestDb) {
    let f = Fixture::new(db);
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
        reviews_before: None,
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
    f.raw
        .exec("DELETE FROM audit_checkpoints WHERE seq = 6", &[])
        .await;
    let r = verify(f.db.as_ref(), Some(&MAC), Some(&vk), &[])
        .await
        .unwrap();
    assert!(!r.ok());
}

async fn the_oldest_payload_per_kind_follows_the_purge(db: TestDb) {
    let f = Fixture::new(db);
    assert!(f.db.oldest_payloads().await.unwrap().is_empty());
    let keyring = Keyring::new(f.db.clone(), WRAP);
    let now = Utc::now();
    let old = now - Duration::days(40);
    let recent = now - Duration::hours(1);
    let batch = vec![
        sealed(&keyring, &f, 1, old, "k1").await,
        sealed(&keyring, &f, 2, recent, "k1").await,
    ];
    f.db.append("gw", &batch, &MAC).await.unwrap();
    f.checkpoint().await;
    let millis = |v: Vec<(PayloadKind, DateTime<Utc>)>| -> Vec<(PayloadKind, i64)> {
        v.into_iter()
            .map(|(k, t)| (k, t.timestamp_millis()))
            .collect()
    };
    assert_eq!(
        millis(f.db.oldest_payloads().await.unwrap()),
        vec![
            (PayloadKind::Completion, old.timestamp_millis()),
            (PayloadKind::Prompt, old.timestamp_millis()),
        ]
    );
    // Purging prompts older than 30 days leaves the old completion the oldest of its kind.
    let plan = PurgePlan {
        payloads: vec![(PayloadKind::Prompt, now - Duration::days(30))],
        ..PurgePlan::default()
    };
    f.db.purge(&plan, now).await.unwrap();
    assert_eq!(
        millis(f.db.oldest_payloads().await.unwrap()),
        vec![
            (PayloadKind::Completion, old.timestamp_millis()),
            (PayloadKind::Prompt, recent.timestamp_millis()),
        ]
    );
}

async fn a_payload_moved_to_another_request_does_not_open(db: TestDb) {
    let f = Fixture::new(db);
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

/// Crypto-shredding needs no payload deletion: a past day whose payloads are all gone loses
/// its key, in a dry run only on paper; today's key is never destroyed.
async fn a_dry_run_with_nothing_to_delete_shreds_a_past_day_without_payloads(db: TestDb) {
    let f = Fixture::new(db);
    let keyring = Keyring::new(f.db.clone(), WRAP);
    let now = Utc::now();
    let old = now - Duration::days(3);
    let p = keyring
        .seal("req_old", PayloadKind::Prompt, old, b"old")
        .await
        .unwrap();
    keyring
        .seal("req_new", PayloadKind::Prompt, now, b"new")
        .await
        .unwrap();
    let old_day = tollgate_store::audit::payload::day_of(old);
    let plan = |dry_run| PurgePlan {
        dry_run,
        ..PurgePlan::default()
    };
    let dry = f.db.purge(&plan(true), now).await.unwrap();
    assert_eq!(dry.day_keys_destroyed, vec![old_day.clone()]);
    assert!(dry.records_pruned.is_empty());
    assert_eq!(
        keyring.open("req_old", &p).await.unwrap().unwrap(),
        b"old",
        "a dry run destroys nothing"
    );
    let done = f.db.purge(&plan(false), now).await.unwrap();
    assert_eq!(done.day_keys_destroyed, vec![old_day.clone()]);
    assert_eq!(f.db.day_key(&old_day).await.unwrap(), Some(None));
    let fresh = Keyring::new(f.db.clone(), WRAP);
    assert!(fresh.open("req_old", &p).await.unwrap().is_none());
    // Nothing left to do the second time.
    let again = f.db.purge(&plan(false), now).await.unwrap();
    assert!(again.day_keys_destroyed.is_empty());
}
