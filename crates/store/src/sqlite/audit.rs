//! The audit trail on SQLite: one transaction per batch (group commit), begun IMMEDIATE so
//! that concurrent writers (the gateway and the CLI) queue on the database lock instead of
//! forking a chain.
//!
//! Appends run on a dedicated connection on their own thread ([`Appender`]): a batch is a
//! handful of prepared statements executed back to back, where going through the async pool
//! costs a thread hop per statement (measured: ~50 µs each, which made one record take
//! ~0.5 ms and capped the writer near 10,000 records/s). Everything else uses the pool.
//!
//! No connection of the store checkpoints the WAL in the course of a commit (the pool sets
//! `wal_autocheckpoint = 0`, the appender only past a large safety net): a checkpoint
//! copies the WAL into the database and fsyncs both, milliseconds on a cloud disk, and SQLite
//! runs it inside whichever commit crosses the threshold — so one request in a few hundred
//! waited for it. A [`Checkpointer`] thread with its own connection does it in the
//! background instead (see its docs for how it keeps the WAL bounded).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;

use super::SqliteStore;
use crate::audit::retention::{self, RetentionTx, held, review_held};
use crate::audit::{
    Anchor, AuditRecord, AuditStore, ChainPos, Checkpoint, GENESIS, HoldScope, LegalHold,
    NewRecord, PayloadKind, PurgePlan, PurgeReport, SealedPayload, StoredPayload, chain_batch,
};
use crate::{Result, StoreError, from_millis, to_millis};

fn hash32(v: Vec<u8>, what: &'static str) -> Result<[u8; 32]> {
    v.try_into().map_err(|_| StoreError::Corrupt { what })
}

fn row_to_record(row: &sqlx::sqlite::SqliteRow) -> Result<AuditRecord> {
    let seq: i64 = row.try_get("seq")?;
    Ok(AuditRecord {
        instance: row.try_get("instance")?,
        seq: u64::try_from(seq).map_err(|_| StoreError::Corrupt {
            what: "audit_records.seq",
        })?,
        time: from_millis(row.try_get("ts")?),
        kind: row.try_get("kind")?,
        ref_id: row.try_get("ref_id")?,
        key_id: row.try_get("key_id")?,
        team: row.try_get("team")?,
        body: row.try_get("body")?,
        prev_hash: hash32(row.try_get("prev_hash")?, "audit_records.prev_hash")?,
        hash: hash32(row.try_get("hash")?, "audit_records.hash")?,
        mac: hash32(row.try_get("mac")?, "audit_records.mac")?,
    })
}

fn row_to_checkpoint(row: &sqlx::sqlite::SqliteRow) -> Result<Checkpoint> {
    let seq: i64 = row.try_get("seq")?;
    Ok(Checkpoint {
        instance: row.try_get("instance")?,
        seq: u64::try_from(seq).map_err(|_| StoreError::Corrupt {
            what: "audit_checkpoints.seq",
        })?,
        hash: row.try_get("hash")?,
        time: from_millis(row.try_get("ts")?),
        public_key: row.try_get("public_key")?,
        signature: row.try_get("signature")?,
    })
}

fn seq_i64(seq: u64) -> Result<i64> {
    i64::try_from(seq).map_err(|_| StoreError::Corrupt { what: "audit seq" })
}

/// Most appends queued for the appender thread.
const APPEND_QUEUE: usize = 64;

type AppendJob = (
    String,
    Vec<NewRecord>,
    [u8; 32],
    tokio::sync::oneshot::Sender<Result<ChainPos>>,
);

/// How often the background checkpointer copies the WAL into the database.
pub const CHECKPOINT_PERIOD: std::time::Duration = std::time::Duration::from_millis(100);
/// WAL size (pages of 4 KiB: 64 MiB) beyond which the appender checkpoints in its own
/// commit after all (SQLite's autocheckpoint): the safety net that bounds the WAL when
/// writes never pause long enough for a background pass to finish.
pub const WAL_SAFETY_PAGES: i64 = 16_384;

