//! `[alerts]`: where alerts go and how the anomaly detector is tuned (checklist MI-2). The
//! alerter itself is [`crate::alert`], the detector [`crate::anomaly`].
//!
//! ```toml
//! [alerts]
//! log = true              # every alert as a `tollgate::alert` log event (default)
//! cooldown = "15m"        # the same alert (dedup key) at most once per cooldown
//!
//! [[alerts.webhooks]]
//! url = "https://alerts.example.com/tollgate"
//! format = "json"         # "json" (the alert as an object) or "slack" ({"text": ...})
//!
//! [alerts.anomaly]
//! sensitivity = 6.0       # robust z-score (MADs above the median) that counts as a spike
//! min_cost_usd = 1.0      # a minute below these floors never alerts
//! ```

use serde::Deserialize;

use super::{ConfigDuration, Problem};

/// Cooldown of an alert's dedup key when `[alerts] cooldown` is unset.
pub const DEFAULT_COOLDOWN: std::time::Duration = std::time::Duration::from_secs(15 * 60);
/// How long one webhook delivery may take.
pub const DEFAULT_WEBHOOK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// Most webhooks.
pub const MAX_WEBHOOKS: usize = 16;

/// The `[alerts]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Log each alert on the `tollgate::alert` tracing target (default true).
    #[serde(default = "yes")]
    pub log: bool,
    /// Minimum time between two alerts with the same dedup key (default 15m).
    pub cooldown: Option<ConfigDuration>,
    /// Webhooks that receive every alert.
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
    /// Anomaly detector settings.
    #[serde(default)]
    pub anomaly: AnomalyConfig,
}

fn yes() -> bool {
    true
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            log: true,
            cooldown: None,
            webhooks: Vec::new(),
            anomaly: AnomalyConfig::default(),
        }
    }
}

/// One webhook.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST: an https URL (http only to localhost), or a credential reference to
    /// one (`keystore://NAME`, `file:///path`, `env:NAME`, `vault://…`, `aws-sm://…`), since
    /// webhook URLs such as Slack's carry their secret in the path and a literal one in the
    /// config is refused like any other credential.
    pub url: String,
    /// `json` (default): the alert as a JSON object; `slack`: `{"text": "..."}`, which Slack,
    /// Mattermost and similar incoming webhooks accept.
    pub format: Option<String>,
    /// Time limit of one delivery (default 5s).
    pub timeout: Option<ConfigDuration>,
}

/// Tuning of the anomaly detector; see [`crate::anomaly`] for the method.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyConfig {
    /// Whether the detector runs (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// How many MADs (scaled to a standard deviation) above the median is a spike (default 6).
    #[serde(default = "default_sensitivity")]
    pub sensitivity: f64,
    /// Minutes of history forming the baseline (default 60).
    #[serde(default = "default_baseline")]
    pub baseline_minutes: usize,
    /// Minutes of history needed before anything can alert (default 10).
    #[serde(default = "default_min_baseline")]
    pub min_baseline_minutes: usize,
    /// Requests in a minute below which there is no alert (default 30).
    #[serde(default = "default_min_requests")]
    pub min_requests: f64,
    /// Tokens in a minute below which there is no alert (default 50 000).
    #[serde(default = "default_min_tokens")]
    pub min_tokens: f64,
    /// USD in a minute below which there is no alert (default 1.0).
    #[serde(default = "default_min_cost")]
    pub min_cost_usd: f64,
    /// Errors in a minute below which there is no alert (default 10).
    #[serde(default = "default_min_errors")]
    pub min_errors: f64,
    /// Guard blocks in a minute below which there is no alert (default 5).
    #[serde(default = "default_min_blocks")]
    pub min_guard_blocks: f64,
    /// Authentication failures in a minute below which there is no alert (default 10).
    #[serde(default = "default_min_errors")]
    pub min_auth_failures: f64,
    /// Alert on a key's first use of a model, after its first (default true).
    #[serde(default = "yes")]
    pub new_model: bool,
    /// Alert on a key's first request from a client IP, after its first (default true).
    #[serde(default = "yes")]
    pub new_ip: bool,
}

