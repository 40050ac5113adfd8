//! Review queue and route statistics on SQLite.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;

use super::SqliteStore;
use crate::review::{
    DayCounts, EvalRow, Labelling, MAX_REVIEW_PAGE, ReviewItem, ReviewLabel, ReviewQuery,
    ReviewStore, ReviewSummary, RouteDay, RouteDayDelta,
};
use crate::{Result, StoreError, from_millis, to_millis};

fn item_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<ReviewItem> {
    let label = r
        .try_get::<Option<String>, _>("label")?
        .map(|l| {
            ReviewLabel::parse(&l).ok_or(StoreError::Corrupt {
                what: "review_items.label",
            })
        })
        .transpose()?;
    Ok(ReviewItem {
        id: r.try_get("id")?,
        route: r.try_get("route")?,
        request_id: r.try_get("request_id")?,
        at: from_millis(r.try_get("at")?),
        prompt: r.try_get("prompt")?,
        completion: r.try_get("completion")?,
        truncated: r.try_get::<i64, _>("truncated")? != 0,
        label,
        reviewer: r.try_get("reviewer")?,
        labelled_by: r.try_get("labelled_by")?,
        note: r.try_get("note")?,
        labelled_at: r.try_get::<Option<i64>, _>("labelled_at")?.map(from_millis),
    })
}

fn counts_from_row(r: &sqlx::sqlite::SqliteRow) -> Result<DayCounts> {
    Ok(DayCounts {
        requests: r.try_get("requests")?,
        completions: r.try_get("completions")?,
        output_tokens: r.try_get("output_tokens")?,
        refusals: r.try_get("refusals")?,
        guard_blocks: r.try_get("guard_blocks")?,
        errors: r.try_get("errors")?,
        latency_ms_total: r.try_get("latency_ms_total")?,
        cost_nanos: r.try_get("cost_nanos")?,
    })
}

