//! `tollgate report` end to end: a well-configured deployment with real traffic passes what
//! it can (and the live AC-2 probe of a running gateway is refused on every route); a
//! misconfigured one fails with the culprits named; the JSON shape; exit codes; and a
//! snapshot of the human output.

use std::path::Path;

use serde_json::Value;
use tollgate_testkit::MockUpstream;

use crate::audit::{Project, chat, project, stop, tamper};
use crate::server::{Server, cli, create_key};

/// A credential shape the scanner confirms (also used by the scan tests).
const LEAKED: &str = "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";

/// Everything a demanding auditor asks for, in config.
fn good_config() -> String {
    let drill = chrono::Utc::now().date_naive() - chrono::Duration::days(10);
    format!(
        r#"
[guards.pii]
enabled = true
[guards.output]
secrets = "block"
on_invalid = "fallback"
fallback_message = "Sorry, I cannot answer that."

[retention]
prompts = "30d"
completions = "30d"
embeddings = "30d"
metadata = "400d"

[rotation]
production = {{ max_age = "90d", warn_before = "14d" }}
staging = {{ max_age = "30d" }}

[[budgets]]
scope = "global"
period = "month"
limit_usd = 100.0
thresholds = [0.8]

[limits]
key = {{ rpm = 600, tpm = 100000 }}

[[alerts.webhooks]]
url = "http://127.0.0.1:9/hook"

[review]
sample_rate = 0.1

[incident]
last_drill = "{drill}"
"#
    )
}

fn write(dir: &Path, rel: &str, body: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

/// `tollgate report` in the project with `args`: (exit code, stdout, stderr).
fn report(p: &Project, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["report"];
    all.extend_from_slice(args);
    cli(&p.dir, &all, None)
}

fn report_json(p: &Project, args: &[&str]) -> (i32, Value) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, out, err) = report(p, &all);
    assert!(code == 0 || code == 1, "{err}");
    (code, serde_json::from_str(&out).unwrap())
}

fn item<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .unwrap_or_else(|| panic!("no item {id} in {v}"))
}

