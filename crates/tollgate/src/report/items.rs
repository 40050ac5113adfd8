//! Judging the evidence: one function per checklist item, each a pure function of
//! [`Facts`], so every status decision is unit-tested without a store or a socket.
//!
//! The bar is a demanding auditor's: a control that is configured but leaves no evidence is a
//! WARN, a control that is missing or evidence that contradicts it is a FAIL.

mod ops;

use std::collections::BTreeMap;

use tollgate_gateway::config::{Config, GuardsConfig, PiiPolicyConfig, ProviderKind, ReviewStatus};
use tollgate_gateway::rotation::KeyAge;
use tollgate_scan::finding::Severity;
use tollgate_store::audit::PayloadKind;

use super::Item;
use super::evidence::{Facts, ScanFacts, StoreFacts};

/// The checklist, in order: id and wording (CHECKLIST.md).
pub const CHECKLIST: [(&str, &str); 24] = [
    (
        "AC-1",
        "Provider API keys come from a secrets manager; never from code, config files or .env files.",
    ),
    (
        "AC-2",
        "Every AI endpoint requires authentication; there is no open inference API.",
    ),
    (
        "AC-3",
        "Role-based access to model administration, training data and prompt configurations.",
    ),
    ("AC-4", "API key rotation is a policy, and it is automated."),
    (
        "DP-1",
        "PII is stripped or masked before it reaches the model.",
    ),
    (
        "DP-2",
        "An audit trail covers all data sent to and received from AI services.",
    ),
    (
        "DP-3",
        "A retention policy governs prompts, completions and embeddings.",
    ),
    (
        "DP-4",
        "Third-party AI providers are reviewed for data-handling compliance before use.",
    ),
    (
        "MG-1",
        "An output-validation layer sits between the model and the user-facing response.",
    ),
    (
        "MG-2",
        "Content filtering for harmful, biased or off-topic outputs.",
    ),
    (
        "MG-3",
        "Fallback behaviour is defined for when the model fails or hallucinates.",
    ),
    (
        "MG-4",
        "Prompt-injection defences protect user-facing inputs.",
    ),
    (
        "MI-1",
        "All AI interactions are logged: inputs, outputs, latency, errors.",
    ),
    (
        "MI-2",
        "Alerts fire on anomalous usage patterns and cost spikes.",
    ),
    (
        "MI-3",
        "An incident-response plan covers AI-specific failure modes.",
    ),
    (
        "MI-4",
        "Model outputs are regularly reviewed for drift or degradation.",
    ),
    (
        "SC-1",
        "AI libraries and SDKs are pinned to reviewed versions.",
    ),
    (
        "SC-2",
        "Third-party models are evaluated for known vulnerabilities.",
    ),
    (
        "SC-3",
        "Self-hosted models are isolated from production networks where possible.",
    ),
    (
        "SC-4",
        "Dependency scanning includes AI/ML-specific packages.",
    ),
    (
        "DO-1",
        "AI services sit behind rate limiting and abuse prevention.",
    ),
    ("DO-2", "Cost controls and budget alerts on AI API usage."),
    (
        "DO-3",
        "A staging environment exists for testing prompt and model changes.",
    ),
    (
        "DO-4",
        "A rollback plan exists for model updates and prompt changes.",
    ),
];

/// Most findings or names listed on one evidence line; the rest are counted.
pub const MAX_LISTED: usize = 5;

/// What to do when the store could not be read.
const NO_STORE_TODO: &str = "Run the report where the gateway keeps its state (--data-dir or --store) so the runtime evidence can be read.";

/// Judge every item, in checklist order.
pub fn judge(f: &Facts) -> Vec<Item> {
    vec![
        ac1(f),
        ac2(f),
        ac3(f),
        ac4(f),
        dp1(f),
        dp2(f),
        dp3(f),
        dp4(f),
        ops::mg1(f),
        ops::mg2(f),
        ops::mg3(f),
        ops::mg4(f),
        ops::mi1(f),
        ops::mi2(f),
        ops::mi3(f),
        ops::mi4(f),
        ops::sc(f, "SC-1"),
        ops::sc(f, "SC-2"),
        ops::sc(f, "SC-3"),
        ops::sc(f, "SC-4"),
        ops::do1(f),
        ops::do2(f),
        ops::do3(f),
        ops::do4(f),
    ]
}

