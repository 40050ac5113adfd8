//! The embedded store: one SQLite file in WAL mode under the data directory.
//!
//! WAL lets the CLI (`tollgate keys revoke`) write while a running gateway reads, which is
//! how revocation reaches a live server without an admin API round-trip.

mod appender;
mod audit;
mod budget;
mod control;
mod prompt;
mod review;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::class::DataClass;
use crate::key::{Environment, KeyHash, KeyRecord};
use crate::{
    AdminCredential, AdminEntry, AdminRevocation, AdminStore, KeyStore, REVOKE_ADMIN_SQL, Result,
    SecretStore, StoreError, from_millis, to_millis, unrevoked_reason,
};

/// SQLite implementation of every store trait.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// The audit appender: dedicated connections, one on its own thread (see `appender.rs`).
    appender: std::sync::Arc<appender::Appender>,
}

impl SqliteStore {
    /// Open (creating if needed) the database file at `path` and apply migrations.
    pub async fn open(path: &Path) -> Result<Self> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true)
            // The store's checkpointer thread copies the WAL back (see `audit.rs`); a pool
            // connection that did it inline would hold up whatever it was committing.
            .pragma("wal_autocheckpoint", "0");
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        Ok(Self {
            pool,
            appender: std::sync::Arc::new(appender::Appender::new(path.to_owned())?),
        })
    }

    /// A transaction that holds the write lock from its first statement (`BEGIN IMMEDIATE`).
    /// A deferred transaction that reads and then writes fails at once with SQLITE_BUSY
    /// (no busy wait) when another connection committed in between, and the audit appender
    /// commits all the time; taking the lock up front makes it wait under `busy_timeout`.
    pub(crate) async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }
}

fn opt_millis(v: Option<DateTime<Utc>>) -> Option<i64> {
    v.map(to_millis)
}

