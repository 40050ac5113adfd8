//! `tollgate routes`: versioned route configurations with staging, promotion and rollback
//! (checklist DO-4: a rollback plan for model updates).
//!
//! A route version names a configured route and its targets in fallback order; gateways serve
//! each environment's version over the targets in `tollgate.toml`
//! ([`tollgate_gateway::rollout`]) and reload them every 400 ms. `push` (model-admin) stores
//! a new version and points staging at it; `test` runs an evaluation suite through a gateway
//! with a staging key and records the result on the staging version; `promote` (approver)
//! moves production only if that version passed, and with `[governance] four_eyes = true` not
//! by its author; `rollback` (approver) moves it back. A model upgrade is thus staged, tested
//! and promoted like a prompt, with the same steps ([`crate::versions`]); `diff` shows what
//! changed between two versions. With `--gateway URL` every command goes through that
//! gateway's admin API (which validates a pushed version against its own config). Every
//! action and refusal is audited.

use std::path::PathBuf;

use anyhow::{Result, bail};
use tollgate_gateway::rollout::RouteSpec;
use tollgate_store::prompt::PromptEnv;

use crate::Outcome;
use crate::admin_client::AdminClient;
use crate::prompts::suite::Suite;
use crate::prompts::{APPROVERS, current, read_doc};
use crate::setup::{self, AdminArgs};
use crate::versions::{self, Kind, Remote, Subject};

/// Roles that may push route versions to staging.
pub const MODEL_ADMINS: &[&str] = &["owner", "admin", "model-admin"];
/// Roles that may read route history and diffs (the admin API's `models_read`).
pub const READERS: &[&str] = &[
    "owner",
    "admin",
    "model-admin",
    "prompt-engineer",
    "approver",
    "auditor",
    "incident-responder",
];