/// The store's evidence, or a WARN on `item` saying why there is none.
pub fn store<'a>(f: &'a Facts, item: &mut Item) -> Option<&'a StoreFacts> {
    match &f.store {
        Ok(s) => Some(s),
        Err(why) => {
            item.fact(format!("runtime evidence unavailable: {why}"));
            item.warn(NO_STORE_TODO);
            None
        }
    }
}

/// `names` joined, at most [`MAX_LISTED`] of them, then how many more.
pub fn list<S: AsRef<str>>(names: &[S]) -> String {
    let mut out: Vec<&str> = names.iter().take(MAX_LISTED).map(AsRef::as_ref).collect();
    let more = names.len().saturating_sub(MAX_LISTED);
    let more_text = format!("and {more} more");
    if more > 0 {
        out.push(&more_text);
    }
    out.join(", ")
}

/// `k n, k n` of a count map.
pub fn counts<K: std::fmt::Display>(m: &BTreeMap<K, u64>) -> String {
    if m.is_empty() {
        return "none".to_owned();
    }
    m.iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A duration as the config writes it (`30d`, `12h`, `5m`, `90s`); sub-second ones as humantime does.
pub fn dur(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if d.subsec_nanos() == 0 && s > 0 {
        for (unit, n) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
            if s % n == 0 {
                return format!("{}{unit}", s / n);
            }
        }
    }
    humantime::format_duration(d).to_string()
}

/// Scan findings of `id` into `item`: counts, the first few by location, and the status of
/// the worst severity (error: FAIL, warning: WARN). Returns whether the scan ran.
pub fn scan_findings(f: &Facts, item: &mut Item, id: &str, todo: &str) -> bool {
    match &f.scan {
        ScanFacts::Skipped => {
            item.fact("repository not scanned (--no-scan)");
            item.warn("Run the report without --no-scan, in the repository (or with --repo PATH).");
            false
        }
        ScanFacts::Failed(why) => {
            item.fact(format!("repository scan failed: {why}"));
            item.warn("Fix the scan error (try `tollgate scan` on the repository) and rerun.");
            false
        }
        ScanFacts::Done {
            files, findings, ..
        } => {
            let mine: Vec<_> = findings.iter().filter(|x| x.checklist_id == id).collect();
            let n = |s: Severity| mine.iter().filter(|x| x.severity == s).count();
            item.fact(format!(
                "scan of {files} file(s): {} error(s), {} warning(s), {} note(s)",
                n(Severity::Error),
                n(Severity::Warning),
                n(Severity::Note)
            ));
            let serious: Vec<String> = mine
                .iter()
                .filter(|x| x.severity > Severity::Note)
                .map(|x| format!("{}:{} [{}]", x.path, x.line, x.rule))
                .collect();
            if !serious.is_empty() {
                item.fact(format!("found at {}", list(&serious)));
            }
            match mine.iter().map(|x| x.severity).max() {
                Some(Severity::Error) => {
                    item.fail(todo);
                }
                Some(Severity::Warning) => {
                    item.warn(todo);
                }
                _ => {}
            }
            true
        }
    }
}

/// A credential reference's scheme with its separator (`keystore://`, `vault://`,
/// `aws-sm://`, `file://`, `env:`): where the key comes from, without naming it.
fn scheme(reference: &str) -> &str {
    let end = match reference.find("://") {
        Some(i) => i + 3,
        None => reference.find(':').map_or(0, |i| i + 1),
    };
    &reference[..end]
}

