//! Versioned prompts on SQLite (generated from `postgres/prompt.rs`: `$N` placeholders become `?N`).

use async_trait::async_trait;
use sqlx::Row;

use super::SqliteStore;
use crate::prompt::{
    Deployed, Deployment, EvalRecord, NewPromptVersion, PromptEnv, PromptStore, PromptVersion,
};
use crate::{Result, StoreError, from_millis, to_millis};

const DEPLOYED: &str = "SELECT d.name, d.env, d.version, v.content FROM prompt_deployments d
     JOIN prompt_versions v ON v.name = d.name AND v.version = d.version
     WHERE d.seq = (SELECT MAX(seq) FROM prompt_deployments x WHERE x.name = d.name AND x.env = d.env)
     ORDER BY d.name, d.env";

fn env_of(s: &str) -> Result<PromptEnv> {
    PromptEnv::parse(s).ok_or(StoreError::Corrupt {
        what: "prompt_deployments.env",
    })
}

fn version_of<R: Row>(r: &R) -> Result<PromptVersion>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let passed: Option<i64> = r.try_get("eval_passed")?;
    let eval = match passed {
        None => None,
        Some(p) => Some(EvalRecord {
            passed: p != 0,
            report: r
                .try_get::<Option<String>, _>("eval_report")?
                .unwrap_or_default(),
            at: from_millis(r.try_get::<Option<i64>, _>("eval_at")?.unwrap_or_default()),
        }),
    };
    Ok(PromptVersion {
        name: r.try_get("name")?,
        version: r.try_get("version")?,
        content: r.try_get("content")?,
        content_hash: r.try_get("content_hash")?,
        author: r.try_get("author")?,
        created_at: from_millis(r.try_get("created_at")?),
        diff: r.try_get("diff")?,
        eval,
    })
}

fn deployment_of<R: Row>(r: &R) -> Result<Deployment>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    Ok(Deployment {
        name: r.try_get("name")?,
        env: env_of(&r.try_get::<String, _>("env")?)?,
        seq: r.try_get("seq")?,
        version: r.try_get("version")?,
        set_by: r.try_get("set_by")?,
        set_at: from_millis(r.try_get("set_at")?),
        action: r.try_get("action")?,
    })
}

#[async_trait]
impl PromptStore for SqliteStore {
    async fn add_prompt_version(&self, v: &NewPromptVersion<'_>) -> Result<PromptVersion> {
        let mut tx = self.write_tx().await?;
        let next: i64 = sqlx::query(
            "SELECT COALESCE(MAX(version), 0) + 1 AS next FROM prompt_versions WHERE name = ?1",
        )
        .bind(v.name)
        .fetch_one(&mut *tx)
        .await?
        .try_get("next")?;
        sqlx::query(
            "INSERT INTO prompt_versions (name, version, content, content_hash, author, created_at, diff)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(v.name)
        .bind(next)
        .bind(v.content)
        .bind(v.content_hash)
        .bind(v.author)
        .bind(to_millis(v.at))
        .bind(v.diff)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO prompt_deployments (name, env, seq, version, set_by, set_at, action)
             SELECT ?1, ?2, COALESCE(MAX(seq), 0) + 1, ?3, ?4, ?5, 'push'
             FROM prompt_deployments WHERE name = ?1 AND env = ?2",
        )
        .bind(v.name)
        .bind(PromptEnv::Staging.as_str())
        .bind(next)
        .bind(v.author)
        .bind(to_millis(v.at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(PromptVersion {
            name: v.name.to_owned(),
            version: next,
            content: v.content.to_owned(),
            content_hash: v.content_hash.to_owned(),
            author: v.author.to_owned(),
            created_at: from_millis(to_millis(v.at)),
            diff: v.diff.to_owned(),
            eval: None,
        })
    }

    async fn prompt_versions(&self, name: &str) -> Result<Vec<PromptVersion>> {
        let rows = sqlx::query("SELECT * FROM prompt_versions WHERE name = ?1 ORDER BY version")
            .bind(name)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(version_of).collect()
    }

    async fn prompt_version(&self, name: &str, version: i64) -> Result<Option<PromptVersion>> {
        let row = sqlx::query("SELECT * FROM prompt_versions WHERE name = ?1 AND version = ?2")
            .bind(name)
            .bind(version)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(version_of).transpose()
    }

    async fn record_prompt_eval(
        &self,
        name: &str,
        version: i64,
        eval: &EvalRecord,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE prompt_versions SET eval_passed = ?1, eval_report = ?2, eval_at = ?3
             WHERE name = ?4 AND version = ?5",
        )
        .bind(i64::from(eval.passed))
        .bind(&eval.report)
        .bind(to_millis(eval.at))
        .bind(name)
        .bind(version)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn deploy_prompt(
        &self,
        name: &str,
        env: PromptEnv,
        version: i64,
        by: &str,
        action: &str,
    ) -> Result<Deployment> {
        let at = crate::now();
        let mut tx = self.write_tx().await?;
        let exists =
            sqlx::query("SELECT 1 AS one FROM prompt_versions WHERE name = ?1 AND version = ?2")
                .bind(name)
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_none() {
            return Err(StoreError::NoSuchPromptVersion {
                name: name.to_owned(),
                version,
            });
        }
        let row = sqlx::query(
            "INSERT INTO prompt_deployments (name, env, seq, version, set_by, set_at, action)
             SELECT ?1, ?2, COALESCE(MAX(seq), 0) + 1, ?3, ?4, ?5, ?6
             FROM prompt_deployments WHERE name = ?1 AND env = ?2
             RETURNING *",
        )
        .bind(name)
        .bind(env.as_str())
        .bind(version)
        .bind(by)
        .bind(to_millis(at))
        .bind(action)
        .fetch_one(&mut *tx)
        .await?;
        let d = deployment_of(&row)?;
        tx.commit().await?;
        Ok(d)
    }

    async fn prompt_deployments(&self, name: &str) -> Result<Vec<Deployment>> {
        let rows =
            sqlx::query("SELECT * FROM prompt_deployments WHERE name = ?1 ORDER BY env, seq")
                .bind(name)
                .fetch_all(&self.pool)
                .await?;
        let mut out: Vec<Deployment> = rows.iter().map(deployment_of).collect::<Result<_>>()?;
        out.sort_by_key(|d| (d.set_at, d.env, d.seq));
        Ok(out)
    }

    async fn deployed_prompts(&self) -> Result<Vec<Deployed>> {
        let rows = sqlx::query(DEPLOYED).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(Deployed {
                    name: r.try_get("name")?,
                    env: env_of(&r.try_get::<String, _>("env")?)?,
                    version: r.try_get("version")?,
                    content: r.try_get("content")?,
                })
            })
            .collect()
    }
}
