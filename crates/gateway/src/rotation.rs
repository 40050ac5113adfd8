//! Automated key rotation (checklist AC-4).
//!
//! `[rotation]` sets a maximum key age per environment and a warning period. The gateway runs
//! [`rotate_due`] on a schedule: every active key past its maximum age that has no successor
//! yet gets one; the old key keeps working for the grace period; the owner is told by webhook
//! (key ids only, never a key); and where `[rotation.deliver]` names a secrets-manager
//! destination for the key, the successor is written there so the application picks it up
//! without a human. `tollgate keys audit` lists the keys past or near policy.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tollgate_store::Store;
use tollgate_store::key::{Environment, KeyHasher, KeyRecord, KeyState};

use crate::config::{ConfigDuration, Problem};
use crate::credential::CredentialRef;
use crate::secrets::SecretBackends;

/// How long a webhook call may take.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// The age policy of one environment.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgePolicy {
    /// Keys older than this are rotated.
    pub max_age: ConfigDuration,
    /// Keys this close to `max_age` are reported as due soon.
    pub warn_before: Option<ConfigDuration>,
}

/// `[rotation]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotationConfig {
    /// Policy of production (`tg_live_`) keys.
    pub production: Option<AgePolicy>,
    /// Policy of staging (`tg_test_`) keys.
    pub staging: Option<AgePolicy>,
    /// How long a rotated key keeps working (default 24h).
    pub grace: Option<ConfigDuration>,
    /// How often the gateway looks for due keys (default hourly).
    pub interval: Option<ConfigDuration>,
    /// Owners' webhook: told which key was rotated (never the key itself).
    pub webhook: Option<String>,
    /// Where to write a named key's successor: key name → `vault://…`, `aws-sm://…` or
    /// `keystore://…`.
    #[serde(default)]
    pub deliver: BTreeMap<String, String>,
}

impl RotationConfig {
    /// The policy of `env`.
    pub fn policy(&self, env: Environment) -> Option<AgePolicy> {
        match env {
            Environment::Production => self.production,
            Environment::Staging => self.staging,
        }
    }

    /// The grace period.
    pub fn grace(&self) -> Duration {
        self.grace.map_or(Duration::from_secs(24 * 3600), |g| g.0)
    }

    /// The scheduler interval.
    pub fn interval(&self) -> Duration {
        self.interval.map_or(Duration::from_secs(3600), |g| g.0)
    }

    /// Check values; push problems.
    pub fn validate(&self, problems: &mut Vec<Problem>) {
        for (name, d) in &self.deliver {
            match CredentialRef::parse(d) {
                Ok(CredentialRef::File(_) | CredentialRef::Env(_)) | Err(_) => {
                    problems.push(Problem {
                        path: format!("rotation.deliver.{name}"),
                        line: None,
                        message: "a destination is a vault://, aws-sm:// or keystore:// reference"
                            .into(),
                    });
                }
                Ok(_) => {}
            }
        }
        if let Some(w) = &self.webhook {
            if !(w.starts_with("https://") || w.starts_with("http://")) {
                problems.push(Problem {
                    path: "rotation.webhook".into(),
                    line: None,
                    message: "must be an http(s) URL".into(),
                });
            }
        }
        for (env, p) in [("production", self.production), ("staging", self.staging)] {
            if let Some(p) = p {
                if p.max_age.0.is_zero() || p.warn_before.is_some_and(|w| w.0 >= p.max_age.0) {
                    problems.push(Problem {
                        path: format!("rotation.{env}"),
                        line: None,
                        message: "max_age must be positive and longer than warn_before".into(),
                    });
                }
            }
        }
    }
}

/// A key's standing against its policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum KeyAge {
    /// No policy for its environment, or not an active key.
    NoPolicy,
    /// Within policy.
    Ok {
        /// Days until it is due.
        days_left: i64,
    },
    /// Due within the warning period.
    DueSoon {
        /// Days until it is due.
        days_left: i64,
    },
    /// Past its maximum age.
    Due {
        /// Days past due.
        days_over: i64,
    },
}

/// Where `key` stands at `now`.
pub fn classify(key: &KeyRecord, cfg: &RotationConfig, now: DateTime<Utc>) -> KeyAge {
    let Some(p) = cfg.policy(key.environment) else {
        return KeyAge::NoPolicy;
    };
    if key.state(now) != KeyState::Active || key.rotated_to.is_some() {
        return KeyAge::NoPolicy;
    }
    let max = chrono::Duration::from_std(p.max_age.0).unwrap_or(chrono::Duration::MAX);
    let due = key.created_at + max;
    let left = due - now;
    if left <= chrono::Duration::zero() {
        return KeyAge::Due {
            days_over: (-left).num_days(),
        };
    }
    let warn = p
        .warn_before
        .and_then(|w| chrono::Duration::from_std(w.0).ok())
        .unwrap_or_else(chrono::Duration::zero);
    if left <= warn {
        KeyAge::DueSoon {
            days_left: left.num_days(),
        }
    } else {
        KeyAge::Ok {
            days_left: left.num_days(),
        }
    }
}

/// One key of a [`KeysAudit`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditedKey {
    /// Key id.
    pub id: String,
    /// Key name.
    pub name: String,
    /// `production` or `staging`.
    pub environment: String,
    /// When it was issued (its age counts from here).
    pub created_at: DateTime<Utc>,
    /// Where it stands.
    pub age: KeyAge,
}

