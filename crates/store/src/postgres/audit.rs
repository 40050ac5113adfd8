//! The audit trail on Postgres.
//!
//! An append is one transaction per batch (group commit). It first makes sure the chain's
//! row in `audit_heads` exists (`INSERT … ON CONFLICT DO NOTHING`), then locks it
//! (`SELECT … FOR UPDATE`): a second writer to the same chain — another gateway process
//! configured with the same instance id, or the CLI — waits on that row lock until the first
//! commits and then reads the new head, so concurrent writers queue instead of forking the
//! chain. Writers to different chains never wait on each other. The records are sealed with
//! [`chain_batch`] and written with multi-row INSERTs of bounded size, then the head row is
//! moved and the transaction committed.
//!
//! Retention ([`AuditStore::purge`]) runs the shared decisions of
//! [`crate::audit::retention`] inside one transaction.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, QueryBuilder, Row, Transaction};

use super::{PgStore, hash32};
use crate::audit::retention::{self, RetentionTx, held, review_held};
use crate::audit::{
    Anchor, AuditRecord, AuditStore, ChainPos, Checkpoint, GENESIS, HoldScope, LegalHold,
    NewRecord, PayloadKind, PurgePlan, PurgeReport, SealedPayload, StoredPayload, chain_batch,
};
use crate::{Result, StoreError, from_millis, to_millis};

/// Most rows in one multi-row INSERT (11 parameters a record, far below Postgres's 65,535).
const INSERT_ROWS: usize = 256;
/// Most bytes of payload ciphertext in one multi-row INSERT, so that a batch of large
/// payloads (up to 8 MiB each) is sent as several statements, not one huge message.
const INSERT_BYTES: usize = 16 * 1024 * 1024;

fn seq_i64(seq: u64) -> Result<i64> {
    i64::try_from(seq).map_err(|_| StoreError::Corrupt { what: "audit seq" })
}

fn seq_u64(seq: i64, what: &'static str) -> Result<u64> {
    u64::try_from(seq).map_err(|_| StoreError::Corrupt { what })
}

