//! Status decisions, from facts built by hand: no store, no socket.

use chrono::{DateTime, Duration, TimeZone, Utc};
use tollgate_gateway::config::Config;
use tollgate_gateway::rotation::{AuditedKey, KeyAge, KeysAudit};
use tollgate_scan::finding::{Finding, Severity};
use tollgate_store::audit::PayloadKind;
use tollgate_store::audit::verify::{ChainReport, Problem, VerifyReport};

use super::*;
use crate::report::Status;
use crate::report::evidence::{Probe, StoreFacts};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap()
}

fn config(text: &str) -> Config {
    Config::parse(text, std::path::Path::new("t.toml"))
        .unwrap()
        .0
}

fn store_facts() -> StoreFacts {
    StoreFacts {
        verify: Some(VerifyReport {
            chains: vec![ChainReport {
                instance: "gw".into(),
                records: 3,
                ..ChainReport::default()
            }],
            external_problems: Vec::new(),
            macs_checked: true,
        }),
        ..StoreFacts::new(
            KeysAudit {
                policy: true,
                due: 0,
                keys: Vec::new(),
            },
            1,
        )
    }
}

fn facts(cfg: &str, store: Result<StoreFacts, String>) -> Facts {
    Facts {
        config: config(cfg),
        config_path: None,
        now: now(),
        store,
        scan: ScanFacts::Done {
            root: ".".into(),
            files: 3,
            findings: Vec::new(),
            advisories: true,
        },
        probes: None,
    }
}

fn find<'a>(items: &'a [Item], id: &str) -> &'a Item {
    items.iter().find(|i| i.id == id).unwrap()
}

const ROUTES: &str = r#"
[providers.echo]
kind = "echo"
[routes.chat]
targets = [{ provider = "echo", model = "m" }]
[routes.open]
targets = [{ provider = "echo", model = "m" }]
[routes.open.guards.pii]
enabled = false
"#;

#[test]
fn every_item_is_judged_once_in_checklist_order() {
    let items = judge(&facts("", Err("no store".into())));
    let ids: Vec<&str> = items.iter().map(|i| i.id).collect();
    let expected: Vec<&str> = CHECKLIST.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, expected);
    assert!(items.iter().all(|i| !i.title.is_empty()));
    // Without a store nothing that needs runtime evidence passes silently.
    for id in [
        "AC-3", "AC-4", "DP-2", "DP-3", "MI-1", "MI-4", "DO-3", "DO-4",
    ] {
        let i = find(&items, id);
        assert!(i.status >= Status::Warn, "{id}: {i:?}");
        assert!(i.action.is_some(), "{id}");
    }
    assert!(
        find(&items, "DP-2")
            .evidence
            .iter()
            .any(|e| e.contains("runtime evidence unavailable: no store"))
    );
}

#[test]
fn a_route_without_pii_masking_or_policy_is_named() {
    let items = judge(&facts(ROUTES, Ok(store_facts())));
    let dp1 = find(&items, "DP-1");
    assert_eq!(dp1.status, Status::Warn);
    assert!(
        dp1.evidence
            .iter()
            .any(|e| e == "routes sending PII unmasked: open")
    );
    assert!(
        dp1.evidence
            .iter()
            .any(|e| e == "routes without a PII policy (built-in default only): chat")
    );
    let written = format!("{ROUTES}\n[guards.pii]\ndefault_action = \"mask\"\n");
    let dp1 = find(&judge(&facts(&written, Ok(store_facts()))), "DP-1").clone();
    assert!(
        dp1.evidence
            .iter()
            .any(|e| e == "routes with a PII policy: chat")
    );
    assert_eq!(dp1.status, Status::Warn, "open still sends PII unmasked");
}

