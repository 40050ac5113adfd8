//! `tollgate prompts`: versioned prompts, staging and production, gated promotion and
//! rollback (checklist DO-3, DO-4).
//!
//! - `push FILE`: a prompt file (YAML, TOML or JSON) becomes a new immutable version and
//!   staging points at it (prompt-engineer);
//! - `diff`, `history`: what changed, who changed it, what was evaluated and deployed;
//! - `test NAME --suite FILE`: an evaluation suite run through a running gateway with a
//!   staging key; the result is recorded on the version;
//! - `promote NAME`: production gets the staging version, only if that version passed its
//!   evaluation and, with `[governance] four_eyes = true`, the approver is not its author
//!   (approver);
//! - `rollback NAME [--to V]`: production goes back to the previous production version, in
//!   one atomic write (approver).
//!
//! With `--gateway URL` every command goes through that gateway's admin API instead of the
//! store, under the same gates (the gateway checks a pushed prompt against its own config);
//! `test` always records its result there, since its cases run through that gateway.
//!
//! Gateways reload the deployed versions every 400 ms, so promotions and rollbacks reach every
//! instance within a second. Every action, and every refusal, is in the audit trail.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tollgate_gateway::prompt::{self, Prompt};
use tollgate_store::prompt::{Deployment, PromptEnv};

use crate::Outcome;
use crate::setup::{self, AdminArgs};

pub(crate) mod suite;

use suite::Suite;

use crate::admin_client::AdminClient;
use crate::versions::{self, Kind, Remote, Subject};

/// Roles that may push prompts to staging and run their evaluations.
pub const STAGERS: &[&str] = &["owner", "admin", "prompt-engineer"];
/// Roles that may promote and roll back.
pub const APPROVERS: &[&str] = &["owner", "admin", "approver"];
/// Roles that may read prompt history and diffs.
pub const READERS: &[&str] = &["owner", "admin", "prompt-engineer", "approver", "auditor"];
/// Largest prompt or suite file read.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Most cases in one suite.
pub const MAX_CASES: usize = 500;
/// How long one suite case may take before it fails.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(120);

