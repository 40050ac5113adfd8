//! The guardrail, monitoring, supply-chain and operations items (MG, MI, SC, DO).

use tollgate_gateway::budget::BudgetStatus;
use tollgate_store::prompt::PromptEnv;

use super::{Facts, Item, counts, dur, list, routes_where, scan_findings, store};
use crate::report::evidence::ACTIVITY_DAYS;

/// Days within which a label in the review queue counts as "regular" review (MI-4).
pub const REVIEW_DAYS: i64 = 30;
/// Days within which an incident drill counts as rehearsed (MI-3): one per quarter.
pub const DRILL_DAYS: i64 = 92;

pub(super) fn mg1(f: &Facts) -> Item {
    let mut item = Item::new("MG-1");
    let c = &f.config;
    item.fact("built in on every route: credentials in answers are flagged, PII restored from tokens only for the caller");
    let mut with: Vec<String> = Vec::new();
    if let Some(o) = &c.guards.output {
        with.push(format!("global ({})", validators(o).join(", ")));
    }
    for (alias, r) in &c.routes {
        if let Some(o) = r.guards.as_ref().and_then(|g| g.output.as_ref()) {
            with.push(format!("{alias} ({})", validators(o).join(", ")));
        }
    }
    if with.is_empty() {
        item.fact("no output policy configured");
        item.warn("Add [guards.output] (or per route): secrets = \"block\", pii_leak, exfil_links, and a json_schema or max_chars where answers have a shape.");
    } else {
        item.fact(format!("output policies: {}", list(&with)));
    }
    if let Ok(s) = &f.store {
        item.fact(format!(
            "output findings in the last {ACTIVITY_DAYS} days: {}; answers refused by output checks: {}",
            counts(&s.activity.output),
            s.activity.blocked_by.get("output").copied().unwrap_or(0)
        ));
    }
    item
}

fn validators(o: &tollgate_gateway::config::OutputPolicyConfig) -> Vec<&'static str> {
    let mut v = Vec::new();
    let pairs: [(&'static str, bool); 7] = [
        ("secrets", o.secrets.is_some()),
        ("exfil_links", o.exfil_links.is_some()),
        ("pii_leak", o.pii_leak.is_some()),
        ("json_schema", o.json_schema.is_some()),
        ("max_chars", o.max_chars.is_some()),
        ("deny_patterns", !o.deny_patterns.is_empty()),
        ("require_patterns", !o.require_patterns.is_empty()),
    ];
    for (name, on) in pairs {
        if on {
            v.push(name);
        }
    }
    if v.is_empty() {
        v.push("defaults");
    }
    v
}

pub(super) fn mg2(f: &Facts) -> Item {
    let mut item = Item::new("MG-2");
    let c = &f.config;
    let off = routes_where(c, |g| g.content.as_ref(), |p| p.enabled == Some(false));
    item.fact("content categories (harm, hate, self-harm, sexual, violence, illegal) are checked by default at high severity");
    let topics: Vec<String> = std::iter::once(("global", c.guards.content.as_ref()))
        .chain(c.routes.iter().map(|(a, r)| {
            (
                a.as_str(),
                r.guards.as_ref().and_then(|g| g.content.as_ref()),
            )
        }))
        .filter_map(|(n, p)| {
            p.filter(|p| !p.allow_topics.is_empty() || !p.deny_topics.is_empty())
                .map(|_| n.to_owned())
        })
        .collect();
    if !topics.is_empty() {
        item.fact(format!("topic allow/deny lists: {}", list(&topics)));
    }
    if !off.is_empty() {
        item.fact(format!("content filtering off on: {}", list(&off)));
        item.warn(format!(
            "Turn content filtering back on for {} (guards.content enabled = true) or record why not.",
            list(&off)
        ));
    }
    if let Ok(s) = &f.store {
        item.fact(format!(
            "flagged in the last {ACTIVITY_DAYS} days by category: {}; refused: {}",
            counts(&s.activity.content),
            s.activity.blocked_by.get("content").copied().unwrap_or(0)
        ));
    }
    item
}