#[test]
fn rotation_without_max_age_fails_and_an_old_key_warns() {
    let items = judge(&facts("", Ok(store_facts())));
    assert_eq!(find(&items, "AC-4").status, Status::Fail);
    let cfg = "[rotation]\nproduction = { max_age = \"90d\" }\n";
    let mut s = store_facts();
    s.keys_audit.due = 1;
    s.keys_audit.keys.push(AuditedKey {
        id: "key_old".into(),
        name: "billing".into(),
        environment: "production".into(),
        created_at: now() - Duration::days(100),
        age: KeyAge::Due { days_over: 10 },
    });
    let ac4 = find(&judge(&facts(cfg, Ok(s))), "AC-4").clone();
    assert_eq!(ac4.status, Status::Warn, "{ac4:?}");
    assert!(
        ac4.evidence
            .iter()
            .any(|e| e.contains("key_old (billing, production, created 2026-08-21, 10 days over)"))
    );
    assert_eq!(
        find(&judge(&facts(cfg, Ok(store_facts()))), "AC-4").status,
        Status::Pass
    );
}

#[test]
fn a_broken_chain_fails_dp2_with_the_record_named() {
    let mut s = store_facts();
    if let Some(v) = &mut s.verify {
        v.chains[0].problem = Some(Problem {
            seq: 2,
            what: "hash mismatch".into(),
        });
    }
    let dp2 = find(&judge(&facts("", Ok(s))), "DP-2").clone();
    assert_eq!(dp2.status, Status::Fail);
    assert!(
        dp2.evidence
            .iter()
            .any(|e| e == "chain gw record 2: hash mismatch")
    );
    let mut s = store_facts();
    s.verify = None;
    s.verify_error = Some("database is locked".into());
    assert_eq!(find(&judge(&facts("", Ok(s))), "DP-2").status, Status::Fail);
}

#[test]
fn retention_without_ttls_fails_and_an_overdue_purge_warns() {
    assert_eq!(
        find(&judge(&facts("", Ok(store_facts()))), "DP-3").status,
        Status::Fail
    );
    let cfg = "[retention]\nprompts = \"30d\"\ncompletions = \"30d\"\nembeddings = \"7d\"\n";
    let mut s = store_facts();
    s.oldest_payloads = vec![(PayloadKind::Prompt, now() - Duration::days(5))];
    assert_eq!(
        find(&judge(&facts(cfg, Ok(s))), "DP-3").status,
        Status::Pass
    );
    let mut s = store_facts();
    s.oldest_payloads = vec![(PayloadKind::Completion, now() - Duration::days(45))];
    let dp3 = find(&judge(&facts(cfg, Ok(s))), "DP-3").clone();
    assert_eq!(dp3.status, Status::Warn);
    assert!(
        dp3.evidence
            .iter()
            .any(|e| e == "oldest completion payload: 2026-10-15 (45 days old) vs TTL 30d")
    );
    assert!(dp3.action.unwrap().contains("overdue for completion"));
}

#[test]
fn an_unreviewed_provider_fails_dp4_and_an_expiring_one_warns() {
    let cfg = r#"
[providers.legacy]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
[providers.soon]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
[providers.soon.review]
reviewed_by = "dpo"
reviewed_on = 2025-12-10
expires = 2026-12-10
retention_days = 0
zero_data_retention = true
trains_on_customer_data = false
regions = ["eu"]
dpa_signed = true
data_classes = ["internal"]
"#;
    let dp4 = find(&judge(&facts(cfg, Ok(store_facts()))), "DP-4").clone();
    assert_eq!(dp4.status, Status::Fail);
    assert!(
        dp4.evidence
            .iter()
            .any(|e| e.starts_with("legacy: UNREVIEWED"))
    );
    assert!(
        dp4.evidence
            .iter()
            .any(|e| e.contains("soon: review expires 2026-12-10 (in 11 days)"))
    );
    let action = dp4.action.unwrap();
    assert!(action.starts_with("Review legacy (unreviewed)"), "{action}");
    assert!(action.contains("soon (11 days left)"), "{action}");
}

