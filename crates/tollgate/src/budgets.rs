//! `tollgate budgets` and `tollgate alerts`: spend against each budget in its current period
//! (DO-2), and the alerts raised recently (MI-2), read from the shared store (and the
//! reservations in flight from Redis, with `[limits] redis`).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tollgate_gateway::alert::Alerter;
use tollgate_gateway::budget::Budgets;

use crate::Outcome;
use crate::setup;

/// Most alerts `tollgate alerts` lists.
pub const MAX_ALERTS: u32 = 10_000;

/// Options of `budgets`.
#[derive(Debug, clap::Args)]
pub struct BudgetsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Options of `alerts`.
#[derive(Debug, clap::Args)]
pub struct AlertsArgs {
    /// How far back to look, e.g. `1h`, `7d` (default 24h).
    #[arg(long, default_value = "24h")]
    since: String,
    /// At most this many alerts, newest first.
    #[arg(long, default_value_t = 100)]
    limit: u32,
    /// Print JSON instead of lines.
    #[arg(long)]
    json: bool,
}

/// Run `budgets`: exit 1 when a budget is exhausted.
pub async fn budgets(global: &setup::GlobalArgs, args: BudgetsArgs) -> Result<Outcome> {
    setup::init_logging(false);
    let loaded = setup::load(global)?;
    let opened = setup::open(global, &loaded.data_dir).await?;
    let alerts = Arc::new(Alerter::new(
        &loaded.config.alerts,
        opened.store.alerts.clone(),
    ));
    let mut b = Budgets::new(&loaded.config, opened.store.budgets.clone(), alerts);
    // With `[limits] redis`, calls in flight hold their reservations there: read them too.
    if let Ok(Some(r)) = tollgate_gateway::limits::shared::RedisLimiter::from_config(
        &loaded.config.limits,
        tollgate_gateway::limits::Limiter::new(),
    ) {
        b = b.with_shared(tollgate_gateway::budget::shared::SharedBudgets::new(
            r.link(),
        ));
    }
    let list = b.status().await?;
    let exhausted = list.iter().filter(|s| s.used >= 1.0).count();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else if list.is_empty() {
        println!(
            "No budgets configured. Add [[budgets]] to tollgate.toml (scope, period, limit_usd)."
        );
    } else {
        if exhausted > 0 {
            println!(
                "{exhausted} budget(s) exhausted: their calls are refused until the period resets."
            );
        } else {
            println!("All {} budget(s) within their limits.", list.len());
        }
        println!(
            "{:<32} {:<6} {:<10} {:>12} {:>12} {:>12} {:>7}  resets at",
            "scope", "period", "from", "spent $", "reserved $", "limit $", "used"
        );
        for s in &list {
            println!(
                "{:<32} {:<6} {:<10} {:>12.4} {:>12.4} {:>12.2} {:>6.1}%  {}",
                s.scope,
                s.period,
                s.period_start,
                s.spent_usd,
                s.reserved_usd,
                s.limit_usd,
                s.used * 100.0,
                s.resets_at.to_rfc3339()
            );
        }
    }
    Ok(if exhausted > 0 {
        Outcome::Findings
    } else {
        Outcome::Ok
    })
}

/// Run `alerts`.
pub async fn alerts(global: &setup::GlobalArgs, args: AlertsArgs) -> Result<Outcome> {
    setup::init_logging(false);
    let since: Duration = humantime::parse_duration(&args.since)
        .with_context(|| format!("--since {:?}: use a duration such as 1h or 7d", args.since))?;
    let loaded = setup::load(global)?;
    let opened = setup::open(global, &loaded.data_dir).await?;
    let from =
        chrono::Utc::now() - chrono::Duration::from_std(since).unwrap_or(chrono::TimeDelta::MAX);
    let list = opened
        .store
        .alerts
        .alerts_since(from, args.limit.min(MAX_ALERTS))
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(Outcome::Ok);
    }
    if list.is_empty() {
        println!("No alerts in the last {}.", args.since);
        return Ok(Outcome::Ok);
    }
    println!(
        "{} alert(s) in the last {}, newest first:",
        list.len(),
        args.since
    );
    for a in &list {
        println!(
            "{}\t{}\t{}\t{}\t{}",
            a.at.to_rfc3339(),
            a.severity,
            a.kind,
            a.subject,
            a.message
        );
    }
    Ok(Outcome::Ok)
}
