//! `tollgate kill` / `tollgate unkill`: kill switches from the CLI (checklist MI-3).
//!
//! Switches are written to the shared store; every running gateway picks them up within a
//! second. Needs an admin credential with the incident-responder role (or owner/admin), and
//! every change is recorded in the audit trail.

use anyhow::{Result, bail};
use serde_json::json;
use tollgate_store::control::{KillSwitch, SwitchKind};

use crate::Outcome;
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

/// Run `kill`.
pub async fn kill(global: &setup::GlobalArgs, args: KillArgs) -> Result<Outcome> {
    setup::init_logging(false);
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
        for s in list {
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
    Ok(Outcome::Ok)
}

/// Run `unkill`.
pub async fn unkill(global: &setup::GlobalArgs, args: UnkillArgs) -> Result<Outcome> {
    setup::init_logging(false);
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