fn evidence(i: &Value) -> Vec<String> {
    i["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_owned())
        .collect()
}

fn has(i: &Value, needle: &str) -> bool {
    evidence(i).iter().any(|e| e.contains(needle))
}

/// Some traffic through a gateway of `p`, then stopped; returns nothing but a store with
/// requests, payloads and a signed chain.
async fn traffic(p: &Project, server: &Server, n: usize) {
    let (key, _) = create_key(&p.dir, &[]);
    let client = reqwest::Client::new();
    for i in 0..n {
        let (status, _, _) =
            chat(&client, &server.url, &key, "audited", &format!("hello {i}")).await;
        assert_eq!(status, 200);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_well_configured_deployment_passes_and_the_live_probe_is_refused_everywhere() {
    let mock = MockUpstream::start().await.unwrap();
    let p = project(&mock, &good_config());
    let repo = tempfile::tempdir().unwrap();
    write(repo.path(), "README.md", "# an app behind tollgate\n");
    let repo_arg = repo.path().to_str().unwrap().to_owned();
    let mut server = Server::start(&p.dir, &[]);
    traffic(&p, &server, 3).await;

    // AC-2 against the running gateway: every data-plane route answers 401 without a key.
    let (code, v) = report_json(&p, &["--repo", &repo_arg, "--gateway", &server.url]);
    let ac2 = item(&v, "AC-2");
    assert_eq!(ac2["status"], "PASS", "{ac2}");
    for route in [
        "POST /v1/chat/completions",
        "POST /v1/completions",
        "POST /v1/messages",
        "POST /v1/embeddings",
        "GET /v1/models",
    ] {
        assert!(
            has(ac2, &format!("probe {route} without a key: 401")),
            "{ac2}"
        );
    }
    assert_eq!(code, 0, "{v}");
    assert!(stop(&mut server).success());

    let (code, v) = report_json(&p, &["--repo", &repo_arg]);
    assert_eq!(code, 0, "nothing fails: {v}");
    for id in [
        "AC-1", "AC-2", "AC-3", "AC-4", "DP-1", "DP-2", "DP-3", "DP-4", "MG-1", "MG-2", "MG-3",
        "MG-4", "MI-1", "MI-2", "MI-3", "SC-1", "SC-2", "SC-3", "DO-1", "DO-2",
    ] {
        assert_eq!(item(&v, id)["status"], "PASS", "{id}: {}", item(&v, id));
        assert!(item(&v, id)["action"].is_null(), "{id}");
    }
    assert!(
        has(item(&v, "DP-2"), "audit verify: OK"),
        "{}",
        item(&v, "DP-2")
    );
    assert!(
        has(item(&v, "DP-3"), "oldest prompt payload: "),
        "{}",
        item(&v, "DP-3")
    );
    assert!(has(
        item(&v, "AC-1"),
        "provider oa: credential by reference (keystore://…)"
    ));
    // The three calls and the five unauthenticated probes are all in the trail.
    assert!(
        has(item(&v, "MI-1"), "by status: 200 3, 401 5"),
        "{}",
        item(&v, "MI-1")
    );
    assert!(has(
        item(&v, "AC-2"),
        "requests refused 401 in the last 30 days: 5"
    ));
    // What this deployment has not done yet is a WARN with the reason, never a silent PASS.
    assert_eq!(item(&v, "MI-4")["status"], "WARN");
    assert!(has(item(&v, "MI-4"), "no output has been reviewed yet"));
    assert_eq!(item(&v, "SC-4")["status"], "WARN");
    assert_eq!(item(&v, "DO-3")["status"], "WARN");
    assert!(has(item(&v, "DO-3"), "no versioned prompts or routes"));
    let s = &v["summary"];
    assert_eq!(s["fail"], 0);
    assert_eq!(
        s["pass"].as_u64().unwrap() + s["warn"].as_u64().unwrap(),
        24
    );

    // Markdown for the auditor carries the same verdict and a table row per item.
    let (code, md, _) = report(&p, &["--repo", &repo_arg, "--format", "markdown"]);
    assert_eq!(code, 0);
    assert!(md.starts_with("# tollgate checklist report\n"), "{md}");
    assert!(md.contains(&format!(
        "**tollgate report: {} PASS, {} WARN, 0 FAIL**",
        s["pass"], s["warn"]
    )));
    assert_eq!(md.matches("\n| ").count(), 25, "header and 24 rows");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_misconfigured_deployment_fails_with_each_culprit_named() {
    let mock = MockUpstream::start().await.unwrap();
    // An unreviewed provider, the routes without a PII policy, no retention, and no rotation.
    let extra = format!(
        "[providers.legacy]\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = \"keystore://mock\"\n",
        mock.openai_base()
    );
    let p = project(&mock, &extra);
    let mut server = Server::start(&p.dir, &[]);
    traffic(&p, &server, 4).await;
    assert!(stop(&mut server).success());
    let instance = std::fs::read_to_string(p.dir.join("tollgate-data/instance.id")).unwrap();
    let changed = tamper(
        &p.dir.join("tollgate-data/tollgate.db"),
        &format!(
            "UPDATE audit_records SET body = replace(body, '\"status\":200', '\"status\":500') \
             WHERE instance = '{}' AND seq = 2;",
            instance.trim()
        ),
    );
    assert_eq!(changed, 1);
    // A repository with a leaked key and an unpinned AI dependency.
    let repo = tempfile::tempdir().unwrap();
    write(repo.path(), ".env", &format!("GROQ_API_KEY={LEAKED}\n"));
    write(repo.path(), "requirements.txt", "openai>=1.0\n");
    let repo_arg = repo.path().to_str().unwrap().to_owned();

    let (code, out, err) = report(&p, &["--repo", &repo_arg]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.starts_with("tollgate report: "), "{out}");
    assert!(
        !out.contains(LEAKED),
        "the report never prints key material"
    );
    assert!(out.contains("\nWhat to do:\n  FAIL "), "{out}");

    let (code, v) = report_json(&p, &["--repo", &repo_arg]);
    assert_eq!(code, 1);
    assert!(!v.to_string().contains(LEAKED));
    let ac1 = item(&v, "AC-1");
    assert_eq!(ac1["status"], "FAIL", "{ac1}");
    assert!(has(ac1, "found at .env:1 ["), "{ac1}");
    let sc1 = item(&v, "SC-1");
    assert_ne!(sc1["status"], "PASS", "{sc1}");
    assert!(has(sc1, "requirements.txt:1"), "{sc1}");
    let dp1 = item(&v, "DP-1");
    assert_eq!(dp1["status"], "WARN", "{dp1}");
    assert!(
        has(
            dp1,
            "routes without a PII policy (built-in default only): audited, gpt"
        ),
        "{dp1}"
    );
    let dp2 = item(&v, "DP-2");
    assert_eq!(dp2["status"], "FAIL", "{dp2}");
    assert!(has(dp2, "audit verify: FAILED"), "{dp2}");
    assert!(
        has(dp2, &format!("chain {} record 2:", instance.trim())),
        "{dp2}"
    );
    let dp3 = item(&v, "DP-3");
    assert_eq!(dp3["status"], "FAIL", "{dp3}");
    assert!(has(dp3, "no [retention] TTLs"), "{dp3}");
    let dp4 = item(&v, "DP-4");
    assert_eq!(dp4["status"], "FAIL", "{dp4}");
    assert!(has(dp4, "legacy: UNREVIEWED"), "{dp4}");
    assert!(
        dp4["action"]
            .as_str()
            .unwrap()
            .contains("legacy (unreviewed)")
    );
    assert_eq!(item(&v, "AC-4")["status"], "FAIL");
}

#[test]
fn the_json_shape_is_stable() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = cli(dir.path(), &["report", "--json", "--no-scan"], None);
    assert_eq!(code, 1, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["items", "summary"]);
    let summary: Vec<&str> = v["summary"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(summary, ["fail", "generated_at", "pass", "verdict", "warn"]);
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 24);
    for i in items {
        let keys: Vec<&str> = i.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["action", "evidence", "id", "status", "title"], "{i}");
        assert!(["PASS", "WARN", "FAIL"].contains(&i["status"].as_str().unwrap()));
        assert_eq!(i["action"].is_null(), i["status"] == "PASS", "{i}");
    }
    assert_eq!(items[0]["id"], "AC-1");
    assert_eq!(items[23]["id"], "DO-4");
    // The report never creates a store as a side effect.
    assert!(!dir.path().join("tollgate-data").exists());
}

#[test]
fn exit_codes_two_on_usage_and_runtime_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = cli(dir.path(), &["report", "--format", "yaml"], None);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = cli(dir.path(), &["report", "--repo", "/nonexistent/repo"], None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/nonexistent/repo"), "{err}");
    let (code, _, err) = cli(
        dir.path(),
        &["--config", "/nonexistent/tollgate.toml", "report"],
        None,
    );
    assert_eq!(code, 2, "{err}");
}

#[test]
fn the_human_report_leads_with_the_verdict_then_items_then_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let today = chrono::Utc::now().date_naive();
    let config = format!(
        r#"
[providers.oa]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key = "keystore://oa"
[providers.oa.review]
{review}
[providers.legacy]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key = "env:LEGACY_KEY"
[routes.chat]
targets = [{{ provider = "oa", model = "m" }}, {{ provider = "legacy", model = "m" }}]
[routes.raw]
targets = [{{ provider = "oa", model = "m" }}]
[routes.raw.guards.pii]
enabled = false
[retention]
prompts = "30d"
[incident]
last_drill = "{drill}"
"#,
        review = crate::server::review_toml(),
        drill = today - chrono::Duration::days(200),
    );
    std::fs::write(dir.path().join("tollgate.toml"), config).unwrap();
    let (code, out, err) = cli(dir.path(), &["report", "--no-scan"], None);
    assert_eq!(code, 1, "{err}");
    // Redact what changes from run to run: dates, day counts and the temporary directory.
    let tmp = dir.path().to_str().unwrap().to_owned();
    let out = out.replace(&tmp, "[TMP]");
    let out = regex::Regex::new(r"\d{4}-\d{2}-\d{2}")
        .unwrap()
        .replace_all(&out, "[DATE]");
    let out = regex::Regex::new(r"\d+ days")
        .unwrap()
        .replace_all(&out, "[N] days");
    insta::assert_snapshot!(out);
}

#[test]
fn a_database_without_its_master_key_is_not_read_and_no_key_is_made() {
    // A new master key beside an old database would make every audit MAC look forged.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("tollgate-data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("tollgate.db"), b"").unwrap();
    let (code, out, err) = cli(dir.path(), &["report", "--json", "--no-scan"], None);
    assert_eq!(code, 1, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let dp2 = item(&v, "DP-2");
    assert_eq!(dp2["status"], "WARN", "{dp2}");
    assert!(
        has(dp2, "no master key at tollgate-data/master.key"),
        "{dp2}"
    );
    assert!(!data.join("master.key").exists());
}
