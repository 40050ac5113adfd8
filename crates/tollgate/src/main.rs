//! The `tollgate` binary: clap commands that wire the library crates together.
//!
//! - `serve`: run the gateway ([`serve`]);
//! - `init`: write a commented config and a bootstrap admin credential ([`init`]);
//! - `keys`: manage virtual keys ([`keys`]); `secrets`: manage the keystore ([`secrets`]);
//! - `providers`: the provider registry and each provider's review (DP-4, [`providers`]);
//! - `scan`: scan a repository (credentials, dependencies, model files, exposure);
//! - `guard`: run the detectors on stdin, or measure them on a labelled set;
//! - `audit`, `retention`: verify, export and read the audit trail; apply retention;
//! - `prompts`: versioned prompts, staging and production, gated promotion, rollback
//!   ([`prompts`], DO-3, DO-4); `routes`: the same for route configurations ([`routes`]);
//! - `kill`, `unkill`, `runbook`: incident controls and the runbook generated from config;
//! - `budgets`, `alerts`: spend against budgets and recent alerts ([`budgets`]);
//! - `review`, `drift`: the review queue of sampled interactions and each route's drift
//!   score against its baseline ([`review`], MI-4);
//! - `report`: the checklist report — each of the 24 items with PASS / WARN / FAIL and its
//!   evidence from the config, the store, a scan of the repository and, with `--gateway`, a
//!   live unauthenticated probe ([`report`]).
//!
//! Exit codes (CONVENTIONS.md): 0 clean, 1 findings or a failed check, 2 usage or runtime
//! error. A closed stdout (`tollgate keys list | head`) is not an error.

mod admin_client;
mod admins;
mod audit;
mod budgets;
mod guard;
mod init;
mod keys;
mod kill;
mod prompts;
mod providers;
mod report;
mod review;
mod routes;
mod runbook;
mod scan;
mod secrets;
mod serve;
mod setup;
mod versions;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// tollgate: ship AI without breaking trust.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version, about)]
struct Cli {
    #[command(flatten)]
    global: setup::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway.
    Serve(serve::ServeArgs),
    /// Write a commented tollgate.toml and print a bootstrap admin credential once.
    Init {
        /// Directory to initialise (default: the current directory).
        dir: Option<PathBuf>,
    },
    /// Manage virtual keys (AC-2).
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Issue, list and revoke admin credentials, each bound to one role (AC-3).
    #[command(subcommand)]
    Admins(admins::AdminsCommand),
    /// Manage provider credentials in the embedded keystore (AC-1).
    #[command(subcommand)]
    Secrets(secrets::SecretsCommand),
    /// List providers with their reviews and approved data classes; exit 1 if one is
    /// unreviewed or its review has expired (DP-4).
    Providers(providers::ProvidersArgs),
    /// Run the guards on text from stdin, or measure them on a labelled set.
    #[command(subcommand)]
    Guard(guard::GuardCommand),
    /// Verify, export and read the tamper-evident audit trail (DP-2).
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Switch off a key, team, route, provider or model on every gateway, or lock down
    /// (MI-3); `tollgate kill list` shows what is on.
    Kill(kill::KillArgs),
    /// Lift a kill switch.
    Unkill(kill::UnkillArgs),
    /// Spend and reservations against each budget in its current period (DO-2); exit 1 if
    /// one is exhausted.
    Budgets(budgets::BudgetsArgs),
    /// Alerts raised recently: budget thresholds, suspensions, anomalies (MI-2).
    Alerts(budgets::AlertsArgs),
    /// The review queue: list sampled, PII-masked interactions; label them (MI-4).
    Review(review::ReviewArgs),
    /// A route's daily output statistics and drift score against its baseline (MI-4).
    Drift(review::DriftArgs),
    /// Versioned prompts: push to staging, test, promote, roll back (DO-3, DO-4).
    #[command(subcommand)]
    Prompts(prompts::PromptsCommand),
    /// Versioned route targets: push to staging, promote, roll back (DO-4).
    #[command(subcommand)]
    Routes(routes::RoutesCommand),
    /// Write the incident-response runbook for this deployment (Markdown).
    Runbook(runbook::RunbookArgs),
    /// Apply the retention policy (DP-3).
    #[command(subcommand)]
    Retention(audit::RetentionCommand),
    /// Scan a repository: leaked keys, AI dependencies and advisories, model files, exposed
    /// model servers (AC-1, SC-1..SC-4).
    Scan(scan::ScanArgs),
    /// The checklist report: every item of the AI security checklist with PASS / WARN / FAIL,
    /// its evidence and what to do; exit 1 if an item fails. With `--gateway URL`, probes
    /// each data-plane route without a key (AC-2).
    Report(report::ReportArgs),
}

/// A command's outcome: success, findings (exit 1), or an error (exit 2).
pub enum Outcome {
    /// Clean.
    Ok,
    /// Findings or a failed check.
    Findings,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(&cli.global, args).await,
            Command::Init { dir } => init::run(&cli.global, dir).await,
            Command::Keys(cmd) => keys::run(&cli.global, cmd).await,
            Command::Admins(cmd) => admins::run(&cli.global, cmd).await,
            Command::Secrets(cmd) => secrets::run(&cli.global, cmd).await,
            Command::Providers(args) => providers::run(&cli.global, &args),
            Command::Audit(cmd) => audit::run(&cli.global, cmd).await,
            Command::Retention(cmd) => audit::retention(&cli.global, cmd).await,
            Command::Kill(args) => kill::kill(&cli.global, args).await,
            Command::Unkill(args) => kill::unkill(&cli.global, args).await,
            Command::Budgets(args) => budgets::budgets(&cli.global, args).await,
            Command::Alerts(args) => budgets::alerts(&cli.global, args).await,
            Command::Review(args) => review::run(&cli.global, args).await,
            Command::Drift(args) => review::drift(&cli.global, args).await,
            Command::Prompts(cmd) => prompts::run(&cli.global, cmd).await,
            Command::Routes(cmd) => routes::run(&cli.global, cmd).await,
            Command::Runbook(args) => runbook::run(&cli.global, args),
            Command::Scan(args) => scan::run(args),
            Command::Report(args) => report::run(&cli.global, args).await,
            Command::Guard(cmd) => guard::run(cmd),
        }
    });
    match result {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Findings) => ExitCode::from(1),
        Err(e) => {
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
