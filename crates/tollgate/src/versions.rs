//! What `tollgate prompts` and `tollgate routes` share: a versioned subject (a prompt, or a
//! route's targets stored as `route:ALIAS`) pushed to staging, evaluated through a gateway,
//! promoted behind the same gate (a passed evaluation of the staging version; four-eyes when
//! configured) and rolled back, each step audited. The two commands differ only in what a
//! version holds and how history is shown, so the steps live here once.

use anyhow::{Result, bail};
use serde_json::json;
use tollgate_gateway::prompt;
use tollgate_gateway::rollout::STORE_PREFIX;
use tollgate_store::AdminCredential;
use tollgate_store::prompt::{EvalRecord, NewPromptVersion, PromptEnv};

use crate::Outcome;
use crate::prompts::suite::{CaseResult, Suite, Under};
use crate::setup::Opened;

/// What is versioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A prompt (`tollgate prompts`).
    Prompt,
    /// A route's targets (`tollgate routes`).
    Route,
}

/// One versioned subject in the store: a prompt by name, or a route by alias.
pub struct Subject<'a> {
    opened: &'a Opened,
    kind: Kind,
    name: &'a str,
    key: String,
}

/// What a push did.
pub enum Pushed {
    /// The latest version already has this content.
    Unchanged(i64),
    /// A new version, now in staging.
    Added(i64),
}

impl<'a> Subject<'a> {
    /// `name` of `kind` in `opened`'s store.
    pub fn new(opened: &'a Opened, kind: Kind, name: &'a str) -> Self {
        let key = match kind {
            Kind::Prompt => name.to_owned(),
            Kind::Route => format!("{STORE_PREFIX}{name}"),
        };
        Self {
            opened,
            kind,
            name,
            key,
        }
    }

    /// The store name (`support`, `route:gpt`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// How messages name it: `support`, `route gpt`.
    pub fn label(&self) -> String {
        match self.kind {
            Kind::Prompt => self.name.to_owned(),
            Kind::Route => format!("route {}", self.name),
        }
    }

