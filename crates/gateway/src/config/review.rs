//! `[providers.NAME.review]`, `[routes.NAME] data_class` and `[policy]` (checklist DP-4).
//!
//! Every provider that sends data somewhere carries a review record: who reviewed it and
//! when, when the review lapses, how the provider handles data (retention, zero data
//! retention, training on customer data, regions, DPA, certifications) and the data classes
//! it may receive. A provider without a current review receives nothing: the gateway skips
//! it (see `crate::policy`). The built-in `echo` provider sends nothing anywhere and needs
//! no review.
//!
//! Dates are TOML dates (`expires = 2026-06-30`) or strings (`"2026-06-30"`). Malformed
//! dates and unknown class names are kept as written so that validation reports every one
//! of them with its line, rather than stopping at the first.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize};
use toml::Spanned;

pub use tollgate_store::class::DataClass;

use super::{Config, Problem, ProviderKind, Warning, line_of};

/// A review expiring within this many days is reported (config warning, `tollgate providers`).
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// A calendar date as written in the config: a TOML local date or a `YYYY-MM-DD` string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigDate {
    /// A valid date.
    Date(NaiveDate),
    /// What was written, when it is not a date (reported by validation).
    Malformed(String),
}

impl<'de> Deserialize<'de> for ConfigDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match toml::Value::deserialize(d)? {
            toml::Value::Datetime(dt) => match (dt.date, dt.time, dt.offset) {
                (Some(date), None, None) => NaiveDate::from_ymd_opt(
                    i32::from(date.year),
                    u32::from(date.month),
                    u32::from(date.day),
                )
                .map_or_else(|| Self::Malformed(dt.to_string()), Self::Date),
                _ => Self::Malformed(dt.to_string()),
            },
            toml::Value::String(s) => NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                .map_or_else(|_| Self::Malformed(s.clone()), Self::Date),
            other => Self::Malformed(other.to_string()),
        })
    }
}

/// `[providers.NAME.review]`: the record of a provider's data-handling review.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewConfig {
    /// Who reviewed the provider (a person or a team).
    pub reviewed_by: String,
    /// When the review was done.
    pub reviewed_on: Spanned<ConfigDate>,
    /// When the review lapses: from this date on the provider receives nothing (unless
    /// `[policy] expired_review = "warn"`).
    pub expires: Spanned<ConfigDate>,
    /// Days the provider keeps prompts and completions (0 with zero data retention).
    pub retention_days: u32,
    /// Whether a zero-data-retention agreement is in place.
    pub zero_data_retention: bool,
    /// Whether the provider trains models on the data it receives.
    pub trains_on_customer_data: bool,
    /// Where the provider processes and stores data (`us`, `eu-west-1`, …).
    #[serde(default)]
    pub regions: Vec<String>,
    /// Whether a data processing agreement is signed.
    pub dpa_signed: bool,
    /// Certifications checked during the review (`SOC 2 Type II`, `ISO 27001`, …).
    #[serde(default)]
    pub certifications: Vec<String>,
    /// Data classes the provider may receive: `public`, `internal`, `confidential`, `pii`,
    /// `phi`. A request of any other class is never sent to it.
    pub data_classes: Vec<Spanned<String>>,
}

/// A validated review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Review {
    /// Who reviewed the provider.
    pub reviewed_by: String,
    /// When.
    pub reviewed_on: NaiveDate,
    /// First day the review no longer holds.
    pub expires: NaiveDate,
    /// Days the provider keeps data.
    pub retention_days: u32,
    /// Zero data retention in place.
    pub zero_data_retention: bool,
    /// The provider trains on what it receives.
    pub trains_on_customer_data: bool,
    /// Processing regions.
    pub regions: Vec<String>,
    /// DPA signed.
    pub dpa_signed: bool,
    /// Certifications.
    pub certifications: Vec<String>,
    /// Classes the provider may receive.
    pub data_classes: BTreeSet<DataClass>,
}

/// Where a review stands on a given day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewStatus {
    /// The built-in `echo` provider: it sends nothing anywhere.
    NotNeeded,
    /// No review on file: the provider receives nothing.
    Unreviewed,
    /// Current, with more than [`EXPIRY_WARNING_DAYS`] left.
    Current {
        /// Days until `expires`.
        days_left: i64,
    },
    /// Current, but lapsing within [`EXPIRY_WARNING_DAYS`].
    Expiring {
        /// Days until `expires` (at least 1).
        days_left: i64,
    },
    /// Lapsed: `expires` is today or earlier.
    Expired {
        /// Days since `expires` (0 on the day itself).
        days_ago: i64,
    },
}