fn row_to_record(row: &PgRow) -> Result<AuditRecord> {
    Ok(AuditRecord {
        instance: row.try_get("instance")?,
        seq: seq_u64(row.try_get("seq")?, "audit_records.seq")?,
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

fn row_to_checkpoint(row: &PgRow) -> Result<Checkpoint> {
    Ok(Checkpoint {
        instance: row.try_get("instance")?,
        seq: seq_u64(row.try_get("seq")?, "audit_checkpoints.seq")?,
        hash: row.try_get("hash")?,
        time: from_millis(row.try_get("ts")?),
        public_key: row.try_get("public_key")?,
        signature: row.try_get("signature")?,
    })
}

fn row_to_head(row: &PgRow) -> Result<ChainPos> {
    Ok(ChainPos {
        seq: seq_u64(row.try_get("seq")?, "audit_heads.seq")?,
        hash: hash32(row.try_get("hash")?, "audit_heads.hash")?,
    })
}

/// Split `items` into runs of at most [`INSERT_ROWS`] items and (unless a single item is
/// larger) [`INSERT_BYTES`] bytes as measured by `size`.
fn chunks<T>(items: &[T], size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let n = size(item);
        if i > start && (i - start == INSERT_ROWS || bytes + n > INSERT_BYTES) {
            out.push(&items[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += n;
    }
    if start < items.len() {
        out.push(&items[start..]);
    }
    out
}

/// One payload row: the sealed payload and the record it belongs to.
struct PayloadRow<'a> {
    record: &'a AuditRecord,
    payload: &'a SealedPayload,
}

/// The payload rows of a batch, one per `(request_id, kind)`, the last one winning as with
/// SQLite's `INSERT OR REPLACE` (Postgres refuses to upsert the same key twice in one
/// statement).
fn payload_rows<'a>(records: &'a [AuditRecord], batch: &'a [NewRecord]) -> Vec<PayloadRow<'a>> {
    let mut rows: Vec<PayloadRow<'a>> = Vec::new();
    let mut at: HashMap<(&str, PayloadKind), usize> = HashMap::new();
    for (record, new) in records.iter().zip(batch) {
        for payload in &new.payloads {
            let row = PayloadRow { record, payload };
            match at.entry((record.ref_id.as_str(), payload.kind)) {
                Entry::Occupied(e) => rows[*e.get()] = row,
                Entry::Vacant(e) => {
                    e.insert(rows.len());
                    rows.push(row);
                }
            }
        }
    }
    rows
}

async fn insert_records(tx: &mut Transaction<'_, Postgres>, records: &[AuditRecord]) -> Result<()> {
    for chunk in chunks(records, |r| r.body.len()) {
        let seqs = chunk
            .iter()
            .map(|r| seq_i64(r.seq))
            .collect::<Result<Vec<_>>>()?;
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
            "INSERT INTO audit_records (instance, seq, ts, kind, ref_id, key_id, team, body, prev_hash, hash, mac) ",
        );
        qb.push_values(chunk.iter().zip(seqs), |mut b, (r, seq)| {
            b.push_bind(&r.instance)
                .push_bind(seq)
                .push_bind(to_millis(r.time))
                .push_bind(&r.kind)
                .push_bind(&r.ref_id)
                .push_bind(&r.key_id)
                .push_bind(&r.team)
                .push_bind(&r.body)
                .push_bind(&r.prev_hash[..])
                .push_bind(&r.hash[..])
                .push_bind(&r.mac[..]);
        });
        qb.build().execute(&mut **tx).await?;
    }
    Ok(())
}

async fn insert_payloads(
    tx: &mut Transaction<'_, Postgres>,
    rows: &[PayloadRow<'_>],
) -> Result<()> {
    for chunk in chunks(rows, |r| r.payload.ciphertext.len()) {
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
            "INSERT INTO audit_payloads (request_id, kind, digest, day, ts, key_id, team, nonce, ciphertext) ",
        );
        qb.push_values(chunk, |mut b, r| {
            b.push_bind(&r.record.ref_id)
                .push_bind(r.payload.kind.as_str())
                .push_bind(&r.payload.digest[..])
                .push_bind(&r.payload.day)
                .push_bind(to_millis(r.payload.time))
                .push_bind(&r.record.key_id)
                .push_bind(&r.record.team)
                .push_bind(&r.payload.nonce[..])
                .push_bind(&r.payload.ciphertext);
        });
        qb.push(
            " ON CONFLICT (request_id, kind) DO UPDATE SET digest = excluded.digest, day = excluded.day,
              ts = excluded.ts, key_id = excluded.key_id, team = excluded.team, nonce = excluded.nonce,
              ciphertext = excluded.ciphertext",
        );
        qb.build().execute(&mut **tx).await?;
    }
    Ok(())
}

#[async_trait]
impl AuditStore for PgStore {
    async fn append(
        &self,
        instance: &str,
        batch: &[NewRecord],
        mac_key: &[u8; 32],
    ) -> Result<ChainPos> {
        if batch.is_empty() {
            return Ok(self.head(instance).await?.unwrap_or(ChainPos {
                seq: 0,
                hash: GENESIS,
            }));
        }
        let mut tx = self.pool.begin().await?;
        // Lock the chain's head row (creating it for a new chain) before reading it: another
        // writer to this chain now waits for our commit and then sees the head we leave.
        sqlx::query(
            "INSERT INTO audit_heads (instance, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (instance) DO NOTHING",
        )
        .bind(instance)
        .bind(&GENESIS[..])
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query("SELECT seq, hash FROM audit_heads WHERE instance = $1 FOR UPDATE")
            .bind(instance)
            .fetch_one(&mut *tx)
            .await?;
        let head = row_to_head(&row)?;

        let records = chain_batch(instance, head, batch, mac_key);
        insert_records(&mut tx, &records).await?;
        insert_payloads(&mut tx, &payload_rows(&records, batch)).await?;
        let last = records.last().map_or(head, |r| ChainPos {
            seq: r.seq,
            hash: r.hash,
        });
        sqlx::query("UPDATE audit_heads SET seq = $1, hash = $2 WHERE instance = $3")
            .bind(seq_i64(last.seq)?)
            .bind(&last.hash[..])
            .bind(instance)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(last)
    }

    async fn head(&self, instance: &str) -> Result<Option<ChainPos>> {
        let row = sqlx::query("SELECT seq, hash FROM audit_heads WHERE instance = $1")
            .bind(instance)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_head).transpose()
    }

    async fn instances(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT instance FROM audit_heads UNION SELECT instance FROM audit_records ORDER BY 1",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    async fn records(&self, instance: &str, from: u64, limit: u32) -> Result<Vec<AuditRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM audit_records WHERE instance = $1 AND seq >= $2 ORDER BY seq LIMIT $3",
        )
        .bind(instance)
        .bind(seq_i64(from)?)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(row_to_record).collect()
    }

    async fn record_at(&self, instance: &str, seq: u64) -> Result<Option<AuditRecord>> {
        let row = sqlx::query("SELECT * FROM audit_records WHERE instance = $1 AND seq = $2")
            .bind(instance)
            .bind(seq_i64(seq)?)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_record).transpose()
    }

    async fn records_by_ref(&self, ref_id: &str) -> Result<Vec<AuditRecord>> {
        let rows = sqlx::query("SELECT * FROM audit_records WHERE ref_id = $1 ORDER BY ts, seq")
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
            "SELECT * FROM audit_records WHERE ts >= $1 AND ts < $2 AND (ts, instance, seq) > ($3, $4, $5)
             ORDER BY ts, instance, seq LIMIT $6",
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
            "INSERT INTO audit_checkpoints (instance, seq, hash, ts, public_key, signature)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (instance, seq) DO UPDATE SET hash = excluded.hash, ts = excluded.ts,
                public_key = excluded.public_key, signature = excluded.signature",
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
        let rows = sqlx::query("SELECT * FROM audit_checkpoints WHERE instance = $1 ORDER BY seq")
            .bind(instance)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_checkpoint).collect()
    }

    async fn anchor(&self, instance: &str) -> Result<Option<Anchor>> {
        let row = sqlx::query("SELECT seq, hash FROM audit_anchors WHERE instance = $1")
            .bind(instance)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(Anchor {
                seq: seq_u64(r.try_get("seq")?, "audit_anchors.seq")?,
                hash: hash32(r.try_get("hash")?, "audit_anchors.hash")?,
            })
        })
        .transpose()
    }

    async fn day_key(&self, day: &str) -> Result<Option<Option<(Vec<u8>, Vec<u8>)>>> {
        let row = sqlx::query("SELECT nonce, wrapped FROM audit_day_keys WHERE day = $1")
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
            "INSERT INTO audit_day_keys (day, nonce, wrapped, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (day) DO NOTHING",
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
             LEFT JOIN audit_day_keys k ON k.day = p.day WHERE p.request_id = $1 ORDER BY p.kind",
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
            "INSERT INTO legal_holds (scope, value, reason, placed_by, placed_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (scope, value) DO UPDATE SET reason = excluded.reason,
                placed_by = excluded.placed_by, placed_at = excluded.placed_at",
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
        let done = sqlx::query("DELETE FROM legal_holds WHERE scope = $1 AND value = $2")
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
        let mut tx = PgRetention(self.pool.begin().await?);
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
        // append would (a read-only replica or transaction, missing privileges, a full disk).
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO audit_records (instance, seq, ts, kind, ref_id, body, prev_hash, hash, mac)
             VALUES ('~probe', 0, 0, 'probe', '', '{}', '', '', '')",
        )
        .execute(&mut *tx)
        .await?;
        tx.rollback().await?;
        Ok(())
    }
}