fn default_sensitivity() -> f64 {
    6.0
}
fn default_baseline() -> usize {
    60
}
fn default_min_baseline() -> usize {
    10
}
fn default_min_requests() -> f64 {
    30.0
}
fn default_min_tokens() -> f64 {
    50_000.0
}
fn default_min_cost() -> f64 {
    1.0
}
fn default_min_errors() -> f64 {
    10.0
}
fn default_min_blocks() -> f64 {
    5.0
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            sensitivity: default_sensitivity(),
            baseline_minutes: default_baseline(),
            min_baseline_minutes: default_min_baseline(),
            min_requests: default_min_requests(),
            min_tokens: default_min_tokens(),
            min_cost_usd: default_min_cost(),
            min_errors: default_min_errors(),
            min_guard_blocks: default_min_blocks(),
            min_auth_failures: default_min_errors(),
            new_model: true,
            new_ip: true,
        }
    }
}

/// Whether a webhook `url` is a credential reference rather than a URL.
pub fn is_reference(url: &str) -> bool {
    ["keystore://", "file://", "env:", "vault://", "aws-sm://"]
        .iter()
        .any(|p| url.starts_with(p))
}

/// Whether `url` is one tollgate may POST alerts to: https, or http to localhost.
pub fn web_url_ok(url: &str) -> bool {
    reqwest::Url::parse(url)
        .is_ok_and(|u| u.scheme() == "https" || (u.scheme() == "http" && super::is_local_url(url)))
}

impl AlertsConfig {
    /// The dedup cooldown.
    pub fn cooldown(&self) -> std::time::Duration {
        self.cooldown.map_or(DEFAULT_COOLDOWN, |d| d.0)
    }

    /// Check the section; push every problem.
    pub fn validate(&self, problems: &mut Vec<Problem>) {
        if self.webhooks.len() > MAX_WEBHOOKS {
            problems.push(Problem {
                path: "alerts.webhooks".into(),
                line: None,
                message: format!("more than {MAX_WEBHOOKS} webhooks"),
            });
        }
        for (i, w) in self.webhooks.iter().enumerate() {
            if is_reference(&w.url) {
                if let Err(e) = crate::credential::CredentialRef::parse(&w.url) {
                    problems.push(Problem {
                        path: format!("alerts.webhooks[{i}].url"),
                        line: None,
                        message: e.to_string(),
                    });
                }
            } else if !web_url_ok(&w.url) {
                problems.push(Problem {
                    path: format!("alerts.webhooks[{i}].url"),
                    line: None,
                    message: "must be an https:// URL (or http:// to localhost)".into(),
                });
            }
            if let Some(f) = w
                .format
                .as_deref()
                .filter(|f| !matches!(*f, "json" | "slack"))
            {
                problems.push(Problem {
                    path: format!("alerts.webhooks[{i}].format"),
                    line: None,
                    message: format!("{f:?} is not \"json\" or \"slack\""),
                });
            }
        }
        let a = &self.anomaly;
        if !(a.sensitivity.is_finite() && a.sensitivity >= 1.0) {
            problems.push(Problem {
                path: "alerts.anomaly.sensitivity".into(),
                line: None,
                message: "must be a number of at least 1".into(),
            });
        }
        if a.baseline_minutes < 5 || a.baseline_minutes > 24 * 60 {
            problems.push(Problem {
                path: "alerts.anomaly.baseline_minutes".into(),
                line: None,
                message: "must be between 5 and 1440".into(),
            });
        }
        if a.min_baseline_minutes == 0 || a.min_baseline_minutes > a.baseline_minutes {
            problems.push(Problem {
                path: "alerts.anomaly.min_baseline_minutes".into(),
                line: None,
                message: "must be at least 1 and at most baseline_minutes".into(),
            });
        }
        for (name, v) in [
            ("min_requests", a.min_requests),
            ("min_tokens", a.min_tokens),
            ("min_cost_usd", a.min_cost_usd),
            ("min_errors", a.min_errors),
            ("min_guard_blocks", a.min_guard_blocks),
            ("min_auth_failures", a.min_auth_failures),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                problems.push(Problem {
                    path: format!("alerts.anomaly.{name}"),
                    line: None,
                    message: "must be a number of at least 0".into(),
                });
            }
        }
    }
}
