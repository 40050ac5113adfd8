//! Budget ledger and alerts on SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;

use super::SqliteStore;
use crate::alert::{AlertRecord, AlertStore, Sighting};
use crate::budget::{BudgetLedger, Spend};
use crate::{Result, StoreError, from_millis, to_millis};

#[async_trait]
impl BudgetLedger for SqliteStore {
    async fn reserve(&self, budget: &str, period: &str, amount: i64, limit: i64) -> Result<bool> {
        sqlx::query(
            "INSERT INTO budget_spend (budget, period) VALUES (?, ?) ON CONFLICT(budget, period) DO NOTHING",
        )
        .bind(budget)
        .bind(period)
        .execute(&self.pool)
        .await?;
        // One statement: the check and the reservation cannot be interleaved.
        let done = sqlx::query(
            "UPDATE budget_spend SET reserved = reserved + ?
             WHERE budget = ? AND period = ? AND spent < ? AND spent + reserved + ? <= ?",
        )
        .bind(amount)
        .bind(budget)
        .bind(period)
        .bind(limit)
        .bind(amount)
        .bind(limit)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn settle(&self, budget: &str, period: &str, reserved: i64, actual: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO budget_spend (budget, period, spent, reserved) VALUES (?, ?, ?, 0)
             ON CONFLICT(budget, period) DO UPDATE
             SET spent = spent + excluded.spent, reserved = MAX(reserved - ?, 0)",
        )
        .bind(budget)
        .bind(period)
        .bind(actual)
        .bind(reserved)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn spend(&self, budget: &str, period: &str) -> Result<Spend> {
        let row =
            sqlx::query("SELECT spent, reserved FROM budget_spend WHERE budget = ? AND period = ?")
                .bind(budget)
                .bind(period)
                .fetch_optional(&self.pool)
                .await?;
        Ok(match row {
            Some(r) => Spend {
                spent: r.try_get("spent")?,
                reserved: r.try_get("reserved")?,
            },
            None => Spend::default(),
        })
    }

    async fn cross_threshold(
        &self,
        budget: &str,
        period: &str,
        permille: i64,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO budget_thresholds (budget, period, permille, at) VALUES (?, ?, ?, ?)
             ON CONFLICT(budget, period, permille) DO NOTHING",
        )
        .bind(budget)
        .bind(period)
        .bind(permille)
        .bind(to_millis(at))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}

fn alert_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<AlertRecord> {
    let details: String = r.try_get("details")?;
    Ok(AlertRecord {
        id: r.try_get("id")?,
        at: from_millis(r.try_get("at")?),
        kind: r.try_get("kind")?,
        severity: r.try_get("severity")?,
        subject: r.try_get("subject")?,
        dedup_key: r.try_get("dedup_key")?,
        message: r.try_get("message")?,
        details: serde_json::from_str(&details).map_err(|_| StoreError::Corrupt {
            what: "alerts.details",
        })?,
    })
}

#[async_trait]
impl AlertStore for SqliteStore {
    async fn insert_alert(&self, a: &AlertRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO alerts (id, at, kind, severity, subject, dedup_key, message, details)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&a.id)
        .bind(to_millis(a.at))
        .bind(&a.kind)
        .bind(&a.severity)
        .bind(&a.subject)
        .bind(&a.dedup_key)
        .bind(&a.message)
        .bind(a.details.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn alerts_since(&self, since: DateTime<Utc>, limit: u32) -> Result<Vec<AlertRecord>> {
        let rows =
            sqlx::query("SELECT * FROM alerts WHERE at >= ? ORDER BY at DESC, id DESC LIMIT ?")
                .bind(to_millis(since))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(alert_from_row).collect()
    }

    async fn sight(
        &self,
        key_id: &str,
        kind: &str,
        value: &str,
        at: DateTime<Utc>,
    ) -> Result<Sighting> {
        let others: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM key_sightings WHERE key_id = ? AND kind = ? AND value <> ?",
        )
        .bind(key_id)
        .bind(kind)
        .bind(value)
        .fetch_one(&self.pool)
        .await?;
        let done = sqlx::query(
            "INSERT INTO key_sightings (key_id, kind, value, at) VALUES (?, ?, ?, ?)
             ON CONFLICT(key_id, kind, value) DO NOTHING",
        )
        .bind(key_id)
        .bind(kind)
        .bind(value)
        .bind(to_millis(at))
        .execute(&self.pool)
        .await?;
        Ok(Sighting {
            new: done.rows_affected() == 1,
            had_others: others > 0,
        })
    }
}