pub(super) fn mg3(f: &Facts) -> Item {
    let mut item = Item::new("MG-3");
    let c = &f.config;
    item.fact("every provider call retries with backoff and has a circuit breaker; failures return a provider-shaped error, never a partial answer");
    let mut single = Vec::new();
    for (alias, r) in &c.routes {
        let fallback_message = r
            .guards
            .as_ref()
            .and_then(|g| g.output.as_ref())
            .or(c.guards.output.as_ref())
            .is_some_and(|o| o.fallback_message.is_some());
        item.fact(format!(
            "route {alias}: {} target(s){}",
            r.targets.len(),
            if fallback_message {
                ", static safe answer on invalid output"
            } else {
                ""
            }
        ));
        if r.targets.len() < 2 && !fallback_message {
            single.push(alias.clone());
        }
    }
    if c.routes.is_empty() {
        item.fact("no routes configured");
    }
    if !single.is_empty() {
        item.warn(format!(
            "Give {} a fallback target (a second provider) or an output fallback_message, so a failing model has a defined behaviour.",
            list(&single)
        ));
    }
    if let Ok(s) = &f.store {
        let errors: u64 = s
            .activity
            .statuses
            .iter()
            .filter(|(k, _)| **k >= 500)
            .map(|(_, n)| n)
            .sum();
        item.fact(format!(
            "last {ACTIVITY_DAYS} days: {} request(s) needed retries or fallbacks, {errors} ended in a 5xx",
            s.activity.retried
        ));
    }
    item
}

pub(super) fn mg4(f: &Facts) -> Item {
    let mut item = Item::new("MG-4");
    let c = &f.config;
    item.fact("user text and, more strictly, tool/retrieved content are scored for injection; unicode tricks are normalised first");
    let off = routes_where(c, |g| g.injection.as_ref(), |p| p.enabled == Some(false));
    if let Some(p) = &c.guards.injection {
        item.fact(format!(
            "global policy: action {}, spotlighting {}, canary {}",
            p.action.as_deref().unwrap_or("default"),
            if p.spotlight == Some(true) {
                "on"
            } else {
                "off"
            },
            if p.canary == Some(true) { "on" } else { "off" }
        ));
    }
    if !off.is_empty() {
        item.fact(format!("injection defence off on: {}", list(&off)));
        item.warn(format!(
            "Turn the injection guard back on for {} (guards.injection enabled = true).",
            list(&off)
        ));
    }
    if let Ok(s) = &f.store {
        item.fact(format!(
            "last {ACTIVITY_DAYS} days: {} request(s) scored, {} refused as injection",
            s.activity.injection_scored,
            s.activity.blocked_by.get("injection").copied().unwrap_or(0)
        ));
    }
    item
}

/// Whether, and where, OpenTelemetry traces go (MI-1).
fn traces(t: Option<&tollgate_gateway::config::telemetry::TelemetryConfig>) -> String {
    let Some(t) = t else {
        return "OpenTelemetry traces: not exported (no [telemetry] section; add one with an OTLP/HTTP endpoint to send a span per call to your tracing backend)".to_owned();
    };
    let to = t
        .traces_url()
        .map_or_else(|_| t.endpoint.clone(), |u| u.to_string());
    format!(
        "OpenTelemetry traces (GenAI conventions) exported over OTLP/HTTP to {to} as service {:?}; {} of new traces sampled, callers' traceparent followed; drops counted in tollgate_trace_spans_dropped_total",
        t.service_name,
        if t.sample_ratio >= 1.0 {
            "all".to_owned()
        } else {
            format!("{}%", (t.sample_ratio * 1000.0).round() / 10.0)
        }
    )
}

pub(super) fn mi1(f: &Facts) -> Item {
    let mut item = Item::new("MI-1");
    item.fact("`tollgate serve` logs one JSON line per request (latency, status, tokens, errors) and serves Prometheus /metrics");
    item.fact("inputs and outputs are kept as sealed payloads beside the audit chain, per route's payload policy");
    item.fact(traces(f.config.telemetry.as_ref()));
    if f.config.logging.log_payloads {
        item.fact("logging.log_payloads = true: prompt text goes to the log");
        item.warn("Set logging.log_payloads = false: payloads belong in the sealed audit store, not in logs.");
    }
    let Some(s) = store(f, &mut item) else {
        return item;
    };
    item.fact(format!(
        "last {ACTIVITY_DAYS} days: {} interaction(s) recorded{}; by status: {}",
        s.activity.requests,
        if s.activity.partial {
            " (first records only)"
        } else {
            ""
        },
        counts(&s.activity.statuses)
    ));
    if s.activity.records == 0 {
        item.warn(format!("Nothing recorded in the last {ACTIVITY_DAYS} days: check that the gateway runs with this store and carries the traffic."));
    }
    item
}