/// Copies the WAL into the database off the commit path, on its own thread and connection.
///
/// A PASSIVE checkpoint never blocks a writer, and once it has copied every frame the next
/// commit starts the WAL again from its beginning (reusing its disk blocks). Under
/// sustained writes a passive pass can lag behind the frames appended meanwhile; then the
/// appender's own autocheckpoint at [`WAL_SAFETY_PAGES`] finishes the job inside one commit,
/// copying only what the passive passes left. (A RESTART checkpoint from this thread was
/// tried and dropped: it holds writers while it waits for readers, which stalled one
/// commit for a second in the bench.)
#[derive(Debug)]
struct Checkpointer {
    /// Dropping it stops the thread (its `recv_timeout` sees the disconnect).
    _stop: std::sync::mpsc::Sender<()>,
}

impl Checkpointer {
    fn start(path: &std::path::Path) -> Result<Self> {
        let conn = rusqlite::Connection::open(path).map_err(sqlite_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sqlite_err)?;
        let (stop, rx) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("tollgate-wal-checkpoint".into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    rx.recv_timeout(CHECKPOINT_PERIOD)
                {
                    // A failure is retried on the next tick; meanwhile the WAL grows, up to
                    // the appender's safety net.
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
                    }
                }
            })
            .map_err(|e| StoreError::Io {
                context: "starting the WAL checkpointer thread".into(),
                source: e,
            })?;
        Ok(Self { _stop: stop })
    }
}

/// The audit appender: one rusqlite connection owned by one thread, started on first use.
#[derive(Debug)]
pub(super) struct Appender {
    path: std::path::PathBuf,
    tx: std::sync::OnceLock<std::sync::mpsc::SyncSender<AppendJob>>,
    /// A second connection for appends on the caller's thread (see `append_blocking`).
    direct: parking_lot::Mutex<Option<rusqlite::Connection>>,
    /// Lives as long as the store: every connection of the store leaves checkpoints to it.
    _checkpointer: Checkpointer,
}

impl Appender {
    pub(super) fn new(path: std::path::PathBuf) -> Result<Self> {
        Ok(Self {
            _checkpointer: Checkpointer::start(&path)?,
            path,
            tx: std::sync::OnceLock::new(),
            direct: parking_lot::Mutex::new(None),
        })
    }

    /// A connection for appends.
    fn open(&self) -> Result<rusqlite::Connection> {
        open_appender(&self.path)
    }

    fn append_direct(
        &self,
        instance: &str,
        batch: &[NewRecord],
        mac_key: &[u8; 32],
    ) -> Result<ChainPos> {
        let mut guard = self.direct.lock();
        if guard.is_none() {
            *guard = Some(self.open()?);
        }
        match guard.as_mut() {
            Some(conn) => append_blocking(conn, instance, batch, mac_key),
            None => Err(StoreError::Corrupt {
                what: "audit appender connection",
            }),
        }
    }

    fn sender(&self) -> Result<std::sync::mpsc::SyncSender<AppendJob>> {
        if let Some(s) = self.tx.get() {
            return Ok(s.clone());
        }
        let conn = self.open()?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<AppendJob>(APPEND_QUEUE);
        std::thread::Builder::new()
            .name("tollgate-audit-append".into())
            .spawn(move || {
                let mut conn = conn;
                while let Ok((instance, batch, mac, reply)) = rx.recv() {
                    let _ = reply.send(append_blocking(&mut conn, &instance, &batch, &mac));
                }
            })
            .map_err(|e| StoreError::Io {
                context: "starting the audit appender thread".into(),
                source: e,
            })?;
        // Another caller may have raced us; theirs wins and this thread exits when its
        // sender is dropped.
        Ok(self.tx.get_or_init(|| tx).clone())
    }

    async fn append(
        &self,
        instance: &str,
        batch: &[NewRecord],
        mac_key: &[u8; 32],
    ) -> Result<ChainPos> {
        let sender = self.sender()?;
        let (reply, rx) = tokio::sync::oneshot::channel();
        let job = (instance.to_owned(), batch.to_vec(), *mac_key, reply);
        // The queue is short and the thread drains it quickly; a full queue waits off the
        // async runtime.
        let sent = match sender.try_send(job) {
            Ok(()) => Ok(()),
            Err(std::sync::mpsc::TrySendError::Full(job)) => {
                tokio::task::spawn_blocking(move || sender.send(job))
                    .await
                    .map_err(|_| ())
                    .and_then(|r| r.map_err(|_| ()))
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => Err(()),
        };
        if sent.is_err() {
            return Err(StoreError::Corrupt {
                what: "audit appender thread stopped",
            });
        }
        rx.await.map_err(|_| StoreError::Corrupt {
            what: "audit appender thread stopped",
        })?
    }
}

fn sqlite_err(e: rusqlite::Error) -> StoreError {
    StoreError::Append(e.to_string())
}

fn open_appender(path: &std::path::Path) -> Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path).map_err(sqlite_err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(sqlite_err)?;
    // The pool set WAL on the file already; NORMAL sync in WAL survives a process crash
    // (kill -9) without an fsync per commit. Checkpoints are the `Checkpointer`'s job, up
    // to a WAL of `WAL_SAFETY_PAGES`.
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = {WAL_SAFETY_PAGES};"
    ))
    .map_err(sqlite_err)?;
    Ok(conn)
}

