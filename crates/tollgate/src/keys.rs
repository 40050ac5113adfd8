//! `tollgate keys`: create, list, show, revoke and rotate virtual keys (AC-2, AC-4), with
//! the data class their requests carry (DP-4).
//!
//! Keys are written straight to the store; a running gateway sees changes within a second.
//! With `--gateway URL` the same commands go through that gateway's admin API instead
//! ([`crate::admin_client`]), with an admin credential whose role may manage keys.

use std::io::Write;

use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, Utc};
use tollgate_store::class::DataClass;
use tollgate_store::key::{Environment, KeyRecord, KeyState, VirtualKey};

use crate::admin_client::{AdminClient, segment};
use crate::{Outcome, setup};

/// Key subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Create a key; it is printed once and never again.
    Create {
        /// Human name, e.g. the application.
        #[arg(long)]
        name: String,
        /// Person or service responsible for the key.
        #[arg(long)]
        owner: Option<String>,
        /// Team the key belongs to.
        #[arg(long)]
        team: Option<String>,
        /// Environment: production (tg_live_) or staging (tg_test_).
        #[arg(long, default_value = "production", value_parser = parse_env)]
        env: Environment,
        /// Model aliases the key may use, comma separated; `*` for all, `prefix*` for a family.
        #[arg(long, value_delimiter = ',', default_value = "*")]
        models: Vec<String>,
        /// Lifetime, e.g. 90d or 12h (default: no expiry).
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<std::time::Duration>,
        /// Class of the data this key's requests carry: public, internal, confidential, pii
        /// or phi (DP-4). Requests go only to providers approved for the more sensitive of
        /// this and the route's class. Default: the route's class alone.
        #[arg(long, value_parser = parse_class)]
        data_class: Option<DataClass>,
        /// Data-plane role: `app` (default: the model endpoints) or `data-steward` (also the
        /// fine-tuning file and job endpoints, `/v1/files` and `/v1/fine_tuning/jobs`).
        #[arg(long, default_value = "app", value_parser = parse_key_role)]
        role: KeyRole,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List keys (never their values).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one key's metadata.
    Show {
        /// Key id (key_…).
        id: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key; gateways refuse it within a second.
    Revoke {
        /// Key id.
        id: String,
    },
    /// List keys past or near the `[rotation]` age policy (exit 1 if any is past it).
    Audit {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Issue a successor; the old key keeps working for the grace period.
    Rotate {
        /// Key id.
        id: String,
        /// How long the old key stays valid, e.g. 24h.
        #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
        grace: std::time::Duration,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn parse_env(s: &str) -> Result<Environment, String> {
    Environment::parse(s)
        .ok_or_else(|| format!("unknown environment {s:?}: use production or staging"))
}

/// The data-plane role of a key (AC-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRole {
    /// Model endpoints only.
    App,
    /// Also the fine-tuning file and job endpoints.
    DataSteward,
}

impl KeyRole {
    /// What the store keeps: nothing for `app`.
    pub fn stored(self) -> Option<String> {
        match self {
            Self::App => None,
            Self::DataSteward => Some(tollgate_gateway::datasets::STEWARD_ROLE.to_owned()),
        }
    }

    /// The name on the command line and in the admin API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::DataSteward => tollgate_gateway::datasets::STEWARD_ROLE,
        }
    }
}

fn parse_key_role(s: &str) -> Result<KeyRole, String> {
    match s {
        "app" => Ok(KeyRole::App),
        "data-steward" => Ok(KeyRole::DataSteward),
        _ => Err(format!(
            "unknown key role {s:?}: use app or data-steward (admin roles belong to admin credentials)"
        )),
    }
}

fn parse_class(s: &str) -> Result<DataClass, String> {
    s.parse()
        .map_err(|e: tollgate_store::class::UnknownDataClass| e.to_string())
}

fn state_name(r: &KeyRecord) -> &'static str {
    match r.state(Utc::now()) {
        KeyState::Active => "active",
        KeyState::Expired => "expired",
        KeyState::Revoked => "revoked",
    }
}

fn time(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(
        || "-".to_owned(),
        |t| t.format("%Y-%m-%d %H:%M:%SZ").to_string(),
    )
}

