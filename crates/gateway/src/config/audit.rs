//! `[audit]`, `[retention]` and per-route `[routes.NAME.audit]` settings (DP-2, DP-3).
//!
//! Audit sinks are defined here, in the file, and nowhere else: no API can turn the audit
//! trail off or point it elsewhere.

use serde::Deserialize;

use tollgate_store::audit::{PayloadKind, PurgePlan};

use super::{ConfigDuration, Problem};

/// Records per signed checkpoint unless configured.
pub const DEFAULT_CHECKPOINT_EVERY: u64 = 1_000;
/// Shortest allowed interval between scheduled retention runs.
pub const MIN_PURGE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// `[audit]`: the trail itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Refuse requests (503, nothing sent upstream) while the audit store cannot be written.
    /// On by default; `false` serves anyway and raises an alert.
    #[serde(default = "yes")]
    pub fail_closed: bool,
    /// Sign a checkpoint every this many records (and at shutdown, and every minute).
    #[serde(default = "default_checkpoint_every")]
    pub checkpoint_every: u64,
    /// This instance's chain id; default: generated once and kept in the data directory.
    pub instance_id: Option<String>,
    /// Default payload policy of every route (routes may override it).
    #[serde(default)]
    pub payloads: PayloadConfig,
}

fn yes() -> bool {
    true
}
fn default_checkpoint_every() -> u64 {
    DEFAULT_CHECKPOINT_EVERY
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            fail_closed: true,
            checkpoint_every: DEFAULT_CHECKPOINT_EVERY,
            instance_id: None,
            payloads: PayloadConfig::default(),
        }
    }
}

/// Which payloads are stored (encrypted) beside the audit records. Nothing by default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadConfig {
    /// The request as sent to the provider, after masking.
    pub prompts: Option<bool>,
    /// The response as returned to the client.
    pub completions: Option<bool>,
    /// The prompt before masking. Stored only when a route sets this explicitly.
    pub original_prompts: Option<bool>,
    /// Embedding vectors as returned (embedding inputs follow `prompts`).
    pub embedding_vectors: Option<bool>,
}

impl PayloadConfig {
    /// The route's setting over the global one.
    pub fn resolve(global: &Self, route: Option<&Self>) -> crate::audit::PayloadPolicy {
        let pick =
            |f: fn(&Self) -> Option<bool>| route.and_then(f).or_else(|| f(global)).unwrap_or(false);
        crate::audit::PayloadPolicy {
            prompts: pick(|c| c.prompts),
            completions: pick(|c| c.completions),
            // Never inherited: the unmasked prompt is stored only where a route asks.
            original_prompts: route.and_then(|r| r.original_prompts).unwrap_or(false),
            embedding_vectors: pick(|c| c.embedding_vectors),
        }
    }
}

/// `[retention]`: how long each class of data is kept (DP-3). Unset: kept.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Prompts as sent upstream (and unmasked prompts, where a route stores them).
    pub prompts: Option<ConfigDuration>,
    /// Completions as returned.
    pub completions: Option<ConfigDuration>,
    /// Embedding inputs and vectors.
    pub embeddings: Option<ConfigDuration>,
    /// Audit records (metadata). Pruned only up to a signed checkpoint.
    pub metadata: Option<ConfigDuration>,
    /// Review-queue items (masked samples of interactions and their labels). Default: the
    /// `prompts` TTL, since an item holds (masked) prompt text; set it apart to keep labelled
    /// samples longer or shorter than raw payloads.
    pub review: Option<ConfigDuration>,
    /// Floor under `metadata` (for example 180 days for EU AI Act deployers); a shorter
    /// `metadata` is a config error.
    pub min_metadata: Option<ConfigDuration>,
    /// How often the gateway runs retention itself (default: hourly).
    pub interval: Option<ConfigDuration>,
}

impl RetentionConfig {
    /// What a retention run at `now` deletes.
    pub fn plan(&self, now: chrono::DateTime<chrono::Utc>, dry_run: bool) -> PurgePlan {
        let before = |d: Option<ConfigDuration>| {
            d.and_then(|d| chrono::Duration::from_std(d.0).ok())
                .map(|d| now - d)
        };
        let mut payloads = Vec::new();
        for (kind, ttl) in [
            (PayloadKind::Prompt, self.prompts),
            (PayloadKind::OriginalPrompt, self.prompts),
            (PayloadKind::Completion, self.completions),
            (PayloadKind::EmbeddingInput, self.embeddings),
            (PayloadKind::EmbeddingVector, self.embeddings),
        ] {
            if let Some(b) = before(ttl) {
                payloads.push((kind, b));
            }
        }
        PurgePlan {
            payloads,
            metadata_before: before(self.metadata),
            reviews_before: before(self.review_ttl()),
            dry_run,
        }
    }

