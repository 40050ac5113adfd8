//! `[limits]` and `[routes.NAME.limits]`: request, token and concurrency limits per key,
//! team, client IP and route, request-shape caps, and automatic suspension on abuse (DO-1).

use serde::Deserialize;

use super::{ConfigDuration, Problem};

/// Limits of one subject (a key, a team, an IP or a route).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Requests per minute.
    pub rpm: Option<u64>,
    /// Tokens per minute (prompt estimate + `max_tokens` reserved before the call, settled
    /// with the usage reported after it).
    pub tpm: Option<u64>,
    /// Requests in flight at once (streams count until they end).
    pub concurrency: Option<u32>,
}

impl Rule {
    /// Whether the rule limits anything.
    pub fn is_empty(&self) -> bool {
        self.rpm.is_none() && self.tpm.is_none() && self.concurrency.is_none()
    }
}

/// Caps on the shape of a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Caps {
    /// Most messages in one request.
    pub max_messages: Option<usize>,
    /// Largest `n` (choices per request).
    pub max_n: Option<u64>,
    /// Largest `max_tokens` (or `max_completion_tokens`) a client may ask for.
    pub max_tokens: Option<u64>,
    /// Largest request body in bytes on this route (never above `server.max_body_bytes`).
    pub max_body_bytes: Option<usize>,
}

/// Automatic suspension of a key that keeps tripping guards or failing authorisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbuseConfig {
    /// Guard blocks within `window` that suspend a key (0: off).
    #[serde(default = "default_abuse_blocks")]
    pub guard_blocks: u32,
    /// Authorisation failures (403: model not allowed, and the like) within `window` that
    /// suspend a key (0: off).
    #[serde(default = "default_abuse_denials")]
    pub denials: u32,
    /// The sliding window.
    #[serde(default = "default_abuse_window")]
    pub window: ConfigDuration,
    /// How long a suspension lasts.
    #[serde(default = "default_suspension")]
    pub suspend_for: ConfigDuration,
}

fn default_abuse_blocks() -> u32 {
    20
}
fn default_abuse_denials() -> u32 {
    50
}
fn default_abuse_window() -> ConfigDuration {
    ConfigDuration(std::time::Duration::from_secs(300))
}
fn default_suspension() -> ConfigDuration {
    ConfigDuration(std::time::Duration::from_secs(900))
}

impl Default for AbuseConfig {
    fn default() -> Self {
        Self {
            guard_blocks: default_abuse_blocks(),
            denials: default_abuse_denials(),
            window: default_abuse_window(),
            suspend_for: default_suspension(),
        }
    }
}

/// `[limits]`: defaults for every key, team and client IP, and every route unless it sets
/// its own `[routes.NAME.limits]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Per virtual key.
    #[serde(default)]
    pub key: Rule,
    /// Per team (all its keys together).
    #[serde(default)]
    pub team: Rule,
    /// Per client IP.
    #[serde(default)]
    pub ip: Rule,
    /// Per route (all callers together).
    #[serde(default)]
    pub route: Rule,
    /// Request-shape caps.
    #[serde(default)]
    pub caps: Caps,
    /// Proxies (IPs or CIDRs) allowed to set `X-Forwarded-For`; from anyone else the header is
    /// ignored and the peer address is the client.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Automatic suspension on abuse.
    #[serde(default)]
    pub abuse: AbuseConfig,
    /// Redis holding the counters every instance shares (`redis://HOST:PORT/DB`), so a limit
    /// of N admits N in total across instances; without it each instance counts alone. Budget
    /// reservations are kept there too (their spend stays in the store). A
    /// URL with a password belongs in `TOLLGATE_REDIS` (`tollgate serve --redis`), not here.
    #[serde(default)]
    pub redis: Option<String>,
    /// When Redis cannot be reached: `fail_closed` (default) refuses requests with 503,
    /// `local` enforces the limits per instance and reserves budgets in the store. Either way
    /// `/readyz` and an alert say so.
    #[serde(default)]
    pub redis_unavailable: crate::limits::shared::RedisUnavailable,
    /// Keeps this deployment's keys apart from others sharing the Redis
    /// (`tollgate:v1:NAMESPACE:…`); 1-64 of `a-z`, `0-9`, `_`, `-`.
    #[serde(default)]
    pub redis_namespace: Option<String>,
}