fn ac1(f: &Facts) -> Item {
    let mut item = Item::new("AC-1");
    let mut from_env = Vec::new();
    for (name, p) in &f.config.providers {
        match (&p.api_key, p.kind) {
            (_, ProviderKind::Echo) => {
                item.fact(format!("provider {name}: built-in, no credential"));
            }
            (None, _) => {
                item.fact(format!("provider {name}: no credential configured"));
            }
            (Some(r), _) => {
                let s = scheme(r.get_ref());
                item.fact(format!("provider {name}: credential by reference ({s}…)"));
                if s == "env:" {
                    from_env.push(name.clone());
                }
            }
        }
    }
    if f.config.providers.is_empty() {
        item.fact("no providers configured");
    }
    item.fact("a literal key in tollgate.toml is a load error; the keystore is encrypted at rest");
    if !from_env.is_empty() {
        item.warn(format!(
            "Move the credentials of {} from environment variables into the keystore or a secrets manager (`tollgate secrets set NAME`, then keystore://NAME).",
            list(&from_env)
        ));
    }
    scan_findings(
        f,
        &mut item,
        "AC-1",
        "Move each leaked credential into a secrets manager, reference it, and rotate it: it has been exposed.",
    );
    item
}

fn ac2(f: &Facts) -> Item {
    let mut item = Item::new("AC-2");
    let routes: Vec<String> = super::evidence::data_plane_routes(&f.config)
        .iter()
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    item.fact(format!(
        "authentication has no off switch: every data-plane route needs a virtual key ({})",
        routes.join(", ")
    ));
    item.fact("only /healthz, /readyz and /metrics answer without a key");
    if let Ok(s) = &f.store {
        let keys: BTreeMap<&String, u64> =
            s.active_keys.iter().map(|(k, n)| (k, *n as u64)).collect();
        item.fact(format!("active virtual keys: {}", counts(&keys)));
        item.fact(format!(
            "requests refused 401 in the last {} days: {}",
            super::evidence::ACTIVITY_DAYS,
            s.activity.status(401)
        ));
    }
    match &f.probes {
        None => {
            item.fact("no live probe (pass --gateway URL to probe each route without a key)");
        }
        Some(probes) => {
            for p in probes {
                match &p.status {
                    Ok(401) => {
                        item.fact(format!("probe {} without a key: 401", p.route));
                    }
                    Ok(other) => {
                        item.fact(format!("probe {} without a key: {other}", p.route));
                        item.fail(format!(
                            "{} answered {other} without a credential: find what serves it unauthenticated (a proxy in front, an old build) and close it.",
                            p.route
                        ));
                    }
                    Err(e) => {
                        item.fact(format!("probe {} failed: {e}", p.route));
                        item.warn("Check that --gateway names a running gateway and rerun.");
                    }
                }
            }
        }
    }
    item
}

fn ac3(f: &Facts) -> Item {
    let mut item = Item::new("AC-3");
    let roles: Vec<&str> = tollgate_gateway::admin::rbac::Role::ALL
        .iter()
        .filter(|r| **r != tollgate_gateway::admin::rbac::Role::App)
        .map(|r| r.as_str())
        .collect();
    item.fact(format!(
        "the admin API binds every resource (models, providers, datasets, prompts, keys, audit) to roles: {}",
        roles.join(", ")
    ));
    item.fact(match &f.config.datasets {
        Some(_) => "training data endpoints on: only keys with the data-steward role may use them",
        None => "training data endpoints off",
    });
    let Some(s) = store(f, &mut item) else {
        return item;
    };
    item.fact(format!(
        "admin credentials: {} active ({}), {} revoked; `tollgate admins list` names them",
        s.admin_credentials,
        counts(&s.admin_roles),
        s.admins_revoked
    ));
    let roles: BTreeMap<&String, u64> = s.key_roles.iter().map(|(k, n)| (k, *n as u64)).collect();
    item.fact(format!("virtual keys bound to a role: {}", counts(&roles)));
    item.fact(format!(
        "last {} days: {} admin action(s) recorded, {} refused for lack of a role, {} data-plane call(s) refused 403",
        super::evidence::ACTIVITY_DAYS,
        s.activity.admin_actions,
        s.activity.admin_denied,
        s.activity.status(403)
    ));
    if s.admin_credentials == 0 {
        item.warn("No admin credential exists: run `tollgate init` to issue the owner's, then one per person with the least role they need.");
    }
    item
}

