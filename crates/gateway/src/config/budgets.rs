//! `[[budgets]]` and `[budgets_settings]`: spend limits per key, team or the whole gateway
//! over calendar periods (checklist DO-2). Enforcement is in [`crate::budget`].
//!
//! ```toml
//! [budgets_settings]
//! timezone = "Europe/Berlin"   # calendar periods reset at local midnight (default UTC)
//!
//! [[budgets]]
//! scope = "team:search"        # "key:ID", "team:NAME" or "global"
//! period = "month"             # "day", "week" (from Monday) or "month"
//! limit_usd = 500.0
//! thresholds = [0.5, 0.8, 1.0] # soft thresholds: one alert each per period (the default)
//! ```

use serde::Deserialize;

use super::Problem;

/// Soft thresholds when a budget names none: half, four fifths, all of it.
pub const DEFAULT_THRESHOLDS: [f64; 3] = [0.5, 0.8, 1.0];
/// Most budgets one config may hold (each request checks those that apply to it).
pub const MAX_BUDGETS: usize = 1_000;

/// One budget.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// Whose spend: `key:ID`, `team:NAME` or `global`.
    pub scope: String,
    /// Calendar period: `day`, `week` (Monday to Sunday) or `month`.
    pub period: String,
    /// Hard limit in USD: calls that could take the spend past it are refused (429
    /// `budget_exceeded`).
    pub limit_usd: f64,
    /// Fractions of the limit at which an alert fires, once each per period.
    pub thresholds: Option<Vec<f64>>,
}

/// Settings of every budget.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetsSettings {
    /// IANA time zone in which days, weeks and months begin (default `UTC`).
    pub timezone: Option<String>,
}

/// Whose spend a budget limits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BudgetScope {
    /// One virtual key.
    Key(String),
    /// Every key of a team.
    Team(String),
    /// The whole gateway.
    Global,
}

impl BudgetScope {
    /// Parse `key:ID`, `team:NAME` or `global`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.split_once(':') {
            _ if s == "global" => Some(Self::Global),
            Some(("key", id)) if super::valid_ident(id) => Some(Self::Key(id.to_owned())),
            Some(("team", t)) if !t.trim().is_empty() && t.len() <= 200 => {
                Some(Self::Team(t.to_owned()))
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for BudgetScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Key(id) => write!(f, "key:{id}"),
            Self::Team(t) => write!(f, "team:{t}"),
            Self::Global => f.write_str("global"),
        }
    }
}

/// A calendar period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Period {
    /// From local midnight.
    Day,
    /// From Monday, local midnight.
    Week,
    /// From the first of the month, local midnight.
    Month,
}

impl Period {
    /// Parse `day`, `week` or `month`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "day" => Some(Self::Day),
            "week" => Some(Self::Week),
            "month" => Some(Self::Month),
            _ => None,
        }
    }

    /// The config name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
        }
    }
}

impl BudgetsSettings {
    /// The time zone (UTC when unset or invalid; `validate` reports the latter).
    pub fn tz(&self) -> chrono_tz::Tz {
        self.timezone
            .as_deref()
            .and_then(|t| t.parse().ok())
            .unwrap_or(chrono_tz::UTC)
    }
}