impl ReviewStatus {
    /// Whether the provider may receive data without a warning (current, or not needed).
    pub fn is_current(self) -> bool {
        matches!(
            self,
            Self::NotNeeded | Self::Current { .. } | Self::Expiring { .. }
        )
    }

    /// Short machine name: `not_needed`, `unreviewed`, `ok`, `expiring`, `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotNeeded => "not_needed",
            Self::Unreviewed => "unreviewed",
            Self::Current { .. } => "ok",
            Self::Expiring { .. } => "expiring",
            Self::Expired { .. } => "expired",
        }
    }
}

impl Review {
    /// Where the review stands on `today`.
    pub fn status(&self, today: NaiveDate) -> ReviewStatus {
        let days_left = (self.expires - today).num_days();
        if days_left <= 0 {
            ReviewStatus::Expired {
                days_ago: -days_left,
            }
        } else if days_left <= EXPIRY_WARNING_DAYS {
            ReviewStatus::Expiring { days_left }
        } else {
            ReviewStatus::Current { days_left }
        }
    }

    /// Whether the provider may receive data of `class`.
    pub fn admits(&self, class: DataClass) -> bool {
        self.data_classes.contains(&class)
    }

    /// The approved classes, least sensitive first: `public, internal`.
    pub fn classes_list(&self) -> String {
        let names: Vec<&str> = self.data_classes.iter().map(|c| c.as_str()).collect();
        names.join(", ")
    }
}

/// One problem in a review, before it is placed in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewError {
    /// Field of the review.
    pub field: &'static str,
    /// Byte offset of the value in the file, when known.
    pub offset: Option<usize>,
    /// What is wrong.
    pub message: String,
}

fn date(
    field: &'static str,
    d: &Spanned<ConfigDate>,
    errors: &mut Vec<ReviewError>,
) -> Option<NaiveDate> {
    match d.get_ref() {
        ConfigDate::Date(date) => Some(*date),
        ConfigDate::Malformed(text) => {
            errors.push(ReviewError {
                field,
                offset: Some(d.span().start),
                message: format!("{text:?} is not a date; write it as YYYY-MM-DD"),
            });
            None
        }
    }
}

/// A class name from the config, or the problem with it.
fn class(field: &'static str, name: &Spanned<String>) -> Result<DataClass, ReviewError> {
    name.get_ref().parse().map_err(|e| ReviewError {
        field,
        offset: Some(name.span().start),
        message: format!("{e}"),
    })
}

impl ReviewConfig {
    /// The validated review, or every problem in it.
    pub fn resolve(&self) -> Result<Review, Vec<ReviewError>> {
        let mut errors = Vec::new();
        if self.reviewed_by.trim().is_empty() {
            errors.push(ReviewError {
                field: "reviewed_by",
                offset: None,
                message: "must name who reviewed the provider".into(),
            });
        }
        let reviewed_on = date("reviewed_on", &self.reviewed_on, &mut errors);
        let expires = date("expires", &self.expires, &mut errors);
        if let (Some(on), Some(exp)) = (reviewed_on, expires) {
            if exp <= on {
                errors.push(ReviewError {
                    field: "expires",
                    offset: Some(self.expires.span().start),
                    message: format!("{exp} is not after reviewed_on ({on})"),
                });
            }
        }
        let mut data_classes = BTreeSet::new();
        for c in &self.data_classes {
            match class("data_classes", c) {
                Ok(c) => {
                    data_classes.insert(c);
                }
                Err(e) => errors.push(e),
            }
        }
        if self.data_classes.is_empty() {
            errors.push(ReviewError {
                field: "data_classes",
                offset: None,
                message: format!(
                    "list the classes the provider may receive (of {})",
                    DataClass::names()
                ),
            });
        }
        match (reviewed_on, expires) {
            (Some(reviewed_on), Some(expires)) if errors.is_empty() => Ok(Review {
                reviewed_by: self.reviewed_by.trim().to_owned(),
                reviewed_on,
                expires,
                retention_days: self.retention_days,
                zero_data_retention: self.zero_data_retention,
                trains_on_customer_data: self.trains_on_customer_data,
                regions: self.regions.clone(),
                dpa_signed: self.dpa_signed,
                certifications: self.certifications.clone(),
                data_classes,
            }),
            _ => Err(errors),
        }
    }
}