fn ac4(f: &Facts) -> Item {
    let mut item = Item::new("AC-4");
    let Some(rot) = &f.config.rotation else {
        item.fact("no [rotation] policy: keys have no maximum age");
        item.fail("Set [rotation] production = { max_age = \"90d\", warn_before = \"14d\" } (and staging); the gateway then rotates due keys itself.");
        return item;
    };
    for (env, p) in [("production", &rot.production), ("staging", &rot.staging)] {
        match p {
            Some(p) => item.fact(format!("{env} keys: max age {}", dur(p.max_age.0))),
            None => item.fact(format!("{env} keys: no max age")),
        };
    }
    item.fact(format!(
        "automated: the gateway rotates due keys every {} with a {} grace overlap{}",
        dur(rot.interval()),
        dur(rot.grace()),
        if rot.webhook.is_some() {
            " and notifies the webhook"
        } else {
            ""
        }
    ));
    if rot.production.is_none() {
        item.fail("Set [rotation] production = { max_age = \"90d\" }: production keys have no maximum age.");
    }
    let Some(s) = store(f, &mut item) else {
        return item;
    };
    let a = &s.keys_audit;
    let soon = a
        .keys
        .iter()
        .filter(|k| matches!(k.age, KeyAge::DueSoon { .. }))
        .count();
    item.fact(format!(
        "{} key(s) under the policy: {} past max age, {soon} due soon",
        a.keys.len(),
        a.due
    ));
    let over: Vec<String> = a
        .keys
        .iter()
        .filter_map(|k| match k.age {
            KeyAge::Due { days_over } => Some(format!(
                "{} ({}, {}, created {}, {days_over} days over)",
                k.id,
                k.name,
                k.environment,
                k.created_at.format("%Y-%m-%d")
            )),
            _ => None,
        })
        .collect();
    if !over.is_empty() {
        item.fact(format!("past max age: {}", list(&over)));
        item.warn("Rotate the keys past their maximum age (`tollgate keys rotate KEY_ID --grace 24h`) and check that a gateway runs the rotation schedule.");
    }
    item
}

/// Whether a PII policy lets PII through unmasked.
fn pii_off(p: &PiiPolicyConfig) -> bool {
    p.enabled == Some(false)
        || (p.default_action.as_deref() == Some("allow")
            && p.actions.values().all(|a| a == "allow"))
}

/// The PII policy in force for a route's guards, and whether it is written down.
fn pii_policy<'a>(
    global: &'a GuardsConfig,
    route: Option<&'a GuardsConfig>,
) -> Option<&'a PiiPolicyConfig> {
    route.and_then(|g| g.pii.as_ref()).or(global.pii.as_ref())
}

fn dp1(f: &Facts) -> Item {
    let mut item = Item::new("DP-1");
    let c = &f.config;
    let mut off = Vec::new();
    let mut unwritten = Vec::new();
    let mut written = Vec::new();
    for (alias, r) in &c.routes {
        match pii_policy(&c.guards, r.guards.as_ref()) {
            Some(p) if pii_off(p) => off.push(alias.clone()),
            Some(_) => written.push(alias.clone()),
            None => unwritten.push(alias.clone()),
        }
    }
    match &c.guards.pii {
        Some(p) if pii_off(p) => item.fact("global [guards.pii]: off"),
        Some(p) => item.fact(format!(
            "global [guards.pii]: default action {}",
            p.default_action.as_deref().unwrap_or("built-in per type")
        )),
        None => item.fact("no global [guards.pii]: the built-in masking applies"),
    };
    if c.routes.is_empty() {
        item.fact("no routes configured");
    }
    if !written.is_empty() {
        item.fact(format!("routes with a PII policy: {}", list(&written)));
    }
    if !unwritten.is_empty() {
        item.fact(format!(
            "routes without a PII policy (built-in default only): {}",
            list(&unwritten)
        ));
        item.warn(format!(
            "Write a PII policy for {} ([guards.pii] or [routes.NAME.guards.pii]: which types are masked, tokenised or blocked).",
            list(&unwritten)
        ));
    }
    if !off.is_empty() {
        item.fact(format!("routes sending PII unmasked: {}", list(&off)));
        item.warn(format!(
            "Turn PII masking on for {} (guards.pii enabled = true, an action other than allow), or record why that route may carry raw PII.",
            list(&off)
        ));
    }
    if let Ok(s) = &f.store {
        item.fact(format!(
            "PII detections in the last {} days by type: {}",
            super::evidence::ACTIVITY_DAYS,
            counts(&s.activity.pii)
        ));
    }
    item
}

