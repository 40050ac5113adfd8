//! Budget spend kept in the store (checklist DO-2), shared by every gateway instance.
//!
//! Amounts are integer nano-USD ([`NANOS_PER_USD`]) so that the hard limit is enforced by one
//! atomic statement: [`BudgetLedger::reserve`] adds a reservation only if
//! `spent + reserved + amount <= limit` still holds, in the same `UPDATE`, so concurrent
//! requests on any number of instances can never together reserve past the limit. After the
//! call, [`BudgetLedger::settle`] swaps the reservation for the actual cost.
//!
//! A period is an opaque label chosen by the caller (the gateway uses the local date on which
//! the calendar period starts, e.g. `2026-11-01` for a monthly budget), so a new period is
//! simply a new row, starting at zero.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::Result;

/// Nano-USD in one USD.
pub const NANOS_PER_USD: f64 = 1e9;

/// USD as nano-USD, rounded up (a reservation must never be smaller than the cost), clamped
/// to `0..=i64::MAX`.
pub fn usd_to_nanos(usd: f64) -> i64 {
    if usd.is_nan() || usd <= 0.0 {
        return 0;
    }
    let n = (usd * NANOS_PER_USD).ceil();
    if n >= i64::MAX as f64 {
        i64::MAX
    } else {
        n as i64
    }
}

/// Nano-USD as USD.
pub fn nanos_to_usd(nanos: i64) -> f64 {
    nanos as f64 / NANOS_PER_USD
}

/// Spend of one budget in one period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Spend {
    /// Settled cost, nano-USD.
    pub spent: i64,
    /// Reserved by calls still in flight, nano-USD.
    pub reserved: i64,
}

/// Budget persistence.
#[async_trait]
pub trait BudgetLedger: Send + Sync {
    /// Reserve `amount` nano-USD of `budget` in `period` if `spent + reserved + amount` stays
    /// within `limit` and `spent` is below it, atomically; false (and nothing reserved) if not.
    async fn reserve(&self, budget: &str, period: &str, amount: i64, limit: i64) -> Result<bool>;
    /// Release `reserved` nano-USD of an earlier reservation (never below zero) and add
    /// `actual` to the spend.
    async fn settle(&self, budget: &str, period: &str, reserved: i64, actual: i64) -> Result<()>;
    /// Spend and reservations of `budget` in `period` (zero if nothing was recorded).
    async fn spend(&self, budget: &str, period: &str) -> Result<Spend>;
    /// Record that `budget` crossed its `permille` threshold in `period`; true only for the
    /// first caller, on any instance, so the alert fires once.
    async fn cross_threshold(
        &self,
        budget: &str,
        period: &str,
        permille: i64,
        at: DateTime<Utc>,
    ) -> Result<bool>;
}