fn row_to_key(row: &sqlx::sqlite::SqliteRow) -> Result<KeyRecord> {
    let hash: Vec<u8> = row.try_get("hash")?;
    let hash: [u8; 32] = hash.try_into().map_err(|_| StoreError::Corrupt {
        what: "virtual_keys.hash",
    })?;
    let env: String = row.try_get("environment")?;
    let models: String = row.try_get("allowed_models")?;
    Ok(KeyRecord {
        id: row.try_get("id")?,
        hash: KeyHash(hash),
        display_prefix: row.try_get("display_prefix")?,
        name: row.try_get("name")?,
        owner: row.try_get("owner")?,
        team: row.try_get("team")?,
        environment: Environment::parse(&env).ok_or(StoreError::Corrupt {
            what: "virtual_keys.environment",
        })?,
        allowed_models: serde_json::from_str(&models).map_err(|_| StoreError::Corrupt {
            what: "virtual_keys.allowed_models",
        })?,
        created_at: from_millis(row.try_get("created_at")?),
        expires_at: row
            .try_get::<Option<i64>, _>("expires_at")?
            .map(from_millis),
        revoked_at: row
            .try_get::<Option<i64>, _>("revoked_at")?
            .map(from_millis),
        last_used_at: row
            .try_get::<Option<i64>, _>("last_used_at")?
            .map(from_millis),
        rotated_from: row.try_get("rotated_from")?,
        rotated_to: row.try_get("rotated_to")?,
        data_class: row
            .try_get::<Option<String>, _>("data_class")?
            .map(|c| {
                DataClass::parse(&c).ok_or(StoreError::Corrupt {
                    what: "virtual_keys.data_class",
                })
            })
            .transpose()?,
        role: row.try_get("role")?,
    })
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn insert_key(&self, r: &KeyRecord) -> Result<()> {
        let models = serde_json::to_string(&r.allowed_models).map_err(|_| StoreError::Corrupt {
            what: "allowed_models",
        })?;
        sqlx::query(
            "INSERT INTO virtual_keys (id, hash, display_prefix, name, owner, team, environment,
                allowed_models, created_at, expires_at, revoked_at, last_used_at, rotated_from, rotated_to,
                data_class, role)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&r.id)
        .bind(&r.hash.0[..])
        .bind(&r.display_prefix)
        .bind(&r.name)
        .bind(&r.owner)
        .bind(&r.team)
        .bind(r.environment.as_str())
        .bind(models)
        .bind(to_millis(r.created_at))
        .bind(opt_millis(r.expires_at))
        .bind(opt_millis(r.revoked_at))
        .bind(opt_millis(r.last_used_at))
        .bind(&r.rotated_from)
        .bind(&r.rotated_to)
        .bind(r.data_class.map(DataClass::as_str))
        .bind(&r.role)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn key_by_hash(&self, hash: &KeyHash) -> Result<Option<KeyRecord>> {
        let row = sqlx::query("SELECT * FROM virtual_keys WHERE hash = ?")
            .bind(&hash.0[..])
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_key).transpose()
    }

    async fn key_by_id(&self, id: &str) -> Result<Option<KeyRecord>> {
        let row = sqlx::query("SELECT * FROM virtual_keys WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_key).transpose()
    }

    async fn list_keys(&self) -> Result<Vec<KeyRecord>> {
        let rows = sqlx::query("SELECT * FROM virtual_keys ORDER BY created_at DESC, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(row_to_key).collect()
    }

    async fn revoke_key(&self, id: &str, at: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE virtual_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?",
        )
        .bind(to_millis(at))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn mark_rotated(&self, old: &str, new: &str, grace_until: DateTime<Utc>) -> Result<()> {
        let mut tx = self.write_tx().await?;
        // Never extend a key's life by rotating it: keep the earlier of the two expiries.
        sqlx::query(
            "UPDATE virtual_keys SET rotated_to = ?,
                expires_at = CASE WHEN expires_at IS NULL OR expires_at > ? THEN ? ELSE expires_at END
             WHERE id = ?",
        )
        .bind(new)
        .bind(to_millis(grace_until))
        .bind(to_millis(grace_until))
        .bind(old)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE virtual_keys SET rotated_from = ? WHERE id = ?")
            .bind(old)
            .bind(new)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn touch_keys(&self, uses: &[(String, DateTime<Utc>)]) -> Result<()> {
        if uses.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        for (id, at) in uses {
            sqlx::query(
                "UPDATE virtual_keys SET last_used_at = MAX(COALESCE(last_used_at, 0), ?) WHERE id = ?",
            )
            .bind(to_millis(*at))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

#[async_trait]
impl SecretStore for SqliteStore {
    async fn put_sealed(&self, name: &str, nonce: &[u8], ciphertext: &[u8]) -> Result<()> {
        let now = to_millis(Utc::now());
        sqlx::query(
            "INSERT INTO secrets (name, nonce, ciphertext, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT(name) DO UPDATE SET nonce = excluded.nonce, ciphertext = excluded.ciphertext,
                updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(nonce)
        .bind(ciphertext)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_sealed(&self, name: &str) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let row = sqlx::query("SELECT nonce, ciphertext FROM secrets WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Some((r.try_get("nonce")?, r.try_get("ciphertext")?))),
            None => Ok(None),
        }
    }

    async fn secret_names(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT name FROM secrets ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("name")?)).collect()
    }

    async fn delete_secret(&self, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM secrets WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl AdminStore for SqliteStore {
    async fn insert_admin(&self, c: &AdminCredential) -> Result<()> {
        sqlx::query("INSERT INTO admin_credentials (id, hash, name, role, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&c.id)
            .bind(&c.hash.0[..])
            .bind(&c.name)
            .bind(&c.role)
            .bind(to_millis(c.created_at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn active_admin_count(&self) -> Result<u64> {
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM admin_credentials WHERE revoked_at IS NULL")
                .fetch_one(&self.pool)
                .await?;
        let n: i64 = row.try_get("n")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn admin_by_hash(&self, hash: &KeyHash) -> Result<Option<AdminCredential>> {
        let row =
            sqlx::query("SELECT * FROM admin_credentials WHERE hash = ? AND revoked_at IS NULL")
                .bind(&hash.0[..])
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            Ok(AdminCredential {
                id: r.try_get("id")?,
                hash: KeyHash(hash32(r.try_get("hash")?)?),
                name: r.try_get("name")?,
                role: r.try_get("role")?,
                created_at: from_millis(r.try_get("created_at")?),
            })
        })
        .transpose()
    }

    async fn list_admins(&self) -> Result<Vec<AdminEntry>> {
        let rows = sqlx::query(
            "SELECT id, name, role, created_at, revoked_at FROM admin_credentials ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AdminEntry {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    role: r.try_get("role")?,
                    created_at: from_millis(r.try_get("created_at")?),
                    revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(from_millis),
                })
            })
            .collect()
    }

    async fn revoke_admin(&self, id: &str, at: DateTime<Utc>) -> Result<AdminRevocation> {
        // One statement: SQLite runs it under the write lock, so the owner count it reads
        // cannot change before it writes.
        let done = sqlx::query(REVOKE_ADMIN_SQL)
            .bind(to_millis(at))
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() > 0 {
            return Ok(AdminRevocation::Revoked);
        }
        let row: Option<Option<i64>> =
            sqlx::query_scalar("SELECT revoked_at FROM admin_credentials WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(unrevoked_reason(row))
    }
}

fn hash32(v: Vec<u8>) -> Result<[u8; 32]> {
    v.try_into().map_err(|_| StoreError::Corrupt {
        what: "admin_credentials.hash",
    })
}