/// `tollgate routes …`.
#[derive(Debug, clap::Subcommand)]
pub enum RoutesCommand {
    /// Push a route version file (YAML, TOML or JSON: `route` and `targets`) to staging.
    Push {
        /// The file.
        file: PathBuf,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Show what changed between two route versions (default: production → latest).
    Diff {
        /// Route alias.
        name: String,
        /// From this version (default: the production version, else the one before `--to`).
        #[arg(long)]
        from: Option<i64>,
        /// To this version (default: the latest).
        #[arg(long)]
        to: Option<i64>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Every version of a route with its author and the deployment log.
    History {
        /// Route alias.
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Run an evaluation suite (cases with `messages`) through a running gateway with a key
    /// of `--env`, and record the result on the route version deployed there; exit 1 if a
    /// case fails. The cases run through the gateway named by the global `--gateway URL`.
    Test {
        /// Route alias.
        name: String,
        /// Environment whose version is tested (its key must be of that environment).
        #[arg(long, default_value = "staging")]
        env: String,
        /// Suite file (YAML, TOML or JSON).
        #[arg(long)]
        suite: PathBuf,
        /// Virtual key to call it with (a `tg_test_` key for staging).
        #[arg(long, env = "TOLLGATE_KEY", hide_env_values = true)]
        key: String,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Point production at the staging version of a route, if it passed its evaluation.
    Promote {
        /// Route alias.
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Point production back at the previous production version (or `--to VERSION`).
    Rollback {
        /// Route alias.
        name: String,
        /// The version to restore.
        #[arg(long)]
        to: Option<i64>,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

impl RoutesCommand {
    fn admin(&self) -> &AdminArgs {
        match self {
            Self::Push { admin, .. }
            | Self::Diff { admin, .. }
            | Self::History { admin, .. }
            | Self::Test { admin, .. }
            | Self::Promote { admin, .. }
            | Self::Rollback { admin, .. } => admin,
        }
    }
}

/// `routes …` through a gateway's admin API (`--gateway URL`).
async fn remote(
    global: &setup::GlobalArgs,
    api: &AdminClient,
    cmd: RoutesCommand,
) -> Result<Outcome> {
    let (name, op) = match cmd {
        RoutesCommand::Push { file, .. } => {
            let spec: RouteSpec = read_doc(&file, "route version")?;
            let doc = serde_json::to_value(&spec)?;
            (spec.route, Remote::Push { doc })
        }
        RoutesCommand::Diff { name, from, to, .. } => (name, Remote::Diff { from, to }),
        RoutesCommand::History { name, .. } => (name, Remote::History { json: false }),
        RoutesCommand::Promote { name, .. } => (name, Remote::Promote),
        RoutesCommand::Rollback { name, to, .. } => (name, Remote::Rollback { to }),
        RoutesCommand::Test {
            name,
            env,
            suite,
            key,
            json,
            ..
        } => {
            return versions::test_through(
                global,
                api,
                Kind::Route,
                &name,
                &env,
                &suite,
                &key,
                json,
            )
            .await;
        }
    };
    versions::remote(api, Kind::Route, &name, op).await
}

/// Run a `routes` command.
pub async fn run(global: &setup::GlobalArgs, cmd: RoutesCommand) -> Result<Outcome> {
    setup::init_logging(false);
    // A suite is checked before anything else, so a bad file is reported as such; its cases
    // run through `--gateway`, which records the result.
    if let RoutesCommand::Test { suite, .. } = &cmd {
        Suite::load(suite)?.check_for_route()?;
        if global.gateway.is_none() {
            bail!(
                "routes test runs its cases through a gateway: pass --gateway URL (or set TOLLGATE_GATEWAY)"
            );
        }
    }
    if let Some(api) = AdminClient::from_args(global, Some(cmd.admin()))? {
        return remote(global, &api, cmd).await;
    }
    let loaded = setup::load(global)?;
    let config = &loaded.config;
    let spec = match &cmd {
        RoutesCommand::Push { file, .. } => {
            let spec: RouteSpec = read_doc(file, "route version")?;
            let problems = spec.validate(&config.routes, &config.providers);
            if !problems.is_empty() {
                bail!(
                    "{} is not a valid route version:\n  - {}",
                    file.display(),
                    problems.join("\n  - ")
                );
            }
            Some(spec)
        }
        _ => None,
    };
    let opened = setup::open(global, &loaded.data_dir).await?;
    let store = &opened.store.prompts;
    match cmd {
        RoutesCommand::Push { admin, .. } => {
            let Some(spec) = spec else {
                bail!("no route version");
            };
            let who = opened
                .require_role(&admin, MODEL_ADMINS, "routes.push")
                .await?;
            let subject = Subject::new(&opened, Kind::Route, &spec.route);
            let (pushed, hash) = subject.push(&who, &spec.canonical()).await?;
            versions::print_pushed(Kind::Route, &spec.route, pushed, &hash);
            Ok(Outcome::Ok)
        }
        RoutesCommand::Diff {
            name,
            from,
            to,
            admin,
        } => {
            opened.require_role(&admin, READERS, "routes.diff").await?;
            let d = Subject::new(&opened, Kind::Route, &name)
                .diff(from, to)
                .await?;
            versions::print_diff(Kind::Route, &name, &d);
            Ok(Outcome::Ok)
        }
        RoutesCommand::History { name, admin } => {
            opened
                .require_role(&admin, READERS, "routes.history")
                .await?;
            let subject = Subject::new(&opened, Kind::Route, &name);
            let versions = store.prompt_versions(subject.key()).await?;
            let log = store.prompt_deployments(subject.key()).await?;
            if versions.is_empty() {
                println!("Route {name} has no versions: its targets come from the config.");
                return Ok(Outcome::Ok);
            }
            println!(
                "route {name}: staging {}, production {}",
                current(&log, PromptEnv::Staging).map_or("config".into(), |v| format!("v{v}")),
                current(&log, PromptEnv::Production).map_or("config".into(), |v| format!("v{v}"))
            );
            for v in &versions {
                let targets = serde_json::from_str::<RouteSpec>(&v.content)
                    .map(|s| {
                        s.targets
                            .iter()
                            .map(|t| format!("{}/{}", t.provider, t.model))
                            .collect::<Vec<_>>()
                            .join(" → ")
                    })
                    .unwrap_or_default();
                println!(
                    "v{}\t{}\t{}\t{targets}",
                    v.version,
                    v.created_at.to_rfc3339(),
                    v.author
                );
            }
            for d in &log {
                println!(
                    "{}\t{}\tv{}\t{}\t{}",
                    d.set_at.to_rfc3339(),
                    d.env.as_str(),
                    d.version,
                    d.action,
                    d.set_by
                );
            }
            Ok(Outcome::Ok)
        }
        // With a gateway (which `test` needs) it went through the admin API above.
        RoutesCommand::Test { .. } => bail!(
            "routes test runs its cases through a gateway: pass --gateway URL (or set TOLLGATE_GATEWAY)"
        ),
        RoutesCommand::Promote { name, admin } => {
            let who = opened
                .require_role(&admin, APPROVERS, "routes.promote")
                .await?;
            Subject::new(&opened, Kind::Route, &name)
                .promote(&who, config.governance.four_eyes)
                .await
        }
        RoutesCommand::Rollback { name, to, admin } => {
            let who = opened
                .require_role(&admin, APPROVERS, "routes.rollback")
                .await?;
            Subject::new(&opened, Kind::Route, &name)
                .rollback(&who, to)
                .await
        }
    }
}
