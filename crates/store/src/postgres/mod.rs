//! The Postgres store: every store trait on one connection pool, for several gateway
//! instances sharing state and audit (DESIGN.md, "Storage").
//!
//! The schema (`migrations/postgres`) mirrors the SQLite one column for column, with BYTEA
//! for blobs and BIGINT milliseconds for times, so the row mapping and every query read the
//! same in both backends. [`PgStore::connect`] applies the migrations; [`PgOptions`] bounds
//! the pool and the time spent connecting, and can confine the store to one schema (how the
//! tests isolate themselves, and how a deployment can share a database).
//!
//! The audit trail ([`crate::audit::AuditStore`]) is in `audit.rs`.

mod audit;
mod budget;
mod control;
mod prompt;
mod review;

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, Connection, PgPool, Row};

use crate::class::DataClass;
use crate::key::{Environment, KeyHash, KeyRecord};
use crate::{
    AdminCredential, AdminEntry, AdminRevocation, AdminStore, KeyStore, REVOKE_ADMIN_SQL, Result,
    SecretStore, StoreError, from_millis, to_millis, unrevoked_reason,
};

/// Longest schema name accepted by [`PgOptions::schema`] (Postgres's identifier limit).
pub const MAX_SCHEMA_LEN: usize = 63;

/// How [`PgStore::connect`] connects.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// Most connections the pool opens.
    pub max_connections: u32,
    /// Longest wait for a connection, including establishing a new one.
    pub connect_timeout: Duration,
    /// Keep every table in this schema (created if missing) instead of the server's default
    /// `search_path`: 1-63 characters of `a-z`, `0-9` and `_`, not starting with a digit.
    pub schema: Option<String>,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            connect_timeout: Duration::from_secs(10),
            schema: None,
        }
    }
}

/// Whether `s` is a schema name [`PgOptions::schema`] accepts. The name is spliced into
/// `CREATE SCHEMA` and the `search_path` option, so only plain lower-case identifiers pass.
pub fn valid_schema(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_SCHEMA_LEN
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// Postgres implementation of every store trait.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connect to the database at `url` (`postgres://user:pass@host:port/db?sslmode=…`) and
    /// apply the migrations. Connection errors never include the URL (it may hold a password).
    pub async fn connect(url: &str, opts: &PgOptions) -> Result<Self> {
        let mut connect = PgConnectOptions::from_str(url)?.application_name("tollgate");
        if let Some(schema) = &opts.schema {
            if !valid_schema(schema) {
                return Err(StoreError::BadSchemaName(schema.clone()));
            }
            // A startup option, so every connection starts in the schema without a round
            // trip; Postgres accepts a search_path naming a schema that does not exist yet.
            connect = connect.options([("search_path", schema.as_str())]);
        }
        // One connection first, by hand: the pool retries a refused connection until its
        // timeout and then reports only that it timed out, where this names the cause.
        let mut first = tokio::time::timeout(opts.connect_timeout, connect.connect())
            .await
            .map_err(|_| StoreError::ConnectTimeout(opts.connect_timeout))??;
        if let Some(schema) = &opts.schema {
            // Checked by valid_schema above: a plain identifier, safe to splice.
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .execute(&mut first)
                .await?;
        }
        first.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .acquire_timeout(opts.connect_timeout)
            .idle_timeout(Duration::from_secs(300))
            .connect_with(connect)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self { pool })
    }

    /// Close every connection of the pool (waits for connections in use to be returned).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn hash32(v: Vec<u8>, what: &'static str) -> Result<[u8; 32]> {
    v.try_into().map_err(|_| StoreError::Corrupt { what })
}

fn opt_millis(v: Option<DateTime<Utc>>) -> Option<i64> {
    v.map(to_millis)
}