/// `[routes.NAME.limits]`: a route's own limits and caps (replacing the global ones of the
/// same name).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteLimitsConfig {
    /// All callers of this route together.
    #[serde(default)]
    pub route: Option<Rule>,
    /// Each key on this route.
    #[serde(default)]
    pub key: Option<Rule>,
    /// Request-shape caps on this route.
    #[serde(default)]
    pub caps: Option<Caps>,
}

impl LimitsConfig {
    /// Parsed trusted proxies.
    pub fn proxies(&self) -> Vec<ipnet::IpNet> {
        self.trusted_proxies
            .iter()
            .filter_map(|p| parse_net(p))
            .collect()
    }

    /// Check values; push problems.
    pub fn validate(&self, problems: &mut Vec<Problem>) {
        for (i, p) in self.trusted_proxies.iter().enumerate() {
            if parse_net(p).is_none() {
                problems.push(Problem {
                    path: format!("limits.trusted_proxies[{i}]"),
                    line: None,
                    message: format!("{p:?} is not an IP address or CIDR range"),
                });
            }
        }
        for (name, r) in [
            ("key", &self.key),
            ("team", &self.team),
            ("ip", &self.ip),
            ("route", &self.route),
        ] {
            validate_rule(&format!("limits.{name}"), r, problems);
        }
        if let Some(url) = &self.redis {
            validate_redis(url, problems);
        }
        if let Some(ns) = &self.redis_namespace {
            let ok = (1..=64).contains(&ns.len())
                && ns.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !ok {
                problems.push(Problem {
                    path: "limits.redis_namespace".into(),
                    line: None,
                    message: "must be 1-64 characters of a-z, 0-9, '_' and '-'".into(),
                });
            }
        }
        if self.abuse.window.0.is_zero() || self.abuse.suspend_for.0.is_zero() {
            problems.push(Problem {
                path: "limits.abuse".into(),
                line: None,
                message: "window and suspend_for must be longer than zero".into(),
            });
        }
    }
}

/// Check one rule's values.
pub fn validate_rule(path: &str, r: &Rule, problems: &mut Vec<Problem>) {
    for (field, v) in [("rpm", r.rpm), ("tpm", r.tpm)] {
        if v == Some(0) {
            problems.push(Problem {
                path: format!("{path}.{field}"),
                line: None,
                message: "must be at least 1 (leave it out for no limit)".into(),
            });
        }
    }
    if r.concurrency == Some(0) {
        problems.push(Problem {
            path: format!("{path}.concurrency"),
            line: None,
            message: "must be at least 1 (leave it out for no limit)".into(),
        });
    }
}

/// A `redis://` URL without a literal password (AC-1: secrets are never in the config).
fn validate_redis(url: &str, problems: &mut Vec<Problem>) {
    let problem = |message: String| Problem {
        path: "limits.redis".into(),
        line: None,
        message,
    };
    let Some(rest) = url.strip_prefix("redis://") else {
        problems.push(problem(
            "must be a redis:// URL (TLS and unix sockets are not supported yet)".into(),
        ));
        return;
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if let Some((user, _)) = authority.rsplit_once('@') {
        if user.contains(':') {
            problems.push(problem(
                "holds a password: pass the URL in TOLLGATE_REDIS (or `tollgate serve --redis`) instead of writing it in the config".into(),
            ));
            return;
        }
    }
    if redis::Client::open(url).is_err() {
        problems.push(problem("is not a valid Redis URL".into()));
    }
}

fn parse_net(s: &str) -> Option<ipnet::IpNet> {
    s.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}
