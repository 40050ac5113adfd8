//! `tollgate.toml`: the declarative configuration (server, storage, logging, providers,
//! routes), parsed strictly and validated as a whole.
//!
//! Parsing denies unknown fields so a typo never silently disables a control. [`Config::load`]
//! then reports *every* problem with its location, not just the first. Credentials must be
//! references (`keystore://`, `vault://`, `aws-sm://`, `file://`, `env:`): a literal key
//! anywhere in the file is an error that names its line (checklist AC-1). Where the secrets
//! managers are is the `[secrets]` section ([`crate::secrets::SecretsConfig`]); provider
//! reviews, data classes and `[policy]` are in [`review`] (DP-4).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::credential::CredentialRef;

pub mod alerts;
pub mod audit;
pub mod budgets;
pub mod datasets;
pub mod guards;
pub mod incident;
pub mod limits;
pub mod review;
pub mod sampling;
pub mod telemetry;

pub use guards::{
    ContentPolicyConfig, CustomRecognizerConfig, GuardsConfig, InjectionPolicyConfig,
    OutputPolicyConfig, PiiPolicyConfig,
};
pub use limits::{LimitsConfig, RouteLimitsConfig};

pub use audit::{AuditConfig, PayloadConfig, RetentionConfig};
pub use review::{DataClass, ExpiredReview, PolicyConfig, Review, ReviewConfig, ReviewStatus};

/// Default listen address of `tollgate serve`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";
/// Default cap on request bodies (2 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 2 * 1024 * 1024;
/// Largest config file accepted; a config is a few kilobytes, anything huge is a mistake.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// A duration written as text in the config (`"30s"`, `"5m"`, `"250ms"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigDuration(pub Duration);

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s)
            .map(ConfigDuration)
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "invalid duration {s:?}: {e} (examples: \"30s\", \"250ms\", \"5m\")"
                ))
            })
    }
}

/// The whole configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// HTTP server settings.
    #[serde(default)]
    pub server: ServerConfig,
    /// Where state lives.
    #[serde(default)]
    pub storage: StorageConfig,
    /// Request log settings.
    #[serde(default)]
    pub logging: LoggingConfig,
    /// Model providers by name.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Routes by model alias (the `model` a client sends).
    #[serde(default)]
    pub routes: BTreeMap<String, RouteConfig>,
    /// Guards applied to every route unless the route sets its own.
    #[serde(default)]
    pub guards: GuardsConfig,
    /// Secrets managers that `vault://` and `aws-sm://` references point into.
    #[serde(default)]
    pub secrets: crate::secrets::SecretsConfig,
    /// The audit trail (DP-2).
    #[serde(default)]
    pub audit: AuditConfig,
    /// Retention of payloads and records (DP-3).
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Data-class defaults and enforcement of provider reviews (DP-4).
    #[serde(default)]
    pub policy: PolicyConfig,
    /// Rate, token and concurrency limits and request caps (DO-1).
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Prices per model, USD per million tokens, over the built-in list prices (DO-2).
    #[serde(default)]
    pub prices: BTreeMap<String, PriceConfig>,
    /// Incident response: break-glass keys, last drill (MI-3).
    #[serde(default)]
    pub incident: incident::IncidentConfig,
    /// Who may promote prompts: the four-eyes rule (DO-3, DO-4).
    #[serde(default)]
    pub governance: crate::prompt::GovernanceConfig,
    /// Spend limits per key, team or the whole gateway (DO-2).
    #[serde(default)]
    pub budgets: Vec<budgets::BudgetConfig>,
    /// Settings of every budget: the time zone of calendar periods.
    #[serde(default)]
    pub budgets_settings: budgets::BudgetsSettings,
    /// Alert sinks and the anomaly detector (MI-2).
    #[serde(default)]
    pub alerts: alerts::AlertsConfig,
    /// Automated key rotation (AC-4).
    pub rotation: Option<crate::rotation::RotationConfig>,
    /// The fine-tuning file and job endpoints, for data-steward keys (AC-3); off without it.
    pub datasets: Option<datasets::DatasetsConfig>,
    /// The review queue's sample rate and the drift check (MI-4).
    #[serde(default)]
    pub review: sampling::ReviewQueueConfig,
    /// OpenTelemetry traces over OTLP/HTTP (MI-1); off without it.
    pub telemetry: Option<telemetry::TelemetryConfig>,
}

