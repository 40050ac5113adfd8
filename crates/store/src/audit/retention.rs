//! Retention decisions, shared by every backend.
//!
//! A retention pass ([`purge`]) decides what to delete; a backend only runs the small
//! statements of [`RetentionTx`] inside one transaction, so SQLite and Postgres cannot drift
//! apart on what a legal hold protects, which days are crypto-shredded or where a chain may be
//! cut. The backend commits the transaction, or rolls it back for a dry run.
//!
//! The rules:
//! - a payload of a class in the plan is deleted when it is older than the class's cutoff
//!   and neither its key nor its team is under a legal hold;
//! - a past day's data key is destroyed once no payload of that day remains (today's key is
//!   still in use); destroying it makes copies of those payloads in old backups unreadable;
//! - a review-queue item (a masked sample of an interaction, with its label) older than
//!   `reviews_before` is deleted unless the request it samples is under a legal hold (found
//!   through the request's audit record, which a hold keeps);
//! - chain records older than `metadata_before` are pruned only up to the newest signed
//!   checkpoint below both the first record still young enough to keep and the first held
//!   record; that checkpoint becomes the chain's anchor, so verification still proves the
//!   rest was not altered.

use chrono::{DateTime, Utc};

use super::payload::day_of;
use super::{PayloadKind, PurgePlan, PurgeReport};
use crate::{Result, StoreError, to_millis};

/// SQL condition true when a row of `table` (with `key_id` and `team` columns) is under a
/// legal hold. Dialect-neutral: it has no placeholders.
pub(crate) fn held(table: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM legal_holds h WHERE \
         (h.scope = 'key' AND h.value = {table}.key_id) OR (h.scope = 'team' AND h.value = {table}.team))"
    )
}

/// SQL condition true when the review item in `review_items` samples a request under a legal
/// hold: its audit record carries the key and team the hold names. Dialect-neutral.
pub(crate) fn review_held() -> String {
    format!(
        "EXISTS (SELECT 1 FROM audit_records WHERE audit_records.ref_id = review_items.request_id AND {})",
        held("audit_records")
    )
}

/// SQL condition on the payload row `p` true when it is kept by this pass: always (a real
/// pass, which has already deleted what it deletes), or, in a dry run, unless the plan would
/// delete it. Dialect-neutral: only literals of known shape (class names and integers).
fn kept_after(plan: &PurgePlan) -> String {
    if !plan.dry_run {
        return "TRUE".to_owned();
    }
    let doomed: Vec<String> = plan
        .payloads
        .iter()
        .map(|(kind, before)| {
            format!(
                "(p.kind = '{}' AND p.ts < {} AND NOT {})",
                kind.as_str(),
                to_millis(*before),
                held("p")
            )
        })
        .collect();
    if doomed.is_empty() {
        "TRUE".to_owned()
    } else {
        format!("NOT ({})", doomed.join(" OR "))
    }
}