fn record_json(r: &KeyRecord) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    v["state"] = serde_json::Value::String(state_name(r).to_owned());
    v
}

fn print_created(key: &VirtualKey, rec: &KeyRecord, json: bool, extra: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        let mut v = record_json(rec);
        v["key"] = serde_json::Value::String(key.expose().to_owned());
        writeln!(out, "{v}")?;
    } else {
        writeln!(
            out,
            "Created key {} ({}, {}){extra}. Store it now: it is shown only once.",
            rec.id, rec.name, rec.environment
        )?;
        writeln!(out)?;
        writeln!(out, "{}", key.expose())?;
    }
    Ok(())
}

/// Print `keys audit` (AC-4), the same from the store or a gateway; exit 1 when a key is
/// past the policy or there is no policy at all.
fn print_keys_audit(report: &tollgate_gateway::rotation::KeysAudit, json: bool) -> Result<Outcome> {
    use tollgate_gateway::rotation::KeyAge;
    if !report.policy {
        if json {
            println!("{}", serde_json::to_string_pretty(report)?);
        } else {
            println!("WARN: no [rotation] policy is configured, so no key has a maximum age.");
            println!(
                "Set e.g. [rotation] production = {{ max_age = \"90d\", warn_before = \"14d\" }}."
            );
        }
        return Ok(Outcome::Findings);
    }
    let due = report.due;
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        println!(
            "{}: {due} key(s) past the rotation policy, {} checked",
            if due == 0 { "PASS" } else { "FAIL" },
            report.keys.len()
        );
        for k in &report.keys {
            let status = match k.age {
                KeyAge::Due { days_over } => format!("PAST POLICY by {days_over} days"),
                KeyAge::DueSoon { days_left } => format!("due in {days_left} days"),
                KeyAge::Ok { days_left } => format!("ok ({days_left} days left)"),
                KeyAge::NoPolicy => "no policy".to_owned(),
            };
            println!(
                "  {}  {:<20} {:<10} created {}  {status}",
                k.id,
                k.name,
                k.environment,
                k.created_at.format("%Y-%m-%d")
            );
        }
        if due > 0 {
            println!(
                "The gateway rotates due keys on its own schedule; to rotate one now: tollgate keys rotate KEY_ID --grace 24h"
            );
        }
    }
    Ok(if due == 0 {
        Outcome::Ok
    } else {
        Outcome::Findings
    })
}

