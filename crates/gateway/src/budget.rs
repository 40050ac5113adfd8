//! Budgets (checklist DO-2): spend limits per key, team or the whole gateway over calendar
//! periods, enforced before each call and shared by every instance through the store.
//!
//! **Reserve, then settle.** Before a call, [`Budgets::reserve`] reserves its largest
//! possible cost — the prompt estimate plus the answer's `max_tokens` (or
//! [`crate::pipeline::DEFAULT_RESERVED_OUTPUT_TOKENS`]) priced at the dearest of the route's
//! targets — in every budget that applies, with one atomic statement per budget
//! ([`tollgate_store::budget::BudgetLedger::reserve`]). If any budget has no room the call is
//! refused with 429 `budget_exceeded` and the other reservations are released. When the call
//! ends, [`BudgetHold::settle`] swaps the reservation for the actual cost from the price
//! table. So concurrent requests, on any number of instances, can overshoot a limit only by
//! what the prompt estimate undercounts, never by what is in flight. A model without a price
//! reserves nothing, but its cost is still counted if it becomes known (e.g. a fallback
//! target that has a price).
//!
//! **Periods** are calendar days, weeks (from Monday) and months in
//! `[budgets_settings] timezone`; a period is named by its local start date, so a new
//! period is a new ledger row starting at zero.
//!
//! **Soft thresholds** (default 50 %, 80 %, 100 %) raise one `budget_threshold` alert each
//! per period, on whichever instance crosses them first (the store records each crossing
//! once); a refusal raises `budget_exceeded` (deduplicated by the alerter's cooldown).
//!
//! **With Redis** (`[limits] redis`), reservations live there instead ([`shared`]): one round
//! trip reserves in every budget, reservations are leases that expire when their instance
//! dies, and the store's ledger keeps only the settled spend, written before Redis hears of
//! it, so it stays the durable record and the seed of Redis's counters. When Redis cannot be
//! reached, `[limits] redis_unavailable` decides as for the rate limits: `fail_closed`
//! refuses budgeted calls with 503, `local` reserves in the store's rows as without Redis
//! (shared by every instance reaching the store, but not seen by those still on Redis).
//! Spend settled in the store meanwhile is caught up in Redis on this instance's next
//! reservation there. With the rate limits in Redis too, [`Budgets::reserve_and_admit`]
//! reserves and admits in one round trip, and the settlement carries both back in one
//! ([`BudgetHold::settle_with`]); `in_redis` holds this Redis side.

mod in_redis;
pub mod shared;

pub use in_redis::AdmitError;
use in_redis::Shared;

use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::json;
use tollgate_store::budget::{BudgetLedger, Spend, nanos_to_usd, usd_to_nanos};

use crate::alert::{Alert, Alerter, Pending, Severity};
use crate::config::Config;
use crate::config::budgets::{BudgetScope, DEFAULT_THRESHOLDS, Period};
use crate::error::GatewayError;
use crate::limits::Readiness;
use crate::limits::shared::RedisUnavailable;

/// One configured budget, resolved.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Whose spend.
    pub scope: BudgetScope,
    /// Its calendar period.
    pub period: Period,
    /// Hard limit, USD.
    pub limit_usd: f64,
    /// Soft thresholds, fractions of the limit, ascending.
    pub thresholds: Vec<f64>,
}

impl Budget {
    /// Ledger name: `scope/period`, e.g. `team:search/month`.
    pub fn id(&self) -> String {
        format!("{}/{}", self.scope, self.period.as_str())
    }

    fn limit_nanos(&self) -> i64 {
        usd_to_nanos(self.limit_usd)
    }

    fn applies(&self, key_id: &str, team: Option<&str>) -> bool {
        match &self.scope {
            BudgetScope::Key(k) => k == key_id,
            BudgetScope::Team(t) => team == Some(t.as_str()),
            BudgetScope::Global => true,
        }
    }
}

/// The local date on which the period containing `now` starts in `tz`.
pub fn period_start(period: Period, tz: Tz, now: DateTime<Utc>) -> NaiveDate {
    let d = now.with_timezone(&tz).date_naive();
    match period {
        Period::Day => d,
        Period::Week => d - Duration::days(i64::from(d.weekday().num_days_from_monday())),
        Period::Month => d.with_day(1).unwrap_or(d),
    }
}

