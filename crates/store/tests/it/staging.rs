//! The SQLite store's staging of lone audit records (`sqlite/appender.rs`): a record
//! committed alone (`append_one_blocking`, the gateway's path for a request that waits by
//! itself) goes to `audit_staged`, and every reader, the next larger batch,
//! the background checkpointer and closing the store move it into the trail in order, so no
//! reader ever sees a chain with a gap and `verify` holds throughout; a failure to settle
//! reaches the next lone record instead of piling up staged rows.

use std::sync::Arc;

use chrono::Utc;
use serde_json::json;
use tollgate_store::Store;
use tollgate_store::audit::payload::Keyring;
use tollgate_store::audit::verify::verify;
use tollgate_store::audit::{AuditStore, NewRecord, PayloadKind, RecordKind, Signer};

use crate::backend::TestDb;

const MAC: [u8; 32] = [1; 32];

fn record(i: u64) -> NewRecord {
    NewRecord::new(
        Utc::now(),
        RecordKind::Request,
        format!("req_{i}"),
        Some("k1".to_owned()),
        Some("team-a".to_owned()),
        &json!({"i": i, "status": 200, "key_id": "k1", "team": "team-a"}),
    )
}

/// Row counts of (staged records, staged payloads, settled records), read with a plain
/// connection that settles nothing.
fn counts(db: &TestDb) -> (i64, i64, i64) {
    let c = rusqlite::Connection::open(db.location()).unwrap();
    let n = |t: &str| {
        c.query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get(0))
            .unwrap()
    };
    (
        n("audit_staged"),
        n("audit_staged_payloads"),
        n("audit_records"),
    )
}

/// The gateway's lone-request path.
fn lone(audit: &dyn AuditStore, instance: &str, r: &NewRecord) -> tollgate_store::Result<u64> {
    audit
        .append_one_blocking(instance, r, &MAC)
        .expect("the SQLite store stages lone records")
        .map(|h| h.seq)
}

async fn verifies(audit: &dyn AuditStore) {
    let r = verify(audit, Some(&MAC), None, &[]).await.unwrap();
    assert!(r.ok(), "{r:?}");
}

#[tokio::test]
async fn lone_records_are_staged_and_the_first_read_settles_them_in_order() {
    let db = TestDb::sqlite().await;
    let audit = db.store.audit.clone();
    for i in 1..=3 {
        assert_eq!(lone(audit.as_ref(), "gw", &record(i)).unwrap(), i);
    }
    // Another chain staged in between keeps its own sequence.
    assert_eq!(lone(audit.as_ref(), "cli", &record(90)).unwrap(), 1);
    assert_eq!(lone(audit.as_ref(), "gw", &record(4)).unwrap(), 4);
    let (staged, _, settled) = counts(&db);
    // The checkpointer may have settled some already; nothing is lost either way.
    assert_eq!(staged + settled, 5);
    let head = audit.head("gw").await.unwrap().unwrap();
    assert_eq!(head.seq, 4);
    assert_eq!(counts(&db), (0, 0, 5), "a read settles everything staged");
    let refs: Vec<String> = audit
        .records("gw", 1, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.ref_id)
        .collect();
    assert_eq!(refs, ["req_1", "req_2", "req_3", "req_4"]);
    assert_eq!(
        head.hash,
        audit.record_at("gw", 4).await.unwrap().unwrap().hash
    );
    verifies(audit.as_ref()).await;
}

#[tokio::test]
async fn a_batch_after_lone_records_settles_them_first_and_continues_the_chain() {
    let db = TestDb::sqlite().await;
    let audit = db.store.audit.clone();
    lone(audit.as_ref(), "gw", &record(1)).unwrap();
    lone(audit.as_ref(), "gw", &record(2)).unwrap();
    let head = audit
        .append("gw", &[record(3), record(4), record(5)], &MAC)
        .await
        .unwrap();
    assert_eq!(head.seq, 5);
    // The batch's own transaction moved the staged rows; no reader has run yet.
    assert_eq!(counts(&db), (0, 0, 5));
    lone(audit.as_ref(), "gw", &record(6)).unwrap();
    verifies(audit.as_ref()).await;
    assert_eq!(audit.head("gw").await.unwrap().unwrap().seq, 6);
}

#[tokio::test]
async fn a_staged_payload_is_readable_and_opens() {
    let db = TestDb::sqlite().await;
    let audit = db.store.audit.clone();
    let keyring = Keyring::new(audit.clone(), [2; 32]);
    let now = Utc::now();
    let sealed = keyring
        .seal("req_1", PayloadKind::Prompt, now, b"hello there")
        .await
        .unwrap();
    let mut r = record(1);
    r.payloads = vec![sealed];
    lone(audit.as_ref(), "gw", &r).unwrap();
    let p = audit.payloads("req_1").await.unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(
        keyring.open("req_1", &p[0].sealed).await.unwrap().unwrap(),
        b"hello there"
    );
    assert_eq!(counts(&db).0 + counts(&db).1, 0);
}

