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
//! and promoted like a prompt, with the same steps ([`crate::versions`]). Every action and
//! refusal is audited.

use std::path::PathBuf;

use anyhow::{Result, bail};
use tollgate_gateway::rollout::RouteSpec;
use tollgate_store::prompt::PromptEnv;

use crate::Outcome;
use crate::admin_client::AdminClient;
use crate::prompts::suite::Suite;
use crate::prompts::{APPROVERS, current, read_doc};
use crate::setup::{self, AdminArgs};
use crate::versions::{self, Kind, Pushed, Remote, Subject};

/// Roles that may push route versions to staging.
pub const MODEL_ADMINS: &[&str] = &["owner", "admin", "model-admin"];
/// Roles that may evaluate a route version and record the result.
pub const TESTERS: &[&str] = &["owner", "admin", "model-admin", "approver"];
/// Roles that may read route history.
pub const READERS: &[&str] = &["owner", "admin", "model-admin", "approver", "auditor"];

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

/// Run a `routes` command.
pub async fn run(global: &setup::GlobalArgs, cmd: RoutesCommand) -> Result<Outcome> {
    setup::init_logging(false);
    // `test` runs its cases through `--gateway` and records the result in the store; the
    // other commands use the admin API when a gateway is named.
    let admin = match &cmd {
        RoutesCommand::Push { admin, .. }
        | RoutesCommand::History { admin, .. }
        | RoutesCommand::Test { admin, .. }
        | RoutesCommand::Promote { admin, .. }
        | RoutesCommand::Rollback { admin, .. } => admin,
    };
    if !matches!(cmd, RoutesCommand::Test { .. }) {
        if let Some(api) = AdminClient::from_args(global, Some(admin))? {
            let (name, op) = match cmd {
                RoutesCommand::History { name, .. } => (name, Remote::History { json: false }),
                RoutesCommand::Promote { name, .. } => (name, Remote::Promote),
                RoutesCommand::Rollback { name, to, .. } => (name, Remote::Rollback { to }),
                RoutesCommand::Push { .. } | RoutesCommand::Test { .. } => bail!(
                    "routes push validates against the config and writes the store; run it without --gateway (the admin API has history, promote and rollback)"
                ),
            };
            return versions::remote(&api, Kind::Route, &name, op).await;
        }
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
    let suite = match &cmd {
        RoutesCommand::Test { suite, name, .. } => {
            if !config.routes.contains_key(name) {
                bail!("{name:?} is not a route of this gateway's config");
            }
            let s = Suite::load(suite)?;
            s.check_for_route()?;
            Some(s)
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
            match subject.push(&who, &spec.canonical()).await? {
                (Pushed::Unchanged(v), _) => println!(
                    "Unchanged: route {} v{v} already has these targets.",
                    spec.route
                ),
                (Pushed::Added(v), _) => println!(
                    "Pushed route {} v{v} to staging; staging keys use its targets within a second. Test it with `tollgate routes test {} --suite SUITE --gateway URL`, then promote it with `tollgate routes promote {}`.",
                    spec.route, spec.route, spec.route
                ),
            }
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
        RoutesCommand::Test {
            name,
            env,
            key,
            json,
            admin,
            ..
        } => {
            let Some(env) = PromptEnv::parse(&env) else {
                bail!("--env must be staging or production");
            };
            let Some(suite) = suite else {
                bail!("no suite");
            };
            let gateway = global.gateway.as_deref().ok_or_else(|| {
                anyhow::anyhow!("routes test runs its cases through a gateway: pass --gateway URL (or set TOLLGATE_GATEWAY)")
            })?;
            let who = opened.require_role(&admin, TESTERS, "routes.test").await?;
            Subject::new(&opened, Kind::Route, &name)
                .test(
                    &who,
                    &suite,
                    env,
                    gateway,
                    &key,
                    &config.price_table(),
                    json,
                )
                .await
        }
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