/// The instant (UTC) at which the period after the one containing `now` begins in `tz`.
pub fn period_end(period: Period, tz: Tz, now: DateTime<Utc>) -> DateTime<Utc> {
    let start = period_start(period, tz, now);
    let next = match period {
        Period::Day => start + Duration::days(1),
        Period::Week => start + Duration::days(7),
        Period::Month => {
            let (y, m) = if start.month() == 12 {
                (start.year() + 1, 1)
            } else {
                (start.year(), start.month() + 1)
            };
            NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(start)
        }
    };
    let midnight = next.and_hms_opt(0, 0, 0).unwrap_or_default();
    // Midnight may not exist (a DST gap at 00:00, as in a few zones): take the earliest
    // local time that does.
    tz.from_local_datetime(&midnight)
        .earliest()
        .or_else(|| {
            tz.from_local_datetime(&(midnight + Duration::hours(1)))
                .earliest()
        })
        .map_or(now, |t| t.with_timezone(&Utc))
}

/// A budget's spend in the current period, for `tollgate budgets`.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetStatus {
    /// Ledger name (`scope/period`).
    pub budget: String,
    /// Scope.
    pub scope: String,
    /// Period kind.
    pub period: &'static str,
    /// Local start date of the current period.
    pub period_start: String,
    /// When the current period ends.
    pub resets_at: DateTime<Utc>,
    /// Limit, USD.
    pub limit_usd: f64,
    /// Settled spend, USD.
    pub spent_usd: f64,
    /// Reserved by calls in flight, USD.
    pub reserved_usd: f64,
    /// Spent as a fraction of the limit.
    pub used: f64,
}

/// Every budget, the ledger, and the clock; see the module doc.
pub struct Budgets {
    list: Vec<Budget>,
    tz: Tz,
    ledger: Arc<dyn BudgetLedger>,
    alerts: Arc<Alerter>,
    pending: Arc<Pending>,
    /// Redis, when the reservations are shared there.
    shared: Option<shared::SharedBudgets>,
    /// Per budget: what this instance knows of its counters in Redis.
    redis_view: Vec<parking_lot::Mutex<RedisView>>,
}

/// What one instance knows of a budget's counters in Redis.
#[derive(Debug, Default)]
struct RedisView {
    /// The counters' generation last seen (they are seeded anew when Redis loses them).
    generation: Option<String>,
    /// Spend this instance settled in the store alone (Redis unreachable), not yet added to
    /// Redis, nano-USD; and the generation last seen before it.
    unsynced: i64,
    unsynced_generation: Option<String>,
}

impl std::fmt::Debug for Budgets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budgets")
            .field("list", &self.list)
            .field("tz", &self.tz)
            .finish_non_exhaustive()
    }
}

/// What one call holds in the budgets that apply to it; settle it when the call ends (a
/// hold dropped unsettled releases its reservations with no cost).
pub struct BudgetHold {
    budgets: Arc<Budgets>,
    /// (budget index, period label, reserved nano-USD).
    entries: Vec<(usize, String, i64)>,
    /// The reservation in Redis; None: it is in the store's rows.
    lease: Option<shared::Reservation>,
    done: bool,
}

impl std::fmt::Debug for BudgetHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BudgetHold")
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

impl Budgets {
    /// The budgets of a validated config over `ledger`, alerting through `alerts` (whose
    /// clock they share).
    pub fn new(config: &Config, ledger: Arc<dyn BudgetLedger>, alerts: Arc<Alerter>) -> Self {
        let list = config
            .budgets
            .iter()
            .filter_map(|b| {
                let mut thresholds = b
                    .thresholds
                    .clone()
                    .unwrap_or_else(|| DEFAULT_THRESHOLDS.to_vec());
                thresholds.sort_by(f64::total_cmp);
                thresholds.dedup();
                Some(Budget {
                    scope: BudgetScope::parse(&b.scope)?,
                    period: Period::parse(&b.period)?,
                    limit_usd: b.limit_usd,
                    thresholds,
                })
            })
            .collect::<Vec<_>>();
        Self {
            redis_view: list.iter().map(|_| Default::default()).collect(),
            list,
            tz: config.budgets_settings.tz(),
            ledger,
            alerts,
            pending: Arc::new(Pending::default()),
            shared: None,
        }
    }

