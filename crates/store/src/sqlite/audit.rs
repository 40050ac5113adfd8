//! The audit trail on SQLite: the [`AuditStore`] implementation and the retention pass.
//! How records are written (the appender, staging of lone records, checkpoints) is
//! `appender.rs`; every read here first settles what is staged, so readers always see whole
//! chains.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;

use super::SqliteStore;
use super::appender::{ANY_STAGED, SETTLE, SETTLE_ALL};
use crate::audit::retention::{self, RetentionTx, held, review_held};
use crate::audit::{
    Anchor, AuditRecord, AuditStore, ChainPos, Checkpoint, HoldScope, LegalHold, NewRecord,
    PayloadKind, PurgePlan, PurgeReport, SealedPayload, StoredPayload,
};
use crate::{Result, StoreError, from_millis, to_millis};

pub(super) fn hash32(v: Vec<u8>, what: &'static str) -> Result<[u8; 32]> {
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

pub(super) fn seq_i64(seq: u64) -> Result<i64> {
    i64::try_from(seq).map_err(|_| StoreError::Corrupt { what: "audit seq" })
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

    fn append_one_blocking(
        &self,
        instance: &str,
        record: &NewRecord,
        mac_key: &[u8; 32],
    ) -> Option<Result<ChainPos>> {
        Some(self.appender.stage_direct(instance, record, mac_key))
    }

    async fn settle(&self) -> Result<()> {
        self.settle_staged().await
    }

    async fn head(&self, instance: &str) -> Result<Option<ChainPos>> {
        self.settle_staged().await?;
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
        self.settle_staged().await?;
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
        self.settle_staged().await?;
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
        self.settle_staged().await?;
        let row = sqlx::query("SELECT * FROM audit_records WHERE instance = ? AND seq = ?")
            .bind(instance)
            .bind(seq_i64(seq)?)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_record).transpose()
    }

    async fn records_by_ref(&self, ref_id: &str) -> Result<Vec<AuditRecord>> {
        self.settle_staged().await?;
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
        self.settle_staged().await?;
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
        self.settle_staged().await?;
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
        self.settle_staged().await?;
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
        // Retention judges whole chains, staged records included.
        for sql in SETTLE {
            sqlx::query(sql)
                .bind(SETTLE_ALL)
                .execute(&mut *tx.0)
                .await?;
        }
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

impl SqliteStore {
    /// Move staged audit records into the trail's tables if there are any, so that a read
    /// sees every committed record (see `appender.rs`).
    async fn settle_staged(&self) -> Result<()> {
        let any: bool = sqlx::query_scalar(ANY_STAGED).fetch_one(&self.pool).await?;
        if any {
            let settled = async {
                let mut tx = self.write_tx().await?;
                for sql in SETTLE {
                    sqlx::query(sql).bind(SETTLE_ALL).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok::<_, StoreError>(())
            }
            .await;
            self.appender.settled(settled.is_ok());
            settled?;
        }
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