/// What the gateway does with a provider whose review has expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpiredReview {
    /// Skip the provider, as if it were unreviewed (default).
    #[default]
    Refuse,
    /// Send anyway and log a warning per request (a grace period while a review is renewed).
    Warn,
}

/// `[policy]`: data-class defaults and how reviews are enforced.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Class of routes that declare none (default `internal`).
    pub default_data_class: Option<Spanned<String>>,
    /// `refuse` (default) or `warn` when a provider's review has expired.
    #[serde(default)]
    pub expired_review: ExpiredReview,
}

/// A class name from the config; an invalid one (which validation reports) counts as the
/// most sensitive class, so a typo can only ever refuse more.
fn class_or_strictest(name: &Spanned<String>) -> DataClass {
    DataClass::parse(name.get_ref()).unwrap_or(DataClass::Phi)
}

impl PolicyConfig {
    /// The class of routes that declare none.
    pub fn default_class(&self) -> DataClass {
        self.default_data_class
            .as_ref()
            .map_or(DataClass::Internal, class_or_strictest)
    }
}

impl super::RouteConfig {
    /// The class of this route's data: its own, else `[policy] default_data_class`.
    pub fn data_class(&self, policy: &PolicyConfig) -> DataClass {
        self.data_class
            .as_ref()
            .map_or_else(|| policy.default_class(), class_or_strictest)
    }
}

impl super::ProviderConfig {
    /// The validated review, if the provider has a valid one.
    pub fn review(&self) -> Option<Review> {
        self.review.as_ref().and_then(|r| r.resolve().ok())
    }

    /// Where the provider's review stands on `today`.
    pub fn review_status(&self, today: NaiveDate) -> ReviewStatus {
        if self.kind == ProviderKind::Echo {
            return ReviewStatus::NotNeeded;
        }
        self.review()
            .map_or(ReviewStatus::Unreviewed, |r| r.status(today))
    }
}

/// Today's date in UTC, the calendar reviews are kept in.
pub fn today() -> NaiveDate {
    chrono::Utc::now().date_naive()
}

