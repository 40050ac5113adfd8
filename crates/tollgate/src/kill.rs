//! `tollgate kill` / `tollgate unkill`: kill switches from the CLI (checklist MI-3).
//!
//! Switches are written to the shared store; every running gateway picks them up within a
//! second. Needs an admin credential with the incident-responder role (or owner/admin), and
//! every change is recorded in the audit trail. With `--gateway URL` the same is done through
//! that gateway's admin API ([`crate::admin_client`]).

use anyhow::{Result, bail};
use serde_json::json;
use tollgate_store::control::{KillSwitch, SwitchKind};

use crate::Outcome;
use crate::admin_client::{AdminClient, segment};
use crate::setup::{self, AdminArgs};

/// Roles that may flip kill switches.
pub const RESPONDERS: &[&str] = &["owner", "admin", "incident-responder"];

/// Options of `kill`.
#[derive(Debug, clap::Args)]
pub struct KillArgs {
    /// key, team, route, provider, model or lockdown; or `list` to show what is on.
    kind: String,
    /// Key id, team, route alias, provider or upstream model (none for lockdown).
    target: Option<String>,
    /// Why (kept in the audit trail; required unless listing).
    #[arg(long, default_value = "")]
    reason: String,
    #[command(flatten)]
    admin: AdminArgs,
}

/// Options of `unkill`.
#[derive(Debug, clap::Args)]
pub struct UnkillArgs {
    /// key, team, route, provider, model or lockdown.
    kind: String,
    /// What was switched off (none for lockdown).
    target: Option<String>,
    #[command(flatten)]
    admin: AdminArgs,
}

fn parse(kind: &str, target: Option<String>) -> Result<(SwitchKind, String)> {
    let Some(k) = SwitchKind::parse(kind) else {
        bail!("unknown kind {kind:?}: use key, team, route, provider, model or lockdown");
    };
    match (k, target) {
        (SwitchKind::Lockdown, _) => Ok((k, "*".to_owned())),
        (_, Some(t)) if !t.trim().is_empty() => Ok((k, t)),
        _ => bail!("name the {kind} to switch off, e.g. `tollgate kill {kind} NAME --reason ...`"),
    }
}

fn print_switch(s: &KillSwitch) {
    // Automatic suspensions lift themselves: say when, so nobody clears one in vain.
    let until = s
        .expires_at
        .map(|t| format!("\tuntil {}", t.to_rfc3339()))
        .unwrap_or_default();
    println!(
        "{}\t{}\t{}\t{}\t{}{until}",
        s.kind.as_str(),
        s.target,
        s.set_at.to_rfc3339(),
        s.set_by,
        s.reason
    );
}

fn print_set(kind: SwitchKind, target: &str) {
    if kind == SwitchKind::Lockdown {
        println!(
            "Lockdown on: every gateway serves only break-glass keys within a second. Lift it with `tollgate unkill lockdown`."
        );
    } else {
        println!(
            "{} {target} switched off on every gateway within a second. Lift it with `tollgate unkill {} {target}`.",
            kind.as_str(),
            kind.as_str()
        );
    }
}

/// `kill` through the admin API.
async fn kill_remote(api: &AdminClient, args: KillArgs) -> Result<Outcome> {
    if args.kind == "list" {
        let v = api.get("/admin/v1/killswitches").await?;
        let list = v["switches"].as_array().cloned().unwrap_or_default();
        if list.is_empty() {
            println!("No kill switch is on.");
        }
        let text = |s: &serde_json::Value, f: &str| s[f].as_str().unwrap_or_default().to_owned();
        for s in &list {
            println!(
                "{}\t{}\t{}\t{}\t{}",
                text(s, "kind"),
                text(s, "target"),
                text(s, "set_at"),
                text(s, "set_by"),
                text(s, "reason")
            );
        }
        return Ok(Outcome::Ok);
    }
    let (kind, target) = parse(&args.kind, args.target)?;
    if args.reason.trim().is_empty() {
        bail!("say why with --reason (it goes into the audit trail)");
    }
    api.post(
        "/admin/v1/killswitches",
        &json!({"kind": kind.as_str(), "target": target, "reason": args.reason}),
    )
    .await?;
    print_set(kind, &target);
    Ok(Outcome::Ok)
}

/// Run `kill`.
pub async fn kill(global: &setup::GlobalArgs, args: KillArgs) -> Result<Outcome> {
    setup::init_logging(false);
    if let Some(api) = AdminClient::from_args(global, Some(&args.admin))? {
        return kill_remote(&api, args).await;
    }
    let loaded = setup::load(global)?;
    let opened = setup::open(global, &loaded.data_dir).await?;
    if args.kind == "list" {
        opened
            .require_role(&args.admin, RESPONDERS, "killswitch.list")
            .await?;
        let list = opened.store.control.switches().await?;
        if list.is_empty() {
            println!("No kill switch is on.");
        }
        list.iter().for_each(print_switch);
        return Ok(Outcome::Ok);
    }
    let (kind, target) = parse(&args.kind, args.target)?;
    if args.reason.trim().is_empty() {
        bail!("say why with --reason (it goes into the audit trail)");
    }
    let who = opened
        .require_role(&args.admin, RESPONDERS, "killswitch.set")
        .await?;
    opened
        .store
        .control
        .set_switch(&KillSwitch {
            kind,
            target: target.clone(),
            reason: args.reason.clone(),
            set_by: who.id.clone(),
            set_at: tollgate_store::now(),
            expires_at: None,
        })
        .await?;
    opened
        .audit_admin(
            "killswitch.set",
            &who.id,
            Some(&format!("{}:{target}", kind.as_str())),
            "ok",
            json!({"reason": args.reason}),
        )
        .await?;
    print_set(kind, &target);
    Ok(Outcome::Ok)
}

/// Run `unkill`.
pub async fn unkill(global: &setup::GlobalArgs, args: UnkillArgs) -> Result<Outcome> {
    setup::init_logging(false);
    if let Some(api) = AdminClient::from_args(global, Some(&args.admin))? {
        let (kind, target) = parse(&args.kind, args.target)?;
        api.delete(&format!(
            "/admin/v1/killswitches/{}/{}",
            kind.as_str(),
            segment(&target)?
        ))
        .await?;
        println!("{} {target}: switch lifted.", kind.as_str());
        return Ok(Outcome::Ok);
    }
    let loaded = setup::load(global)?;
    let opened = setup::open(global, &loaded.data_dir).await?;
    let (kind, target) = parse(&args.kind, args.target)?;
    let who = opened
        .require_role(&args.admin, RESPONDERS, "killswitch.clear")
        .await?;
    let existed = opened.store.control.clear_switch(kind, &target).await?;
    opened
        .audit_admin(
            "killswitch.clear",
            &who.id,
            Some(&format!("{}:{target}", kind.as_str())),
            if existed { "ok" } else { "not_found" },
            json!({}),
        )
        .await?;
    if !existed {
        bail!("no {} switch on {target}", kind.as_str());
    }
    println!("{} {target}: switch lifted.", kind.as_str());
    Ok(Outcome::Ok)
}