pub(super) fn mi2(f: &Facts) -> Item {
    let mut item = Item::new("MI-2");
    let a = &f.config.alerts;
    item.fact(format!(
        "alert sinks: log {}, {} webhook(s); anomaly detector {} (rate, tokens, cost, errors, blocks per key and team)",
        if a.log { "on" } else { "off" },
        a.webhooks.len(),
        if a.anomaly.enabled { "on" } else { "off" }
    ));
    item.fact(format!(
        "budget alerts: {} budget(s) with thresholds",
        f.config.budgets.len()
    ));
    if !a.anomaly.enabled {
        item.warn("Turn the anomaly detector on ([alerts.anomaly] enabled = true).");
    }
    if a.webhooks.is_empty() {
        item.warn("Add an [[alerts.webhooks]] so that alerts reach a person, not only the log.");
    }
    let Some(s) = store(f, &mut item) else {
        return item;
    };
    let mut by_kind = std::collections::BTreeMap::new();
    for al in &s.alerts {
        *by_kind.entry(al.kind.clone()).or_insert(0u64) += 1;
    }
    item.fact(format!(
        "alerts raised in the last {ACTIVITY_DAYS} days: {} ({})",
        s.alerts.len(),
        counts(&by_kind)
    ));
    if let Some(last) = s.alerts.first() {
        item.fact(format!(
            "latest: {} {} on {}",
            last.at.format("%Y-%m-%d"),
            last.kind,
            last.subject
        ));
    }
    item
}