fn append_blocking(
    conn: &mut rusqlite::Connection,
    instance: &str,
    batch: &[NewRecord],
    mac_key: &[u8; 32],
) -> Result<ChainPos> {
    use rusqlite::{OptionalExtension, TransactionBehavior, params};
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_err)?;
    let head = tx
        .prepare_cached("SELECT seq, hash FROM audit_heads WHERE instance = ?1")
        .and_then(|mut s| {
            s.query_row(params![instance], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .optional()
        })
        .map_err(sqlite_err)?;
    let head = match head {
        Some((seq, hash)) => ChainPos {
            seq: u64::try_from(seq).map_err(|_| StoreError::Corrupt {
                what: "audit_heads.seq",
            })?,
            hash: hash32(hash, "audit_heads.hash")?,
        },
        None => ChainPos {
            seq: 0,
            hash: GENESIS,
        },
    };
    if batch.is_empty() {
        tx.commit().map_err(sqlite_err)?;
        return Ok(head);
    }
    let records = chain_batch(instance, head, batch, mac_key);
    {
        let mut ins = tx
            .prepare_cached(
                "INSERT INTO audit_records (instance, seq, ts, kind, ref_id, key_id, team, body, prev_hash, hash, mac)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )
            .map_err(sqlite_err)?;
        let mut pay = tx
            .prepare_cached(
                "INSERT OR REPLACE INTO audit_payloads (request_id, kind, digest, day, ts, key_id, team, nonce, ciphertext)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .map_err(sqlite_err)?;
        for (r, new) in records.iter().zip(batch) {
            ins.execute(params![
                r.instance,
                seq_i64(r.seq)?,
                to_millis(r.time),
                r.kind,
                r.ref_id,
                r.key_id,
                r.team,
                r.body,
                &r.prev_hash[..],
                &r.hash[..],
                &r.mac[..],
            ])
            .map_err(sqlite_err)?;
            for p in &new.payloads {
                pay.execute(params![
                    r.ref_id,
                    p.kind.as_str(),
                    &p.digest[..],
                    p.day,
                    to_millis(p.time),
                    r.key_id,
                    r.team,
                    &p.nonce[..],
                    p.ciphertext,
                ])
                .map_err(sqlite_err)?;
            }
        }
    }
    let last = records.last().map_or(head, |r| ChainPos {
        seq: r.seq,
        hash: r.hash,
    });
    tx.prepare_cached(
        "INSERT INTO audit_heads (instance, seq, hash) VALUES (?1, ?2, ?3)
         ON CONFLICT(instance) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
    )
    .and_then(|mut s| {
        s.execute(params![
            instance,
            seq_i64(last.seq).unwrap_or(i64::MAX),
            &last.hash[..]
        ])
    })
    .map_err(sqlite_err)?;
    tx.commit().map_err(sqlite_err)?;
    Ok(last)
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append(
        &self,
        instance: &str,
        batch: &[NewRecord],
        mac_key: &[u8; 32],
    ) -> Result<ChainPos> {
        self.appender.append(instance, batch, mac_key).await
    }

    fn append_blocking(
        &self,
        instance: &str,
        batch: &[NewRecord],
        mac_key: &[u8; 32],
    ) -> Option<Result<ChainPos>> {
        Some(self.appender.append_direct(instance, batch, mac_key))
    }

    async fn head(&self, instance: &str) -> Result<Option<ChainPos>> {
        let row = sqlx::query("SELECT seq, hash FROM audit_heads WHERE instance = ?")
            .bind(instance)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(ChainPos {
                seq: u64::try_from(r.try_get::<i64, _>("seq")?).map_err(|_| {
                    StoreError::Corrupt {
                        what: "audit_heads.seq",
                    }
                })?,
                hash: hash32(r.try_get("hash")?, "audit_heads.hash")?,
            })
        })
        .transpose()
    }

    async fn instances(&self) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT instance FROM audit_heads UNION SELECT DISTINCT instance FROM audit_records ORDER BY 1",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| r.try_get("instance").map_err(StoreError::from))
            .collect()
    }

    async fn records(&self, instance: &str, from: u64, limit: u32) -> Result<Vec<AuditRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM audit_records WHERE instance = ? AND seq >= ? ORDER BY seq LIMIT ?",
        )
        .bind(instance)
        .bind(seq_i64(from)?)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_record).collect()
    }

    async fn record_at(&self, instance: &str, seq: u64) -> Result<Option<AuditRecord>> {
        let row = sqlx::query("SELECT * FROM audit_records WHERE instance = ? AND seq = ?")
            .bind(instance)
            .bind(seq_i64(seq)?)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_record).transpose()
    }

    async fn records_by_ref(&self, ref_id: &str) -> Result<Vec<AuditRecord>> {
        let rows = sqlx::query("SELECT * FROM audit_records WHERE ref_id = ? ORDER BY ts, seq")
            .bind(ref_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_record).collect()
    }

    async fn records_between(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        after: Option<(i64, String, u64)>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>> {
        let (ats, ainst, aseq) = after.unwrap_or((i64::MIN, String::new(), 0));
        let rows = sqlx::query(
            "SELECT * FROM audit_records WHERE ts >= ? AND ts < ? AND (ts, instance, seq) > (?, ?, ?)
             ORDER BY ts, instance, seq LIMIT ?",
        )
        .bind(to_millis(since))
        .bind(to_millis(until))
        .bind(ats)
        .bind(ainst)
        .bind(seq_i64(aseq)?)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_record).collect()
    }

    async fn put_checkpoint(&self, cp: &Checkpoint) -> Result<()> {
        sqlx::query(
            "INSERT OR REPLACE INTO audit_checkpoints (instance, seq, hash, ts, public_key, signature)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&cp.instance)
        .bind(seq_i64(cp.seq)?)
        .bind(&cp.hash)
        .bind(to_millis(cp.time))
        .bind(&cp.public_key)
        .bind(&cp.signature)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn checkpoints(&self, instance: &str) -> Result<Vec<Checkpoint>> {
        let rows = sqlx::query("SELECT * FROM audit_checkpoints WHERE instance = ? ORDER BY seq")
            .bind(instance)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_checkpoint).collect()
    }

    async fn anchor(&self, instance: &str) -> Result<Option<Anchor>> {
        let row = sqlx::query("SELECT seq, hash FROM audit_anchors WHERE instance = ?")
            .bind(instance)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(Anchor {
                seq: u64::try_from(r.try_get::<i64, _>("seq")?).map_err(|_| {
                    StoreError::Corrupt {
                        what: "audit_anchors.seq",
                    }
                })?,
                hash: hash32(r.try_get("hash")?, "audit_anchors.hash")?,
            })
        })
        .transpose()
    }

    async fn day_key(&self, day: &str) -> Result<Option<Option<(Vec<u8>, Vec<u8>)>>> {
        let row = sqlx::query("SELECT nonce, wrapped FROM audit_day_keys WHERE day = ?")
            .bind(day)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let nonce: Option<Vec<u8>> = row.try_get("nonce")?;
        let wrapped: Option<Vec<u8>> = row.try_get("wrapped")?;
        Ok(Some(nonce.zip(wrapped)))
    }

    async fn put_day_key(&self, day: &str, nonce: &[u8], wrapped: &[u8]) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_day_keys (day, nonce, wrapped, created_at) VALUES (?, ?, ?, ?)
             ON CONFLICT(day) DO NOTHING",
        )
        .bind(day)
        .bind(nonce)
        .bind(wrapped)
        .bind(to_millis(Utc::now()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn payloads(&self, request_id: &str) -> Result<Vec<StoredPayload>> {
        let rows = sqlx::query(
            "SELECT p.*, k.wrapped IS NULL AS destroyed FROM audit_payloads p
             LEFT JOIN audit_day_keys k ON k.day = p.day WHERE p.request_id = ? ORDER BY p.kind",
        )
        .bind(request_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get("kind")?;
                let nonce: Vec<u8> = r.try_get("nonce")?;
                Ok(StoredPayload {
                    request_id: r.try_get("request_id")?,
                    sealed: SealedPayload {
                        kind: PayloadKind::parse(&kind).ok_or(StoreError::Corrupt {
                            what: "audit_payloads.kind",
                        })?,
                        digest: hash32(r.try_get("digest")?, "audit_payloads.digest")?,
                        day: r.try_get("day")?,
                        time: from_millis(r.try_get("ts")?),
                        nonce: nonce.try_into().map_err(|_| StoreError::Corrupt {
                            what: "audit_payloads.nonce",
                        })?,
                        ciphertext: r.try_get("ciphertext")?,
                    },
                    key_destroyed: r.try_get::<Option<bool>, _>("destroyed")?.unwrap_or(true),
                })
            })
            .collect()
    }

    async fn put_hold(&self, hold: &LegalHold) -> Result<()> {
        sqlx::query(
            "INSERT OR REPLACE INTO legal_holds (scope, value, reason, placed_by, placed_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(hold.scope.as_str())
        .bind(&hold.value)
        .bind(&hold.reason)
        .bind(&hold.placed_by)
        .bind(to_millis(hold.placed_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn remove_hold(&self, scope: HoldScope, value: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM legal_holds WHERE scope = ? AND value = ?")
            .bind(scope.as_str())
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn holds(&self) -> Result<Vec<LegalHold>> {
        let rows = sqlx::query("SELECT * FROM legal_holds ORDER BY placed_at")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let scope: String = r.try_get("scope")?;
                Ok(LegalHold {
                    scope: HoldScope::parse(&scope).ok_or(StoreError::Corrupt {
                        what: "legal_holds.scope",
                    })?,
                    value: r.try_get("value")?,
                    reason: r.try_get("reason")?,
                    placed_by: r.try_get("placed_by")?,
                    placed_at: from_millis(r.try_get("placed_at")?),
                })
            })
            .collect()
    }

    async fn oldest_payloads(&self) -> Result<Vec<(PayloadKind, DateTime<Utc>)>> {
        // One index probe per kind: `audit_payloads_ts` is on (kind, ts).
        let rows = sqlx::query(
            "SELECT kind, MIN(ts) AS oldest FROM audit_payloads GROUP BY kind ORDER BY kind",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get("kind")?;
                Ok((
                    PayloadKind::parse(&kind).ok_or(StoreError::Corrupt {
                        what: "audit_payloads.kind",
                    })?,
                    from_millis(r.try_get("oldest")?),
                ))
            })
            .collect()
    }

    async fn purge(&self, plan: &PurgePlan, now: DateTime<Utc>) -> Result<PurgeReport> {
        let mut tx = SqliteRetention(self.write_tx().await?);
        let report = retention::purge(&mut tx, plan, now).await?;
        if plan.dry_run {
            tx.0.rollback().await?;
        } else {
            tx.0.commit().await?;
        }
        Ok(report)
    }

    async fn writable(&self) -> Result<()> {
        // A real write inside a transaction that is rolled back: it fails exactly when an
        // append would (read-only file, full disk at the lock, a blocking trigger).
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO audit_records (instance, seq, ts, kind, ref_id, body, prev_hash, hash, mac)
             VALUES ('~probe', 0, 0, 'probe', '', '{}', x'', x'', x'')",
        )
        .execute(&mut *tx)
        .await?;
        tx.rollback().await?;
        Ok(())
    }
}

/// A retention pass's transaction.
struct SqliteRetention(sqlx::Transaction<'static, sqlx::Sqlite>);

impl RetentionTx for SqliteRetention {
    async fn count_payloads(&mut self, kind: PayloadKind, before_ms: i64) -> Result<(i64, i64)> {
        let row = sqlx::query(&format!(
            "SELECT COALESCE(SUM(NOT {h}), 0) AS doomed, COALESCE(SUM({h}), 0) AS held
             FROM audit_payloads WHERE kind = ? AND ts < ?",
            h = held("audit_payloads")
        ))
        .bind(kind.as_str())
        .bind(before_ms)
        .fetch_one(&mut *self.0)
        .await?;
        Ok((row.try_get("doomed")?, row.try_get("held")?))
    }

    async fn delete_payloads(&mut self, kind: PayloadKind, before_ms: i64) -> Result<()> {
        sqlx::query(&format!(
            "DELETE FROM audit_payloads WHERE kind = ? AND ts < ? AND NOT {}",
            held("audit_payloads")
        ))
        .bind(kind.as_str())
        .bind(before_ms)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn count_reviews(&mut self, before_ms: i64) -> Result<(i64, i64)> {
        let row = sqlx::query(&format!(
            "SELECT COALESCE(SUM(NOT {h}), 0) AS doomed, COALESCE(SUM({h}), 0) AS held
             FROM review_items WHERE at < ?",
            h = review_held()
        ))
        .bind(before_ms)
        .fetch_one(&mut *self.0)
        .await?;
        Ok((row.try_get("doomed")?, row.try_get("held")?))
    }

    async fn delete_reviews(&mut self, before_ms: i64) -> Result<()> {
        sqlx::query(&format!(
            "DELETE FROM review_items WHERE at < ? AND NOT {}",
            review_held()
        ))
        .bind(before_ms)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn days_without(&mut self, last_day: &str, kept: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(&format!(
            "SELECT k.day FROM audit_day_keys k WHERE k.wrapped IS NOT NULL AND k.day <= ?
             AND NOT EXISTS (SELECT 1 FROM audit_payloads p WHERE p.day = k.day AND {kept})
             ORDER BY k.day"
        ))
        .bind(last_day)
        .fetch_all(&mut *self.0)
        .await?)
    }

    async fn destroy_day_key(&mut self, day: &str, now_ms: i64) -> Result<()> {
        sqlx::query(
            "UPDATE audit_day_keys SET nonce = NULL, wrapped = NULL, destroyed_at = ? WHERE day = ?",
        )
        .bind(now_ms)
        .bind(day)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn heads(&mut self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT instance, seq FROM audit_heads ORDER BY instance")
            .fetch_all(&mut *self.0)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("instance")?, r.try_get("seq")?)))
            .collect()
    }

    async fn first_kept(
        &mut self,
        instance: &str,
        before_ms: i64,
    ) -> Result<(Option<i64>, Option<i64>)> {
        let row = sqlx::query(&format!(
            "SELECT MIN(CASE WHEN ts >= ? THEN seq END) AS young,
                    MIN(CASE WHEN {} THEN seq END) AS held
             FROM audit_records WHERE instance = ?",
            held("audit_records")
        ))
        .bind(before_ms)
        .bind(instance)
        .fetch_one(&mut *self.0)
        .await?;
        Ok((row.try_get("young")?, row.try_get("held")?))
    }

    async fn checkpoint_at_or_below(
        &mut self,
        instance: &str,
        seq: i64,
    ) -> Result<Option<(i64, String)>> {
        let row = sqlx::query(
            "SELECT seq, hash FROM audit_checkpoints WHERE instance = ? AND seq <= ?
             ORDER BY seq DESC LIMIT 1",
        )
        .bind(instance)
        .bind(seq)
        .fetch_optional(&mut *self.0)
        .await?;
        row.map(|r| Ok((r.try_get("seq")?, r.try_get("hash")?)))
            .transpose()
    }

    async fn anchored(&mut self, instance: &str) -> Result<i64> {
        Ok(
            sqlx::query_scalar(
                "SELECT COALESCE(MAX(seq), 0) FROM audit_anchors WHERE instance = ?",
            )
            .bind(instance)
            .fetch_one(&mut *self.0)
            .await?,
        )
    }

    async fn count_records_to(&mut self, instance: &str, seq: i64) -> Result<i64> {
        Ok(
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM audit_records WHERE instance = ? AND seq <= ?",
            )
            .bind(instance)
            .bind(seq)
            .fetch_one(&mut *self.0)
            .await?,
        )
    }

    async fn prune_to(&mut self, instance: &str, seq: i64, hash: &[u8]) -> Result<()> {
        sqlx::query("DELETE FROM audit_records WHERE instance = ? AND seq <= ?")
            .bind(instance)
            .bind(seq)
            .execute(&mut *self.0)
            .await?;
        sqlx::query("INSERT OR REPLACE INTO audit_anchors (instance, seq, hash) VALUES (?, ?, ?)")
            .bind(instance)
            .bind(seq)
            .bind(hash)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }
}