    /// Reserve in Redis (see the module doc) rather than in the store's rows.
    pub fn with_shared(mut self, shared: shared::SharedBudgets) -> Self {
        self.shared = Some(shared);
        self
    }

    /// Whether budgets are enforced as configured, for `/readyz`: with Redis unreachable,
    /// budgeted calls are refused (`fail_closed`) or reserved in the store (`local`).
    pub fn readiness(&self) -> Readiness {
        let Some(shared) = &self.shared else {
            return Readiness::Ready;
        };
        if self.list.is_empty() {
            return Readiness::Ready;
        }
        match (shared.down_reason(), shared.policy()) {
            (None, _) => Readiness::Ready,
            (Some(why), RedisUnavailable::FailClosed) => Readiness::Unavailable(format!(
                "{why}: budgeted calls are refused (limits.redis_unavailable = \"fail_closed\")"
            )),
            (Some(why), RedisUnavailable::Local) => Readiness::Degraded(format!(
                "{why}: budgets are reserved in the store, not seen by instances still on Redis (limits.redis_unavailable = \"local\")"
            )),
        }
    }

    /// The configured budgets.
    pub fn list(&self) -> &[Budget] {
        &self.list
    }

    /// Whether any budget applies to this key.
    pub fn applies(&self, key_id: &str, team: Option<&str>) -> bool {
        self.list.iter().any(|b| b.applies(key_id, team))
    }

    fn period_label(&self, b: &Budget, now: DateTime<Utc>) -> String {
        period_start(b.period, self.tz, now).to_string()
    }

    /// Reserve `max_cost_usd` (None: the price is unknown, reserve nothing but still refuse
    /// a spent budget) in every budget that applies to the key. `Ok(None)` when none does.
    pub async fn reserve(
        self: &Arc<Self>,
        key_id: &str,
        team: Option<&str>,
        max_cost_usd: Option<f64>,
    ) -> Result<Option<BudgetHold>, GatewayError> {
        let amount = max_cost_usd.map_or(0, usd_to_nanos);
        let now = self.alerts.now();
        let applying: Vec<(usize, String)> = self
            .list
            .iter()
            .enumerate()
            .filter(|(_, b)| b.applies(key_id, team))
            .map(|(i, b)| (i, self.period_label(b, now)))
            .collect();
        if applying.is_empty() {
            return Ok(None);
        }
        if let Some(shared) = &self.shared {
            match self.reserve_shared(shared, &applying, amount, now).await {
                Ok(hold) => return Ok(Some(hold)),
                Err(Shared::Refused(e)) => return Err(e),
                Err(Shared::Unreachable(reason)) => match shared.policy() {
                    RedisUnavailable::FailClosed => {
                        return Err(GatewayError::unavailable(format!(
                            "shared budgets are unavailable: {reason}; refusing rather than letting spend go unchecked (limits.redis_unavailable = \"fail_closed\")"
                        )));
                    }
                    // Reserve in the store's rows instead; what this settles there is caught
                    // up in Redis later.
                    RedisUnavailable::Local => {}
                },
            }
        }
        let mut hold = BudgetHold {
            budgets: self.clone(),
            entries: Vec::new(),
            lease: None,
            done: false,
        };
        for (i, period) in applying {
            let Some(b) = self.list.get(i) else { continue };
            let id = b.id();
            match self
                .ledger
                .reserve(&id, &period, amount, b.limit_nanos())
                .await
            {
                Ok(true) => hold.entries.push((i, period, amount)),
                Ok(false) => {
                    let spend = self.ledger.spend(&id, &period).await.unwrap_or_default();
                    // `hold` drops here and releases what it reserved in other budgets.
                    return Err(self.refuse(b, &period, spend, amount, now));
                }
                Err(e) => {
                    tracing::error!(error = %e, budget = %id, "cannot reserve budget; refusing the call");
                    return Err(GatewayError::unavailable(
                        "the budget ledger cannot be reached, so tollgate cannot tell whether this call fits its budget",
                    ));
                }
            }
        }
        Ok(Some(hold))
    }