/// The statements of a retention pass, run by a backend inside one transaction. Times are
/// milliseconds since the epoch and sequence numbers are the stored `i64`s.
pub(crate) trait RetentionTx: Send {
    /// Payloads of `kind` stored before `before_ms`: `(not held, held)`.
    async fn count_payloads(&mut self, kind: PayloadKind, before_ms: i64) -> Result<(i64, i64)>;
    /// Delete the payloads of `kind` stored before `before_ms` that are not held.
    async fn delete_payloads(&mut self, kind: PayloadKind, before_ms: i64) -> Result<()>;
    /// Review items queued before `before_ms`: `(not held, held)`.
    async fn count_reviews(&mut self, before_ms: i64) -> Result<(i64, i64)>;
    /// Delete the review items queued before `before_ms` that are not held.
    async fn delete_reviews(&mut self, before_ms: i64) -> Result<()>;
    /// Days up to `last_day` whose key still exists and for which no payload `p` satisfying
    /// the SQL condition `kept` remains, in order.
    async fn days_without(&mut self, last_day: &str, kept: &str) -> Result<Vec<String>>;
    /// Destroy a day's wrapped key, noting when.
    async fn destroy_day_key(&mut self, day: &str, now_ms: i64) -> Result<()>;
    /// Every chain with its head sequence number, by instance.
    async fn heads(&mut self) -> Result<Vec<(String, i64)>>;
    /// The lowest seq of a record at or after `before_ms`, and of a held record.
    async fn first_kept(
        &mut self,
        instance: &str,
        before_ms: i64,
    ) -> Result<(Option<i64>, Option<i64>)>;
    /// The newest checkpoint at or below `seq`: `(seq, hex hash)`.
    async fn checkpoint_at_or_below(
        &mut self,
        instance: &str,
        seq: i64,
    ) -> Result<Option<(i64, String)>>;
    /// The current anchor's seq (0 if the chain was never pruned).
    async fn anchored(&mut self, instance: &str) -> Result<i64>;
    /// Records with seq at or below `seq`.
    async fn count_records_to(&mut self, instance: &str, seq: i64) -> Result<i64>;
    /// Delete the records up to `seq` and make `(seq, hash)` the chain's anchor.
    async fn prune_to(&mut self, instance: &str, seq: i64, hash: &[u8]) -> Result<()>;
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Apply `plan` at `now` through `tx` (see the module docs for the rules). In a dry run,
/// nothing is written and the report says what a real pass would do.
pub(crate) async fn purge<T: RetentionTx>(
    tx: &mut T,
    plan: &PurgePlan,
    now: DateTime<Utc>,
) -> Result<PurgeReport> {
    let mut report = PurgeReport::default();
    for (kind, before) in &plan.payloads {
        let before = to_millis(*before);
        let (doomed, held) = tx.count_payloads(*kind, before).await?;
        report.payloads_held += count(held);
        report
            .payloads_deleted
            .insert(kind.as_str().to_owned(), count(doomed));
        if !plan.dry_run && doomed > 0 {
            tx.delete_payloads(*kind, before).await?;
        }
    }

    if let Some(before) = plan.reviews_before {
        let before = to_millis(before);
        let (doomed, held) = tx.count_reviews(before).await?;
        report.reviews_deleted = count(doomed);
        report.reviews_held = count(held);
        if !plan.dry_run && doomed > 0 {
            tx.delete_reviews(before).await?;
        }
    }

    let yesterday = day_of(now - chrono::Duration::days(1));
    let days = tx.days_without(&yesterday, &kept_after(plan)).await?;
    if !plan.dry_run {
        for d in &days {
            tx.destroy_day_key(d, to_millis(now)).await?;
        }
    }
    report.day_keys_destroyed = days;

    let Some(before) = plan.metadata_before else {
        return Ok(report);
    };
    for (instance, head) in tx.heads().await? {
        let (first_young, first_held) = tx.first_kept(&instance, to_millis(before)).await?;
        // Everything below the first record that must stay may go...
        let limit = [first_young, first_held, Some(head.saturating_add(1))]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(0)
            - 1;
        // ...but the cut is made only at a signed checkpoint, which then anchors the chain.
        let Some((cut, cut_hash)) = tx.checkpoint_at_or_below(&instance, limit).await? else {
            continue;
        };
        if cut <= tx.anchored(&instance).await? {
            continue;
        }
        let n = tx.count_records_to(&instance, cut).await?;
        report.records_pruned.insert(instance.clone(), count(n));
        if plan.dry_run {
            continue;
        }
        let hash = hex::decode(&cut_hash).map_err(|_| StoreError::Corrupt {
            what: "audit_checkpoints.hash",
        })?;
        tx.prune_to(&instance, cut, &hash).await?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_pass_keeps_every_remaining_payload() {
        let plan = PurgePlan {
            payloads: vec![(PayloadKind::Prompt, Utc::now())],
            dry_run: false,
            ..PurgePlan::default()
        };
        assert_eq!(kept_after(&plan), "TRUE");
    }

    #[test]
    fn a_dry_run_counts_doomed_payloads_as_gone() {
        let t = DateTime::from_timestamp_millis(1_000).unwrap_or_default();
        let plan = PurgePlan {
            payloads: vec![(PayloadKind::Prompt, t), (PayloadKind::Completion, t)],
            dry_run: true,
            ..PurgePlan::default()
        };
        let sql = kept_after(&plan);
        assert!(
            sql.starts_with("NOT ((p.kind = 'prompt' AND p.ts < 1000"),
            "{sql}"
        );
        assert!(sql.contains(" OR (p.kind = 'completion'"), "{sql}");
        let empty = PurgePlan {
            dry_run: true,
            ..PurgePlan::default()
        };
        assert_eq!(kept_after(&empty), "TRUE");
    }
}
