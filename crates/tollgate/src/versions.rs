//! What `tollgate prompts` and `tollgate routes` share: a versioned subject (a prompt, or a
//! route's targets stored as `route:ALIAS`) pushed to staging, evaluated through a gateway,
//! promoted behind the same gate (a passed evaluation of the staging version; four-eyes when
//! configured) and rolled back, each step audited. The two commands differ only in what a
//! version holds and how history is shown, so the steps live here once. On the store they
//! call the same [`tollgate_gateway::versioning`] steps as the admin API; with `--gateway`
//! ([`remote`]) they call the admin API, and a suite's result is always recorded there
//! ([`test`]), since its cases run through that gateway.

use anyhow::{Result, bail};
use serde_json::{Value, json};
use tollgate_gateway::prompt;
use tollgate_gateway::rollout::STORE_PREFIX;
use tollgate_gateway::versioning::{self, Diff, DiffError};
use tollgate_store::AdminCredential;
use tollgate_store::prompt::PromptEnv;

pub use tollgate_gateway::versioning::Pushed;

use crate::Outcome;
use crate::admin_client::{AdminClient, segment};
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

impl Kind {
    /// The CLI command group (`prompts`, `routes`), also the audit action prefix and the
    /// admin API's path segment.
    pub fn group(self) -> &'static str {
        match self {
            Self::Prompt => "prompts",
            Self::Route => "routes",
        }
    }

    /// How messages name `name`: `support`, `route gpt`.
    pub fn label(self, name: &str) -> String {
        match self {
            Self::Prompt => name.to_owned(),
            Self::Route => format!("route {name}"),
        }
    }

    /// The admin API path of `name`.
    fn api_base(self, name: &str) -> Result<String> {
        Ok(format!("/admin/v1/{}/{}", self.group(), segment(name)?))
    }
}

/// One versioned subject in the store: a prompt by name, or a route by alias.
pub struct Subject<'a> {
    opened: &'a Opened,
    kind: Kind,
    name: &'a str,
    key: String,
}

/// Say what a push did, the same whether it went through the store or a gateway.
pub fn print_pushed(kind: Kind, name: &str, pushed: Pushed, hash: &str) {
    let short = &hash[..hash.len().min(12)];
    match (kind, pushed) {
        (Kind::Prompt, Pushed::Unchanged(v)) => {
            println!("Unchanged: {name} v{v} already has this content; no new version.");
        }
        (Kind::Prompt, Pushed::Added(v)) => println!(
            "Pushed {name} v{v} to staging (sha256 {short}). Staging keys get it within a second.\nNext: tollgate prompts test {name} --suite SUITE --gateway URL, then tollgate prompts promote {name}."
        ),
        (Kind::Route, Pushed::Unchanged(v)) => {
            println!("Unchanged: route {name} v{v} already has these targets.");
        }
        (Kind::Route, Pushed::Added(v)) => println!(
            "Pushed route {name} v{v} to staging; staging keys use its targets within a second. Test it with `tollgate routes test {name} --suite SUITE --gateway URL`, then promote it with `tollgate routes promote {name}`."
        ),
    }
}

/// Print a diff, the same whether it came from the store or a gateway.
pub fn print_diff(kind: Kind, name: &str, d: &Diff) {
    let label = kind.label(name);
    if d.diff.is_empty() {
        println!("{label}: v{} and v{} are the same.", d.from, d.to);
    } else {
        println!("{label}: v{} → v{}\n{}", d.from, d.to, d.diff);
    }
}

/// One suite run to make: what it runs against and how it reports.
pub struct TestRun<'a> {
    /// What is evaluated.
    pub kind: Kind,
    /// Prompt name or route alias.
    pub name: &'a str,
    /// Environment whose deployed version is evaluated.
    pub env: PromptEnv,
    /// The cases.
    pub suite: &'a Suite,
    /// Gateway the cases run through.
    pub gateway: &'a str,
    /// Virtual key they run with.
    pub key: &'a str,
    /// Prices, for `max_cost_usd`.
    pub prices: &'a tollgate_guard::cost::PriceTable,
    /// Print JSON.
    pub json: bool,
}

