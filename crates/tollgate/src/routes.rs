//! `tollgate routes`: versioned route configurations with staging, promotion and rollback
//! (checklist DO-4: a rollback plan for model updates).
//!
//! A route version names a configured route and its targets in fallback order; gateways serve
//! each environment's version over the targets in `tollgate.toml`
//! ([`tollgate_gateway::rollout`]) and reload them every 400 ms. `push` (model-admin) stores
//! a new version and points staging at it; `promote` and `rollback` (approver) move
//! production; with `[governance] four_eyes = true` the author of a version cannot promote it.
//! Every action and refusal is audited.

use std::path::PathBuf;

use anyhow::{Result, bail};
use serde_json::json;
use tollgate_gateway::prompt;
use tollgate_gateway::rollout::{RouteSpec, STORE_PREFIX};
use tollgate_store::prompt::{NewPromptVersion, PromptEnv};

use crate::Outcome;
use crate::prompts::{APPROVERS, current, read_doc};
use crate::setup::{self, AdminArgs};

/// Roles that may push route versions to staging.
pub const MODEL_ADMINS: &[&str] = &["owner", "admin", "model-admin"];
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
    /// Point production at the staging version of a route.
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
            let (name, content) = (spec.store_name(), spec.canonical());
            let hash = prompt::content_hash(&content);
            let versions = store.prompt_versions(&name).await?;
            if let Some(last) = versions.last().filter(|v| v.content_hash == hash) {
                println!(
                    "Unchanged: route {} v{} already has these targets.",
                    spec.route, last.version
                );
                return Ok(Outcome::Ok);
            }
            let diff = versions
                .last()
                .map(|v| prompt::line_diff(&v.content, &content))
                .unwrap_or_default();
            let v = store
                .add_prompt_version(&NewPromptVersion {
                    name: &name,
                    content: &content,
                    content_hash: &hash,
                    author: &who.id,
                    diff: &diff,
                    at: tollgate_store::now(),
                })
                .await?;
            opened
                .audit_admin(
                    "routes.push",
                    &who.id,
                    Some(&spec.route),
                    "ok",
                    json!({"version": v.version, "sha256": hash, "env": "staging"}),
                )
                .await?;
            println!(
                "Pushed route {} v{} to staging; staging keys use its targets within a second. Promote with `tollgate routes promote {}`.",
                spec.route, v.version, spec.route
            );
            Ok(Outcome::Ok)
        }
        RoutesCommand::History { name, admin } => {
            opened
                .require_role(&admin, READERS, "routes.history")
                .await?;
            let key = format!("{STORE_PREFIX}{name}");
            let versions = store.prompt_versions(&key).await?;
            let log = store.prompt_deployments(&key).await?;
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
        RoutesCommand::Promote { name, admin } => {
            let who = opened
                .require_role(&admin, APPROVERS, "routes.promote")
                .await?;
            let key = format!("{STORE_PREFIX}{name}");
            let log = store.prompt_deployments(&key).await?;
            let Some(staged) = current(&log, PromptEnv::Staging) else {
                bail!("route {name} has no staged version; push one with `tollgate routes push`");
            };
            let Some(v) = store.prompt_version(&key, staged).await? else {
                bail!("route {name} v{staged} is missing from the store");
            };
            if config.governance.four_eyes && v.author == who.id {
                let why = format!(
                    "four-eyes rule ([governance] four_eyes): {} wrote route {name} v{staged} and may not also approve it",
                    who.id
                );
                opened
                    .audit_admin(
                        "routes.promote",
                        &who.id,
                        Some(&name),
                        "denied",
                        json!({"version": staged, "reason": why}),
                    )
                    .await?;
                bail!("refused: {why}");
            }
            if current(&log, PromptEnv::Production) == Some(staged) {
                println!("Route {name} v{staged} is already in production.");
                return Ok(Outcome::Ok);
            }
            store
                .deploy_prompt(&key, PromptEnv::Production, staged, &who.id, "promote")
                .await?;
            opened
                .audit_admin(
                    "routes.promote",
                    &who.id,
                    Some(&name),
                    "ok",
                    json!({"version": staged, "author": v.author}),
                )
                .await?;
            println!(
                "Promoted route {name} v{staged} to production; every gateway uses it within a second. Undo with `tollgate routes rollback {name}`."
            );
            Ok(Outcome::Ok)
        }
        RoutesCommand::Rollback { name, to, admin } => {
            let who = opened
                .require_role(&admin, APPROVERS, "routes.rollback")
                .await?;
            let key = format!("{STORE_PREFIX}{name}");
            let log = store.prompt_deployments(&key).await?;
            let Some(now) = current(&log, PromptEnv::Production) else {
                bail!("route {name} has no production version to roll back");
            };
            let target = match to {
                Some(v) => v,
                None => log
                    .iter()
                    .filter(|d| d.env == PromptEnv::Production && d.version < now)
                    .map(|d| d.version)
                    .max()
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "route {name} v{now} is its first production version; there is nothing to roll back to (name one with --to)"
                        )
                    })?,
            };
            if target == now {
                bail!("route {name} v{now} is already in production");
            }
            store
                .deploy_prompt(&key, PromptEnv::Production, target, &who.id, "rollback")
                .await?;
            opened
                .audit_admin(
                    "routes.rollback",
                    &who.id,
                    Some(&name),
                    "ok",
                    json!({"from": now, "to": target}),
                )
                .await?;
            println!(
                "Rolled route {name} back from v{now} to v{target} in production; every gateway uses it within a second."
            );
            Ok(Outcome::Ok)
        }
    }
}
