//! `tollgate audit` and `tollgate retention`: prove, export and read the audit trail (DP-2),
//! and apply retention with legal holds (DP-3).
//!
//! `verify` and `checkpoint` need the data directory and master key; `show`, `export` and the
//! legal-hold commands also need an admin credential with a role that may read or govern
//! audit data, and every use of them is itself recorded. `export` with `--gateway URL` reads
//! through that gateway's admin API instead of the store.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tollgate_store::audit::verify::verify;
use tollgate_store::audit::{Checkpoint, HoldScope, LegalHold, PayloadKind};

use crate::Outcome;
use crate::admin_client::{AdminClient, segment};
use crate::setup::{self, AUDIT_READERS, AdminArgs, DATA_STEWARDS};

/// Records fetched per page by `export`.
const EXPORT_PAGE: u32 = 1_000;
/// Largest checkpoint file read by `verify --from-checkpoint`.
const MAX_CHECKPOINT_FILE: u64 = 1024 * 1024;

/// Audit subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Recompute every chain; name the first bad record. Exit 1 if anything fails.
    Verify {
        /// A checkpoint file saved earlier (`audit checkpoint --out`): detects truncation.
        #[arg(long)]
        from_checkpoint: Vec<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Sign each chain's current head and write the latest checkpoints to a file to keep
    /// elsewhere.
    Checkpoint {
        /// Output file (JSON).
        #[arg(long)]
        out: PathBuf,
    },
    /// Show a request's records and its decrypted payloads (auditor role).
    Show {
        /// Request id (`req_…`) or action id (`act_…`).
        request_id: String,
        #[command(flatten)]
        admin: AdminArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stream records as JSON lines for a SIEM (auditor role).
    Export {
        /// Start (RFC 3339, or a duration ago like 24h); default: the beginning.
        #[arg(long)]
        since: Option<String>,
        /// End, exclusive (RFC 3339 or a duration ago); default: now.
        #[arg(long)]
        until: Option<String>,
        /// Output format.
        #[arg(long, default_value = "jsonl", value_parser = ["jsonl"])]
        format: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Legal holds: suspend retention for a key or team.
    #[command(subcommand)]
    Hold(HoldCommand),
}

/// Legal-hold subcommands (data-steward role).
#[derive(Debug, clap::Subcommand)]
pub enum HoldCommand {
    /// Place a hold.
    Add {
        /// Hold everything of this key id.
        #[arg(long, conflicts_with = "team", required_unless_present = "team")]
        key: Option<String>,
        /// Hold everything of this team.
        #[arg(long)]
        team: Option<String>,
        /// Why (case or ticket number).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Lift a hold.
    Remove {
        /// Key id.
        #[arg(long, conflicts_with = "team", required_unless_present = "team")]
        key: Option<String>,
        /// Team.
        #[arg(long)]
        team: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// List holds.
    List {
        #[command(flatten)]
        admin: AdminArgs,
    },
}

/// Options of `tollgate retention run`.
#[derive(Debug, clap::Subcommand)]
pub enum RetentionCommand {
    /// Apply the `[retention]` policy now (the gateway also runs it on a schedule).
    Run {
        /// Report what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

fn parse_time(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = humantime::parse_duration(s) {
        return Ok(now - chrono::Duration::from_std(d)?);
    }
    bail!("{s:?} is neither an RFC 3339 time (2026-11-01T00:00:00Z) nor a duration ago (24h)")
}

fn read_checkpoints(path: &PathBuf) -> Result<Vec<Checkpoint>> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.len() > MAX_CHECKPOINT_FILE {
        bail!("{} is larger than a checkpoint file can be", path.display());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let v: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a checkpoint file (invalid JSON)", path.display()))?;
    let list = match v.get("checkpoints") {
        Some(l) => l.clone(),
        None => v,
    };
    let cps: Vec<Checkpoint> = match list {
        Value::Array(_) => serde_json::from_value(list),
        other => serde_json::from_value(other).map(|c| vec![c]),
    }
    .with_context(|| format!("{} is not a checkpoint file", path.display()))?;
    Ok(cps)
}

fn record_json(r: &tollgate_store::audit::AuditRecord) -> Value {
    json!({
        "instance": r.instance,
        "seq": r.seq,
        "time": r.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "kind": r.kind,
        "ref_id": r.ref_id,
        "prev_hash": hex::encode(r.prev_hash),
        "hash": hex::encode(r.hash),
        "record": serde_json::from_str::<Value>(&r.body).unwrap_or(Value::String(r.body.clone())),
    })
}

/// `audit export` through a gateway's admin API: the same JSON lines, page by page.
async fn export_remote(
    api: &AdminClient,
    since: Option<&str>,
    until: Option<&str>,
) -> Result<Outcome> {
    let now = Utc::now();
    let mut query = Vec::new();
    if let Some(s) = since {
        query.push(format!(
            "since={}",
            segment(&parse_time(s, now)?.to_rfc3339())?
        ));
    }
    if let Some(u) = until {
        query.push(format!(
            "until={}",
            segment(&parse_time(u, now)?.to_rfc3339())?
        ));
    }
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut after: Option<String> = None;
    loop {
        let mut q = query.clone();
        if let Some(a) = &after {
            q.push(format!("after={}", segment(a)?));
        }
        let page = api
            .get(&format!("/admin/v1/audit/export?{}", q.join("&")))
            .await?;
        for r in page["records"].as_array().into_iter().flatten() {
            serde_json::to_writer(&mut out, r)?;
            out.write_all(b"\n")?;
        }
        match page["next"].as_str() {
            Some(n) if after.as_deref() != Some(n) => after = Some(n.to_owned()),
            _ => break,
        }
    }
    out.flush()?;
    Ok(Outcome::Ok)
}

/// Run an audit subcommand.
pub async fn run(global: &setup::GlobalArgs, cmd: AuditCommand) -> Result<Outcome> {
    setup::init_logging(false);
    if let AuditCommand::Export {
        since,
        until,
        admin,
        ..
    } = &cmd
    {
        if let Some(api) = AdminClient::from_args(global, Some(admin))? {
            return export_remote(&api, since.as_deref(), until.as_deref()).await;
        }
    }
    let loaded = setup::load(global)?;
    let opened = setup::open(global, &loaded.data_dir).await?;
    match cmd {
        AuditCommand::Verify {
            from_checkpoint,
            json,
        } => {
            let mut external = Vec::new();
            for p in &from_checkpoint {
                external.extend(read_checkpoints(p)?);
            }
            let signer = opened.signer().await?;
            let report = verify(
                opened.store.audit.as_ref(),
                Some(&opened.audit_mac_key),
                Some(&signer.verifying_key()),
                &external,
            )
            .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "{}: {} chain(s), {} record(s)",
                    if report.ok() { "PASS" } else { "FAIL" },
                    report.chains.len(),
                    report.chains.iter().map(|c| c.records).sum::<u64>()
                );
                for c in &report.chains {
                    println!(
                        "  {}: seq {}..{} ({} records, {} checkpoint(s) verified, {} after the last){}",
                        c.instance,
                        c.first_seq,
                        c.last_seq,
                        c.records,
                        c.checkpoints_verified,
                        c.unsigned_tail,
                        if c.ok() { "" } else { "  FAIL" }
                    );
                    if let Some(p) = &c.problem {
                        println!("    first bad record: seq {}: {}", p.seq, p.what);
                    }
                    for p in &c.checkpoint_problems {
                        println!("    seq {}: {}", p.seq, p.what);
                    }
                }
                for p in &report.external_problems {
                    println!("  {p}");
                }
                if !report.ok() {
                    println!(
                        "The audit trail was altered. Keep the database as it is for investigation and compare with a backup."
                    );
                }
            }
            Ok(if report.ok() {
                Outcome::Ok
            } else {
                Outcome::Findings
            })
        }
        AuditCommand::Checkpoint { out } => {
            let signer = opened.signer().await?;
            let report = verify(
                opened.store.audit.as_ref(),
                Some(&opened.audit_mac_key),
                Some(&signer.verifying_key()),
                &[],
            )
            .await?;
            if !report.ok() {
                bail!(
                    "the audit trail does not verify; run `tollgate audit verify` and investigate before exporting a checkpoint"
                );
            }
            let mut cps = Vec::new();
            for c in &report.chains {
                if c.last_seq == 0 {
                    continue;
                }
                let head = opened
                    .store
                    .audit
                    .record_at(&c.instance, c.last_seq)
                    .await?
                    .context("chain head vanished during export")?;
                let cp = signer.checkpoint(&c.instance, head.seq, &head.hash);
                opened.store.audit.put_checkpoint(&cp).await?;
                cps.push(cp);
            }
            let doc = json!({"checkpoints": cps});
            std::fs::write(&out, serde_json::to_string_pretty(&doc)? + "\n")
                .with_context(|| format!("writing {}", out.display()))?;
            opened
                .audit_admin(
                    "audit.checkpoint",
                    &setup::os_actor(),
                    None,
                    "ok",
                    json!({"chains": cps.len()}),
                )
                .await?;
            println!(
                "Wrote {} checkpoint(s) to {}. Keep it outside this machine; `tollgate audit verify --from-checkpoint {}` proves nothing was cut off.",
                cps.len(),
                out.display(),
                out.display()
            );
            Ok(Outcome::Ok)
        }
        AuditCommand::Show {
            request_id,
            admin,
            json,
        } => {
            let who = opened
                .require_role(&admin, AUDIT_READERS, "audit.show")
                .await?;
            let records = opened.store.audit.records_by_ref(&request_id).await?;
            let payloads = opened.store.audit.payloads(&request_id).await?;
            opened
                .audit_admin(
                    "audit.show",
                    &who.id,
                    Some(&request_id),
                    if records.is_empty() {
                        "not_found"
                    } else {
                        "ok"
                    },
                    json!({"payloads": payloads.len()}),
                )
                .await?;
            if records.is_empty() {
                bail!("no audit record for {request_id}");
            }
            let keyring = opened.keyring();
            let mut shown = Vec::new();
            for p in &payloads {
                let text = if p.key_destroyed {
                    json!({"status": "destroyed by retention (crypto-shredded)"})
                } else {
                    match keyring.open(&request_id, &p.sealed).await {
                        Ok(Some(bytes)) => json!({
                            "status": "ok",
                            "text": String::from_utf8_lossy(&bytes),
                        }),
                        Ok(None) => json!({"status": "destroyed by retention (crypto-shredded)"}),
                        Err(e) => json!({"status": format!("cannot open: {e}")}),
                    }
                };
                shown.push(json!({
                    "kind": p.sealed.kind.as_str(),
                    "sha256": hex::encode(p.sealed.digest),
                    "payload": text,
                }));
            }
            let doc = json!({
                "records": records.iter().map(record_json).collect::<Vec<_>>(),
                "payloads": shown,
            });
            if json {
                println!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                for r in &records {
                    println!("record {}#{} at {}", r.instance, r.seq, r.time);
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&record_json(r)["record"])?
                    );
                }
                if shown.is_empty() {
                    println!("(no payloads stored for this request)");
                }
                for s in &shown {
                    println!(
                        "--- {} (sha256 {})",
                        s["kind"].as_str().unwrap_or("?"),
                        s["sha256"].as_str().unwrap_or("?")
                    );
                    match s["payload"]["text"].as_str() {
                        Some(t) => println!("{t}"),
                        None => println!("[{}]", s["payload"]["status"].as_str().unwrap_or("?")),
                    }
                }
            }
            Ok(Outcome::Ok)
        }
        AuditCommand::Export {
            since,
            until,
            format: _,
            admin,
        } => {
            let who = opened
                .require_role(&admin, AUDIT_READERS, "audit.export")
                .await?;
            let now = Utc::now();
            let since = match since {
                Some(s) => parse_time(&s, now)?,
                None => DateTime::<Utc>::UNIX_EPOCH,
            };
            let until = match until {
                Some(s) => parse_time(&s, now)?,
                None => now + chrono::Duration::seconds(1),
            };
            opened
                .audit_admin(
                    "audit.export",
                    &who.id,
                    None,
                    "ok",
                    json!({"since": since, "until": until}),
                )
                .await?;
            let stdout = std::io::stdout();
            let mut out = BufWriter::new(stdout.lock());
            let mut after = None;
            loop {
                let page = opened
                    .store
                    .audit
                    .records_between(since, until, after.clone(), EXPORT_PAGE)
                    .await?;
                let Some(last) = page.last() else { break };
                after = Some((
                    last.time.timestamp_millis(),
                    last.instance.clone(),
                    last.seq,
                ));
                for r in &page {
                    serde_json::to_writer(&mut out, &record_json(r))?;
                    out.write_all(b"\n")?;
                }
            }
            out.flush()?;
            Ok(Outcome::Ok)
        }
        AuditCommand::Hold(cmd) => holds(&opened, cmd).await,
    }
}

async fn holds(opened: &setup::Opened, cmd: HoldCommand) -> Result<Outcome> {
    let scope_of = |key: Option<String>, team: Option<String>| match (key, team) {
        (Some(k), _) => Ok((HoldScope::Key, k)),
        (None, Some(t)) => Ok((HoldScope::Team, t)),
        (None, None) => bail!("name a --key or a --team"),
    };
    match cmd {
        HoldCommand::Add {
            key,
            team,
            reason,
            admin,
        } => {
            let who = opened
                .require_role(&admin, DATA_STEWARDS, "audit.hold.add")
                .await?;
            let (scope, value) = scope_of(key, team)?;
            opened
                .store
                .audit
                .put_hold(&LegalHold {
                    scope,
                    value: value.clone(),
                    reason: reason.clone(),
                    placed_by: who.id.clone(),
                    placed_at: tollgate_store::now(),
                })
                .await?;
            opened
                .audit_admin(
                    "audit.hold.add",
                    &who.id,
                    Some(&format!("{}:{value}", scope.as_str())),
                    "ok",
                    json!({"reason": reason}),
                )
                .await?;
            println!(
                "Legal hold placed on {} {value}: retention will not delete its data until the hold is lifted.",
                scope.as_str()
            );
        }
        HoldCommand::Remove { key, team, admin } => {
            let who = opened
                .require_role(&admin, DATA_STEWARDS, "audit.hold.remove")
                .await?;
            let (scope, value) = scope_of(key, team)?;
            let existed = opened.store.audit.remove_hold(scope, &value).await?;
            opened
                .audit_admin(
                    "audit.hold.remove",
                    &who.id,
                    Some(&format!("{}:{value}", scope.as_str())),
                    if existed { "ok" } else { "not_found" },
                    json!({}),
                )
                .await?;
            if !existed {
                bail!("no legal hold on {} {value}", scope.as_str());
            }
            println!("Legal hold on {} {value} lifted.", scope.as_str());
        }
        HoldCommand::List { admin } => {
            opened
                .require_role(&admin, DATA_STEWARDS, "audit.hold.list")
                .await?;
            for h in opened.store.audit.holds().await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    h.scope.as_str(),
                    h.value,
                    h.placed_at.to_rfc3339(),
                    h.placed_by,
                    h.reason
                );
            }
        }
    }
    Ok(Outcome::Ok)
}

