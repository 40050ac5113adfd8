//! Kill switches on SQLite.

use async_trait::async_trait;
use sqlx::Row;

use super::SqliteStore;
use crate::control::{ControlStore, KillSwitch, SwitchKind};
use crate::{Result, StoreError, from_millis, to_millis};

#[async_trait]
impl ControlStore for SqliteStore {
    async fn set_switch(&self, s: &KillSwitch) -> Result<()> {
        sqlx::query(
            "INSERT INTO kill_switches (kind, target, reason, set_by, set_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)
             ON CONFLICT(kind, target) DO UPDATE SET reason = excluded.reason, set_by = excluded.set_by, set_at = excluded.set_at, expires_at = excluded.expires_at
             WHERE kill_switches.expires_at IS NOT NULL OR excluded.expires_at IS NULL",
        )
        .bind(s.kind.as_str())
        .bind(&s.target)
        .bind(&s.reason)
        .bind(&s.set_by)
        .bind(to_millis(s.set_at))
        .bind(s.expires_at.map(to_millis))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn clear_switch(&self, kind: SwitchKind, target: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM kill_switches WHERE kind = ? AND target = ?")
            .bind(kind.as_str())
            .bind(target)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn switches(&self) -> Result<Vec<KillSwitch>> {
        let rows = sqlx::query(
            "SELECT * FROM kill_switches WHERE expires_at IS NULL OR expires_at > ? ORDER BY set_at, kind, target",
        )
        .bind(to_millis(chrono::Utc::now()))
        .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get("kind")?;
                Ok(KillSwitch {
                    kind: SwitchKind::parse(&kind).ok_or(StoreError::Corrupt {
                        what: "kill_switches.kind",
                    })?,
                    target: r.try_get("target")?,
                    reason: r.try_get("reason")?,
                    set_by: r.try_get("set_by")?,
                    set_at: from_millis(r.try_get("set_at")?),
                    expires_at: r.try_get::<Option<i64>, _>("expires_at")?.map(from_millis),
                })
            })
            .collect()
    }
}