    /// The refusal of a call by budget `b` (and its `budget_exceeded` alert).
    fn refuse(
        &self,
        b: &Budget,
        period: &str,
        spend: Spend,
        amount: i64,
        now: DateTime<Utc>,
    ) -> GatewayError {
        let id = b.id();
        let resets = period_end(b.period, self.tz, now);
        self.alerts.raise(Alert {
            kind: "budget_exceeded",
            severity: Severity::Critical,
            subject: b.scope.to_string(),
            dedup_key: format!("budget_exceeded:{id}:{period}"),
            message: format!(
                "{} budget of {} (${:.2}) is exhausted: calls are refused until {}",
                b.period.as_str(),
                b.scope,
                b.limit_usd,
                resets.to_rfc3339()
            ),
            details: json!({
                "budget": id, "period": period, "limit_usd": b.limit_usd,
                "spent_usd": nanos_to_usd(spend.spent),
                "reserved_usd": nanos_to_usd(spend.reserved),
            }),
        });
        GatewayError::budget_exceeded(format!(
            "the {} budget of {} (${:.2}) has no room for this call (spent ${:.4}, ${:.4} reserved by calls in flight, this call may cost up to ${:.4}); it resets at {}",
            b.period.as_str(),
            b.scope,
            b.limit_usd,
            nanos_to_usd(spend.spent),
            nanos_to_usd(spend.reserved),
            nanos_to_usd(amount),
            resets.to_rfc3339()
        ))
    }

    /// Wait until every settlement so far is written (tests, shutdown).
    pub async fn idle(&self) {
        self.pending.idle().await;
        self.alerts.idle().await;
    }

    /// Spend of every budget in its current period: settled spend from the store (the
    /// durable record); reserved, from the store's rows plus Redis's live leases.
    pub async fn status(&self) -> tollgate_store::Result<Vec<BudgetStatus>> {
        let now = self.alerts.now();
        let mut out = Vec::new();
        for b in &self.list {
            let period = self.period_label(b, now);
            let mut s = self.ledger.spend(&b.id(), &period).await?;
            if let Some(shared) = &self.shared {
                match shared.read(&b.id(), &period).await {
                    Ok(Some(live)) => s.reserved = s.reserved.saturating_add(live.reserved),
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read reservations in flight from Redis");
                    }
                }
            }
            out.push(BudgetStatus {
                budget: b.id(),
                scope: b.scope.to_string(),
                period: b.period.as_str(),
                period_start: period,
                resets_at: period_end(b.period, self.tz, now),
                limit_usd: b.limit_usd,
                spent_usd: nanos_to_usd(s.spent),
                reserved_usd: nanos_to_usd(s.reserved),
                used: nanos_to_usd(s.spent) / b.limit_usd,
            });
        }
        Ok(out)
    }

    /// Settle a reservation held in the store's rows.
    async fn settle_one(&self, i: usize, period: &str, reserved: i64, actual: i64) {
        let Some(b) = self.list.get(i) else { return };
        let id = b.id();
        if let Err(e) = self.ledger.settle(&id, period, reserved, actual).await {
            tracing::error!(error = %e, budget = %id, "cannot settle a budget reservation");
            return;
        }
        if actual == 0 {
            return;
        }
        if self.shared.is_some() {
            // Spent in the store alone: Redis catches up on the next reservation there.
            self.unsynced(i, actual);
        }
        self.thresholds(b, period).await;
    }

    /// Raise the soft thresholds `b` crossed in `period`, each once per period across
    /// every instance (the store records the first crossing).
    async fn thresholds(&self, b: &Budget, period: &str) {
        let id = b.id();
        let spent = match self.ledger.spend(&id, period).await {
            Ok(s) => s.spent,
            Err(_) => return,
        };
        let now = self.alerts.now();
        for t in &b.thresholds {
            if (spent as f64) < t * b.limit_nanos() as f64 {
                break;
            }
            let permille = (t * 1000.0).round() as i64;
            if let Ok(true) = self
                .ledger
                .cross_threshold(&id, period, permille, now)
                .await
            {
                let pct = permille as f64 / 10.0;
                self.alerts.raise(Alert {
                    kind: "budget_threshold",
                    severity: if *t >= 1.0 {
                        Severity::Critical
                    } else {
                        Severity::Warning
                    },
                    subject: b.scope.to_string(),
                    dedup_key: format!("budget_threshold:{id}:{period}:{permille}"),
                    message: format!(
                        "{} has spent {pct}% of its {} budget (${:.4} of ${:.2}, period from {period})",
                        b.scope,
                        b.period.as_str(),
                        nanos_to_usd(spent),
                        b.limit_usd
                    ),
                    details: json!({
                        "budget": id, "period": period, "threshold": t,
                        "spent_usd": nanos_to_usd(spent), "limit_usd": b.limit_usd,
                    }),
                });
            }
        }
    }
}