/// Run a retention subcommand.
pub async fn retention(global: &setup::GlobalArgs, cmd: RetentionCommand) -> Result<Outcome> {
    setup::init_logging(false);
    let loaded = setup::load(global)?;
    let opened = setup::open(global, &loaded.data_dir).await?;
    let RetentionCommand::Run {
        dry_run,
        json,
        admin,
    } = cmd;
    let who = opened
        .require_role(&admin, DATA_STEWARDS, "retention.run")
        .await?;
    let now = Utc::now();
    let plan = loaded.config.retention.plan(now, dry_run);
    let report = opened.store.audit.purge(&plan, now).await?;
    if !dry_run {
        opened
            .audit_admin(
                "retention.run",
                &who.id,
                None,
                "ok",
                serde_json::to_value(&report)?,
            )
            .await?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(Outcome::Ok);
    }
    let verb = if dry_run { "would delete" } else { "deleted" };
    if plan.payloads.is_empty() && plan.metadata_before.is_none() && plan.reviews_before.is_none() {
        println!("No [retention] TTLs are configured: everything is kept.");
    }
    for kind in PayloadKind::ALL {
        if let Some(n) = report.payloads_deleted.get(kind.as_str()) {
            println!("{verb} {n} {} payload(s)", kind.as_str());
        }
    }
    if report.payloads_held > 0 {
        println!("kept {} payload(s) under legal hold", report.payloads_held);
    }
    if plan.reviews_before.is_some() {
        println!("{verb} {} review item(s)", report.reviews_deleted);
    }
    if report.reviews_held > 0 {
        println!(
            "kept {} review item(s) under legal hold",
            report.reviews_held
        );
    }
    println!(
        "{} {} day key(s){}",
        if dry_run {
            "would destroy"
        } else {
            "destroyed"
        },
        report.day_keys_destroyed.len(),
        if report.day_keys_destroyed.is_empty() {
            String::new()
        } else {
            format!(" ({})", report.day_keys_destroyed.join(", "))
        }
    );
    for (chain, n) in &report.records_pruned {
        println!("{verb} {n} record(s) from chain {chain} (up to a signed checkpoint)");
    }
    Ok(Outcome::Ok)
}