/// One model's price, USD per million tokens.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceConfig {
    /// Input tokens.
    pub input: f64,
    /// Output tokens.
    pub output: f64,
    /// Cached input tokens (default: the input price).
    pub cached_input: Option<f64>,
}

impl Config {
    /// The price table: built-in list prices overridden by `[prices]`.
    pub fn price_table(&self) -> tollgate_guard::cost::PriceTable {
        let mut t = tollgate_guard::cost::PriceTable::with_defaults();
        for (model, p) in &self.prices {
            t.set(
                model,
                tollgate_guard::cost::Price {
                    input: p.input,
                    cached_input: p.cached_input.unwrap_or(p.input),
                    output: p.output,
                },
            );
        }
        t
    }
}

/// HTTP server settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Largest accepted request body in bytes; larger requests get 413.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Hosts providers may live on (`api.openai.com`, `*.openai.azure.com`); when set, a
    /// provider elsewhere is a config error (checklist SC-3). Empty: not restricted.
    #[serde(default)]
    pub egress_allow: Vec<String>,
}

fn default_listen() -> String {
    DEFAULT_LISTEN.to_owned()
}
fn default_max_body() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            max_body_bytes: default_max_body(),
            egress_allow: Vec::new(),
        }
    }
}

/// Where state lives.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Data directory (relative paths are relative to the config file); default `./tollgate-data`.
    pub data_dir: Option<PathBuf>,
}

/// Request log settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    /// Include prompt and completion text in request log lines. Off by default: prompts are
    /// user data, and the audit store (not the log) is where payloads belong.
    #[serde(default)]
    pub log_payloads: bool,
}

/// Which adapter speaks to a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenAI and every OpenAI-compatible server (vLLM, Ollama, llama.cpp, LiteLLM…).
    Openai,
    /// Azure OpenAI: deployments in the URL, `api-version` query, `api-key` header.
    Azure,
    /// Anthropic's Messages API.
    Anthropic,
    /// Built-in provider that replies with what it received; for demos and tests.
    Echo,
}

/// One model provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Adapter to use.
    pub kind: ProviderKind,
    /// Base URL: `…/v1` for OpenAI-compatible servers, the host for Anthropic, the resource
    /// endpoint for Azure.
    pub base_url: Option<String>,
    /// Credential reference; literal keys are refused.
    pub api_key: Option<Spanned<String>>,
    /// Azure `api-version`.
    pub api_version: Option<String>,
    /// Extra headers sent upstream (values must not be credentials).
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<String>>,
    /// Time to establish a connection.
    pub connect_timeout: Option<ConfigDuration>,
    /// Time until response headers arrive.
    pub first_byte_timeout: Option<ConfigDuration>,
    /// Time for the whole exchange, streams included.
    pub total_timeout: Option<ConfigDuration>,
    /// Retries per target after the first attempt (429, 5xx, connection errors).
    pub max_retries: Option<u32>,
    /// First backoff delay; later ones double, with full jitter.
    pub retry_backoff: Option<ConfigDuration>,
    /// Longest `Retry-After` honoured before giving up on this target and falling back.
    pub max_retry_after: Option<ConfigDuration>,
    /// Consecutive failures that open a target's circuit breaker.
    pub breaker_failures: Option<u32>,
    /// How long an open breaker rejects calls before a trial request.
    pub breaker_cooldown: Option<ConfigDuration>,
    /// The provider's data-handling review (DP-4). Without a current one the provider
    /// receives nothing; the built-in `echo` provider needs none.
    pub review: Option<ReviewConfig>,
}

/// One route: a model alias and its ordered fallback targets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Targets in fallback order.
    pub targets: Vec<TargetConfig>,
    /// Guard settings of this route.
    pub guards: Option<GuardsConfig>,
    /// Which payloads this route stores beside its audit records.
    pub audit: Option<PayloadConfig>,
    /// Class of the data this route carries (`public`, `internal`, `confidential`, `pii`,
    /// `phi`); default `[policy] default_data_class`. A key may raise it, never lower it.
    pub data_class: Option<Spanned<String>>,
    /// This route's limits and caps over `[limits]`.
    pub limits: Option<RouteLimitsConfig>,
    /// This route's review sample rate over `[review]` (MI-4).
    pub review: Option<sampling::RouteReviewConfig>,
}

/// One target of a route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Name of a provider in `[providers]`.
    pub provider: String,
    /// Model name upstream (the deployment name for Azure).
    pub model: String,
}

