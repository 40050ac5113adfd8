//! Incident controls kept in the store (checklist MI-3): kill switches that every gateway
//! instance reads within a second.
//!
//! A switch disables one key, team, route, provider or upstream model, or (`lockdown`)
//! everything but the break-glass keys named in config. A switch may carry an expiry: the
//! gateway's abuse detector suspends a key that way (DO-1), so the suspension reaches every
//! instance like any switch, shows in `tollgate kill list`, can be lifted early with
//! `tollgate unkill`, and ends by itself. Switches live in the shared store, not
//! in one process, so flipping one on any instance (or from the CLI) reaches them all.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::Result;

/// What a kill switch disables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SwitchKind {
    /// One virtual key (by id).
    Key,
    /// Every key of a team.
    Team,
    /// A route (model alias).
    Route,
    /// A provider: its targets are skipped, so routes fall back to others.
    Provider,
    /// An upstream model on every provider.
    Model,
    /// Everything, except break-glass keys.
    Lockdown,
}

impl SwitchKind {
    /// Every kind.
    pub const ALL: [Self; 6] = [
        Self::Key,
        Self::Team,
        Self::Route,
        Self::Provider,
        Self::Model,
        Self::Lockdown,
    ];

    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Team => "team",
            Self::Route => "route",
            Self::Provider => "provider",
            Self::Model => "model",
            Self::Lockdown => "lockdown",
        }
    }

    /// Parse a stored or typed name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One active kill switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KillSwitch {
    /// What it disables.
    pub kind: SwitchKind,
    /// Key id, team, route alias, provider name or model; `*` for lockdown.
    pub target: String,
    /// Why (shown to refused callers without internal detail, and in the audit trail).
    pub reason: String,
    /// Who flipped it (admin credential id or `os:user`).
    pub set_by: String,
    /// When.
    pub set_at: DateTime<Utc>,
    /// When it lifts itself (automatic suspensions); None: on until cleared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl KillSwitch {
    /// Whether the switch is in force at `now`.
    pub fn active_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }
}

/// Kill-switch persistence.
#[async_trait]
pub trait ControlStore: Send + Sync {
    /// Turn a switch on (replacing the reason and expiry of one already on), except that a
    /// switch with an expiry never replaces one without: an automatic suspension must not
    /// turn a person's permanent switch into one that lifts itself.
    async fn set_switch(&self, s: &KillSwitch) -> Result<()>;
    /// Turn a switch off; false if it was not on.
    async fn clear_switch(&self, kind: SwitchKind, target: &str) -> Result<bool>;
    /// Every switch in force now (expired ones are left out).
    async fn switches(&self) -> Result<Vec<KillSwitch>>;
}