/// Check reviews, route classes and `[policy]` as of `today`; push problems and warnings.
pub fn validate(
    config: &Config,
    text: &str,
    today: NaiveDate,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Warning>,
) {
    let mut bad_class = |path: String, name: &Spanned<String>| {
        if let Err(e) = class("", name) {
            problems.push(Problem {
                path,
                line: Some(line_of(text, name.span().start)),
                message: e.message,
            });
        }
    };
    if let Some(c) = &config.policy.default_data_class {
        bad_class("policy.default_data_class".into(), c);
    }
    for (alias, route) in &config.routes {
        if let Some(c) = &route.data_class {
            bad_class(format!("routes.{alias}.data_class"), c);
        }
    }
    for (name, p) in &config.providers {
        let at = |field: &str| format!("providers.{name}.review{field}");
        let review = match (&p.review, p.kind) {
            (_, ProviderKind::Echo) => continue,
            (None, _) => {
                warnings.push(Warning {
                    path: at(""),
                    message: format!(
                        "provider {name:?} has no review, so it receives no data; add [providers.{name}.review] once it is reviewed (DP-4)"
                    ),
                });
                continue;
            }
            (Some(r), _) => match r.resolve() {
                Ok(r) => r,
                Err(errors) => {
                    for e in errors {
                        problems.push(Problem {
                            path: at(&format!(".{}", e.field)),
                            line: e.offset.map(|o| line_of(text, o)),
                            message: e.message,
                        });
                    }
                    continue;
                }
            },
        };
        match review.status(today) {
            ReviewStatus::Expired { .. } => warnings.push(Warning {
                path: at(".expires"),
                message: match config.policy.expired_review {
                    ExpiredReview::Refuse => format!(
                        "the review of {name:?} expired on {}; it receives no data until it is reviewed again",
                        review.expires
                    ),
                    ExpiredReview::Warn => format!(
                        "the review of {name:?} expired on {}; requests are sent anyway because policy.expired_review = \"warn\"",
                        review.expires
                    ),
                },
            }),
            ReviewStatus::Expiring { days_left } => warnings.push(Warning {
                path: at(".expires"),
                message: format!(
                    "the review of {name:?} expires in {days_left} day(s), on {}; renew it before then",
                    review.expires
                ),
            }),
            _ => {}
        }
        if review.trains_on_customer_data {
            if let Some(c) = review.data_classes.iter().find(|c| **c > DataClass::Public) {
                warnings.push(Warning {
                    path: at(".data_classes"),
                    message: format!(
                        "{name:?} trains on customer data but is approved for {:?} data; approve only \"public\" unless that is intended",
                        c.as_str()
                    ),
                });
            }
        }
    }
    // A route none of whose targets may receive its class refuses every request.
    for (alias, route) in &config.routes {
        let class = route.data_class(&config.policy);
        let any = route
            .targets
            .iter()
            .filter_map(|t| config.providers.get(&t.provider))
            .any(|p| p.kind == ProviderKind::Echo || p.review().is_some_and(|r| r.admits(class)));
        if !any && !route.targets.is_empty() {
            warnings.push(Warning {
                path: format!("routes.{alias}"),
                message: format!(
                    "no target's provider is approved for this route's data class {:?}; every request to it is refused",
                    class.as_str()
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::ConfigError;

    fn parse(text: &str) -> Result<(Config, Vec<Warning>), ConfigError> {
        Config::parse(text, Path::new("tollgate.toml"))
    }

    fn problems(text: &str) -> Vec<Problem> {
        match parse(text) {
            Err(ConfigError::Invalid { problems, .. }) => problems,
            other => panic!("expected problems, got {other:?}"),
        }
    }

    const PROVIDER: &str =
        "[providers.oa]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n";

    /// A review block with `reviewed_on`, `expires` and `data_classes` as given (raw TOML).
    fn review(on: &str, expires: &str, classes: &str) -> String {
        format!(
            "{PROVIDER}[providers.oa.review]\nreviewed_by = \"security@example.com\"\nreviewed_on = {on}\nexpires = {expires}\nretention_days = 30\nzero_data_retention = false\ntrains_on_customer_data = false\nregions = [\"us\"]\ndpa_signed = true\ncertifications = [\"SOC 2 Type II\"]\ndata_classes = {classes}\n"
        )
    }

    fn days_from_today(n: i64) -> String {
        (today() + chrono::Duration::days(n)).to_string()
    }

    #[test]
    fn a_review_with_toml_or_string_dates_is_resolved() {
        for (on, exp) in [
            ("2025-01-15", "2099-01-15"),
            ("\"2025-01-15\"", "\"2099-01-15\""),
        ] {
            let (c, w) = parse(&review(on, exp, "[\"public\", \"internal\"]")).unwrap();
            assert!(w.is_empty(), "{w:?}");
            let r = c.providers["oa"].review().unwrap();
            assert_eq!(r.reviewed_on.to_string(), "2025-01-15");
            assert_eq!(r.expires.to_string(), "2099-01-15");
            assert_eq!(r.classes_list(), "public, internal");
            assert!(r.admits(DataClass::Internal) && !r.admits(DataClass::Pii));
            assert!(matches!(
                c.providers["oa"].review_status(today()),
                ReviewStatus::Current { .. }
            ));
        }
    }

    #[test]
    fn malformed_dates_are_problems_on_their_lines() {
        let p = problems(&review("\"2025-13-01\"", "\"next year\"", "[\"public\"]"));
        let got: Vec<_> = p.iter().map(|p| (p.path.as_str(), p.line)).collect();
        assert_eq!(
            got,
            [
                ("providers.oa.review.reviewed_on", Some(6)),
                ("providers.oa.review.expires", Some(7)),
            ]
        );
        assert!(p[0].message.contains("YYYY-MM-DD"), "{}", p[0].message);
        // A date-time is not a date either.
        let p = problems(&review(
            "2025-01-01T10:00:00Z",
            "2026-01-01",
            "[\"public\"]",
        ));
        assert_eq!(p[0].path, "providers.oa.review.reviewed_on");
    }

    #[test]
    fn expires_before_reviewed_on_is_a_problem() {
        let p = problems(&review("2025-06-01", "2025-05-01", "[\"public\"]"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].path, "providers.oa.review.expires");
        assert_eq!(p[0].line, Some(7));
        assert!(p[0].message.contains("not after reviewed_on"));
    }

    #[test]
    fn unknown_class_names_are_problems_wherever_they_are() {
        let mut text = review("2025-01-01", "2099-01-01", "[\"public\", \"secret\"]");
        text.push_str(
            "[policy]\ndefault_data_class = \"restricted\"\n[routes.r]\ntargets = [{ provider = \"oa\", model = \"m\" }]\ndata_class = \"PII\"\n",
        );
        let p = problems(&text);
        let got: Vec<_> = p.iter().map(|p| (p.path.as_str(), p.line)).collect();
        assert_eq!(
            got,
            [
                ("providers.oa.review.data_classes", Some(14)),
                ("policy.default_data_class", Some(16)),
                ("routes.r.data_class", Some(19)),
            ]
        );
        assert!(
            p.iter().all(|p| p
                .message
                .contains("public, internal, confidential, pii, phi")),
            "{p:?}"
        );
    }

    #[test]
    fn incomplete_reviews_are_refused() {
        let p = problems(&review("2025-01-01", "2099-01-01", "[]"));
        assert_eq!(p[0].path, "providers.oa.review.data_classes");
        let e = parse(&format!(
            "{PROVIDER}[providers.oa.review]\nreviewed_by = \"x\"\nreviewed_on = 2025-01-01\nexpires = 2099-01-01\ndata_classes = [\"public\"]\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("missing field"), "{e}");
    }

    #[test]
    fn a_review_expiring_within_30_days_is_a_warning() {
        let text = review(
            &days_from_today(-300),
            &days_from_today(12),
            "[\"internal\"]",
        );
        let (c, w) = parse(&text).unwrap();
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].path, "providers.oa.review.expires");
        assert!(
            w[0].message.contains("expires in 12 day(s)"),
            "{}",
            w[0].message
        );
        assert_eq!(
            c.providers["oa"].review_status(today()),
            ReviewStatus::Expiring { days_left: 12 }
        );
        let (_, w) = parse(&review(
            &days_from_today(-300),
            &days_from_today(31),
            "[\"internal\"]",
        ))
        .unwrap();
        assert!(w.is_empty(), "31 days is not yet expiring: {w:?}");
    }

    #[test]
    fn expired_and_missing_reviews_load_with_warnings() {
        let (c, w) = parse(&review("2024-01-01", "2025-01-01", "[\"internal\"]")).unwrap();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].message.contains("expired on 2025-01-01"), "{w:?}");
        assert!(matches!(
            c.providers["oa"].review_status(today()),
            ReviewStatus::Expired { .. }
        ));
        let (c, w) = parse(PROVIDER).unwrap();
        assert_eq!(w[0].path, "providers.oa.review");
        assert_eq!(
            c.providers["oa"].review_status(today()),
            ReviewStatus::Unreviewed
        );
    }

    #[test]
    fn echo_needs_no_review() {
        let (c, w) = parse("[providers.e]\nkind = \"echo\"\n[routes.e]\ntargets = [{ provider = \"e\", model = \"e\" }]\ndata_class = \"phi\"\n").unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(
            c.providers["e"].review_status(today()),
            ReviewStatus::NotNeeded
        );
    }

    #[test]
    fn route_classes_default_to_the_policy_default() {
        let mut text = review("2025-01-01", "2099-01-01", "[\"internal\", \"pii\"]");
        text.push_str("[routes.a]\ntargets = [{ provider = \"oa\", model = \"m\" }]\n[routes.b]\ntargets = [{ provider = \"oa\", model = \"m\" }]\ndata_class = \"pii\"\n");
        let (c, w) = parse(&text).unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.routes["a"].data_class(&c.policy), DataClass::Internal);
        assert_eq!(c.routes["b"].data_class(&c.policy), DataClass::Pii);
        assert_eq!(c.policy.expired_review, ExpiredReview::Refuse);
        text.push_str("[policy]\ndefault_data_class = \"public\"\nexpired_review = \"warn\"\n");
        let (c, w) = parse(&text).unwrap();
        assert_eq!(c.routes["a"].data_class(&c.policy), DataClass::Public);
        assert_eq!(c.policy.expired_review, ExpiredReview::Warn);
        // "public" is not in the review: route a can never be served, and says so.
        assert_eq!(w.len(), 1, "{w:?}");
        assert_eq!(w[0].path, "routes.a");
    }

    #[test]
    fn a_provider_training_on_customer_data_approved_beyond_public_is_a_warning() {
        let text = review("2025-01-01", "2099-01-01", "[\"public\", \"internal\"]").replace(
            "trains_on_customer_data = false",
            "trains_on_customer_data = true",
        );
        let (_, w) = parse(&text).unwrap();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].message.contains("trains on customer data"));
    }
}