#[test]
fn scan_findings_set_the_status_by_severity_and_a_skipped_scan_warns() {
    let mut f = facts("", Ok(store_facts()));
    f.scan = ScanFacts::Done {
        root: ".".into(),
        files: 2,
        findings: vec![
            Finding::new("AC-1", "openai-api-key", Severity::Error, ".env", 1, "key"),
            Finding::new(
                "SC-1",
                "unpinned-ai-package",
                Severity::Warning,
                "requirements.txt",
                2,
                "x",
            ),
        ],
        advisories: false,
    };
    let items = judge(&f);
    assert_eq!(find(&items, "AC-1").status, Status::Fail);
    assert!(
        find(&items, "AC-1")
            .evidence
            .iter()
            .any(|e| e == "found at .env:1 [openai-api-key]")
    );
    assert_eq!(find(&items, "SC-1").status, Status::Warn);
    assert_eq!(find(&items, "SC-2").status, Status::Pass);
    assert_eq!(
        find(&items, "SC-4").status,
        Status::Warn,
        "no advisory database"
    );
    f.scan = ScanFacts::Skipped;
    let items = judge(&f);
    for id in ["SC-1", "SC-2", "SC-3", "SC-4"] {
        assert_eq!(find(&items, id).status, Status::Warn, "{id}");
    }
}

#[test]
fn a_probe_that_is_not_refused_fails_ac2() {
    let mut f = facts("", Ok(store_facts()));
    assert_eq!(find(&judge(&f), "AC-2").status, Status::Pass);
    f.probes = Some(vec![
        Probe {
            route: "POST /v1/chat/completions".into(),
            status: Ok(401),
        },
        Probe {
            route: "GET /v1/models".into(),
            status: Ok(200),
        },
    ]);
    let ac2 = find(&judge(&f), "AC-2").clone();
    assert_eq!(ac2.status, Status::Fail);
    assert!(
        ac2.action
            .unwrap()
            .starts_with("GET /v1/models answered 200")
    );
}

#[test]
fn mi3_and_mi4_want_a_recent_drill_and_a_recent_review() {
    let mut s = store_facts();
    s.review.last_labelled_at = Some(now() - Duration::days(3));
    s.review.labelled = 4;
    let cfg = "[incident]\nlast_drill = \"2026-10-01\"\n[review]\nsample_rate = 0.1\n";
    let items = judge(&facts(cfg, Ok(s)));
    assert_eq!(find(&items, "MI-3").status, Status::Pass);
    assert_eq!(find(&items, "MI-4").status, Status::Pass);
    let mut s = store_facts();
    s.review.last_labelled_at = Some(now() - Duration::days(40));
    let items = judge(&facts("[incident]\nlast_drill = \"2025-01-01\"\n", Ok(s)));
    assert_eq!(find(&items, "MI-3").status, Status::Warn);
    assert_eq!(find(&items, "MI-4").status, Status::Warn);
}

#[test]
fn durations_read_as_the_config_writes_them_and_references_keep_only_their_scheme() {
    assert_eq!(dur(std::time::Duration::from_secs(30 * 86_400)), "30d");
    assert_eq!(dur(std::time::Duration::from_secs(7_200)), "2h");
    assert_eq!(dur(std::time::Duration::from_secs(90)), "90s");
    assert_eq!(scheme("keystore://openai"), "keystore://");
    assert_eq!(scheme("env:OPENAI_API_KEY"), "env:");
    assert_eq!(scheme("vault://kv/openai#key"), "vault://");
}

#[test]
fn actions_of_the_worst_status_lead() {
    let mut i = Item::new("DP-1");
    i.warn("mild.");
    i.fail("severe.");
    i.warn("another mild.");
    assert_eq!(i.status, Status::Fail);
    assert_eq!(i.action.as_deref(), Some("severe. mild. another mild."));
}

#[test]
fn mi1_says_whether_and_where_traces_are_exported() {
    let off = judge(&facts("", Ok(store_facts())));
    assert!(
        find(&off, "MI-1")
            .evidence
            .iter()
            .any(|e| e.contains("OpenTelemetry traces: not exported")),
        "{:?}",
        find(&off, "MI-1")
    );
    let cfg = "[telemetry]\nendpoint = \"http://otel-collector:4318\"\nsample_ratio = 0.25\n";
    let on = judge(&facts(cfg, Ok(store_facts())));
    let mi1 = find(&on, "MI-1");
    assert!(
        mi1.evidence.iter().any(|e| e.contains(
            "exported over OTLP/HTTP to http://otel-collector:4318/v1/traces as service \"tollgate\"; 25% of new traces sampled"
        )),
        "{mi1:?}"
    );
    // Whether traces go out does not change the verdict: logs and metrics are the floor.
    assert_eq!(find(&off, "MI-1").status, mi1.status);
}