    /// The CLI command group (`prompts`, `routes`), also the audit action prefix.
    fn command(&self) -> &'static str {
        match self.kind {
            Kind::Prompt => "prompts",
            Kind::Route => "routes",
        }
    }

    /// Store `content` as a new version and point staging at it, unless the latest version
    /// already has it; audited as `{prompts,routes}.push`.
    pub async fn push(&self, who: &AdminCredential, content: &str) -> Result<(Pushed, String)> {
        let store = &self.opened.store.prompts;
        let hash = prompt::content_hash(content);
        let versions = store.prompt_versions(&self.key).await?;
        if let Some(last) = versions.last().filter(|v| v.content_hash == hash) {
            return Ok((Pushed::Unchanged(last.version), hash));
        }
        let diff = versions
            .last()
            .map(|v| prompt::line_diff(&v.content, content))
            .unwrap_or_default();
        let v = store
            .add_prompt_version(&NewPromptVersion {
                name: &self.key,
                content,
                content_hash: &hash,
                author: &who.id,
                diff: &diff,
                at: tollgate_store::now(),
            })
            .await?;
        self.opened
            .audit_admin(
                &format!("{}.push", self.command()),
                &who.id,
                Some(self.name),
                "ok",
                json!({"version": v.version, "sha256": hash, "env": "staging"}),
            )
            .await?;
        Ok((Pushed::Added(v.version), hash))
    }

    /// Run `suite` through the gateway at `gateway` with `key` against the version deployed
    /// in `env`, record the result on that version (what `promote` checks) and report it;
    /// exit 1 if a case failed.
    #[expect(
        clippy::too_many_arguments,
        reason = "each is one fact of the run; a struct would only rename them"
    )]
    pub async fn test(
        &self,
        who: &AdminCredential,
        suite: &Suite,
        env: PromptEnv,
        gateway: &str,
        key: &str,
        prices: &tollgate_guard::cost::PriceTable,
        json_out: bool,
    ) -> Result<Outcome> {
        let store = &self.opened.store.prompts;
        let (label, command, name) = (self.label(), self.command(), self.name);
        let log = store.prompt_deployments(&self.key).await?;
        let Some(version) = prompt::deployed_version(&log, env) else {
            bail!("no version of {label} is deployed in {}", env.as_str());
        };
        let under = match self.kind {
            Kind::Prompt => Under::Prompt { name, version },
            Kind::Route => Under::Route {
                alias: name,
                version,
            },
        };
        let report = suite.run(gateway, key, under, prices).await?;
        let passed = report.iter().all(|c| c.failures.is_empty());
        let subject = match self.kind {
            Kind::Prompt => "prompt",
            Kind::Route => "route",
        };
        let body = json!({
            subject: name, "version": version, "env": env.as_str(), "passed": passed,
            "cases": report.iter().map(|c| json!({"name": c.name, "passed": c.failures.is_empty(), "failures": c.failures, "latency_ms": c.latency_ms})).collect::<Vec<_>>(),
        });
        store
            .record_prompt_eval(
                &self.key,
                version,
                &EvalRecord {
                    passed,
                    report: body.to_string(),
                    at: tollgate_store::now(),
                },
            )
            .await?;
        let failed: Vec<&CaseResult> = report.iter().filter(|c| !c.failures.is_empty()).collect();
        self.opened
            .audit_admin(
                &format!("{command}.test"),
                &who.id,
                Some(name),
                if passed { "passed" } else { "failed" },
                json!({"version": version, "cases": report.len(), "failed": failed.len()}),
            )
            .await?;
        if json_out {
            println!("{body}");
        } else if passed {
            println!(
                "PASSED: {label} v{version}, {} cases. Recorded on the version; promote it with `tollgate {command} promote {name}`.",
                report.len()
            );
        } else {
            println!(
                "FAILED: {label} v{version}, {} of {} cases failed. Recorded on the version; it cannot be promoted.",
                failed.len(),
                report.len()
            );
            for c in failed {
                for f in &c.failures {
                    println!("  {}: {f}", c.name);
                }
            }
        }
        Ok(if passed {
            Outcome::Ok
        } else {
            Outcome::Findings
        })
    }

    /// Point production at the staging version if it passed its evaluation and (with
    /// `four_eyes`) `who` did not write it; a refusal is audited and an error.
    pub async fn promote(&self, who: &AdminCredential, four_eyes: bool) -> Result<Outcome> {
        let store = &self.opened.store.prompts;
        let (label, command, name) = (self.label(), self.command(), self.name);
        let action = format!("{command}.promote");
        let log = store.prompt_deployments(&self.key).await?;
        let Some(staged) = prompt::deployed_version(&log, PromptEnv::Staging) else {
            bail!("{label} has no version in staging; push one with `tollgate {command} push`");
        };
        let Some(v) = store.prompt_version(&self.key, staged).await? else {
            bail!("{label} v{staged} is missing from the store");
        };
        if let Some(why) = prompt::promotion_refusal(&v, &who.id, four_eyes) {
            self.opened
                .audit_admin(
                    &action,
                    &who.id,
                    Some(name),
                    "denied",
                    json!({"version": staged, "reason": why}),
                )
                .await?;
            bail!("refused: {why}");
        }
        let previous = prompt::deployed_version(&log, PromptEnv::Production);
        if previous == Some(staged) {
            println!("{label} v{staged} is already in production.");
            return Ok(Outcome::Ok);
        }
        store
            .deploy_prompt(&self.key, PromptEnv::Production, staged, &who.id, "promote")
            .await?;
        self.opened
            .audit_admin(
                &action,
                &who.id,
                Some(name),
                "ok",
                json!({"version": staged, "previous": previous, "author": v.author}),
            )
            .await?;
        println!(
            "Promoted {label} v{staged} to production; every gateway uses it within a second. Undo with `tollgate {command} rollback {name}`."
        );
        Ok(Outcome::Ok)
    }

    /// Point production back at the previous production version (or `to`).
    pub async fn rollback(&self, who: &AdminCredential, to: Option<i64>) -> Result<Outcome> {
        let store = &self.opened.store.prompts;
        let (label, command, name) = (self.label(), self.command(), self.name);
        let log = store.prompt_deployments(&self.key).await?;
        let (now, target) =
            prompt::rollback_target(&label, &log, to).map_err(anyhow::Error::msg)?;
        store
            .deploy_prompt(
                &self.key,
                PromptEnv::Production,
                target,
                &who.id,
                "rollback",
            )
            .await?;
        self.opened
            .audit_admin(
                &format!("{command}.rollback"),
                &who.id,
                Some(name),
                "ok",
                json!({"from": now, "to": target}),
            )
            .await?;
        println!(
            "Rolled {label} back from v{now} to v{target} in production; every gateway uses it within a second."
        );
        Ok(Outcome::Ok)
    }
}