#[tokio::test]
async fn another_process_sees_records_staged_by_this_one() {
    let db = TestDb::sqlite().await;
    let other: Store = db.reopen().await;
    lone(db.store.audit.as_ref(), "gw", &record(1)).unwrap();
    let seen = other.audit.records("gw", 1, 10).await.unwrap();
    assert_eq!(seen.len(), 1);
    // And it continues the same chain rather than forking it.
    lone(other.audit.as_ref(), "gw", &record(2)).unwrap();
    verifies(db.store.audit.as_ref()).await;
}

#[tokio::test]
async fn closing_the_store_settles_what_is_staged() {
    let db = TestDb::sqlite().await;
    let second = db.reopen().await;
    lone(second.audit.as_ref(), "gw", &record(1)).unwrap();
    drop(second);
    assert_eq!(counts(&db), (0, 0, 1));
}

#[tokio::test]
async fn a_staged_row_that_would_fork_the_chain_is_an_error_and_is_kept() {
    let db = TestDb::sqlite().await;
    let audit = db.store.audit.clone();
    audit
        .append("gw", &[record(1), record(2)], &MAC)
        .await
        .unwrap();
    // Someone with file access stages a second record 2.
    let c = rusqlite::Connection::open(db.location()).unwrap();
    c.execute(
        "INSERT INTO audit_staged SELECT instance, seq, ts, kind, ref_id, key_id, team, body, prev_hash, hash, mac
         FROM audit_records WHERE seq = 2",
        [],
    )
    .unwrap();
    assert!(audit.records("gw", 1, 10).await.is_err());
    assert_eq!(
        counts(&db).0,
        1,
        "the conflicting row stays where it can be examined"
    );
}

#[tokio::test]
async fn a_checkpoint_signed_over_a_staged_head_verifies() {
    let db = TestDb::sqlite().await;
    let audit: Arc<dyn AuditStore> = db.store.audit.clone();
    let signer = Signer::generate();
    let head = audit
        .append_one_blocking("gw", &record(1), &MAC)
        .unwrap()
        .unwrap();
    audit
        .put_checkpoint(&signer.checkpoint("gw", head.seq, &head.hash))
        .await
        .unwrap();
    let r = verify(
        audit.as_ref(),
        Some(&MAC),
        Some(&signer.verifying_key()),
        &[],
    )
    .await
    .unwrap();
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.chains[0].checkpoints_verified, 1);
}

#[tokio::test]
async fn a_batch_of_one_through_the_writer_goes_straight_to_the_trail() {
    let db = TestDb::sqlite().await;
    db.store
        .audit
        .append("gw", &[record(1)], &MAC)
        .await
        .unwrap();
    assert_eq!(counts(&db), (0, 0, 1));
}

#[tokio::test]
async fn a_failing_settle_fails_the_next_lone_record_instead_of_staging_past_it() {
    let db = TestDb::sqlite().await;
    let audit = db.store.audit.clone();
    let c = rusqlite::Connection::open(db.location()).unwrap();
    // The trail's table refuses writes (as a full disk would); staging alone still works.
    c.execute_batch(
        "CREATE TRIGGER block BEFORE INSERT ON audit_records BEGIN SELECT RAISE(ABORT, 'disk full'); END",
    )
    .unwrap();
    assert_eq!(lone(audit.as_ref(), "gw", &record(1)).unwrap(), 1);
    // A reader (or the checkpointer) tries to settle and fails: the reader gets the error.
    assert!(audit.records("gw", 1, 10).await.is_err());
    // From now on a lone record settles first, so it fails too instead of hiding the fault.
    assert!(lone(audit.as_ref(), "gw", &record(2)).is_err());
    assert_eq!(
        counts(&db),
        (1, 0, 0),
        "the staged record is kept, not lost"
    );
    c.execute_batch("DROP TRIGGER block").unwrap();
    assert_eq!(lone(audit.as_ref(), "gw", &record(2)).unwrap(), 2);
    verifies(audit.as_ref()).await;
    assert_eq!(audit.head("gw").await.unwrap().unwrap().seq, 2);
}

#[tokio::test]
async fn many_staged_records_with_payloads_settle_in_chunks_at_close_and_verify() {
    let db = TestDb::sqlite().await;
    let second = db.reopen().await;
    let keyring = Keyring::new(second.audit.clone(), [2; 32]);
    let n = 3 * 8 + 3; // more than three settle chunks
    for i in 1..=n {
        let mut r = record(i);
        r.payloads = vec![
            keyring
                .seal(&r.ref_id, PayloadKind::Prompt, Utc::now(), b"prompt")
                .await
                .unwrap(),
            keyring
                .seal(&r.ref_id, PayloadKind::Completion, Utc::now(), b"answer")
                .await
                .unwrap(),
        ];
        assert_eq!(lone(second.audit.as_ref(), "gw", &r).unwrap(), i);
    }
    // The keyring holds the store too; the store closes when its last handle goes.
    drop((keyring, second));
    assert_eq!(counts(&db), (0, 0, i64::try_from(n).unwrap()));
    verifies(db.store.audit.as_ref()).await;
    assert_eq!(
        db.store
            .audit
            .payloads(&format!("req_{n}"))
            .await
            .unwrap()
            .len(),
        2
    );
}