fn dp2(f: &Facts) -> Item {
    let mut item = Item::new("DP-2");
    item.fact("every data-plane call and admin action is a hash-chained, MAC'd record with signed checkpoints");
    if f.config.audit.fail_closed {
        item.fact("fail closed: requests are refused while the audit store cannot be written");
    } else {
        item.fact(
            "audit.fail_closed = false: requests are served even when they cannot be recorded",
        );
        item.warn("Set [audit] fail_closed = true so that no call escapes the trail.");
    }
    let Some(s) = store(f, &mut item) else {
        return item;
    };
    if let Some(e) = &s.verify_error {
        item.fact(format!("audit verify could not run: {e}"));
        item.fail("Run `tollgate audit verify` and fix what stops it: an unverifiable trail is no evidence.");
        return item;
    }
    let Some(r) = &s.verify else {
        return item;
    };
    let records: u64 = r.chains.iter().map(|c| c.records).sum();
    let cps: u64 = r.chains.iter().map(|c| c.checkpoints_verified).sum();
    let tail: u64 = r.chains.iter().map(|c| c.unsigned_tail).sum();
    item.fact(format!(
        "audit verify: {} — {} chain(s), {records} record(s), {cps} signed checkpoint(s) confirmed, {tail} record(s) after the last checkpoint",
        if r.ok() { "OK" } else { "FAILED" },
        r.chains.len()
    ));
    for c in &r.chains {
        if let Some(p) = &c.problem {
            item.fact(format!("chain {} record {}: {}", c.instance, p.seq, p.what));
        }
        for p in &c.checkpoint_problems {
            item.fact(format!(
                "chain {} checkpoint at {}: {}",
                c.instance, p.seq, p.what
            ));
        }
    }
    for p in &r.external_problems {
        item.fact(p.clone());
    }
    if !r.ok() {
        item.fail("The audit trail was altered: preserve the database as evidence, run `tollgate audit verify` for the details and open an incident.");
    } else if r.chains.is_empty() {
        item.warn("No audit records yet: run traffic through the gateway, then rerun the report.");
    }
    item
}

