//! `tollgate providers`: the provider registry with each provider's review (DP-4).
//!
//! Leads with the verdict (every provider that sends data anywhere has a current review, or
//! which do not), then one row per provider — kind, review status, approved data classes,
//! retention, zero data retention, training use, regions, DPA — then the reviews expiring
//! within 30 days, then what to do. Exit 1 when a provider is unreviewed or its review has
//! expired: the gateway refuses every request to it.

use std::io::Write;

use anyhow::Result;
use chrono::NaiveDate;
use serde_json::{Value, json};
use tollgate_gateway::config::review::EXPIRY_WARNING_DAYS;
use tollgate_gateway::config::{Config, ExpiredReview, ProviderKind, Review, ReviewStatus};

use crate::{Outcome, setup};

/// Options of `providers`.
#[derive(Debug, clap::Args)]
pub struct ProvidersArgs {
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn kind_name(k: ProviderKind) -> &'static str {
    match k {
        ProviderKind::Openai => "openai",
        ProviderKind::Azure => "azure",
        ProviderKind::Anthropic => "anthropic",
        ProviderKind::Echo => "echo",
    }
}

fn status_text(s: ReviewStatus) -> String {
    match s {
        ReviewStatus::NotNeeded => "built-in, none needed".into(),
        ReviewStatus::Unreviewed => "UNREVIEWED".into(),
        ReviewStatus::Current { .. } => "ok".into(),
        ReviewStatus::Expiring { days_left } => format!("expires in {days_left} days"),
        ReviewStatus::Expired { .. } => "EXPIRED".into(),
    }
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// One provider as reported.
struct Row {
    name: String,
    kind: ProviderKind,
    status: ReviewStatus,
    review: Option<Review>,
}

impl Row {
    fn failed(&self) -> bool {
        matches!(
            self.status,
            ReviewStatus::Unreviewed | ReviewStatus::Expired { .. }
        )
    }

    fn json(&self) -> Value {
        let (days_left, days_ago) = match self.status {
            ReviewStatus::Current { days_left } | ReviewStatus::Expiring { days_left } => {
                (Some(days_left), None)
            }
            ReviewStatus::Expired { days_ago } => (None, Some(days_ago)),
            _ => (None, None),
        };
        json!({
            "name": self.name,
            "kind": kind_name(self.kind),
            "status": self.status.as_str(),
            "days_left": days_left,
            "expired_days_ago": days_ago,
            "review": self.review,
        })
    }

    fn cells(&self) -> [String; 10] {
        let status = match (&self.review, self.status) {
            (Some(r), ReviewStatus::Expired { .. }) => format!("EXPIRED {}", r.expires),
            _ => status_text(self.status),
        };
        let dash = || "-".to_owned();
        match &self.review {
            Some(r) => [
                self.name.clone(),
                kind_name(self.kind).into(),
                status,
                r.classes_list(),
                format!("{}d", r.retention_days),
                yes_no(r.zero_data_retention).into(),
                yes_no(r.trains_on_customer_data).into(),
                if r.regions.is_empty() {
                    dash()
                } else {
                    r.regions.join(",")
                },
                yes_no(r.dpa_signed).into(),
                format!("{} on {}", r.reviewed_by, r.reviewed_on),
            ],
            None if self.kind == ProviderKind::Echo => [
                self.name.clone(),
                kind_name(self.kind).into(),
                status,
                "any (sends nothing)".into(),
                dash(),
                dash(),
                dash(),
                dash(),
                dash(),
                dash(),
            ],
            None => [
                self.name.clone(),
                kind_name(self.kind).into(),
                status,
                "none".into(),
                dash(),
                dash(),
                dash(),
                dash(),
                dash(),
                dash(),
            ],
        }
    }
}

fn rows(config: &Config, today: NaiveDate) -> Vec<Row> {
    config
        .providers
        .iter()
        .map(|(name, p)| Row {
            name: name.clone(),
            kind: p.kind,
            status: p.review_status(today),
            review: p.review(),
        })
        .collect()
}

fn quoted(names: &[&Row]) -> String {
    let n: Vec<String> = names.iter().map(|r| format!("{:?}", r.name)).collect();
    n.join(", ")
}

fn print_human(
    out: &mut impl Write,
    rows: &[Row],
    on_expired: ExpiredReview,
) -> std::io::Result<()> {
    let unreviewed: Vec<&Row> = rows
        .iter()
        .filter(|r| r.status == ReviewStatus::Unreviewed)
        .collect();
    let expired: Vec<&Row> = rows
        .iter()
        .filter(|r| matches!(r.status, ReviewStatus::Expired { .. }))
        .collect();
    let expiring: Vec<&Row> = rows
        .iter()
        .filter(|r| matches!(r.status, ReviewStatus::Expiring { .. }))
        .collect();
    if rows.is_empty() {
        writeln!(out, "PASS: no providers configured.")?;
        return Ok(());
    }
    if unreviewed.is_empty() && expired.is_empty() {
        write!(
            out,
            "PASS: every provider that sends data has a current review (DP-4)"
        )?;
        if !expiring.is_empty() {
            write!(
                out,
                "; {} expire(s) within {EXPIRY_WARNING_DAYS} days",
                expiring.len()
            )?;
        }
        writeln!(out, ".")?;
    } else {
        let mut why = Vec::new();
        if !unreviewed.is_empty() {
            why.push(format!("unreviewed: {}", quoted(&unreviewed)));
        }
        if !expired.is_empty() {
            why.push(format!("review expired: {}", quoted(&expired)));
        }
        writeln!(
            out,
            "FAIL: {} of {} providers may not receive data (DP-4); {}.",
            unreviewed.len() + expired.len(),
            rows.len(),
            why.join("; ")
        )?;
    }
    writeln!(out)?;
    let header = [
        "PROVIDER",
        "KIND",
        "REVIEW",
        "CLASSES",
        "RETENTION",
        "ZDR",
        "TRAINING",
        "REGIONS",
        "DPA",
        "REVIEWED",
    ];
    let cells: Vec<[String; 10]> = rows.iter().map(Row::cells).collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: Vec<&str>| {
        let mut s = String::new();
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            if i + 1 == cols.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in &cells {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    writeln!(out)?;
    writeln!(out, "Expiring within {EXPIRY_WARNING_DAYS} days:")?;
    if expiring.is_empty() {
        writeln!(out, "  none")?;
    }
    for r in &expiring {
        if let (Some(rev), ReviewStatus::Expiring { days_left }) = (&r.review, r.status) {
            writeln!(
                out,
                "  {}: expires {} (in {days_left} days); last reviewed by {} on {}",
                r.name, rev.expires, rev.reviewed_by, rev.reviewed_on
            )?;
        }
    }
    if !unreviewed.is_empty() || !expired.is_empty() || !expiring.is_empty() {
        writeln!(out)?;
        writeln!(out, "What to do:")?;
    }
    for r in &unreviewed {
        writeln!(
            out,
            "  {}: review the provider's data handling and add [providers.{}.review] (reviewed_by, reviewed_on, expires, retention_days, zero_data_retention, trains_on_customer_data, regions, dpa_signed, certifications, data_classes); until then the gateway sends it nothing.",
            r.name, r.name
        )?;
    }
    for r in &expired {
        let now = match on_expired {
            ExpiredReview::Refuse => "the gateway sends it nothing until then",
            ExpiredReview::Warn => {
                "meanwhile the gateway still sends it data (policy.expired_review = \"warn\")"
            }
        };
        writeln!(
            out,
            "  {}: review it again and move [providers.{}.review] expires forward; {now}.",
            r.name, r.name
        )?;
    }
    for r in &expiring {
        writeln!(out, "  {}: schedule its review before it lapses.", r.name)?;
    }
    Ok(())
}

/// Run `providers`.
pub fn run(global: &setup::GlobalArgs, args: &ProvidersArgs) -> Result<Outcome> {
    setup::init_logging(false);
    let loaded = setup::load(global)?;
    let today = tollgate_gateway::config::review::today();
    let rows = rows(&loaded.config, today);
    let failed = rows.iter().any(Row::failed);
    let mut out = std::io::stdout().lock();
    if args.json {
        let names = |f: fn(&Row) -> bool| -> Vec<&str> {
            rows.iter()
                .filter(|r| f(r))
                .map(|r| r.name.as_str())
                .collect()
        };
        let v = json!({
            "verdict": if failed { "fail" } else { "pass" },
            "checked_on": today.to_string(),
            "providers": rows.iter().map(Row::json).collect::<Vec<_>>(),
            "unreviewed": names(|r| r.status == ReviewStatus::Unreviewed),
            "expired": names(|r| matches!(r.status, ReviewStatus::Expired { .. })),
            "expiring": names(|r| matches!(r.status, ReviewStatus::Expiring { .. })),
        });
        writeln!(out, "{v}")?;
    } else {
        print_human(&mut out, &rows, loaded.config.policy.expired_review)?;
    }
    Ok(if failed {
        Outcome::Findings
    } else {
        Outcome::Ok
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[providers.openai]
kind = "openai"
api_key = "keystore://openai"
[providers.openai.review]
reviewed_by = "security@example.com"
reviewed_on = 2026-01-10
expires = 2027-01-10
retention_days = 30
zero_data_retention = false
trains_on_customer_data = false
regions = ["us"]
dpa_signed = true
certifications = ["SOC 2 Type II"]
data_classes = ["public", "internal"]

[providers.anthropic]
kind = "anthropic"
api_key = "keystore://anthropic"
[providers.anthropic.review]
reviewed_by = "dpo"
reviewed_on = 2025-03-15
expires = 2026-03-15
retention_days = 0
zero_data_retention = true
trains_on_customer_data = false
regions = ["us", "eu"]
dpa_signed = true
data_classes = ["confidential", "internal"]

[providers.legacy]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"

[providers.echo]
kind = "echo"
"#;

    fn report(text: &str, today: &str, on_expired: ExpiredReview) -> (String, bool) {
        let (config, _) = Config::parse(text, std::path::Path::new("t.toml")).unwrap();
        let today = NaiveDate::parse_from_str(today, "%Y-%m-%d").unwrap();
        let rows = rows(&config, today);
        let mut out = Vec::new();
        print_human(&mut out, &rows, on_expired).unwrap();
        (
            String::from_utf8(out).unwrap(),
            rows.iter().any(Row::failed),
        )
    }

    #[test]
    fn the_report_leads_with_the_verdict_then_the_table_then_what_to_do() {
        let (out, failed) = report(CONFIG, "2026-03-01", ExpiredReview::Refuse);
        assert!(failed);
        assert_eq!(
            out,
            r#"FAIL: 1 of 4 providers may not receive data (DP-4); unreviewed: "legacy".

PROVIDER   KIND       REVIEW                 CLASSES                 RETENTION  ZDR  TRAINING  REGIONS  DPA  REVIEWED
anthropic  anthropic  expires in 14 days     internal, confidential  0d         yes  no        us,eu    yes  dpo on 2025-03-15
echo       echo       built-in, none needed  any (sends nothing)     -          -    -         -        -    -
legacy     openai     UNREVIEWED             none                    -          -    -         -        -    -
openai     openai     ok                     public, internal        30d        no   no        us       yes  security@example.com on 2026-01-10

Expiring within 30 days:
  anthropic: expires 2026-03-15 (in 14 days); last reviewed by dpo on 2025-03-15

What to do:
  legacy: review the provider's data handling and add [providers.legacy.review] (reviewed_by, reviewed_on, expires, retention_days, zero_data_retention, trains_on_customer_data, regions, dpa_signed, certifications, data_classes); until then the gateway sends it nothing.
  anthropic: schedule its review before it lapses.
"#
        );
    }

    #[test]
    fn the_expiry_day_itself_is_expired_and_warn_mode_is_still_a_failed_check() {
        let text = CONFIG.replace(
            "[providers.legacy]\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\n",
            "",
        );
        let (out, failed) = report(&text, "2026-02-01", ExpiredReview::Refuse);
        assert!(!failed);
        assert!(
            out.starts_with("PASS: every provider that sends data has a current review (DP-4).\n"),
            "{out}"
        );
        assert!(out.contains("Expiring within 30 days:\n  none\n"), "{out}");
        let (out, failed) = report(&text, "2026-03-15", ExpiredReview::Warn);
        assert!(failed);
        assert!(
            out.starts_with(
                "FAIL: 1 of 3 providers may not receive data (DP-4); review expired: \"anthropic\"."
            ),
            "{out}"
        );
        assert!(out.contains("EXPIRED 2026-03-15"), "{out}");
        assert!(out.contains("policy.expired_review = \"warn\""), "{out}");
    }
}
