//! `tollgate review` and `tollgate drift` (checklist MI-4): the queue of sampled, PII-masked
//! interactions and reviewers' labels on them; each route's daily statistics and its drift
//! score against a baseline (method: `tollgate_gateway::drift`).
//!
//! Reading the queue needs an admin credential whose role reads reports (owner, admin,
//! approver, data-steward, auditor): the items are masked, but they are still users' words.
//! Labelling is a quality judgement on the model's output, the approver's job (as promoting
//! a prompt is), so it needs owner, admin or approver; every label is written to the audit
//! trail with the credential that gave it and the reviewer's name.
//!
//! With `--gateway URL` all three go through that gateway's admin API (`/admin/v1/review`,
//! `/admin/v1/drift/ROUTE`), where the same roles hold (`ReportsRead`, `ReviewLabel`); the
//! page, the label's limits and the drift report come from the same functions either way.

use anyhow::{Result, anyhow, bail};
use serde_json::json;
use tollgate_gateway::drift::{self, DriftReport};
use tollgate_gateway::review::{QueuePage, labelling_problem};
use tollgate_store::review::{Labelling, MAX_REVIEW_PAGE, ReviewItem, ReviewLabel, ReviewQuery};

use crate::Outcome;
use crate::admin_client::{AdminClient, segment};
use crate::setup::{self, AdminArgs};

/// Roles that may read the review queue.
pub const READERS: &[&str] = &["owner", "admin", "approver", "data-steward", "auditor"];
/// Roles that may label items.
pub const LABELLERS: &[&str] = &["owner", "admin", "approver"];

/// Options of `review`: list (the default) or label.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ReviewArgs {
    #[command(subcommand)]
    command: Option<ReviewCommand>,
    #[command(flatten)]
    list: ListArgs,
}

/// `review` subcommands.
#[derive(Debug, clap::Subcommand)]
enum ReviewCommand {
    /// List items waiting for a label (oldest first).
    List(ListArgs),
    /// Label one item.
    Label(LabelArgs),
}

/// Options of `review list`.
#[derive(Debug, clap::Args)]
struct ListArgs {
    /// Only this route.
    #[arg(long)]
    route: Option<String>,
    /// Labelled items too.
    #[arg(long)]
    all: bool,
    /// At most this many.
    #[arg(long, default_value_t = 50)]
    limit: u32,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    admin: AdminArgs,
}

/// Options of `review label`.
#[derive(Debug, clap::Args)]
struct LabelArgs {
    /// Item id (`rev_…`).
    id: String,
    /// The verdict.
    #[arg(long, value_parser = ["good", "wrong", "harmful", "refused", "hallucinated"])]
    label: String,
    /// Who reviewed it (default: the admin credential's name).
    #[arg(long)]
    reviewer: Option<String>,
    /// A note for whoever reads the label later.
    #[arg(long)]
    note: Option<String>,
    /// Print the labelled item as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    admin: AdminArgs,
}

/// Run `review`.
pub async fn run(global: &setup::GlobalArgs, args: ReviewArgs) -> Result<Outcome> {
    match args.command {
        Some(ReviewCommand::List(l)) => list(global, l).await,
        Some(ReviewCommand::Label(l)) => label(global, l).await,
        None => list(global, args.list).await,
    }
}

async fn list(global: &setup::GlobalArgs, args: ListArgs) -> Result<Outcome> {
    setup::init_logging(false);
    let page: QueuePage = if let Some(api) = AdminClient::from_args(global, Some(&args.admin))? {
        let limit = args.limit.clamp(1, MAX_REVIEW_PAGE);
        let mut path = format!("/admin/v1/review?all={}&limit={limit}", args.all);
        if let Some(r) = &args.route {
            path.push_str(&format!("&route={}", segment(r)?));
        }
        serde_json::from_value(api.get(&path).await?)
            .map_err(|e| anyhow!("the gateway's review page is not understood: {e}"))?
    } else {
        let loaded = setup::load(global)?;
        let opened = setup::open(global, &loaded.data_dir).await?;
        opened
            .require_role(&args.admin, READERS, "review.list")
            .await?;
        tollgate_gateway::review::queue_page(
            &opened.store,
            &loaded.config,
            &ReviewQuery {
                route: args.route.clone(),
                pending_only: !args.all,
                limit: args.limit,
            },
        )
        .await?
    };
    print_page(&page, args.json)
}

