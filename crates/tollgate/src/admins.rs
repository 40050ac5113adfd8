//! `tollgate admins`: issue, list and revoke admin-plane credentials (checklist AC-3), so that
//! each person gets a credential with the least role they need and loses it when they leave.
//!
//! Like `keys`, the commands work on the store directly (with an admin credential whose role
//! may manage admins, from `TOLLGATE_ADMIN_TOKEN` or `--admin-token-file`), or with
//! `--gateway URL` through that gateway's admin API ([`crate::admin_client`]). The same rules
//! hold both ways: only an owner issues or revokes an owner, the last active owner cannot be
//! revoked (the store refuses it atomically), and every action, refusals included, is in the
//! audit trail.

use anyhow::{Result, bail};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tollgate_gateway::admin::rbac::{Permission, Role};
use tollgate_store::key::{new_admin_credential, random_base62};
use tollgate_store::{AdminCredential, AdminEntry, AdminRevocation, OWNER_ROLE};

use crate::Outcome;
use crate::admin_client::{AdminClient, segment};
use crate::setup::{self, AdminArgs};

/// Admin credential subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AdminsCommand {
    /// Issue a credential bound to a role; it is printed once and never again.
    Create {
        /// Whose credential this is (a person or a service), kept in the audit trail.
        #[arg(long)]
        name: String,
        /// owner, admin, model-admin, prompt-engineer, approver, data-steward, auditor or
        /// incident-responder.
        #[arg(long)]
        role: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// List admin credentials with their roles and states (never the credentials).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Revoke a credential; it stops working at once.
    Revoke {
        /// Credential id (adm_…).
        id: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

impl AdminsCommand {
    fn admin(&self) -> &AdminArgs {
        match self {
            Self::Create { admin, .. } | Self::List { admin, .. } | Self::Revoke { admin, .. } => {
                admin
            }
        }
    }
}

/// A role an admin credential may hold (not `app`, the data plane's).
fn admin_role(s: &str) -> Result<Role> {
    match Role::parse(s) {
        Some(r) if r != Role::App => Ok(r),
        _ => bail!(
            "unknown admin role {s:?}: use one of {}",
            Role::ALL
                .iter()
                .filter(|r| **r != Role::App)
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn print_created(id: &str, role: &str, credential: &str, json: bool) {
    if json {
        println!(
            "{}",
            json!({"id": id, "role": role, "credential": credential})
        );
    } else {
        println!(
            "Created admin credential {id} (role {role}). Store it now: it is shown only once."
        );
        println!();
        println!("{credential}");
    }
}

fn print_list(admins: &[Value], json: bool) -> Result<()> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"admins": admins}))?
        );
        return Ok(());
    }
    let active = admins.iter().filter(|a| a["state"] == "active").count();
    println!(
        "{active} active admin credential(s), {} in all",
        admins.len()
    );
    let text = |a: &Value, f: &str| a[f].as_str().unwrap_or("-").to_owned();
    for a in admins {
        println!(
            "  {}  {:<20} {:<19} {:<8} created {}  revoked {}",
            text(a, "id"),
            text(a, "name"),
            text(a, "role"),
            text(a, "state"),
            text(a, "created_at"),
            text(a, "revoked_at"),
        );
    }
    Ok(())
}