#[async_trait]
impl ReviewStore for SqliteStore {
    async fn enqueue_reviews(&self, items: &[ReviewItem]) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        for i in items {
            sqlx::query(
                "INSERT INTO review_items (id, route, request_id, at, day, prompt, completion, truncated)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&i.id)
            .bind(&i.route)
            .bind(&i.request_id)
            .bind(to_millis(i.at))
            .bind(i.at.date_naive().to_string())
            .bind(&i.prompt)
            .bind(&i.completion)
            .bind(i64::from(i.truncated))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn review_items(&self, q: &ReviewQuery) -> Result<Vec<ReviewItem>> {
        let rows = sqlx::query(
            "SELECT * FROM review_items
             WHERE (? IS NULL OR route = ?) AND (? = 0 OR label IS NULL)
             ORDER BY at, id LIMIT ?",
        )
        .bind(&q.route)
        .bind(&q.route)
        .bind(i64::from(q.pending_only))
        .bind(i64::from(q.limit.min(MAX_REVIEW_PAGE)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(item_from_row).collect()
    }

    async fn review_item(&self, id: &str) -> Result<Option<ReviewItem>> {
        let row = sqlx::query("SELECT * FROM review_items WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(item_from_row).transpose()
    }

    async fn label_review(&self, id: &str, l: &Labelling<'_>) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE review_items SET label = ?, reviewer = ?, labelled_by = ?, note = ?, labelled_at = ?
             WHERE id = ?",
        )
        .bind(l.label.as_str())
        .bind(l.reviewer)
        .bind(l.labelled_by)
        .bind(l.note)
        .bind(to_millis(l.at))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn review_summary(&self) -> Result<ReviewSummary> {
        let r = sqlx::query(
            "SELECT COALESCE(SUM(CASE WHEN label IS NULL THEN 1 ELSE 0 END), 0) AS pending,
                    COALESCE(SUM(CASE WHEN label IS NULL THEN 0 ELSE 1 END), 0) AS labelled,
                    MAX(labelled_at) AS last
             FROM review_items",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(ReviewSummary {
            pending: r.try_get("pending")?,
            labelled: r.try_get("labelled")?,
            last_labelled_at: r.try_get::<Option<i64>, _>("last")?.map(from_millis),
        })
    }

    async fn add_route_days(&self, deltas: &[RouteDayDelta]) -> Result<()> {
        if deltas.is_empty() {
            return Ok(());
        }
        let mut tx = self.write_tx().await?;
        for d in deltas {
            let c = &d.counts;
            sqlx::query(
                "INSERT INTO route_days (route, day, requests, completions, output_tokens, refusals,
                    guard_blocks, errors, latency_ms_total, cost_nanos)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT(route, day) DO UPDATE SET
                    requests = requests + excluded.requests,
                    completions = completions + excluded.completions,
                    output_tokens = output_tokens + excluded.output_tokens,
                    refusals = refusals + excluded.refusals,
                    guard_blocks = guard_blocks + excluded.guard_blocks,
                    errors = errors + excluded.errors,
                    latency_ms_total = latency_ms_total + excluded.latency_ms_total,
                    cost_nanos = cost_nanos + excluded.cost_nanos",
            )
            .bind(&d.route)
            .bind(&d.day)
            .bind(c.requests)
            .bind(c.completions)
            .bind(c.output_tokens)
            .bind(c.refusals)
            .bind(c.guard_blocks)
            .bind(c.errors)
            .bind(c.latency_ms_total)
            .bind(c.cost_nanos)
            .execute(&mut *tx)
            .await?;
            for ((metric, bin), n) in &d.bins {
                sqlx::query(
                    "INSERT INTO route_day_bins (route, day, metric, bin, count) VALUES (?, ?, ?, ?, ?)
                     ON CONFLICT(route, day, metric, bin) DO UPDATE SET count = count + excluded.count",
                )
                .bind(&d.route)
                .bind(&d.day)
                .bind(metric)
                .bind(bin)
                .bind(n)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn route_days(&self, route: &str, from: &str, to: &str) -> Result<Vec<RouteDay>> {
        let mut days: BTreeMap<String, RouteDay> = BTreeMap::new();
        let rows =
            sqlx::query("SELECT * FROM route_days WHERE route = ? AND day >= ? AND day <= ?")
                .bind(route)
                .bind(from)
                .bind(to)
                .fetch_all(&self.pool)
                .await?;
        for r in &rows {
            let day: String = r.try_get("day")?;
            days.entry(day.clone())
                .or_insert_with(|| RouteDay {
                    day,
                    ..RouteDay::default()
                })
                .counts = counts_from_row(r)?;
        }
        let rows = sqlx::query(
            "SELECT day, metric, bin, count FROM route_day_bins WHERE route = ? AND day >= ? AND day <= ?",
        )
        .bind(route)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            let day: String = r.try_get("day")?;
            let e = days.entry(day.clone()).or_insert_with(|| RouteDay {
                day,
                ..RouteDay::default()
            });
            *e.bins
                .entry(r.try_get("metric")?)
                .or_default()
                .entry(r.try_get("bin")?)
                .or_default() += r.try_get::<i64, _>("count")?;
        }
        let rows = sqlx::query(
            "SELECT day, label, COUNT(*) AS n FROM review_items
             WHERE route = ? AND day >= ? AND day <= ? AND label IS NOT NULL GROUP BY day, label",
        )
        .bind(route)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        for r in &rows {
            let day: String = r.try_get("day")?;
            let e = days.entry(day.clone()).or_insert_with(|| RouteDay {
                day,
                ..RouteDay::default()
            });
            e.labels.insert(r.try_get("label")?, r.try_get("n")?);
        }
        Ok(days.into_values().collect())
    }

    async fn routes_with_days(&self, from: &str) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar::<_, String>(
            "SELECT DISTINCT route FROM route_days WHERE day >= ? ORDER BY route",
        )
        .bind(from)
        .fetch_all(&self.pool)
        .await?)
    }

    async fn prompt_evals_since(&self, since: DateTime<Utc>) -> Result<Vec<EvalRow>> {
        let rows = sqlx::query(
            "SELECT name, version, content, eval_passed, eval_at FROM prompt_versions
             WHERE eval_at IS NOT NULL AND eval_at >= ? ORDER BY eval_at, name, version",
        )
        .bind(to_millis(since))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(EvalRow {
                    name: r.try_get("name")?,
                    version: r.try_get("version")?,
                    content: r.try_get("content")?,
                    passed: r.try_get::<Option<i64>, _>("eval_passed")?.unwrap_or(0) != 0,
                    at: from_millis(r.try_get("eval_at")?),
                })
            })
            .collect()
    }

    async fn mark_drift_alert(&self, route: &str, day: &str, at: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO drift_alerts (route, day, at) VALUES (?, ?, ?)
             ON CONFLICT(route, day) DO NOTHING",
        )
        .bind(route)
        .bind(day)
        .bind(to_millis(at))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