impl BudgetHold {
    /// Swap the reservations for the call's actual cost (None: unknown, counted as zero).
    pub fn settle(self, actual_usd: Option<f64>) {
        self.settle_with(actual_usd, None);
    }

    /// Whether the reservation is held in Redis, so that a rate settlement can travel with
    /// its settlement ([`Self::settle_with`]).
    pub fn in_redis(&self) -> bool {
        self.lease.is_some()
    }

    /// [`Self::settle`], sending the rate limits' settlement `rate` (taken out of the
    /// request's [`crate::limits::Admission`]) in the same round trip to Redis. The rate
    /// settlement then goes after the cost is written to the store, as the budget's does.
    /// A hold not in Redis sends `rate` on its own.
    pub fn settle_with(
        mut self,
        actual_usd: Option<f64>,
        rate: Option<crate::limits::shared::RateSettlement>,
    ) {
        self.finish(actual_usd.map_or(0, usd_to_nanos), rate);
    }

    fn finish(&mut self, actual: i64, rate: Option<crate::limits::shared::RateSettlement>) {
        if self.done {
            return;
        }
        self.done = true;
        let entries = std::mem::take(&mut self.entries);
        let mut lease = self.lease.take();
        if let Some(l) = lease.as_mut() {
            l.stop();
        }
        let budgets = self.budgets.clone();
        self.budgets.pending.spawn(async move {
            match lease {
                Some(lease) => {
                    budgets
                        .settle_shared(&entries, &lease, actual, rate.as_ref())
                        .await;
                }
                None => {
                    if let Some(rate) = rate {
                        rate.send();
                    }
                    for (i, period, reserved) in entries {
                        budgets.settle_one(i, &period, reserved, actual).await;
                    }
                }
            }
        });
    }
}

impl Drop for BudgetHold {
    fn drop(&mut self) {
        self.finish(0, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn periods_start_at_local_midnight_monday_and_the_first() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // 23:30 UTC on Saturday 28 Nov is already Sunday 29 Nov in Berlin (UTC+1).
        let t = at("2026-11-28T23:30:00Z");
        assert_eq!(
            period_start(Period::Day, berlin, t).to_string(),
            "2026-11-29"
        );
        assert_eq!(
            period_start(Period::Day, chrono_tz::UTC, t).to_string(),
            "2026-11-28"
        );
        assert_eq!(
            period_start(Period::Week, berlin, t).to_string(),
            "2026-11-23"
        );
        assert_eq!(
            period_start(Period::Month, berlin, t).to_string(),
            "2026-11-01"
        );
        assert_eq!(
            period_end(Period::Day, berlin, t),
            at("2026-11-29T23:00:00Z")
        );
        assert_eq!(
            period_end(Period::Week, berlin, t),
            at("2026-11-29T23:00:00Z")
        );
        assert_eq!(
            period_end(Period::Month, berlin, t),
            at("2026-11-30T23:00:00Z")
        );
        // December rolls into the next year.
        let dec = at("2026-12-15T12:00:00Z");
        assert_eq!(
            period_end(Period::Month, berlin, dec),
            at("2026-12-31T23:00:00Z")
        );
    }

    #[test]
    fn a_day_across_a_dst_change_ends_at_the_next_local_midnight() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // 29 March 2026: clocks go forward; the day is 23 hours long.
        let t = at("2026-03-29T12:00:00Z");
        assert_eq!(
            period_start(Period::Day, berlin, t).to_string(),
            "2026-03-29"
        );
        assert_eq!(
            period_end(Period::Day, berlin, t),
            at("2026-03-29T22:00:00Z")
        );
    }
}