/// Resolved timeouts, retry and breaker settings of a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resilience {
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Time to response headers.
    pub first_byte_timeout: Duration,
    /// Whole-exchange timeout.
    pub total_timeout: Duration,
    /// Retries per target.
    pub max_retries: u32,
    /// Base backoff delay.
    pub retry_backoff: Duration,
    /// Longest honoured `Retry-After`.
    pub max_retry_after: Duration,
    /// Failures to open the breaker.
    pub breaker_failures: u32,
    /// Breaker cool-down.
    pub breaker_cooldown: Duration,
}

impl ProviderConfig {
    /// Effective resilience settings, defaults filled in.
    pub fn resilience(&self) -> Resilience {
        let d = |v: Option<ConfigDuration>, default: Duration| v.map_or(default, |c| c.0);
        Resilience {
            connect_timeout: d(self.connect_timeout, Duration::from_secs(5)),
            first_byte_timeout: d(self.first_byte_timeout, Duration::from_secs(60)),
            total_timeout: d(self.total_timeout, Duration::from_secs(600)),
            max_retries: self.max_retries.unwrap_or(2),
            retry_backoff: d(self.retry_backoff, Duration::from_millis(200)),
            max_retry_after: d(self.max_retry_after, Duration::from_secs(10)),
            breaker_failures: self.breaker_failures.unwrap_or(5),
            breaker_cooldown: d(self.breaker_cooldown, Duration::from_secs(30)),
        }
    }

    /// Base URL with the adapter's default filled in and no trailing slash.
    pub fn effective_base_url(&self) -> String {
        let url = match (&self.base_url, self.kind) {
            (Some(u), _) => u.clone(),
            (None, ProviderKind::Openai) => "https://api.openai.com/v1".to_owned(),
            (None, ProviderKind::Anthropic) => "https://api.anthropic.com".to_owned(),
            (None, ProviderKind::Azure | ProviderKind::Echo) => String::new(),
        };
        url.trim_end_matches('/').to_owned()
    }
}

/// One problem found in a config file, with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path of the offending setting, e.g. `providers.openai.api_key`.
    pub path: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "line {l}: {}: {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is too large to be a config.
    #[error("config {path} is larger than {MAX_CONFIG_BYTES} bytes")]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// TOML syntax or shape error (the message includes line and column).
    #[error("config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Parser message.
        message: String,
    },
    /// The file parsed but has problems; all of them are listed.
    #[error("config {path} has {} problem(s):\n{}", problems.len(), problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

/// Non-fatal observations about a valid config, shown at start-up and in reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Dotted path of the setting.
    pub path: String,
    /// What to consider changing.
    pub message: String,
}

/// 1-based line of byte `offset` in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