fn row_to_key(row: &PgRow) -> Result<KeyRecord> {
    let env: String = row.try_get("environment")?;
    let models: String = row.try_get("allowed_models")?;
    Ok(KeyRecord {
        id: row.try_get("id")?,
        hash: KeyHash(hash32(row.try_get("hash")?, "virtual_keys.hash")?),
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
impl KeyStore for PgStore {
    async fn insert_key(&self, r: &KeyRecord) -> Result<()> {
        let models = serde_json::to_string(&r.allowed_models).map_err(|_| StoreError::Corrupt {
            what: "allowed_models",
        })?;
        sqlx::query(
            "INSERT INTO virtual_keys (id, hash, display_prefix, name, owner, team, environment,
                allowed_models, created_at, expires_at, revoked_at, last_used_at, rotated_from, rotated_to,
                data_class, role)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
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
        let row = sqlx::query("SELECT * FROM virtual_keys WHERE hash = $1")
            .bind(&hash.0[..])
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(row_to_key).transpose()
    }

    async fn key_by_id(&self, id: &str) -> Result<Option<KeyRecord>> {
        let row = sqlx::query("SELECT * FROM virtual_keys WHERE id = $1")
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
            "UPDATE virtual_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2",
        )
        .bind(to_millis(at))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn mark_rotated(&self, old: &str, new: &str, grace_until: DateTime<Utc>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // Never extend a key's life by rotating it: keep the earlier of the two expiries.
        sqlx::query(
            "UPDATE virtual_keys SET rotated_to = $1, expires_at = LEAST(COALESCE(expires_at, $2), $2)
             WHERE id = $3",
        )
        .bind(new)
        .bind(to_millis(grace_until))
        .bind(old)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE virtual_keys SET rotated_from = $1 WHERE id = $2")
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
        // One statement for the whole batch; the latest use per key wins, and a time never
        // moves backwards.
        let (ids, ats): (Vec<&str>, Vec<i64>) = uses
            .iter()
            .map(|(id, at)| (id.as_str(), to_millis(*at)))
            .unzip();
        sqlx::query(
            "UPDATE virtual_keys v SET last_used_at = GREATEST(COALESCE(v.last_used_at, 0), u.at)
             FROM (SELECT id, MAX(at) AS at FROM UNNEST($1::text[], $2::bigint[]) AS t(id, at) GROUP BY id) u
             WHERE v.id = u.id",
        )
        .bind(ids)
        .bind(ats)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

#[async_trait]
impl SecretStore for PgStore {
    async fn put_sealed(&self, name: &str, nonce: &[u8], ciphertext: &[u8]) -> Result<()> {
        let now = to_millis(Utc::now());
        sqlx::query(
            "INSERT INTO secrets (name, nonce, ciphertext, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (name) DO UPDATE SET nonce = excluded.nonce, ciphertext = excluded.ciphertext,
                updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(nonce)
        .bind(ciphertext)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get_sealed(&self, name: &str) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let row = sqlx::query("SELECT nonce, ciphertext FROM secrets WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        match row {
            Some(r) => Ok(Some((r.try_get("nonce")?, r.try_get("ciphertext")?))),
            None => Ok(None),
        }
    }

    async fn secret_names(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar("SELECT name FROM secrets ORDER BY name")
            .fetch_all(&self.pool)
            .await?)
    }

    async fn delete_secret(&self, name: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM secrets WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl AdminStore for PgStore {
    async fn insert_admin(&self, c: &AdminCredential) -> Result<()> {
        sqlx::query(
            "INSERT INTO admin_credentials (id, hash, name, role, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
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
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM admin_credentials WHERE revoked_at IS NULL")
                .fetch_one(&self.pool)
                .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn admin_by_hash(&self, hash: &KeyHash) -> Result<Option<AdminCredential>> {
        let row =
            sqlx::query("SELECT * FROM admin_credentials WHERE hash = $1 AND revoked_at IS NULL")
                .bind(&hash.0[..])
                .fetch_optional(&self.pool)
                .await?;
        row.map(|r| {
            Ok(AdminCredential {
                id: r.try_get("id")?,
                hash: KeyHash(hash32(r.try_get("hash")?, "admin_credentials.hash")?),
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
        // Under READ COMMITTED two revocations of two owners would each count two owners and
        // both go through; locking the active owners' rows first makes the second wait for
        // the first and then count what is left.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT id FROM admin_credentials WHERE role = 'owner' AND revoked_at IS NULL FOR UPDATE")
            .fetch_all(&mut *tx)
            .await?;
        let done = sqlx::query(REVOKE_ADMIN_SQL)
            .bind(to_millis(at))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let outcome = if done.rows_affected() > 0 {
            AdminRevocation::Revoked
        } else {
            let row: Option<Option<i64>> =
                sqlx::query_scalar("SELECT revoked_at FROM admin_credentials WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            unrevoked_reason(row)
        };
        tx.commit().await?;
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_schema_names_are_accepted() {
        for ok in ["t_1a2b", "tollgate", "_x", &"a".repeat(MAX_SCHEMA_LEN)] {
            assert!(valid_schema(ok), "{ok}");
        }
        for bad in [
            "",
            "1abc",
            "Tollgate",
            "a-b",
            "a;drop",
            "a b",
            "\"x\"",
            &"a".repeat(MAX_SCHEMA_LEN + 1),
        ] {
            assert!(!valid_schema(bad), "{bad}");
        }
    }
}