pub(super) fn mi3(f: &Facts) -> Item {
    let mut item = Item::new("MI-3");
    let c = &f.config;
    let runbook = crate::runbook::render(c, "tollgate");
    let scenarios = runbook.lines().filter(|l| l.starts_with("## ")).count();
    item.fact(format!(
        "runbook generated from this config (`tollgate runbook`): {scenarios} section(s) naming {} provider(s) and {} route(s)",
        c.providers.len(),
        c.routes.len()
    ));
    item.fact(format!(
        "kill switches: key, team, route, provider, model, lockdown; {} break-glass key(s)",
        c.incident.break_glass_keys.len()
    ));
    if let Ok(s) = &f.store {
        let on: Vec<String> = s
            .switches
            .iter()
            .map(|w| format!("{} {}", w.kind.as_str(), w.target))
            .collect();
        item.fact(format!(
            "switches on now: {}",
            if on.is_empty() {
                "none".to_owned()
            } else {
                list(&on)
            }
        ));
    }
    match c
        .incident
        .last_drill
        .as_deref()
        .map(|d| (d, chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")))
    {
        None => {
            item.fact("no incident drill recorded");
            item.warn("Rehearse one runbook scenario and record the date in [incident] last_drill = \"YYYY-MM-DD\".");
        }
        Some((d, Err(_))) => {
            item.fact(format!("[incident] last_drill {d:?} is not a date"));
            item.warn("Write [incident] last_drill as YYYY-MM-DD.");
        }
        Some((_, Ok(d))) => {
            let days = (f.today() - d).num_days();
            item.fact(format!("last drill: {d} ({days} days ago)"));
            if days > DRILL_DAYS {
                item.warn(format!(
                    "The last drill is older than {DRILL_DAYS} days: rehearse a scenario this quarter and update [incident] last_drill."
                ));
            }
        }
    }
    item
}

pub(super) fn mi4(f: &Facts) -> Item {
    let mut item = Item::new("MI-4");
    let c = &f.config;
    item.fact(format!(
        "review sampling: {:.1}% of interactions (masked); drift check {} (PSI threshold {})",
        c.review.sample_rate * 100.0,
        if c.review.drift.enabled { "on" } else { "off" },
        c.review.drift.psi_threshold
    ));
    if c.review.sample_rate <= 0.0 {
        item.warn("Set [review] sample_rate above 0 so outputs reach the review queue.");
    }
    if !c.review.drift.enabled {
        item.warn("Turn the drift check on ([review.drift] enabled = true).");
    }
    let Some(s) = store(f, &mut item) else {
        return item;
    };
    item.fact(format!(
        "review queue: {} pending, {} labelled",
        s.review.pending, s.review.labelled
    ));
    match s.review.last_labelled_at {
        Some(t) => {
            let days = (f.now - t).num_days();
            item.fact(format!(
                "last review: {} ({days} days ago)",
                t.format("%Y-%m-%d")
            ));
            if days > REVIEW_DAYS {
                item.warn(format!(
                    "No output reviewed in the last {REVIEW_DAYS} days: label items with `tollgate review`."
                ));
            }
        }
        None => {
            item.fact("no output has been reviewed yet");
            item.warn("Review sampled outputs regularly: `tollgate review list`, then `tollgate review label`.");
        }
    }
    let mut drifted = Vec::new();
    for d in &s.drift {
        let score = d
            .score
            .map_or("not enough data".to_owned(), |v| format!("{v:.3}"));
        item.fact(format!(
            "drift {}: {score}{}",
            d.route,
            if d.drifted { " (DRIFTED)" } else { "" }
        ));
        if d.drifted {
            drifted.push(d.route.clone());
        }
    }
    if !drifted.is_empty() {
        item.warn(format!(
            "Investigate the drift of {} (`tollgate drift ROUTE`), then review its recent outputs.",
            list(&drifted)
        ));
    }
    item
}

/// The titles' actions of the scan items (scan crate's wording).
fn scan_todo(id: &str) -> &'static str {
    tollgate_scan::report::ITEMS
        .iter()
        .find(|(i, _, _)| *i == id)
        .map_or("", |(_, _, todo)| *todo)
}

pub(super) fn sc(f: &Facts, id: &'static str) -> Item {
    let mut item = Item::new(id);
    if id == "SC-3" {
        let allow = &f.config.server.egress_allow;
        if allow.is_empty() {
            item.fact("no egress allow-list: providers may live on any host");
        } else {
            item.fact(format!("egress allow-list: {}", list(allow)));
        }
    }
    let ran = scan_findings(f, &mut item, id, scan_todo(id));
    if id == "SC-4" && ran {
        if let crate::report::evidence::ScanFacts::Done {
            advisories: false, ..
        } = &f.scan
        {
            item.fact("no advisory database: locked versions were not checked against OSV");
            item.warn("Pass --advisories DIR (an offline OSV database) so locked AI/ML packages are checked for known vulnerabilities.");
        }
    }
    item
}

pub(super) fn do1(f: &Facts) -> Item {
    let mut item = Item::new("DO-1");
    let l = &f.config.limits;
    let rule = |name: &str, r: &tollgate_gateway::config::limits::Rule| {
        let mut parts = Vec::new();
        if let Some(v) = r.rpm {
            parts.push(format!("{v} rpm"));
        }
        if let Some(v) = r.tpm {
            parts.push(format!("{v} tpm"));
        }
        if let Some(v) = r.concurrency {
            parts.push(format!("{v} concurrent"));
        }
        (!parts.is_empty()).then(|| format!("{name} {}", parts.join("/")))
    };
    let rules: Vec<String> = [
        rule("key", &l.key),
        rule("team", &l.team),
        rule("ip", &l.ip),
        rule("route", &l.route),
    ]
    .into_iter()
    .flatten()
    .collect();
    item.fact(format!(
        "request caps: body {} bytes{}",
        f.config.server.max_body_bytes,
        l.caps
            .max_tokens
            .map(|t| format!(", max_tokens {t}"))
            .unwrap_or_default()
    ));
    item.fact(format!(
        "abuse: suspend a key after {} guard blocks or {} denials within {}",
        l.abuse.guard_blocks,
        l.abuse.denials,
        dur(l.abuse.window.0)
    ));
    if rules.is_empty() {
        item.fact("no rate limits configured");
        item.warn("Set [limits] key = { rpm = ..., tpm = ... } (and team/ip): without them one key can take all capacity and spend.");
    } else {
        item.fact(format!("rate limits: {}", rules.join("; ")));
    }
    if l.abuse.guard_blocks == 0 && l.abuse.denials == 0 {
        item.warn("Turn automatic suspension on ([limits.abuse] guard_blocks / denials above 0).");
    }
    if let Ok(s) = &f.store {
        item.fact(format!(
            "refused 429 in the last {ACTIVITY_DAYS} days: {}",
            s.activity.status(429)
        ));
    }
    item
}

fn budget_line(b: &BudgetStatus) -> String {
    format!(
        "{} ({}): ${:.2} spent of ${:.2} since {} ({:.0}%)",
        b.scope,
        b.period,
        b.spent_usd,
        b.limit_usd,
        b.period_start,
        b.used * 100.0
    )
}

pub(super) fn do2(f: &Facts) -> Item {
    let mut item = Item::new("DO-2");
    let c = &f.config;
    item.fact(format!(
        "every call is priced (built-in list prices, {} override(s)); budgets stop calls at their limit",
        c.prices.len()
    ));
    if c.budgets.is_empty() {
        item.fact("no budgets configured: spend is unbounded");
        item.fail("Add [[budgets]] (scope, period, limit_usd, alert thresholds) for the gateway and each team.");
        return item;
    }
    let Some(s) = store(f, &mut item) else {
        return item;
    };
    match &s.budgets {
        Err(e) => {
            item.fact(format!("spend could not be read: {e}"));
            item.warn("Run `tollgate budgets` and fix what stops it.");
        }
        Ok(list) => {
            for b in list {
                item.fact(budget_line(b));
            }
            let out: Vec<String> = list
                .iter()
                .filter(|b| b.used >= 1.0)
                .map(|b| b.scope.clone())
                .collect();
            if !out.is_empty() {
                item.warn(format!(
                    "Budgets exhausted ({}): their calls are refused until the period resets; raise the limit or find the spend.",
                    super::list(&out)
                ));
            }
        }
    }
    item
}

pub(super) fn do3(f: &Facts) -> Item {
    let mut item = Item::new("DO-3");
    item.fact(format!(
        "prompts and route targets are versioned per environment; staging keys (tg_test_) get staging; promotion{} runs the eval set first",
        if f.config.governance.four_eyes {
            " needs a second person and"
        } else {
            ""
        }
    ));
    let Some(s) = store(f, &mut item) else {
        return item;
    };
    item.fact(format!(
        "active staging keys: {}",
        s.active_keys.get("staging").copied().unwrap_or(0)
    ));
    let mut per_subject: std::collections::BTreeMap<&str, [Option<i64>; 2]> =
        std::collections::BTreeMap::new();
    for (name, env, v) in &s.deployed {
        let slot = usize::from(*env == PromptEnv::Production);
        per_subject.entry(name.as_str()).or_default()[slot] = Some(*v);
    }
    let v = |o: Option<i64>| o.map_or("-".to_owned(), |v| format!("v{v}"));
    let lines: Vec<String> = per_subject
        .iter()
        .map(|(n, [st, pr])| format!("{n} staging {} production {}", v(*st), v(*pr)))
        .collect();
    if lines.is_empty() {
        item.fact("no versioned prompts or routes");
        item.warn("Push prompts and route changes to staging first (`tollgate prompts push`, `tollgate routes push`), test them there, then promote.");
    } else {
        item.fact(format!("versions per environment: {}", list(&lines)));
    }
    match s.evals.iter().max_by_key(|e| e.at) {
        Some(e) => {
            item.fact(format!(
                "last evaluation: {} v{} {} on {} ({} in all)",
                e.name,
                e.version,
                if e.passed { "passed" } else { "failed" },
                e.at.format("%Y-%m-%d"),
                s.evals.len()
            ));
        }
        None if !lines.is_empty() => {
            item.fact("no evaluation recorded");
            item.warn(
                "Run the eval set on staging before promoting (`tollgate prompts test NAME`).",
            );
        }
        None => {}
    }
    item
}

pub(super) fn do4(f: &Facts) -> Item {
    let mut item = Item::new("DO-4");
    item.fact("`prompts rollback` / `routes rollback` restore the previous version atomically and are audited");
    let Some(s) = store(f, &mut item) else {
        return item;
    };
    let rollbacks: Vec<_> = s
        .history
        .iter()
        .filter(|d| d.action == "rollback")
        .collect();
    item.fact(format!(
        "deployment history: {} change(s) to {} subject(s), {} rollback(s)",
        s.history.len(),
        s.deployed
            .iter()
            .map(|(n, _, _)| n)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        rollbacks.len()
    ));
    if let Some(last) = rollbacks.iter().max_by_key(|d| d.set_at) {
        item.fact(format!(
            "last rollback: {} {} to v{} on {}",
            last.name,
            last.env.as_str(),
            last.version,
            last.set_at.format("%Y-%m-%d")
        ));
    }
    if s.history.is_empty() {
        item.warn("Nothing is versioned, so nothing can be rolled back: push prompts and route targets through `tollgate prompts` / `tollgate routes`.");
    }
    item
}