impl Config {
    /// Read, parse and validate the file at `path`.
    pub fn load(path: &Path) -> Result<(Self, Vec<Warning>), ConfigError> {
        let meta = std::fs::metadata(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge {
                path: path.to_owned(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parse and validate config text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<(Self, Vec<Warning>), ConfigError> {
        // Look for literal credentials before parsing so that a key in any field (or in a
        // field we do not know) is reported even when the file also has other errors.
        let mut problems: Vec<Problem> = tollgate_guard::secret::find_secrets(text)
            .into_iter()
            .map(|m| Problem {
                path: "(file)".to_owned(),
                line: Some(line_of(text, m.start)),
                message: format!(
                    "literal credential ({}) in the config file; store it with `tollgate secrets set NAME` and reference it as \"keystore://NAME\"",
                    m.rule
                ),
            })
            .collect();
        let config: Config = match toml::from_str(text) {
            Ok(c) => c,
            Err(e) => {
                if problems.is_empty() {
                    return Err(ConfigError::Parse {
                        path: path.to_owned(),
                        message: e.to_string(),
                    });
                }
                problems.push(Problem {
                    path: "(file)".to_owned(),
                    line: e.span().map(|s| line_of(text, s.start)),
                    message: e.message().to_owned(),
                });
                return Err(ConfigError::Invalid {
                    path: path.to_owned(),
                    problems,
                });
            }
        };
        let warnings = config.validate(text, &mut problems);
        if problems.is_empty() {
            Ok((config, warnings))
        } else {
            problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
            problems.dedup();
            Err(ConfigError::Invalid {
                path: path.to_owned(),
                problems,
            })
        }
    }

    /// Check cross-references and values; push problems, return warnings.
    pub fn validate(&self, text: &str, problems: &mut Vec<Problem>) -> Vec<Warning> {
        let mut warnings = Vec::new();
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            problems.push(Problem {
                path: "server.listen".into(),
                line: None,
                message: format!(
                    "{:?} is not an address like 127.0.0.1:8787",
                    self.server.listen
                ),
            });
        }
        if self.server.max_body_bytes < 1024 {
            problems.push(Problem {
                path: "server.max_body_bytes".into(),
                line: None,
                message: "must be at least 1024 bytes".into(),
            });
        }
        self.secrets.validate(text, problems, &mut warnings);
        for (name, p) in &self.providers {
            let at = |field: &str| format!("providers.{name}.{field}");
            if !valid_ident(name) {
                problems.push(Problem {
                    path: format!("providers.{name}"),
                    line: None,
                    message: "provider names use letters, digits, '-' and '_'".into(),
                });
            }
            match (&p.api_key, p.kind) {
                (Some(key), ProviderKind::Echo) => problems.push(Problem {
                    path: at("api_key"),
                    line: Some(line_of(text, key.span().start)),
                    message: "the echo provider takes no credential".into(),
                }),
                (Some(key), _) => match CredentialRef::parse(key.get_ref()) {
                    Ok(r) => {
                        if let Some(w) = r.warning() {
                            warnings.push(Warning { path: at("api_key"), message: w });
                        }
                        if let Some(m) = self.secrets.missing_backend(&r) {
                            problems.push(Problem {
                                path: at("api_key"),
                                line: Some(line_of(text, key.span().start)),
                                message: m.to_owned(),
                            });
                        }
                    }
                    Err(e) => problems.push(Problem {
                        path: at("api_key"),
                        line: Some(line_of(text, key.span().start)),
                        message: e.to_string(),
                    }),
                },
                (None, ProviderKind::Anthropic | ProviderKind::Azure) => problems.push(Problem {
                    path: at("api_key"),
                    line: None,
                    message: "this provider needs a credential reference, e.g. api_key = \"keystore://NAME\"".into(),
                }),
                (None, ProviderKind::Openai) => {
                    if p.base_url.is_none() {
                        problems.push(Problem {
                            path: at("api_key"),
                            line: None,
                            message: "OpenAI needs a credential reference, e.g. api_key = \"keystore://openai\" (only self-hosted servers with a base_url may omit it)".into(),
                        });
                    }
                }
                (None, ProviderKind::Echo) => {}
            }
            for (h, v) in &p.headers {
                let lower = h.to_ascii_lowercase();
                if matches!(lower.as_str(), "authorization" | "x-api-key" | "api-key") {
                    problems.push(Problem {
                        path: at(&format!("headers.{h}")),
                        line: Some(line_of(text, v.span().start)),
                        message: "credentials go in api_key as a reference, not in headers".into(),
                    });
                }
            }
            match p.kind {
                ProviderKind::Echo => {
                    if p.base_url.is_some() {
                        problems.push(Problem {
                            path: at("base_url"),
                            line: None,
                            message: "the echo provider has no base_url".into(),
                        });
                    }
                }
                kind => {
                    let url = p.effective_base_url();
                    let host = tollgate_guard::egress::url_host(&url).unwrap_or_default();
                    if !self.server.egress_allow.is_empty()
                        && !tollgate_guard::egress::host_allowed(host, &self.server.egress_allow)
                    {
                        problems.push(Problem {
                            path: at("base_url"),
                            line: None,
                            message: format!(
                                "host {host:?} is not in server.egress_allow; add it there if prompts may go to it (SC-3)"
                            ),
                        });
                    }
                    if url.is_empty() {
                        problems.push(Problem {
                            path: at("base_url"),
                            line: None,
                            message: "required for this provider kind".into(),
                        });
                    } else if reqwest::Url::parse(&url)
                        .map(|u| !matches!(u.scheme(), "http" | "https"))
                        .unwrap_or(true)
                    {
                        problems.push(Problem {
                            path: at("base_url"),
                            line: None,
                            message: format!("{url:?} is not an http(s) URL"),
                        });
                    } else if url.starts_with("http://") && !is_local_url(&url) {
                        warnings.push(Warning {
                            path: at("base_url"),
                            message: "plain http to a non-local host sends prompts and credentials unencrypted".into(),
                        });
                    }
                    if kind == ProviderKind::Azure && p.api_version.is_none() {
                        problems.push(Problem {
                            path: at("api_version"),
                            line: None,
                            message: "Azure OpenAI needs api_version, e.g. \"2024-10-21\"".into(),
                        });
                    }
                }
            }
            let r = p.resilience();
            if r.connect_timeout.is_zero()
                || r.first_byte_timeout.is_zero()
                || r.total_timeout.is_zero()
            {
                problems.push(Problem {
                    path: at("*_timeout"),
                    line: None,
                    message: "timeouts must be greater than zero".into(),
                });
            }
            if r.max_retries > 10 {
                problems.push(Problem {
                    path: at("max_retries"),
                    line: None,
                    message: "at most 10 retries".into(),
                });
            }
            if r.breaker_failures == 0 {
                problems.push(Problem {
                    path: at("breaker_failures"),
                    line: None,
                    message: "must be at least 1".into(),
                });
            }
        }
        self.audit.validate(problems);
        self.retention.validate(problems);
        self.limits.validate(problems);
        budgets::validate(&self.budgets, &self.budgets_settings, problems);
        self.alerts.validate(problems);
        self.review.validate(
            self.routes.iter().map(|(a, r)| (a, r.review.as_ref())),
            problems,
        );
        if let Some(r) = &self.rotation {
            r.validate(problems);
        }
        if let Some(d) = &self.datasets {
            d.validate(&self.providers, problems);
        }
        if let Some(t) = &self.telemetry {
            t.validate(&self.secrets, problems, &mut warnings);
        }
        for (model, p) in &self.prices {
            let bad = |v: f64| !v.is_finite() || v < 0.0;
            if bad(p.input) || bad(p.output) || p.cached_input.is_some_and(bad) {
                problems.push(Problem {
                    path: format!("prices.{model}"),
                    line: None,
                    message: "prices are non-negative USD per million tokens".into(),
                });
            }
        }
        for (alias, r) in &self.routes {
            if let Some(l) = &r.limits {
                for (name, rule) in [("route", &l.route), ("key", &l.key)] {
                    if let Some(rule) = rule {
                        limits::validate_rule(
                            &format!("routes.{alias}.limits.{name}"),
                            rule,
                            problems,
                        );
                    }
                }
            }
        }
        review::validate(self, text, review::today(), problems, &mut warnings);
        if let Err(e) = crate::guards::GuardSet::build(&self.guards, None) {
            problems.push(Problem {
                path: "guards".into(),
                line: None,
                message: e,
            });
        }
        let guard_route_of =
            |g: &GuardsConfig| g.content.as_ref().and_then(|c| c.guard_route.clone());
        for (alias, route) in &self.routes {
            let effective = route
                .guards
                .as_ref()
                .and_then(|g| g.content.as_ref())
                .map_or_else(|| guard_route_of(&self.guards), |c| c.guard_route.clone());
            if let Some(gr) = effective {
                if !self.routes.contains_key(&gr) {
                    problems.push(Problem {
                        path: format!("routes.{alias}.guards.content.guard_route"),
                        line: None,
                        message: format!("no route named {gr:?}"),
                    });
                } else if &gr == alias {
                    problems.push(Problem {
                        path: format!("routes.{alias}.guards.content.guard_route"),
                        line: None,
                        message: "a route cannot be its own guard model".into(),
                    });
                }
            }
            if let Some(g) = &route.guards {
                if let Err(e) = crate::guards::GuardSet::build(&self.guards, Some(g)) {
                    problems.push(Problem {
                        path: format!("routes.{alias}.guards"),
                        line: None,
                        message: e,
                    });
                }
            }
            if route.targets.is_empty() {
                problems.push(Problem {
                    path: format!("routes.{alias}.targets"),
                    line: None,
                    message: "a route needs at least one target".into(),
                });
            }
            for (i, t) in route.targets.iter().enumerate() {
                if !self.providers.contains_key(&t.provider) {
                    problems.push(Problem {
                        path: format!("routes.{alias}.targets[{i}].provider"),
                        line: None,
                        message: format!(
                            "unknown provider {:?}; define it under [providers.{}]",
                            t.provider, t.provider
                        ),
                    });
                }
                if t.model.trim().is_empty() {
                    problems.push(Problem {
                        path: format!("routes.{alias}.targets[{i}].model"),
                        line: None,
                        message: "must not be empty".into(),
                    });
                }
            }
        }
        warnings
    }
}

pub(crate) fn valid_ident(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(crate) fn is_local_url(url: &str) -> bool {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .is_some_and(|h| h == "localhost" || h.starts_with("127.") || h == "[::1]")
}

#[cfg(test)]
mod tests;
