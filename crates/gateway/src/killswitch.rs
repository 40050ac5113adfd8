//! Kill switches in the request path (checklist MI-3).
//!
//! The active switches are read from the shared store every [`REFRESH_INTERVAL`] into an
//! in-memory snapshot, so a switch flipped on any instance or from the CLI takes effect
//! everywhere within a second, and checking one costs a hash lookup, not a query. A switch on
//! a key, team or route refuses the request (403); one on a provider or upstream model skips
//! those targets, so routes fall back to what is still allowed; lockdown refuses every key but
//! the break-glass keys named in `[incident] break_glass_keys`. A switch with an expiry (an
//! automatic suspension by the abuse detector, DO-1) stops refusing at its expiry even
//! between refreshes, and its refusal says for how much longer.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use tollgate_store::control::{KillSwitch, SwitchKind};

use crate::error::GatewayError;

/// How often the snapshot is refreshed from the store.
pub const REFRESH_INTERVAL: Duration = Duration::from_millis(400);

/// The switches in force, as of the last refresh.
#[derive(Debug, Default)]
pub struct Switches {
    active: RwLock<Snapshot>,
}

#[derive(Debug, Default)]
struct Snapshot {
    /// Each switch and, for one that lifts itself, when.
    on: HashMap<(SwitchKind, String), Option<DateTime<Utc>>>,
    lockdown: bool,
    count: usize,
}

impl Snapshot {
    /// Whether the switch is on at `now`, and its expiry if it has one.
    fn on_at(
        &self,
        kind: SwitchKind,
        target: &str,
        now: DateTime<Utc>,
    ) -> Option<Option<DateTime<Utc>>> {
        match self.on.get(&(kind, target.to_owned())) {
            Some(Some(until)) if *until <= now => None,
            Some(expiry) => Some(*expiry),
            None => None,
        }
    }
}

impl Switches {
    /// Replace the snapshot with `list`.
    pub fn load(&self, list: &[KillSwitch]) {
        let mut s = Snapshot {
            count: list.len(),
            ..Snapshot::default()
        };
        for k in list {
            if k.kind == SwitchKind::Lockdown {
                s.lockdown = true;
            } else {
                s.on.insert((k.kind, k.target.clone()), k.expires_at);
            }
        }
        *self.active.write() = s;
    }

    /// Number of active switches.
    pub fn count(&self) -> usize {
        self.active.read().count
    }

    fn is_on(&self, kind: SwitchKind, target: &str) -> bool {
        self.active.read().on_at(kind, target, Utc::now()).is_some()
    }

    /// Whether a switch (permanent or a suspension) is on for this key now.
    pub fn key_off(&self, key_id: &str) -> bool {
        self.is_on(SwitchKind::Key, key_id)
    }

    /// Refuse a request whose key, team or route is switched off, or any key but a
    /// break-glass one under lockdown.
    pub fn check(
        &self,
        key_id: &str,
        team: Option<&str>,
        route: &str,
        break_glass: &[String],
    ) -> Result<(), GatewayError> {
        let s = self.active.read();
        if s.count == 0 {
            return Ok(());
        }
        if s.lockdown && !break_glass.iter().any(|k| k == key_id) {
            return Err(GatewayError::suspended(
                "tollgate is in lockdown (incident response): only break-glass keys are served",
            ));
        }
        let now = Utc::now();
        let off = |kind: SwitchKind, t: &str| s.on_at(kind, t, now).is_some();
        match s.on_at(SwitchKind::Key, key_id, now) {
            Some(Some(until)) => {
                return Err(GatewayError::suspended(format!(
                    "key {key_id} is suspended for {}s after repeated guard blocks or denials; an admin can review its audit records and lift it early with `tollgate unkill key {key_id}`",
                    (until - now).num_seconds().max(1)
                )));
            }
            Some(None) => {
                return Err(GatewayError::suspended(format!(
                    "key {key_id} is switched off (incident response)"
                )));
            }
            None => {}
        }
        if let Some(team) = team.filter(|t| off(SwitchKind::Team, t)) {
            return Err(GatewayError::suspended(format!(
                "team {team} is switched off (incident response)"
            )));
        }
        if off(SwitchKind::Route, route) {
            return Err(GatewayError::suspended(format!(
                "route {route} is switched off (incident response)"
            )));
        }
        Ok(())
    }

    /// Why a target must be skipped, if its provider or model is switched off.
    pub fn target_blocked(&self, provider: &str, model: &str) -> Option<String> {
        if self.is_on(SwitchKind::Provider, provider) {
            return Some(format!(
                "provider {provider:?} is switched off (incident response)"
            ));
        }
        if self.is_on(SwitchKind::Model, model) {
            return Some(format!(
                "model {model:?} is switched off (incident response)"
            ));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sw(kind: SwitchKind, target: &str) -> KillSwitch {
        KillSwitch {
            kind,
            target: target.into(),
            reason: "drill".into(),
            set_by: "test".into(),
            set_at: chrono::Utc::now(),
            expires_at: None,
        }
    }

    #[test]
    fn switches_refuse_what_they_name_and_nothing_else() {
        let s = Switches::default();
        assert!(s.check("k1", Some("t"), "r", &[]).is_ok());
        s.load(&[
            sw(SwitchKind::Key, "k1"),
            sw(SwitchKind::Team, "red"),
            sw(SwitchKind::Route, "gpt"),
            sw(SwitchKind::Provider, "openai"),
            sw(SwitchKind::Model, "gpt-4o"),
        ]);
        assert!(s.check("k1", None, "x", &[]).is_err());
        assert!(s.check("k2", Some("red"), "x", &[]).is_err());
        assert!(s.check("k2", Some("blue"), "gpt", &[]).is_err());
        assert!(s.check("k2", Some("blue"), "claude", &[]).is_ok());
        assert!(s.target_blocked("openai", "x").is_some());
        assert!(s.target_blocked("azure", "gpt-4o").is_some());
        assert!(s.target_blocked("azure", "gpt-4o-mini").is_none());
        s.load(&[]);
        assert!(s.check("k1", None, "gpt", &[]).is_ok());
    }

    #[test]
    fn a_suspension_refuses_until_it_expires_even_between_refreshes() {
        let s = Switches::default();
        let mut soon = sw(SwitchKind::Key, "k1");
        soon.expires_at = Some(Utc::now() + chrono::Duration::minutes(10));
        let mut past = sw(SwitchKind::Key, "k2");
        past.expires_at = Some(Utc::now() - chrono::Duration::seconds(1));
        s.load(&[soon, past]);
        let err = s.check("k1", None, "r", &[]).unwrap_err();
        assert!(err.message.contains("suspended for"), "{}", err.message);
        assert!(err.message.contains("unkill key k1"), "{}", err.message);
        assert!(s.key_off("k1"));
        assert!(s.check("k2", None, "r", &[]).is_ok(), "expired");
        assert!(!s.key_off("k2"));
    }

    #[test]
    fn lockdown_lets_only_break_glass_keys_through() {
        let s = Switches::default();
        s.load(&[sw(SwitchKind::Lockdown, "*")]);
        let glass = vec!["key_glass".to_owned()];
        assert!(s.check("key_app", None, "gpt", &glass).is_err());
        assert!(s.check("key_glass", None, "gpt", &glass).is_ok());
    }
}
