//! Alerts raised by the gateway (checklist MI-2), kept for `tollgate alerts`, and what each
//! key has been seen using (models, client IPs) so that a first use can raise one.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::Result;

/// One stored alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRecord {
    /// Stable id, `alr_…`.
    pub id: String,
    /// When it was raised.
    pub at: DateTime<Utc>,
    /// What kind: `budget_threshold`, `key_suspended`, `anomaly`, `new_model`, `new_ip`, ….
    pub kind: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// Whom it is about: `key:ID`, `team:NAME`, `global`.
    pub subject: String,
    /// Alerts with the same dedup key within the cooldown are one alert.
    pub dedup_key: String,
    /// One line for humans (never prompt text or secrets).
    pub message: String,
    /// Figures behind it (JSON).
    pub details: serde_json::Value,
}

/// Whether a sighting was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sighting {
    /// The value had not been seen for this key and kind before.
    pub new: bool,
    /// Some other value of this kind had been seen for the key before (so a new one is a
    /// change worth telling, not the key's first request).
    pub had_others: bool,
}

/// Alert persistence.
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Store an alert.
    async fn insert_alert(&self, alert: &AlertRecord) -> Result<()>;
    /// Alerts raised at or after `since`, newest first, at most `limit`.
    async fn alerts_since(&self, since: DateTime<Utc>, limit: u32) -> Result<Vec<AlertRecord>>;
    /// Remember that `key_id` used `value` of `kind` (`model`, `ip`) at `at`.
    async fn sight(
        &self,
        key_id: &str,
        kind: &str,
        value: &str,
        at: DateTime<Utc>,
    ) -> Result<Sighting>;
}