/// Check `[[budgets]]` and `[budgets_settings]`; push every problem.
pub fn validate(budgets: &[BudgetConfig], settings: &BudgetsSettings, problems: &mut Vec<Problem>) {
    if let Some(tz) = &settings.timezone {
        if tz.parse::<chrono_tz::Tz>().is_err() {
            problems.push(Problem {
                path: "budgets_settings.timezone".into(),
                line: None,
                message: format!(
                    "{tz:?} is not an IANA time zone such as \"Europe/Berlin\" or \"UTC\""
                ),
            });
        }
    }
    if budgets.len() > MAX_BUDGETS {
        problems.push(Problem {
            path: "budgets".into(),
            line: None,
            message: format!("{} budgets is more than {MAX_BUDGETS}", budgets.len()),
        });
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, b) in budgets.iter().enumerate() {
        let at = |f: &str| format!("budgets[{i}].{f}");
        let scope = BudgetScope::parse(&b.scope);
        if scope.is_none() {
            problems.push(Problem {
                path: at("scope"),
                line: None,
                message: format!(
                    "{:?} is not \"key:ID\", \"team:NAME\" or \"global\"",
                    b.scope
                ),
            });
        }
        let period = Period::parse(&b.period);
        if period.is_none() {
            problems.push(Problem {
                path: at("period"),
                line: None,
                message: format!("{:?} is not \"day\", \"week\" or \"month\"", b.period),
            });
        }
        if let (Some(s), Some(p)) = (scope, period) {
            if !seen.insert((s.clone(), p)) {
                problems.push(Problem {
                    path: at("scope"),
                    line: None,
                    message: format!("a second {} budget for {s}; keep one", p.as_str()),
                });
            }
        }
        if !(b.limit_usd.is_finite() && b.limit_usd > 0.0 && b.limit_usd < 1e9) {
            problems.push(Problem {
                path: at("limit_usd"),
                line: None,
                message: "must be a positive number of USD below 1e9".into(),
            });
        }
        for t in b.thresholds.iter().flatten() {
            if !(t.is_finite() && *t > 0.0 && *t <= 1.0) {
                problems.push(Problem {
                    path: at("thresholds"),
                    line: None,
                    message: format!("{t} is not a fraction of the limit in (0, 1]"),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Config, ConfigError};

    fn problems(text: &str) -> Vec<String> {
        match Config::parse(text, Path::new("t.toml")) {
            Err(ConfigError::Invalid { problems, .. }) => {
                problems.iter().map(ToString::to_string).collect()
            }
            Err(e) => vec![e.to_string()],
            Ok(_) => Vec::new(),
        }
    }

    #[test]
    fn every_budget_and_alert_problem_is_reported_at_once() {
        let p = problems(
            r#"
[budgets_settings]
timezone = "Mars/Olympus"
[[budgets]]
scope = "user:bob"
period = "fortnight"
limit_usd = -3.0
[[budgets]]
scope = "global"
period = "day"
limit_usd = 10.0
thresholds = [0.5, 1.5]
[[budgets]]
scope = "global"
period = "day"
limit_usd = 20.0
[alerts]
[[alerts.webhooks]]
url = "http://alerts.example.com/hook"
format = "teams"
[alerts.anomaly]
sensitivity = 0.5
baseline_minutes = 2
min_cost_usd = -1.0
"#,
        );
        let all = p.join("\n");
        for needle in [
            "budgets_settings.timezone",
            "budgets[0].scope",
            "budgets[0].period",
            "budgets[0].limit_usd",
            "budgets[1].thresholds: 1.5",
            "budgets[2].scope: a second day budget for global",
            "alerts.webhooks[0].url",
            "alerts.webhooks[0].format",
            "alerts.anomaly.sensitivity",
            "alerts.anomaly.baseline_minutes",
            "alerts.anomaly.min_cost_usd",
        ] {
            assert!(all.contains(needle), "missing {needle} in:\n{all}");
        }
    }

    #[test]
    fn a_literal_slack_webhook_is_a_credential_and_a_reference_to_one_is_accepted() {
        let p = problems(
            "[alerts]\n[[alerts.webhooks]]\nurl = \"https://hooks.slack.com/services/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\"\n",
        );
        assert!(p.iter().any(|m| m.contains("literal credential")), "{p:?}");
        assert!(problems("[alerts]\n[[alerts.webhooks]]\nurl = \"keystore://slack-hook\"\nformat = \"slack\"\n").is_empty());
        let p = problems("[alerts]\n[[alerts.webhooks]]\nurl = \"file://relative/path\"\n");
        assert!(
            p.iter().any(|m| m.contains("alerts.webhooks[0].url")),
            "{p:?}"
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let p = problems("[[budgets]]\nscope = \"global\"\nperiod = \"day\"\nlimit = 5\n");
        assert!(
            p.iter().any(|m| m.contains("unknown field `limit`")),
            "{p:?}"
        );
        let p = problems("[alerts]\nwebhook = \"https://x\"\n");
        assert!(
            p.iter().any(|m| m.contains("unknown field `webhook`")),
            "{p:?}"
        );
    }

    #[test]
    fn a_valid_budget_and_alerts_config_parses_with_defaults() {
        let (c, _) = Config::parse(
            "[budgets_settings]\ntimezone = \"Europe/Berlin\"\n[[budgets]]\nscope = \"team:search\"\nperiod = \"month\"\nlimit_usd = 500\n[alerts]\n[[alerts.webhooks]]\nurl = \"https://hooks.example.com/x\"\nformat = \"slack\"\n",
            Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(c.budgets[0].thresholds, None);
        assert_eq!(c.budgets_settings.tz(), chrono_tz::Europe::Berlin);
        assert!(c.alerts.log);
        assert_eq!(c.alerts.cooldown(), super::super::alerts::DEFAULT_COOLDOWN);
        assert_eq!(c.alerts.anomaly.sensitivity, 6.0);
    }
}