/// Print a page of the queue, the same from the store or a gateway (`--json`: the items).
fn print_page(page: &QueuePage, json: bool) -> Result<Outcome> {
    let (summary, items) = (&page.summary, &page.items);
    if json {
        println!("{}", serde_json::to_string_pretty(items)?);
        return Ok(Outcome::Ok);
    }
    let last = summary
        .last_labelled_at
        .map_or_else(|| "never".to_owned(), |t| t.to_rfc3339());
    println!(
        "{} item(s) waiting for review, {} labelled (last label: {last}).",
        summary.pending, summary.labelled
    );
    if items.is_empty() {
        if !page.sampling {
            println!(
                "Nothing is sampled: set [review] sample_rate (or [routes.NAME.review] sample_rate) in tollgate.toml."
            );
        }
        return Ok(Outcome::Ok);
    }
    for i in items {
        let state = match (&i.label, &i.reviewer) {
            (Some(l), Some(r)) => format!("{} by {r}", l.as_str()),
            (Some(l), None) => l.as_str().to_owned(),
            _ => "pending".to_owned(),
        };
        println!(
            "\n{}  route {}  {}  [{}]{}",
            i.id,
            i.route,
            i.at.to_rfc3339(),
            state,
            if i.truncated { "  (cut)" } else { "" }
        );
        println!("  prompt:     {}", one_line(&i.prompt));
        println!("  completion: {}", one_line(&i.completion));
    }
    println!(
        "\nLabel one with `tollgate review label ID --label good|wrong|harmful|refused|hallucinated --reviewer NAME`."
    );
    Ok(Outcome::Ok)
}

/// Text on one line (newlines shown as `⏎`), for the listing.
fn one_line(s: &str) -> String {
    s.replace("\r\n", " ⏎ ").replace(['\n', '\r'], " ⏎ ")
}

async fn label(global: &setup::GlobalArgs, args: LabelArgs) -> Result<Outcome> {
    setup::init_logging(false);
    let Some(label) = ReviewLabel::parse(&args.label) else {
        bail!(
            "unknown label {:?}: use good, wrong, harmful, refused or hallucinated",
            args.label
        );
    };
    if let Some(why) = labelling_problem(args.reviewer.as_deref(), args.note.as_deref()) {
        bail!("--{why}");
    }
    let item: ReviewItem = if let Some(api) = AdminClient::from_args(global, Some(&args.admin))? {
        let v = api
            .post(
                &format!("/admin/v1/review/{}/label", segment(&args.id)?),
                &json!({"label": label.as_str(), "reviewer": args.reviewer, "note": args.note}),
            )
            .await?;
        serde_json::from_value(v["item"].clone())
            .map_err(|e| anyhow!("the gateway's labelled item is not understood: {e}"))?
    } else {
        label_in_store(global, &args, label).await?
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&item)?);
    } else {
        println!(
            "Labelled {} as {} (reviewer {}, recorded by {}).",
            item.id,
            label.as_str(),
            item.reviewer.as_deref().unwrap_or("-"),
            item.labelled_by.as_deref().unwrap_or("-")
        );
    }
    Ok(Outcome::Ok)
}

/// Label an item in the store as the credential of `args`, audited.
async fn label_in_store(
    global: &setup::GlobalArgs,
    args: &LabelArgs,
    label: ReviewLabel,
) -> Result<ReviewItem> {
    let loaded = setup::load(global)?;
    let opened = setup::open(global, &loaded.data_dir).await?;
    let who = opened
        .require_role(&args.admin, LABELLERS, "review.label")
        .await?;
    let reviewer = args
        .reviewer
        .as_deref()
        .map_or_else(|| who.name.clone(), |r| r.trim().to_owned());
    let found = opened
        .store
        .reviews
        .label_review(
            &args.id,
            &Labelling {
                label,
                reviewer: &reviewer,
                labelled_by: &who.id,
                note: args.note.as_deref(),
                at: tollgate_store::now(),
            },
        )
        .await?;
    opened
        .audit_admin(
            "review.label",
            &who.id,
            Some(&args.id),
            if found { "ok" } else { "not_found" },
            json!({"label": label.as_str(), "reviewer": reviewer, "note": args.note.is_some()}),
        )
        .await?;
    match opened.store.reviews.review_item(&args.id).await? {
        Some(item) if found => Ok(item),
        _ => bail!(
            "no review item {}; list them with `tollgate review --all`",
            args.id
        ),
    }
}