fn dp3(f: &Facts) -> Item {
    let mut item = Item::new("DP-3");
    let ret = &f.config.retention;
    let ttls = [
        ("prompts", ret.prompts),
        ("completions", ret.completions),
        ("embeddings", ret.embeddings),
        ("metadata", ret.metadata),
        ("review", ret.review_ttl()),
    ];
    let set: Vec<String> = ttls
        .iter()
        .filter_map(|(n, d)| d.map(|d| format!("{n} {}", dur(d.0))))
        .collect();
    let unset: Vec<&str> = ttls[..3]
        .iter()
        .filter(|(_, d)| d.is_none())
        .map(|(n, _)| *n)
        .collect();
    if set.is_empty() {
        item.fact("no [retention] TTLs: prompts, completions and embeddings are kept forever");
        item.fail("Set [retention] prompts, completions and embeddings (e.g. \"30d\") and metadata; the gateway purges on its own schedule.");
    } else {
        item.fact(format!(
            "retention TTLs: {}; purge every {}",
            set.join(", "),
            dur(ret.interval())
        ));
        if !unset.is_empty() {
            item.fact(format!("kept forever: {}", unset.join(", ")));
            item.warn(format!(
                "Set a TTL for {} in [retention].",
                unset.join(", ")
            ));
        }
    }
    let Some(s) = store(f, &mut item) else {
        return item;
    };
    if s.oldest_payloads.is_empty() {
        item.fact("no payloads stored");
    }
    // One purge interval of slack: the schedule, not a lag, explains anything younger.
    let slack = chrono::Duration::from_std(ret.interval()).unwrap_or(chrono::Duration::zero());
    let mut overdue = Vec::new();
    for (kind, oldest) in &s.oldest_payloads {
        let ttl = match kind {
            PayloadKind::Prompt | PayloadKind::OriginalPrompt => ret.prompts,
            PayloadKind::Completion => ret.completions,
            PayloadKind::EmbeddingInput | PayloadKind::EmbeddingVector => ret.embeddings,
        };
        let age = f.now - *oldest;
        let ttl_text = ttl.map_or("no TTL".to_owned(), |t| format!("TTL {}", dur(t.0)));
        item.fact(format!(
            "oldest {} payload: {} ({} days old) vs {ttl_text}",
            kind.as_str(),
            oldest.format("%Y-%m-%d"),
            age.num_days()
        ));
        if let Some(t) = ttl.and_then(|t| chrono::Duration::from_std(t.0).ok()) {
            if age > t + slack {
                overdue.push(kind.as_str());
            }
        }
    }
    if !overdue.is_empty() {
        item.warn(format!(
            "Purge is overdue for {}: run `tollgate retention run` and check that a gateway (or a cron job) runs retention; items under a legal hold stay by design.",
            overdue.join(", ")
        ));
    }
    item
}

fn dp4(f: &Facts) -> Item {
    let mut item = Item::new("DP-4");
    let today = f.today();
    let mut bad = Vec::new();
    let mut expiring = Vec::new();
    for (name, p) in &f.config.providers {
        let status = p.review_status(today);
        let line = match (&p.review(), status) {
            (_, ReviewStatus::NotNeeded) => format!("{name}: built-in, sends nothing"),
            (_, ReviewStatus::Unreviewed) => {
                bad.push(format!("{name} (unreviewed)"));
                format!("{name}: UNREVIEWED — the gateway sends it nothing")
            }
            (Some(r), s) => {
                let state = match s {
                    ReviewStatus::Expired { days_ago } => {
                        bad.push(format!("{name} (expired {days_ago} days ago)"));
                        format!("EXPIRED {}", r.expires)
                    }
                    ReviewStatus::Expiring { days_left } => {
                        expiring.push(format!("{name} ({} days left)", days_left));
                        format!("expires {} (in {days_left} days)", r.expires)
                    }
                    _ => format!("current until {}", r.expires),
                };
                format!(
                    "{name}: review {state}, by {} on {}; classes {}; retention {}d; DPA {}; trains on data {}",
                    r.reviewed_by,
                    r.reviewed_on,
                    r.classes_list(),
                    r.retention_days,
                    if r.dpa_signed { "signed" } else { "none" },
                    if r.trains_on_customer_data {
                        "yes"
                    } else {
                        "no"
                    }
                )
            }
            (None, _) => format!("{name}: {}", status.as_str()),
        };
        item.fact(line);
    }
    if f.config.providers.is_empty() {
        item.fact("no providers configured");
    }
    if !bad.is_empty() {
        item.fail(format!(
            "Review {} and add or renew [providers.NAME.review] (see `tollgate providers`).",
            list(&bad)
        ));
    }
    if !expiring.is_empty() {
        item.warn(format!(
            "Schedule the reviews of {} before they lapse.",
            list(&expiring)
        ));
    }
    item
}

/// Whether some route's effective setting disables a guard: route overrides global.
pub fn routes_where<T>(
    c: &Config,
    pick: impl Fn(&GuardsConfig) -> Option<&T>,
    off: impl Fn(&T) -> bool,
) -> Vec<String> {
    c.routes
        .iter()
        .filter(|(_, r)| {
            r.guards
                .as_ref()
                .and_then(&pick)
                .or_else(|| pick(&c.guards))
                .is_some_and(&off)
        })
        .map(|(a, _)| a.clone())
        .collect()
}

#[cfg(test)]
mod tests;