/// `tollgate prompts …`.
#[derive(Debug, clap::Subcommand)]
pub enum PromptsCommand {
    /// Push a prompt file (YAML, TOML or JSON) as a new staging version.
    Push {
        /// The prompt file.
        file: PathBuf,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Show what changed between two versions (default: production → latest).
    Diff {
        /// Prompt name.
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
    /// Every version with its author, hash and evaluation, and the deployment log.
    History {
        /// Prompt name.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Run an evaluation suite through a running gateway and record the result on the
    /// version under test; exit 1 if a case fails.
    Test {
        /// Prompt name.
        name: String,
        /// Environment whose version is tested (its key must be of that environment).
        #[arg(long, default_value = "staging")]
        env: String,
        /// Suite file (YAML, TOML or JSON). The cases run through the gateway named by the
        /// global `--gateway URL` (`TOLLGATE_GATEWAY`); the result is recorded in the store.
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
    /// Point production at the staging version, if it passed its evaluation.
    Promote {
        /// Prompt name.
        name: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Point production back at the previous production version (or `--to VERSION`).
    Rollback {
        /// Prompt name.
        name: String,
        /// The version to restore.
        #[arg(long)]
        to: Option<i64>,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

/// Read a YAML, TOML or JSON file (by extension) into `T`, within [`MAX_FILE_BYTES`].
pub(crate) fn read_doc<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.len() > MAX_FILE_BYTES {
        bail!(
            "{} is larger than {MAX_FILE_BYTES} bytes; a {what} file is small text",
            path.display()
        );
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let parsed = match ext.as_str() {
        "yaml" | "yml" => serde_yaml::from_str(&text).map_err(|e| e.to_string()),
        "toml" => toml::from_str(&text).map_err(|e| e.to_string()),
        "json" => serde_json::from_str(&text).map_err(|e| e.to_string()),
        _ => bail!(
            "{}: name a {what} file .yaml, .yml, .toml or .json",
            path.display()
        ),
    };
    parsed.map_err(|e| anyhow::anyhow!("{} is not a valid {what} file: {e}", path.display()))
}

/// Load and check a prompt file: every problem at once.
pub fn load_prompt(path: &Path, routes: Option<&BTreeMap<String, impl Sized>>) -> Result<Prompt> {
    let p: Prompt = read_doc(path, "prompt")?;
    let mut problems = p.validate();
    if let Some(r) = routes {
        if !p.route.is_empty() && !r.contains_key(&p.route) {
            problems.push(format!(
                "route {:?} is not a route of this gateway's config",
                p.route
            ));
        }
    }
    if !problems.is_empty() {
        bail!(
            "{} is not a valid prompt:\n  - {}",
            path.display(),
            problems.join("\n  - ")
        );
    }
    Ok(p)
}

fn check_name(name: &str) -> Result<()> {
    if !prompt::valid_name(name) {
        bail!(
            "{name:?} is not a prompt name (1-{} characters of a-z 0-9 _ - .)",
            prompt::MAX_NAME_LEN
        );
    }
    Ok(())
}

/// The version `env` points at now, from the deployment log.
pub(crate) fn current(log: &[Deployment], env: PromptEnv) -> Option<i64> {
    prompt::deployed_version(log, env)
}

impl PromptsCommand {
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

/// `prompts …` through a gateway's admin API (`--gateway URL`).
async fn remote(
    global: &setup::GlobalArgs,
    api: &AdminClient,
    cmd: PromptsCommand,
) -> Result<Outcome> {
    let (name, op) = match cmd {
        PromptsCommand::Push { file, .. } => {
            // Checked here for a clear message about the file; the gateway checks the route.
            let p = load_prompt(&file, None::<&BTreeMap<String, ()>>)?;
            (
                p.name.clone(),
                Remote::Push {
                    doc: serde_json::to_value(&p)?,
                },
            )
        }
        PromptsCommand::Diff { name, from, to, .. } => (name, Remote::Diff { from, to }),
        PromptsCommand::History { name, json, .. } => (name, Remote::History { json }),
        PromptsCommand::Promote { name, .. } => (name, Remote::Promote),
        PromptsCommand::Rollback { name, to, .. } => (name, Remote::Rollback { to }),
        PromptsCommand::Test {
            name,
            env,
            suite,
            key,
            json,
            ..
        } => {
            check_name(&name)?;
            return versions::test_through(
                global,
                api,
                Kind::Prompt,
                &name,
                &env,
                &suite,
                &key,
                json,
            )
            .await;
        }
    };
    check_name(&name)?;
    versions::remote(api, Kind::Prompt, &name, op).await
}

/// Run a `prompts` command.
pub async fn run(global: &setup::GlobalArgs, cmd: PromptsCommand) -> Result<Outcome> {
    setup::init_logging(false);
    // A suite is checked before anything else, so a bad file is reported as such.
    if let PromptsCommand::Test { suite, .. } = &cmd {
        Suite::load(suite)?;
        if global.gateway.is_none() {
            bail!(
                "prompts test runs its cases through a gateway: pass --gateway URL (or set TOLLGATE_GATEWAY)"
            );
        }
    }
    if let Some(api) = AdminClient::from_args(global, Some(cmd.admin()))? {
        return remote(global, &api, cmd).await;
    }
    let loaded = setup::load(global)?;
    // Files are checked before anything is opened, so a bad file is reported as such.
    let pushed = match &cmd {
        PromptsCommand::Push { file, .. } => Some(load_prompt(
            file,
            (!loaded.config.routes.is_empty()).then_some(&loaded.config.routes),
        )?),
        _ => None,
    };
    let opened = setup::open(global, &loaded.data_dir).await?;
    let store = &opened.store.prompts;
    match cmd {
        PromptsCommand::Push { admin, .. } => {
            let Some(p) = pushed else {
                bail!("no prompt");
            };
            let who = opened.require_role(&admin, STAGERS, "prompts.push").await?;
            let subject = Subject::new(&opened, Kind::Prompt, &p.name);
            let (pushed, hash) = subject.push(&who, &p.canonical()).await?;
            versions::print_pushed(Kind::Prompt, &p.name, pushed, &hash);
            Ok(Outcome::Ok)
        }
        PromptsCommand::Diff {
            name,
            from,
            to,
            admin,
        } => {
            check_name(&name)?;
            opened.require_role(&admin, READERS, "prompts.diff").await?;
            let d = Subject::new(&opened, Kind::Prompt, &name)
                .diff(from, to)
                .await?;
            versions::print_diff(Kind::Prompt, &name, &d);
            Ok(Outcome::Ok)
        }
        PromptsCommand::History { name, json, admin } => {
            check_name(&name)?;
            opened
                .require_role(&admin, READERS, "prompts.history")
                .await?;
            let versions = store.prompt_versions(&name).await?;
            if versions.is_empty() {
                bail!("no prompt {name:?}");
            }
            let log = store.prompt_deployments(&name).await?;
            let (staging, production) = (
                current(&log, PromptEnv::Staging),
                current(&log, PromptEnv::Production),
            );
            if json {
                let vs: Vec<Value> = versions
                    .iter()
                    .map(|v| {
                        json!({
                            "version": v.version, "author": v.author,
                            "created_at": v.created_at.to_rfc3339(), "sha256": v.content_hash,
                            "eval": v.eval.as_ref().map(|e| json!({"passed": e.passed, "at": e.at.to_rfc3339()})),
                            "diff": v.diff,
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    json!({"name": name, "staging": staging, "production": production, "versions": vs, "deployments": log})
                );
                return Ok(Outcome::Ok);
            }
            println!(
                "{name}: staging v{}, production {}",
                staging.unwrap_or_default(),
                production.map_or("none".to_owned(), |v| format!("v{v}"))
            );
            for v in &versions {
                let eval = match &v.eval {
                    None => "not evaluated".to_owned(),
                    Some(e) if e.passed => format!("eval passed {}", e.at.to_rfc3339()),
                    Some(e) => format!("eval FAILED {}", e.at.to_rfc3339()),
                };
                let mut marks = Vec::new();
                if staging == Some(v.version) {
                    marks.push("staging");
                }
                if production == Some(v.version) {
                    marks.push("production");
                }
                println!(
                    "v{}\t{}\t{}\tsha256 {}\t{eval}\t{}",
                    v.version,
                    v.created_at.to_rfc3339(),
                    v.author,
                    &v.content_hash[..v.content_hash.len().min(12)],
                    marks.join(",")
                );
            }
            println!("\ndeployments:");
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
        PromptsCommand::Test { .. } => bail!(
            "prompts test runs its cases through a gateway: pass --gateway URL (or set TOLLGATE_GATEWAY)"
        ),
        PromptsCommand::Promote { name, admin } => {
            check_name(&name)?;
            let who = opened
                .require_role(&admin, APPROVERS, "prompts.promote")
                .await?;
            Subject::new(&opened, Kind::Prompt, &name)
                .promote(&who, loaded.config.governance.four_eyes)
                .await
        }
        PromptsCommand::Rollback { name, to, admin } => {
            check_name(&name)?;
            let who = opened
                .require_role(&admin, APPROVERS, "prompts.rollback")
                .await?;
            Subject::new(&opened, Kind::Prompt, &name)
                .rollback(&who, to)
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::suite::{Checks, check_case, compile, verdict};
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn malformed_prompt_and_suite_files_are_clear_errors() {
        let d = tempfile::tempdir().unwrap();
        let none: Option<&BTreeMap<String, ()>> = None;
        let ok = write(
            d.path(),
            "p.yaml",
            "name: support\nroute: gpt\nsystem: You help {{customer}}.\nparams:\n  temperature: 0.2\n",
        );
        assert_eq!(load_prompt(&ok, none).unwrap().name, "support");
        let toml = write(
            d.path(),
            "p.toml",
            "name = \"support\"\nroute = \"gpt\"\n[[messages]]\nrole = \"user\"\ncontent = \"hi {{x}}\"\n",
        );
        assert_eq!(load_prompt(&toml, none).unwrap().messages.len(), 1);
        for (file, text, says) in [
            ("a.yaml", "name: [unclosed", "not a valid prompt file"),
            (
                "b.yaml",
                "name: x\nroute: gpt\nsystem: hi\ntemprature: 1\n",
                "unknown field",
            ),
            (
                "c.yaml",
                "name: Bad Name\nroute: gpt\nsystem: '{{ oops'\n",
                "never closed",
            ),
            ("d.txt", "name: x", ".yaml, .yml, .toml or .json"),
            ("e.toml", "name = 1", "not a valid prompt file"),
        ] {
            let e = load_prompt(&write(d.path(), file, text), none)
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{file}: {e}");
        }
        let e = load_prompt(&d.path().join("missing.yaml"), none).unwrap_err();
        assert!(format!("{e:#}").contains("missing.yaml"));

        let s = write(
            d.path(),
            "s.yaml",
            "cases:\n  - name: a\n    variables: {customer: Ada}\n    assert:\n      contains: Ada\n      regex: ['^A', '\\d']\n      json_schema: {type: object}\n",
        );
        assert_eq!(Suite::load(&s).unwrap().cases.len(), 1);
        for (file, text, says) in [
            ("s1.yaml", "cases: []\n", "at least one case"),
            (
                "s2.yaml",
                "cases:\n  - name: a\n    assert: {regex: '('}\n",
                "assert.regex",
            ),
            (
                "s3.yaml",
                "cases:\n  - name: a\n    assert: {json_schema: {type: 12}}\n",
                "json_schema",
            ),
            (
                "s4.yaml",
                "cases:\n  - name: a\n    assert: {guard: maybe}\n",
                "allowed",
            ),
            (
                "s7.yaml",
                "cases:\n  - name: a\n    assert: {judge: {route: judge, criteria: '  '}}\n",
                "assert.judge.criteria",
            ),
            (
                "s8.yaml",
                "cases:\n  - name: a\n    assert: {judge: {route: '', criteria: polite}}\n",
                "assert.judge.route",
            ),
            (
                "s9.yaml",
                "cases:\n  - name: a\n    assert: {judge: {route: j, criteria: polite, model: x}}\n",
                "not a valid suite file",
            ),
            ("s5.yaml", "cases:\n  - nam: a\n", "not a valid suite file"),
            ("s6.yaml", "- 1\n- 2\n", "not a valid suite file"),
        ] {
            let e = Suite::load(&write(d.path(), file, text))
                .unwrap_err()
                .to_string();
            assert!(e.contains(says), "{file}: {e}");
        }
    }

    #[test]
    fn assertions_check_the_answer() {
        let checks: Checks = serde_json::from_value(json!({
            "contains": ["Ada"], "not_contains": "secret", "regex": "^Hello",
            "json_schema": null, "max_latency_ms": 10,
        }))
        .unwrap();
        let compiled = compile(&checks).unwrap();
        let prices = tollgate_guard::cost::PriceTable::with_defaults();
        let answer = |t: &str| json!({"choices": [{"message": {"content": t}}]});
        let mut f = Vec::new();
        check_case(
            &checks,
            &compiled,
            200,
            &answer("Hello Ada"),
            5,
            &prices,
            &mut f,
        );
        assert!(f.is_empty(), "{f:?}");
        check_case(
            &checks,
            &compiled,
            200,
            &answer("Bye secret"),
            50,
            &prices,
            &mut f,
        );
        assert_eq!(f.len(), 4, "{f:?}");
        let mut f = Vec::new();
        check_case(&checks, &compiled, 500, &json!({}), 5, &prices, &mut f);
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn judge_verdicts_are_read_from_bare_fenced_or_wrapped_json_and_nothing_else() {
        assert_eq!(
            verdict(r#"{"pass": true, "reason": "greets"}"#),
            Some((true, "greets".to_owned()))
        );
        assert_eq!(
            verdict("Sure.\n```json\n{\"pass\": false, \"reason\": \"rude\"}\n```\n"),
            Some((false, "rude".to_owned()))
        );
        assert_eq!(
            verdict(r#"{"pass": true}"#),
            Some((true, "no reason given".to_owned()))
        );
        for junk in [
            "",
            "PASS",
            "{",
            "} {",
            r#"{"pass": "yes"}"#,
            r#"{"verdict": true}"#,
            r#"{"pass": true"#,
            "[true]",
            "{\u{0}}",
        ] {
            assert_eq!(verdict(junk), None, "{junk:?}");
        }
        let long = format!(r#"{{"pass": false, "reason": "{}"}}"#, "é".repeat(1000));
        assert_eq!(verdict(&long).unwrap().1.chars().count(), 300);
    }
}