/// What `prompts` and `routes` do through a gateway's admin API (`--gateway URL`).
pub enum Remote {
    /// Versions and deployments.
    History {
        /// Print the API's JSON.
        json: bool,
    },
    /// Production gets the staging version (the gateway applies the same gate).
    Promote,
    /// Production goes back (to the previous version, or `to`).
    Rollback {
        /// The version to restore.
        to: Option<i64>,
    },
}

/// Run `op` on `name` of `kind` through `api`.
pub async fn remote(
    api: &crate::admin_client::AdminClient,
    kind: Kind,
    name: &str,
    op: Remote,
) -> Result<Outcome> {
    let (group, label) = match kind {
        Kind::Prompt => ("prompts", name.to_owned()),
        Kind::Route => ("routes", format!("route {name}")),
    };
    let base = format!("/admin/v1/{group}/{}", crate::admin_client::segment(name)?);
    match op {
        Remote::History { json } => {
            let v = api.get(&base).await?;
            if json {
                println!("{v}");
                return Ok(Outcome::Ok);
            }
            let at = |env: &str| {
                v[env]
                    .as_i64()
                    .map_or_else(|| "none".to_owned(), |n| format!("v{n}"))
            };
            println!(
                "{label}: staging {}, production {}",
                at("staging"),
                at("production")
            );
            for x in v["versions"].as_array().into_iter().flatten() {
                let eval = match (x["eval"]["passed"].as_bool(), x["eval"]["at"].as_str()) {
                    (Some(true), Some(t)) => format!("eval passed {t}"),
                    (Some(false), Some(t)) => format!("eval FAILED {t}"),
                    _ => "not evaluated".to_owned(),
                };
                let targets = x["targets"]
                    .as_array()
                    .map(|ts| {
                        ts.iter()
                            .map(|t| {
                                format!(
                                    "{}/{}",
                                    t["provider"].as_str().unwrap_or_default(),
                                    t["model"].as_str().unwrap_or_default()
                                )
                            })
                            .collect::<Vec<_>>()
                            .join(" → ")
                    })
                    .unwrap_or_default();
                println!(
                    "v{}\t{}\t{}\t{eval}\t{targets}",
                    x["version"],
                    x["created_at"].as_str().unwrap_or_default(),
                    x["author"].as_str().unwrap_or_default()
                );
            }
            println!("\ndeployments:");
            for d in v["deployments"].as_array().into_iter().flatten() {
                println!(
                    "{}\t{}\tv{}\t{}\t{}",
                    d["set_at"].as_str().unwrap_or_default(),
                    d["env"].as_str().unwrap_or_default(),
                    d["version"],
                    d["action"].as_str().unwrap_or_default(),
                    d["set_by"].as_str().unwrap_or_default()
                );
            }
        }
        Remote::Promote => {
            let v = api
                .post(&format!("{base}/promote"), &json!({}))
                .await
                .map_err(|e| anyhow::anyhow!("refused: {e}"))?;
            let now = &v["production"];
            if v["previous"] == *now {
                println!("{label} v{now} is already in production.");
            } else {
                println!(
                    "Promoted {label} v{now} to production; every gateway uses it within a second. Undo with `tollgate {group} rollback {name}`."
                );
            }
        }
        Remote::Rollback { to } => {
            let body = match to {
                Some(v) => json!({"to": v}),
                None => json!({}),
            };
            let v = api.post(&format!("{base}/rollback"), &body).await?;
            println!(
                "Rolled {label} back from v{} to v{} in production; every gateway uses it within a second.",
                v["previous"], v["production"]
            );
        }
    }
    Ok(Outcome::Ok)
}
