//! The audit stage (DP-2): every call is recorded before its response ends, with digests and
//! guard verdicts but no raw PII; payloads are sealed apart; a failing audit store refuses
//! requests (fail-closed) or serves and flags it (fail-open).

use std::str::FromStr;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use tollgate_store::audit::payload::Keyring;
use tollgate_store::audit::verify::verify;
use tollgate_store::audit::{AuditRecord, PayloadKind};

use crate::harness::{AUDIT_MAC_KEY, AUDIT_WRAP_KEY, Harness, anthropic_user, user};

async fn record_of(h: &Harness, id: &str) -> (AuditRecord, Value) {
    let recs = h.gw.store.audit.records_by_ref(id).await.unwrap();
    assert_eq!(recs.len(), 1, "exactly one record for {id}");
    let body: Value = serde_json::from_str(&recs[0].body).unwrap();
    (recs[0].clone(), body)
}

fn request_id(r: &reqwest::Response) -> String {
    r.headers()["x-request-id"].to_str().unwrap().to_owned()
}

/// Opens a second connection to the gateway's database, as an operator (or an attacker)
/// would, to break or inspect the audit store from outside.
async fn raw(h: &Harness) -> sqlx::SqliteConnection {
    SqliteConnectOptions::from_str("sqlite://")
        .unwrap()
        .filename(&h.db_path)
        .busy_timeout(Duration::from_secs(5))
        .connect()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_call_is_recorded_before_its_response_is_returned() {
    let h = Harness::start().await;
    // Allowed.
    let r = h
        .post("/v1/chat/completions", &user("gpt", "hello there"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = request_id(&r);
    let bytes = r.bytes().await.unwrap();
    // No waiting: the record is durable before the response is returned.
    let (rec, body) = record_of(&h, &id).await;
    assert_eq!(rec.kind, "request");
    assert_eq!(rec.instance, "gw-test");
    assert_eq!(body["status"], 200);
    assert_eq!(body["route"], "gpt");
    assert_eq!(body["provider"], "oa");
    assert_eq!(body["model"], "gpt-mock");
    assert_eq!(body["team"], "qa");
    assert_eq!(body["environment"], "production");
    assert!(body["tokens_in"].as_u64().unwrap() > 0);
    assert!(body["latency_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(
        body["response_sha256"],
        hex::encode(Sha256::digest(&bytes)),
        "the digest is of the response exactly as returned"
    );
    assert_eq!(body["request_sha256"].as_str().unwrap().len(), 64);

    // Refused by authentication: recorded too.
    let r = h
        .client
        .post(format!("{}/v1/chat/completions", h.url))
        .bearer_auth("tg_live_notakey")
        .json(&user("gpt", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (_, body) = record_of(&h, &request_id(&r)).await;
    assert_eq!(body["status"], 401);
    assert_eq!(body["error_class"], "auth");
    assert_eq!(body["request_sha256"], Value::Null, "nothing went upstream");

    // Anthropic format, and a streamed answer: the record exists once the stream has ended.
    let r = h.messages(&anthropic_user("claude", "hi")).await;
    assert_eq!(r.status(), 200);
    let (_, body) = record_of(&h, &request_id(&r)).await;
    assert_eq!(body["format"], "anthropic");
    let mut b = user("gpt", "stream me");
    b["stream"] = json!(true);
    let r = h.post("/v1/chat/completions", &b).send().await.unwrap();
    let id = request_id(&r);
    let text = r.bytes().await.unwrap();
    let (_, body) = record_of(&h, &id).await;
    assert_eq!(body["stream"], true);
    assert_eq!(body["response_sha256"], hex::encode(Sha256::digest(&text)));

    let report = verify(h.gw.store.audit.as_ref(), Some(&AUDIT_MAC_KEY), None, &[])
        .await
        .unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.chains[0].records, 4);
}

#[tokio::test]
async fn records_hold_guard_verdicts_but_never_the_pii_itself() {
    let h = Harness::start().await;
    let email = "jane.doe@example.org";
    let r = h
        .post(
            "/v1/chat/completions",
            &user("audited", &format!("Write to {email} about the invoice")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = request_id(&r);
    let (rec, body) = record_of(&h, &id).await;
    assert!(!rec.body.contains(email), "{}", rec.body);
    assert_eq!(body["guards"]["pii"]["EMAIL"], 1);

    // Payloads are sealed apart and referenced by digest.
    let stored = h.gw.store.audit.payloads(&id).await.unwrap();
    let kinds: Vec<PayloadKind> = stored.iter().map(|p| p.sealed.kind).collect();
    assert!(kinds.contains(&PayloadKind::Prompt));
    assert!(kinds.contains(&PayloadKind::Completion));
    assert!(kinds.contains(&PayloadKind::OriginalPrompt));
    let keyring = Keyring::new(h.gw.store.audit.clone(), AUDIT_WRAP_KEY);
    for p in &stored {
        let plain = keyring.open(&id, &p.sealed).await.unwrap().unwrap();
        let text = String::from_utf8(plain).unwrap();
        assert_eq!(
            body["payloads"][p.sealed.kind.as_str()],
            hex::encode(p.sealed.digest)
        );
        match p.sealed.kind {
            PayloadKind::Prompt => {
                // Exactly what the provider received, masked.
                assert_eq!(body["request_sha256"], hex::encode(p.sealed.digest));
                let sent: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(sent, h.mock.requests().last().unwrap().body);
                assert!(!text.contains(email));
            }
            PayloadKind::OriginalPrompt => assert!(text.contains(email)),
            PayloadKind::Completion => {
                assert_eq!(body["response_sha256"], hex::encode(p.sealed.digest));
            }
            _ => {}
        }
    }
    // The ciphertext in the database is not the text.
    let mut db = raw(&h).await;
    let blobs: Vec<Vec<u8>> = sqlx::query_scalar("SELECT ciphertext FROM audit_payloads")
        .fetch_all(&mut db)
        .await
        .unwrap();
    assert!(!blobs.is_empty());
    for b in blobs {
        assert!(!String::from_utf8_lossy(&b).contains("invoice"));
    }
    // Routes that do not ask store nothing.
    let r = h
        .post("/v1/chat/completions", &user("gpt", "hi"))
        .send()
        .await
        .unwrap();
    assert!(
        h.gw.store
            .audit
            .payloads(&request_id(&r))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_streamed_answer_is_stored_and_digested_as_sent() {
    let h = Harness::start().await;
    let mut b = user("audited", "stream this please");
    b["stream"] = json!(true);
    let r = h.post("/v1/chat/completions", &b).send().await.unwrap();
    let id = request_id(&r);
    let sent = r.bytes().await.unwrap();
    let (_, body) = record_of(&h, &id).await;
    assert_eq!(body["response_sha256"], hex::encode(Sha256::digest(&sent)));
    let keyring = Keyring::new(h.gw.store.audit.clone(), AUDIT_WRAP_KEY);
    let stored = h.gw.store.audit.payloads(&id).await.unwrap();
    let completion = stored
        .iter()
        .find(|p| p.sealed.kind == PayloadKind::Completion)
        .unwrap();
    let plain = keyring
        .open(&id, &completion.sealed)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(plain, sent.to_vec());
}

/// The tables an audit record is written to: the trail, and the staging table a lone
/// request's record goes to first (store `sqlite/appender.rs`).
const AUDIT_TABLES: [&str; 2] = ["audit_records", "audit_staged"];

/// Make every audit write fail, as a full disk would.
async fn block_audit_writes(h: &Harness) {
    let mut db = raw(h).await;
    for t in AUDIT_TABLES {
        sqlx::query(&format!(
            "CREATE TRIGGER block_{t} BEFORE INSERT ON {t} BEGIN SELECT RAISE(ABORT, 'audit disk full'); END"
        ))
        .execute(&mut db)
        .await
        .unwrap();
    }
}

async fn unblock_audit_writes(h: &Harness) {
    let mut db = raw(h).await;
    for t in AUDIT_TABLES {
        sqlx::query(&format!("DROP TRIGGER block_{t}"))
            .execute(&mut db)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn fail_closed_refuses_with_503_and_sends_nothing_upstream() {
    let h = Harness::start().await;
    let r = h
        .post("/v1/chat/completions", &user("gpt", "before"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let before = h.mock.requests().len();
    block_audit_writes(&h).await;
    // The first request after the failure reaches the provider (nobody knew yet), but its
    // response is withheld: the client gets 503 because its record could not be written.
    let r = h
        .post("/v1/chat/completions", &user("gpt", "during"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("audit"));
    let after_first = h.mock.requests().len();
    // From then on nothing goes upstream.
    for _ in 0..3 {
        let r = h
            .post("/v1/chat/completions", &user("gpt", "during"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
    }
    assert_eq!(
        h.mock.requests().len(),
        after_first,
        "nothing forwarded upstream"
    );
    assert!(after_first <= before + 1);
    let ready = h
        .client
        .get(format!("{}/readyz", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);

    unblock_audit_writes(&h).await;
    // The writer retries on its own; requests are admitted again shortly.
    let mut ok = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let r = h
            .post("/v1/chat/completions", &user("gpt", "after"))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            ok = true;
            break;
        }
    }
    assert!(
        ok,
        "requests are admitted again once the audit store recovers"
    );
    h.gw.audit.flush().await;
    // The refusals were recorded once the store came back, and the chain is intact.
    let mut db = raw(&h).await;
    let refused: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_records WHERE json_extract(body, '$.error_class') = 'audit_unavailable'",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    assert!(refused >= 4, "refusals recorded: {refused}");
    // The request that reached the provider was sealed by its own task before the store
    // failed; its record must still be amended to say the response was withheld.
    let withheld: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_records WHERE json_extract(body, '$.response_withheld') = 1",
    )
    .fetch_one(&mut db)
    .await
    .unwrap();
    if after_first == before + 1 {
        let bodies: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM audit_records WHERE json_extract(body, '$.response_withheld') = 1",
        )
        .fetch_all(&mut db)
        .await
        .unwrap();
        assert_eq!(
            withheld, 1,
            "the withheld response is on record: {bodies:#?}"
        );
    }
    let report = verify(h.gw.store.audit.as_ref(), Some(&AUDIT_MAC_KEY), None, &[])
        .await
        .unwrap();
    assert!(report.ok(), "{report:?}");
}

#[tokio::test]
async fn fail_open_serves_and_catches_up_when_the_store_returns() {
    let h = Harness::start_with(false).await;
    block_audit_writes(&h).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = h
            .post("/v1/chat/completions", &user("gpt", "hi"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "fail_closed = false serves");
        ids.push(request_id(&r));
    }
    let ready: Value = h
        .client
        .get(format!("{}/readyz", h.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "degraded");
    unblock_audit_writes(&h).await;
    let mut all = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut n = 0;
        for id in &ids {
            n += h.gw.store.audit.records_by_ref(id).await.unwrap().len();
        }
        if n == ids.len() {
            all = true;
            break;
        }
    }
    assert!(all, "queued records are written once the store is back");
}

// Regression: a stopped gateway left its last lone records in `audit_staged` when the process
// exited without dropping the store, so tools reading the file directly missed them.
#[tokio::test]
async fn a_stopped_auditor_leaves_nothing_staged_in_the_file() {
    let h = Harness::start().await;
    for i in 0..3 {
        let r = h
            .post("/v1/chat/completions", &user("gpt", &format!("lone {i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        // Spaced out, so that each request commits its own record (the staged path).
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    h.gw.audit.shutdown().await;
    let mut db = raw(&h).await;
    let staged: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_staged")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(staged, 0);
    let filed: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_records WHERE kind = 'request'")
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert!(filed >= 3, "{filed}");
}

// Regression: a lone request committed its own record on the async worker thread and waited
// there up to 5 s for the SQLite lock; when the lock's holder needed that same worker to
// finish (a key-use flush, a reader settling), both stalled 5 s and the request got a 503.
#[tokio::test]
async fn a_lone_commit_does_not_block_the_worker_that_holds_the_lock() {
    let h = Harness::start().await;
    let r = h
        .post("/v1/chat/completions", &user("gpt", "warm up"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(5)).await;
    // This test's own task holds the write lock, on the same (single) runtime thread that
    // will serve the request.
    let mut db = raw(&h).await;
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut db)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let request = tokio::spawn({
        let req = h.post("/v1/chat/completions", &user("gpt", "while locked"));
        async move { req.send().await.unwrap().status() }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    sqlx::query("COMMIT").execute(&mut db).await.unwrap();
    assert_eq!(request.await.unwrap(), 200);
    // Generous: the stall this guards against was the 5 s lock wait.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}