/// Run an admins subcommand.
pub async fn run(global: &setup::GlobalArgs, cmd: AdminsCommand) -> Result<Outcome> {
    setup::init_logging(false);
    if let Some(api) = AdminClient::from_args(global, Some(cmd.admin()))? {
        return remote(&api, cmd).await;
    }
    let loaded = setup::load(global)?;
    let opened = setup::open(global, &loaded.data_dir).await?;
    let managers = Permission::AdminsManage.holders();
    match cmd {
        AdminsCommand::Create {
            name,
            role,
            json,
            admin,
        } => {
            let role = admin_role(&role)?;
            let name = name.trim();
            if name.is_empty() {
                bail!("--name must say whose credential this is");
            }
            let who = opened
                .require_role(&admin, &managers, "admins.create")
                .await?;
            if role == Role::Owner && who.role != OWNER_ROLE {
                opened
                    .audit_admin(
                        "admins.create",
                        &who.id,
                        None,
                        "denied",
                        json!({"role": OWNER_ROLE}),
                    )
                    .await?;
                bail!(
                    "only an owner may create an owner ({} has role {})",
                    who.id,
                    who.role
                );
            }
            let secret = new_admin_credential();
            let cred = AdminCredential {
                id: format!("adm_{}", random_base62(16)),
                hash: opened.hasher.hash_text(secret.expose_secret()),
                name: name.to_owned(),
                role: role.as_str().to_owned(),
                created_at: tollgate_store::now(),
            };
            opened.store.admins.insert_admin(&cred).await?;
            opened
                .audit_admin(
                    "admins.create",
                    &who.id,
                    Some(&cred.id),
                    "ok",
                    json!({"role": role.as_str()}),
                )
                .await?;
            print_created(&cred.id, role.as_str(), secret.expose_secret(), json);
        }
        AdminsCommand::List { json, admin } => {
            let who = opened
                .require_role(&admin, &managers, "admins.list")
                .await?;
            let list = opened.store.admins.list_admins().await?;
            opened
                .audit_admin(
                    "admins.list",
                    &who.id,
                    None,
                    "ok",
                    json!({"count": list.len()}),
                )
                .await?;
            let rows: Vec<Value> = list.iter().map(AdminEntry::to_json).collect();
            print_list(&rows, json)?;
        }
        AdminsCommand::Revoke { id, admin } => {
            let who = opened
                .require_role(&admin, &managers, "admins.revoke")
                .await?;
            let target = opened
                .store
                .admins
                .list_admins()
                .await?
                .into_iter()
                .find(|a| a.id == id);
            if target.as_ref().is_some_and(|t| t.role == OWNER_ROLE) && who.role != OWNER_ROLE {
                opened
                    .audit_admin(
                        "admins.revoke",
                        &who.id,
                        Some(&id),
                        "denied",
                        json!({"role": OWNER_ROLE}),
                    )
                    .await?;
                bail!(
                    "only an owner may revoke an owner ({} has role {})",
                    who.id,
                    who.role
                );
            }
            let outcome = opened
                .store
                .admins
                .revoke_admin(&id, chrono::Utc::now())
                .await?;
            let (result, why) = match outcome {
                AdminRevocation::Revoked => ("ok", None),
                AdminRevocation::NotFound => ("refused", Some(format!("no admin credential {id}"))),
                AdminRevocation::AlreadyRevoked => (
                    "refused",
                    Some(format!("admin credential {id} is already revoked")),
                ),
                AdminRevocation::LastOwner => (
                    "refused",
                    Some(format!(
                        "{id} is the last active owner credential: create another owner first (`tollgate admins create --role owner`), or nobody could administer owners again"
                    )),
                ),
            };
            opened
                .audit_admin(
                    "admins.revoke",
                    &who.id,
                    Some(&id),
                    result,
                    json!({"reason": why}),
                )
                .await?;
            if let Some(why) = why {
                bail!(why);
            }
            println!("Revoked admin credential {id}; it no longer opens the admin plane.");
        }
    }
    Ok(Outcome::Ok)
}

/// The same commands through a gateway's admin API.
async fn remote(api: &AdminClient, cmd: AdminsCommand) -> Result<Outcome> {
    match cmd {
        AdminsCommand::Create {
            name, role, json, ..
        } => {
            let role = admin_role(&role)?;
            let v = api
                .post(
                    "/admin/v1/admins",
                    &json!({"name": name, "role": role.as_str()}),
                )
                .await?;
            let text = |f: &str| v[f].as_str().unwrap_or_default().to_owned();
            print_created(&text("id"), &text("role"), &text("credential"), json);
        }
        AdminsCommand::List { json, .. } => {
            let v = api.get("/admin/v1/admins").await?;
            print_list(v["admins"].as_array().map_or(&[], Vec::as_slice), json)?;
        }
        AdminsCommand::Revoke { id, .. } => {
            api.post(
                &format!("/admin/v1/admins/{}/revoke", segment(&id)?),
                &json!({}),
            )
            .await?;
            println!("Revoked admin credential {id}; it no longer opens the admin plane.");
        }
    }
    Ok(Outcome::Ok)
}