/// Options of `drift`.
#[derive(Debug, clap::Args)]
pub struct DriftArgs {
    /// Route (model alias).
    route: String,
    /// Days in the recent window, today included (default `[review.drift] recent_days`).
    #[arg(long)]
    days: Option<u32>,
    /// Days in the baseline before it (default `[review.drift] baseline_days`).
    #[arg(long)]
    baseline_days: Option<u32>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Run `drift`: exit 1 when the route drifted.
pub async fn drift(global: &setup::GlobalArgs, args: DriftArgs) -> Result<Outcome> {
    setup::init_logging(false);
    let limit = tollgate_gateway::config::sampling::MAX_WINDOW_DAYS;
    for (flag, v) in [
        ("--days", args.days),
        ("--baseline-days", args.baseline_days),
    ] {
        if v.is_some_and(|d| d == 0 || d > limit) {
            bail!("{flag}: give 1 to {limit} days");
        }
    }
    let report: DriftReport = if let Some(api) = AdminClient::from_args(global, None)? {
        let query: Vec<String> = [("days", args.days), ("baseline_days", args.baseline_days)]
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
            .collect();
        let path = format!(
            "/admin/v1/drift/{}?{}",
            segment(&args.route)?,
            query.join("&")
        );
        serde_json::from_value(api.get(&path).await?)
            .map_err(|e| anyhow!("the gateway's drift report is not understood: {e}"))?
    } else {
        let loaded = setup::load(global)?;
        let opened = setup::open(global, &loaded.data_dir).await?;
        let mut cfg = loaded.config.review.drift;
        if let Some(d) = args.days {
            cfg.recent_days = d;
        }
        if let Some(d) = args.baseline_days {
            cfg.baseline_days = d;
        }
        let today = chrono::Utc::now().date_naive();
        let report = drift::report(&opened.store, &args.route, today, &cfg).await?;
        if !loaded.config.routes.contains_key(&args.route) && report.series.is_empty() {
            bail!(
                "route {:?} is not in the config and has no statistics; `tollgate drift` takes a route alias",
                args.route
            );
        }
        report
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(if report.drifted {
        Outcome::Findings
    } else {
        Outcome::Ok
    })
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"))
}

fn print_report(r: &DriftReport) {
    let min_samples = r.min_samples;
    let windows = format!(
        "recent {}..{} vs baseline {}..{}",
        r.recent.0, r.recent.1, r.baseline.0, r.baseline.1
    );
    match r.score {
        _ if r.drifted => {
            let shifted: Vec<String> = r
                .metrics
                .iter()
                .filter(|m| m.drifted)
                .map(|m| format!("{} PSI {}", m.metric, opt(m.psi, 3)))
                .collect();
            println!(
                "DRIFT on route {}: {} (threshold {}; {windows}).",
                r.route,
                shifted.join(", "),
                r.psi_threshold
            );
        }
        Some(s) => println!(
            "No drift on route {}: largest PSI {s:.3} < {} ({windows}).",
            r.route, r.psi_threshold
        ),
        None => println!(
            "Not enough data to score route {}: each window needs {min_samples} observations of a metric ({windows}).",
            r.route
        ),
    }
    println!(
        "\n{:<18} {:>9} {:>10} {:>10} {:>12} {:>12}",
        "metric", "PSI", "baseline n", "recent n", "baseline", "recent"
    );
    for m in &r.metrics {
        println!(
            "{:<18} {:>9} {:>10} {:>10} {:>12} {:>12}{}",
            m.metric,
            opt(m.psi, 3),
            m.baseline_n,
            m.recent_n,
            opt(m.baseline_mean, 3),
            opt(m.recent_mean, 3),
            if m.drifted { "  drifted" } else { "" }
        );
    }
    println!(
        "\n{:<10} {:<8} {:>8} {:>8} {:>9} {:>8} {:>8} {:>9} {:>10} {:>6}  labels",
        "day",
        "window",
        "requests",
        "answers",
        "out tok",
        "refusal",
        "blocked",
        "lat ms",
        "cost $",
        "evals"
    );
    for d in &r.series {
        let labels: Vec<String> = d.labels.iter().map(|(l, n)| format!("{l}:{n}")).collect();
        println!(
            "{:<10} {:<8} {:>8} {:>8} {:>9} {:>8} {:>8} {:>9} {:>10.4} {:>6}  {}",
            d.day,
            d.window,
            d.counts.requests,
            d.counts.completions,
            opt(d.mean_output_tokens, 1),
            opt(d.refusal_rate, 3),
            opt(d.guard_block_rate, 3),
            opt(d.mean_latency_ms, 0),
            d.cost_usd,
            match d.eval_pass_rate {
                Some(p) => format!("{:.0}%/{}", p * 100.0, d.evals),
                None => "-".to_owned(),
            },
            labels.join(" ")
        );
    }
    if r.drifted {
        println!(
            "\nLook at recent answers with `tollgate review --route {route}` and label them; compare prompt and route versions deployed since the baseline (`tollgate prompts history NAME`, `tollgate routes history {route}`).",
            route = r.route
        );
    }
}