    /// The review queue's TTL: `review`, else `prompts`.
    pub fn review_ttl(&self) -> Option<ConfigDuration> {
        self.review.or(self.prompts)
    }

    /// Whether any class has a TTL (otherwise there is nothing to schedule).
    pub fn any(&self) -> bool {
        self.review.is_some()
            || self.prompts.is_some()
            || self.completions.is_some()
            || self.embeddings.is_some()
            || self.metadata.is_some()
    }

    /// Interval of the scheduled purge.
    pub fn interval(&self) -> std::time::Duration {
        self.interval
            .map_or(std::time::Duration::from_secs(3600), |d| d.0)
    }

    /// Check values; push problems.
    pub fn validate(&self, problems: &mut Vec<Problem>) {
        if let (Some(m), Some(min)) = (self.metadata, self.min_metadata) {
            if m.0 < min.0 {
                problems.push(Problem {
                    path: "retention.metadata".into(),
                    line: None,
                    message: format!(
                        "{} is shorter than retention.min_metadata ({})",
                        humantime::format_duration(m.0),
                        humantime::format_duration(min.0)
                    ),
                });
            }
        }
        if self.interval.is_some_and(|i| i.0 < MIN_PURGE_INTERVAL) {
            problems.push(Problem {
                path: "retention.interval".into(),
                line: None,
                message: "must be at least 1m".into(),
            });
        }
        for (name, d) in [
            ("prompts", self.prompts),
            ("completions", self.completions),
            ("embeddings", self.embeddings),
            ("metadata", self.metadata),
            ("review", self.review),
        ] {
            if d.is_some_and(|d| d.0.is_zero()) {
                problems.push(Problem {
                    path: format!("retention.{name}"),
                    line: None,
                    message: "must be longer than zero (leave it out to keep data)".into(),
                });
            }
        }
    }
}

impl AuditConfig {
    /// Check values; push problems.
    pub fn validate(&self, problems: &mut Vec<Problem>) {
        if self.checkpoint_every == 0 {
            problems.push(Problem {
                path: "audit.checkpoint_every".into(),
                line: None,
                message: "must be at least 1".into(),
            });
        }
        if let Some(id) = &self.instance_id {
            if !valid_instance_id(id) {
                problems.push(Problem {
                    path: "audit.instance_id".into(),
                    line: None,
                    message: "use 1-64 characters of A-Z a-z 0-9 . _ -".into(),
                });
            }
        }
        if self.payloads.original_prompts == Some(true) {
            problems.push(Problem {
                path: "audit.payloads.original_prompts".into(),
                line: None,
                message: "unmasked prompts may only be stored by a route that asks for it \
                          ([routes.NAME.audit] original_prompts = true)"
                    .into(),
            });
        }
    }
}

/// Whether `id` is an acceptable chain id.
pub fn valid_instance_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days(n: u64) -> Option<ConfigDuration> {
        Some(ConfigDuration(std::time::Duration::from_secs(n * 86_400)))
    }

    #[test]
    fn review_items_expire_with_their_own_ttl_or_the_prompts_one() {
        let now = chrono::Utc::now();
        let mut r = RetentionConfig::default();
        assert_eq!(r.plan(now, false).reviews_before, None, "unset: kept");
        assert!(!r.any());
        r.prompts = days(30);
        assert_eq!(
            r.plan(now, false).reviews_before,
            Some(now - chrono::Duration::days(30)),
            "default: the prompts TTL"
        );
        r.review = days(90);
        assert_eq!(
            r.plan(now, true).reviews_before,
            Some(now - chrono::Duration::days(90))
        );
        let only_review = RetentionConfig {
            review: days(7),
            ..RetentionConfig::default()
        };
        assert!(only_review.any(), "a review TTL alone schedules the purge");
        let mut problems = Vec::new();
        RetentionConfig {
            review: Some(ConfigDuration(std::time::Duration::ZERO)),
            ..RetentionConfig::default()
        }
        .validate(&mut problems);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "retention.review");
    }
}