/// Run a keys subcommand.
pub async fn run(global: &setup::GlobalArgs, cmd: KeysCommand) -> Result<Outcome> {
    setup::init_logging(false);
    if let Some(api) = AdminClient::from_args(global, None)? {
        return remote(&api, cmd).await;
    }
    let loaded = setup::load(global)?;
    let opened = setup::open(global, &loaded.data_dir).await?;
    let keys = &opened.store.keys;
    match cmd {
        KeysCommand::Audit { json } => {
            let report = tollgate_gateway::rotation::audit_keys(
                &opened.store,
                loaded.config.rotation.as_ref(),
                Utc::now(),
            )
            .await?;
            return print_keys_audit(&report, json);
        }
        KeysCommand::Create {
            name,
            owner,
            team,
            env,
            models,
            expires_in,
            data_class,
            role,
            json,
        } => {
            if name.trim().is_empty() {
                bail!("--name must not be empty");
            }
            let models: Vec<String> = models
                .into_iter()
                .map(|m| m.trim().to_owned())
                .filter(|m| !m.is_empty())
                .collect();
            if models.is_empty() {
                bail!("--models must name at least one model (or *)");
            }
            let key = VirtualKey::generate(env);
            let mut rec = KeyRecord::new(&key, opened.hasher.hash(&key), name);
            rec.owner = owner;
            rec.team = team;
            rec.allowed_models = models;
            rec.data_class = data_class;
            rec.role = role.stored();
            if let Some(d) = expires_in {
                rec.expires_at = Some(
                    rec.created_at
                        + chrono::Duration::from_std(d).context("--expires-in is too large")?,
                );
            }
            keys.insert_key(&rec).await?;
            print_created(&key, &rec, json, "")?;
        }
        KeysCommand::List { json } => {
            let all = keys.list_keys().await?;
            let mut out = std::io::stdout().lock();
            if json {
                let v: Vec<_> = all.iter().map(record_json).collect();
                writeln!(out, "{}", serde_json::Value::Array(v))?;
            } else if all.is_empty() {
                writeln!(
                    out,
                    "No keys. Create one with: tollgate keys create --name my-app"
                )?;
            } else {
                writeln!(
                    out,
                    "{:<22} {:<16} {:<10} {:<8} {:<12} {:<20} {:<20} MODELS",
                    "ID", "NAME", "ENV", "STATE", "TEAM", "EXPIRES", "LAST USED"
                )?;
                for r in &all {
                    writeln!(
                        out,
                        "{:<22} {:<16} {:<10} {:<8} {:<12} {:<20} {:<20} {}",
                        r.id,
                        r.name,
                        r.environment,
                        state_name(r),
                        r.team.as_deref().unwrap_or("-"),
                        time(r.expires_at),
                        time(r.last_used_at),
                        r.allowed_models.join(",")
                    )?;
                }
            }
        }
        KeysCommand::Show { id, json } => {
            let r = keys
                .key_by_id(&id)
                .await?
                .ok_or_else(|| anyhow!("no key with id {id}"))?;
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", record_json(&r))?;
            } else {
                writeln!(out, "{} is {}", r.id, state_name(&r))?;
                for (k, v) in [
                    ("name", r.name.clone()),
                    ("prefix", format!("{}…", r.display_prefix)),
                    ("environment", r.environment.to_string()),
                    ("owner", r.owner.clone().unwrap_or_else(|| "-".into())),
                    ("team", r.team.clone().unwrap_or_else(|| "-".into())),
                    ("models", r.allowed_models.join(", ")),
                    (
                        "data class",
                        r.data_class
                            .map_or_else(|| "(the route's)".into(), |c| c.to_string()),
                    ),
                    ("role", r.role.clone().unwrap_or_else(|| "app".into())),
                    ("created", time(Some(r.created_at))),
                    ("expires", time(r.expires_at)),
                    ("revoked", time(r.revoked_at)),
                    ("last used", time(r.last_used_at)),
                    (
                        "rotated from",
                        r.rotated_from.clone().unwrap_or_else(|| "-".into()),
                    ),
                    (
                        "rotated to",
                        r.rotated_to.clone().unwrap_or_else(|| "-".into()),
                    ),
                ] {
                    writeln!(out, "  {k:<13} {v}")?;
                }
            }
        }
        KeysCommand::Revoke { id } => {
            if !keys.revoke_key(&id, tollgate_store::now()).await? {
                bail!("no key with id {id}");
            }
            println!("Revoked {id}. Gateways refuse it within one second.");
        }
        KeysCommand::Rotate { id, grace, json } => {
            let old = keys
                .key_by_id(&id)
                .await?
                .ok_or_else(|| anyhow!("no key with id {id}"))?;
            if old.state(Utc::now()) != KeyState::Active {
                bail!(
                    "key {id} is {} and cannot be rotated; create a new key instead",
                    state_name(&old)
                );
            }
            let (key, rec) = old.successor(&opened.hasher);
            keys.insert_key(&rec).await?;
            let until = tollgate_store::now()
                + chrono::Duration::from_std(grace).context("--grace is too large")?;
            keys.mark_rotated(&old.id, &rec.id, until).await?;
            print_created(
                &key,
                &rec,
                json,
                &format!("; {} stays valid until {}", old.id, time(Some(until))),
            )?;
        }
    }
    Ok(Outcome::Ok)
}

/// Print a key created or rotated through the admin API, like [`print_created`].
fn print_created_remote(v: &serde_json::Value, json: bool, extra: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let key = v["key"].as_str().unwrap_or_default();
    let rec = &v["record"];
    if json {
        let mut r = rec.clone();
        r["key"] = serde_json::Value::String(key.to_owned());
        writeln!(out, "{r}")?;
    } else {
        writeln!(
            out,
            "Created key {} ({}, {}){extra}. Store it now: it is shown only once.",
            rec["id"].as_str().unwrap_or_default(),
            rec["name"].as_str().unwrap_or_default(),
            rec["environment"].as_str().unwrap_or_default()
        )?;
        writeln!(out)?;
        writeln!(out, "{key}")?;
    }
    Ok(())
}