/// Run `run.suite` through the gateway against the version deployed in `run.env`, record
/// the result on that version (what `promote` checks) through the same gateway's admin API
/// (`POST …/evals`, audited there with `api`'s credential), and report it; exit 1 if a case
/// failed. The cases need a gateway anyway, so the result always goes back through it.
pub async fn test(run: TestRun<'_>, api: &AdminClient) -> Result<Outcome> {
    let (kind, name, env) = (run.kind, run.name, run.env);
    let (label, command) = (kind.label(name), kind.group());
    let base = kind.api_base(name)?;
    let Some(version) = api.get(&base).await?[env.as_str()].as_i64() else {
        bail!("no version of {label} is deployed in {}", env.as_str());
    };
    let under = match kind {
        Kind::Prompt => Under::Prompt { name, version },
        Kind::Route => Under::Route {
            alias: name,
            version,
        },
    };
    let report = run
        .suite
        .run(run.gateway, run.key, under, run.prices)
        .await?;
    let passed = report.iter().all(|c| c.failures.is_empty());
    let subject = match kind {
        Kind::Prompt => "prompt",
        Kind::Route => "route",
    };
    let body = json!({
        subject: name, "version": version, "env": env.as_str(), "passed": passed,
        "cases": report.iter().map(|c| json!({"name": c.name, "passed": c.failures.is_empty(), "failures": c.failures, "latency_ms": c.latency_ms})).collect::<Vec<_>>(),
    });
    api.post(
        &format!("{base}/evals"),
        &json!({"version": version, "passed": passed, "report": body}),
    )
    .await?;
    let failed: Vec<&CaseResult> = report.iter().filter(|c| !c.failures.is_empty()).collect();
    if run.json {
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

/// `prompts test` / `routes test` with `--gateway`: check `--env` and the suite, then run
/// it through the gateway and record the result there ([`test`]).
#[expect(
    clippy::too_many_arguments,
    reason = "each is one flag of the command; a struct would only rename them"
)]
pub async fn test_through(
    global: &crate::setup::GlobalArgs,
    api: &AdminClient,
    kind: Kind,
    name: &str,
    env: &str,
    suite: &std::path::Path,
    key: &str,
    json: bool,
) -> Result<Outcome> {
    let Some(env) = PromptEnv::parse(env) else {
        bail!("--env must be staging or production");
    };
    let suite = Suite::load(suite)?;
    if kind == Kind::Route {
        suite.check_for_route()?;
    }
    let Some(gateway) = global.gateway.as_deref() else {
        bail!(
            "{} test runs its cases through a gateway: pass --gateway URL (or set TOLLGATE_GATEWAY)",
            kind.group()
        );
    };
    let prices = crate::setup::load(global)?.config.price_table();
    test(
        TestRun {
            kind,
            name,
            env,
            suite: &suite,
            gateway,
            key,
            prices: &prices,
            json,
        },
        api,
    )
    .await
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
        self.kind.label(self.name)
    }

    /// The CLI command group (`prompts`, `routes`), also the audit action prefix.
    fn command(&self) -> &'static str {
        self.kind.group()
    }

    /// Store `content` as a new version and point staging at it, unless the latest version
    /// already has it ([`versioning::push`], as the admin API does); audited as
    /// `{prompts,routes}.push`.
    pub async fn push(&self, who: &AdminCredential, content: &str) -> Result<(Pushed, String)> {
        let (pushed, hash) = versioning::push(
            self.opened.store.prompts.as_ref(),
            &self.key,
            content,
            &who.id,
        )
        .await?;
        if let Pushed::Added(v) = pushed {
            self.opened
                .audit_admin(
                    &format!("{}.push", self.command()),
                    &who.id,
                    Some(self.name),
                    "ok",
                    json!({"version": v, "sha256": hash, "env": "staging"}),
                )
                .await?;
        }
        Ok((pushed, hash))
    }

    /// The diff between two versions ([`versioning::diff`], defaults included).
    pub async fn diff(&self, from: Option<i64>, to: Option<i64>) -> Result<Diff> {
        match versioning::diff(self.opened.store.prompts.as_ref(), &self.key, from, to).await {
            Ok(d) => Ok(d),
            Err(DiffError::NoSubject) => match self.kind {
                Kind::Prompt => bail!("no prompt {:?}", self.name),
                Kind::Route => bail!(
                    "route {} has no versions: its targets come from the config",
                    self.name
                ),
            },
            Err(DiffError::NoVersion(v)) => bail!("{} has no version {v}", self.label()),
            Err(DiffError::Store(e)) => Err(e.into()),
        }
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
    /// A new staging version: the prompt or route version as JSON (the gateway validates it
    /// against its own config).
    Push {
        /// The document.
        doc: Value,
    },
    /// What changed between two versions.
    Diff {
        /// From this version.
        from: Option<i64>,
        /// To this version.
        to: Option<i64>,
    },
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
pub async fn remote(api: &AdminClient, kind: Kind, name: &str, op: Remote) -> Result<Outcome> {
    let (group, label) = (kind.group(), kind.label(name));
    let base = kind.api_base(name)?;
    match op {
        Remote::Push { doc } => {
            let v = api.post(&format!("{base}/versions"), &doc).await?;
            let version = v["version"].as_i64().unwrap_or_default();
            let pushed = if v["changed"] == json!(true) {
                Pushed::Added(version)
            } else {
                Pushed::Unchanged(version)
            };
            print_pushed(kind, name, pushed, v["sha256"].as_str().unwrap_or_default());
        }
        Remote::Diff { from, to } => {
            let query: Vec<String> = [("from", from), ("to", to)]
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| format!("{k}={v}")))
                .collect();
            let path = if query.is_empty() {
                format!("{base}/diff")
            } else {
                format!("{base}/diff?{}", query.join("&"))
            };
            let d: Diff = serde_json::from_value(api.get(&path).await?)
                .map_err(|e| anyhow::anyhow!("the gateway's diff is not understood: {e}"))?;
            print_diff(kind, name, &d);
        }
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

#[cfg(test)]
mod tests {
    use tollgate_gateway::admin::rbac::Permission as P;

    #[test]
    fn the_cli_on_the_store_checks_the_roles_the_admin_api_checks() {
        for (list, p) in [
            (crate::prompts::STAGERS, P::PromptsStage),
            (crate::prompts::APPROVERS, P::PromptsPromote),
            (crate::prompts::READERS, P::PromptsRead),
            (crate::routes::MODEL_ADMINS, P::ModelsWrite),
            (crate::routes::READERS, P::ModelsRead),
            (crate::review::READERS, P::ReportsRead),
            (crate::review::LABELLERS, P::ReviewLabel),
            (crate::setup::AUDIT_READERS, P::AuditRead),
            (crate::setup::DATA_STEWARDS, P::DataManage),
        ] {
            assert_eq!(list, p.holders().as_slice(), "{p:?}");
        }
    }
}