/// Every active key measured against the rotation policy: what `tollgate keys audit` prints
/// and `GET /admin/v1/keys/audit` returns, from one computation ([`audit_keys`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysAudit {
    /// Whether a `[rotation]` policy is configured at all (without one no key has a maximum
    /// age, which is itself a finding).
    pub policy: bool,
    /// Keys past their maximum age.
    pub due: usize,
    /// Keys under a policy, with where they stand.
    pub keys: Vec<AuditedKey>,
}

/// Measure every key in `store` against `cfg` at `now`.
pub async fn audit_keys(
    store: &Store,
    cfg: Option<&RotationConfig>,
    now: DateTime<Utc>,
) -> tollgate_store::Result<KeysAudit> {
    let Some(cfg) = cfg else {
        return Ok(KeysAudit {
            policy: false,
            due: 0,
            keys: Vec::new(),
        });
    };
    let keys: Vec<AuditedKey> = store
        .keys
        .list_keys()
        .await?
        .into_iter()
        .map(|k| (classify(&k, cfg, now), k))
        .filter(|(age, _)| *age != KeyAge::NoPolicy)
        .map(|(age, k)| AuditedKey {
            environment: k.environment.as_str().to_owned(),
            id: k.id,
            name: k.name,
            created_at: k.created_at,
            age,
        })
        .collect();
    Ok(KeysAudit {
        policy: true,
        due: keys
            .iter()
            .filter(|k| matches!(k.age, KeyAge::Due { .. }))
            .count(),
        keys,
    })
}

/// What happened to one due key.
#[derive(Debug, Clone, Serialize)]
pub struct Rotated {
    /// The old key.
    pub old_id: String,
    /// Its successor.
    pub new_id: String,
    /// Key name.
    pub name: String,
    /// Until when the old key works.
    pub grace_until: DateTime<Utc>,
    /// Where the successor was written, if anywhere.
    pub delivered_to: Option<String>,
    /// Why delivery failed, if it did (the successor exists either way).
    pub delivery_error: Option<String>,
    /// Whether the owner's webhook accepted the notice.
    pub notified: bool,
}

/// Rotate every key that is due at `now`.
pub async fn rotate_due(
    store: &Store,
    hasher: &KeyHasher,
    secrets: &SecretBackends,
    cfg: &RotationConfig,
    now: DateTime<Utc>,
) -> Result<Vec<Rotated>, tollgate_store::StoreError> {
    let mut done = Vec::new();
    let grace = chrono::Duration::from_std(cfg.grace()).unwrap_or(chrono::Duration::hours(24));
    for old in store.keys.list_keys().await? {
        if !matches!(classify(&old, cfg, now), KeyAge::Due { .. }) {
            continue;
        }
        let (key, new) = old.successor(hasher);
        store.keys.insert_key(&new).await?;
        let until = now + grace;
        store.keys.mark_rotated(&old.id, &new.id, until).await?;
        let mut r = Rotated {
            old_id: old.id.clone(),
            new_id: new.id.clone(),
            name: old.name.clone(),
            grace_until: until,
            delivered_to: None,
            delivery_error: None,
            notified: false,
        };
        if let Some(dest) = cfg.deliver.get(&old.name) {
            match CredentialRef::parse(dest) {
                Ok(reference) => {
                    let value = SecretString::from(key.expose().to_owned());
                    match secrets.write(&reference, &value).await {
                        Ok(()) => r.delivered_to = Some(reference.describe()),
                        Err(e) => r.delivery_error = Some(e.to_string()),
                    }
                }
                Err(e) => r.delivery_error = Some(e.to_string()),
            }
        }
        if let Some(url) = &cfg.webhook {
            r.notified = notify(url, &old, &r).await;
        }
        tracing::info!(old = %r.old_id, new = %r.new_id, delivered = ?r.delivered_to, "key rotated by policy");
        done.push(r);
    }
    Ok(done)
}

async fn notify(url: &str, old: &KeyRecord, r: &Rotated) -> bool {
    let client = match reqwest::Client::builder()
        .timeout(WEBHOOK_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(_) => return false,
    };
    let text = format!(
        "tollgate rotated key {} ({}) of {}: successor {}; the old key works until {}{}",
        r.old_id,
        r.name,
        old.owner.as_deref().unwrap_or("no owner"),
        r.new_id,
        r.grace_until.to_rfc3339(),
        r.delivered_to
            .as_ref()
            .map(|d| format!("; the new key was written to {d}"))
            .unwrap_or_default()
    );
    let body = json!({
        "event": "key.rotated",
        "text": text,
        "old_key_id": r.old_id,
        "new_key_id": r.new_id,
        "name": r.name,
        "owner": old.owner,
        "team": old.team,
        "grace_until": r.grace_until,
        "delivered_to": r.delivered_to,
    });
    match client.post(url).json(&body).send().await {
        Ok(resp) if resp.status().is_success() => true,
        Ok(resp) => {
            tracing::warn!(
                status = resp.status().as_u16(),
                "rotation webhook refused the notice"
            );
            false
        }
        Err(e) => {
            tracing::warn!(error = %e.without_url(), "rotation webhook unreachable");
            false
        }
    }
}