/// A retention pass's transaction.
struct PgRetention(Transaction<'static, Postgres>);

impl RetentionTx for PgRetention {
    async fn count_payloads(&mut self, kind: PayloadKind, before_ms: i64) -> Result<(i64, i64)> {
        let row = sqlx::query(&format!(
            "SELECT COUNT(*) FILTER (WHERE NOT {h}) AS doomed, COUNT(*) FILTER (WHERE {h}) AS held
             FROM audit_payloads WHERE kind = $1 AND ts < $2",
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
            "DELETE FROM audit_payloads WHERE kind = $1 AND ts < $2 AND NOT {}",
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
            "SELECT COUNT(*) FILTER (WHERE NOT {h}) AS doomed, COUNT(*) FILTER (WHERE {h}) AS held
             FROM review_items WHERE at < $1",
            h = review_held()
        ))
        .bind(before_ms)
        .fetch_one(&mut *self.0)
        .await?;
        Ok((row.try_get("doomed")?, row.try_get("held")?))
    }

    async fn delete_reviews(&mut self, before_ms: i64) -> Result<()> {
        sqlx::query(&format!(
            "DELETE FROM review_items WHERE at < $1 AND NOT {}",
            review_held()
        ))
        .bind(before_ms)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    async fn days_without(&mut self, last_day: &str, kept: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(&format!(
            "SELECT k.day FROM audit_day_keys k WHERE k.wrapped IS NOT NULL AND k.day <= $1
             AND NOT EXISTS (SELECT 1 FROM audit_payloads p WHERE p.day = k.day AND {kept})
             ORDER BY k.day"
        ))
        .bind(last_day)
        .fetch_all(&mut *self.0)
        .await?)
    }

    async fn destroy_day_key(&mut self, day: &str, now_ms: i64) -> Result<()> {
        sqlx::query(
            "UPDATE audit_day_keys SET nonce = NULL, wrapped = NULL, destroyed_at = $1 WHERE day = $2",
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
            "SELECT MIN(seq) FILTER (WHERE ts >= $2) AS young, MIN(seq) FILTER (WHERE {}) AS held
             FROM audit_records WHERE instance = $1",
            held("audit_records")
        ))
        .bind(instance)
        .bind(before_ms)
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
            "SELECT seq, hash FROM audit_checkpoints WHERE instance = $1 AND seq <= $2
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
        Ok(sqlx::query_scalar(
            "SELECT COALESCE(MAX(seq), 0) FROM audit_anchors WHERE instance = $1",
        )
        .bind(instance)
        .fetch_one(&mut *self.0)
        .await?)
    }

    async fn count_records_to(&mut self, instance: &str, seq: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_records WHERE instance = $1 AND seq <= $2",
        )
        .bind(instance)
        .bind(seq)
        .fetch_one(&mut *self.0)
        .await?)
    }

    async fn prune_to(&mut self, instance: &str, seq: i64, hash: &[u8]) -> Result<()> {
        sqlx::query("DELETE FROM audit_records WHERE instance = $1 AND seq <= $2")
            .bind(instance)
            .bind(seq)
            .execute(&mut *self.0)
            .await?;
        sqlx::query(
            "INSERT INTO audit_anchors (instance, seq, hash) VALUES ($1, $2, $3)
             ON CONFLICT (instance) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        )
        .bind(instance)
        .bind(seq)
        .bind(hash)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_bounded_by_rows_and_bytes() {
        let rows = vec![1usize; INSERT_ROWS * 2 + 1];
        let c = chunks(&rows, |_| 1);
        assert_eq!(
            c.iter().map(|c| c.len()).collect::<Vec<_>>(),
            [INSERT_ROWS, INSERT_ROWS, 1]
        );
        let big = [INSERT_BYTES / 2 + 1; 3];
        assert_eq!(chunks(&big, |n| *n).len(), 3);
        // A single item over the byte bound still goes, alone.
        let huge = [INSERT_BYTES * 2];
        assert_eq!(chunks(&huge, |n| *n).len(), 1);
        assert!(chunks(&[] as &[usize], |n| *n).is_empty());
    }

    #[test]
    fn a_payload_written_twice_in_one_batch_is_one_row_the_last_one() {
        // Postgres refuses to upsert one key twice in a statement; SQLite's INSERT OR
        // REPLACE keeps the last, so this does too.
        let payload = |n: u8| SealedPayload {
            kind: PayloadKind::Prompt,
            digest: [n; 32],
            day: "2025-01-01".into(),
            time: Utc::now(),
            nonce: [0; 24],
            ciphertext: vec![n],
        };
        let new = |r: &str, p: Vec<SealedPayload>| {
            let mut n = NewRecord::new(
                Utc::now(),
                crate::audit::RecordKind::Request,
                r,
                None,
                None,
                &serde_json::json!({}),
            );
            n.payloads = p;
            n
        };
        let batch = [
            new("req_a", vec![payload(1)]),
            new("req_b", vec![payload(2)]),
            new("req_a", vec![payload(3)]),
        ];
        let head = ChainPos {
            seq: 0,
            hash: GENESIS,
        };
        let records = chain_batch("gw", head, &batch, &[0; 32]);
        let rows = payload_rows(&records, &batch);
        let got: Vec<(&str, u8)> = rows
            .iter()
            .map(|r| (r.record.ref_id.as_str(), r.payload.ciphertext[0]))
            .collect();
        assert_eq!(got, [("req_a", 3), ("req_b", 2)]);
    }
}