/// `keys …` through a gateway's admin API.
async fn remote(api: &AdminClient, cmd: KeysCommand) -> Result<Outcome> {
    let text = |v: &serde_json::Value, f: &str| v[f].as_str().unwrap_or("-").to_owned();
    match cmd {
        KeysCommand::Audit { json } => {
            let report = serde_json::from_value(api.get("/admin/v1/keys/audit").await?)
                .map_err(|e| anyhow!("the gateway's key audit is not understood: {e}"))?;
            return print_keys_audit(&report, json);
        }
        KeysCommand::Create {
            name,
            owner,
            team,
            env,
            models,
            expires_in,
            data_class,
            role,
            json,
        } => {
            let days = match expires_in {
                None => None,
                Some(d) if d.as_secs() % 86_400 == 0 && d.as_secs() > 0 => {
                    Some(d.as_secs() / 86_400)
                }
                Some(_) => bail!("through --gateway, --expires-in is whole days (e.g. 90d)"),
            };
            let v = api
                .post(
                    "/admin/v1/keys",
                    &serde_json::json!({
                        "name": name, "owner": owner, "team": team,
                        "environment": env.as_str(), "models": models,
                        "expires_in_days": days, "role": role.as_str(),
                        "data_class": data_class.map(|c| c.to_string()),
                    }),
                )
                .await?;
            print_created_remote(&v, json, "")?;
        }
        KeysCommand::List { json } => {
            let v = api.get("/admin/v1/keys").await?;
            let all = v["keys"].as_array().cloned().unwrap_or_default();
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::Value::Array(all))?;
            } else if all.is_empty() {
                writeln!(
                    out,
                    "No keys. Create one with: tollgate keys create --name my-app"
                )?;
            } else {
                writeln!(
                    out,
                    "{:<22} {:<16} {:<10} {:<8} {:<12} {:<12} MODELS",
                    "ID", "NAME", "ENV", "STATE", "TEAM", "ROLE"
                )?;
                for r in &all {
                    let models: Vec<&str> = r["models"]
                        .as_array()
                        .map(|m| m.iter().filter_map(|x| x.as_str()).collect())
                        .unwrap_or_default();
                    writeln!(
                        out,
                        "{:<22} {:<16} {:<10} {:<8} {:<12} {:<12} {}",
                        text(r, "id"),
                        text(r, "name"),
                        text(r, "environment"),
                        text(r, "state"),
                        text(r, "team"),
                        text(r, "role"),
                        models.join(",")
                    )?;
                }
            }
        }
        KeysCommand::Show { id, json } => {
            let v = api
                .get(&format!("/admin/v1/keys/{}", segment(&id)?))
                .await?;
            let r = &v["key"];
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{r}")?;
            } else {
                writeln!(out, "{} is {}", text(r, "id"), text(r, "state"))?;
                for f in [
                    "name",
                    "prefix",
                    "environment",
                    "owner",
                    "team",
                    "role",
                    "data_class",
                    "created_at",
                    "expires_at",
                    "revoked_at",
                    "last_used_at",
                ] {
                    writeln!(out, "  {:<13} {}", f.replace('_', " "), text(r, f))?;
                }
            }
        }
        KeysCommand::Revoke { id } => {
            api.post(
                &format!("/admin/v1/keys/{}/revoke", segment(&id)?),
                &serde_json::json!({}),
            )
            .await?;
            println!("Revoked {id}. Gateways refuse it within one second.");
        }
        KeysCommand::Rotate { id, grace, json } => {
            let v = api
                .post(
                    &format!("/admin/v1/keys/{}/rotate", segment(&id)?),
                    &serde_json::json!({"grace": humantime::format_duration(grace).to_string()}),
                )
                .await?;
            let until = v["old"]["valid_until"].as_str().unwrap_or("-").to_owned();
            print_created_remote(&v, json, &format!("; {id} stays valid until {until}"))?;
        }
    }
    Ok(Outcome::Ok)
}
