//! The CLI pointed at a running gateway (`--gateway URL`, AC-3): keys (and their rotation
//! audit), kill switches, prompt push, diff, evaluation and rollback, the review queue, drift
//! and audit export go through the admin API with an admin credential, with no
//! access to the store; a credential whose role lacks the permission gets exit 2 and a
//! message naming the permission and the roles that hold it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_testkit::MockUpstream;

use crate::audit::{admin_cli, project};
use crate::prompts::{new_admin, wait_for, write_prompt, write_suite};
use crate::server::{BIN, Server, create_key};

/// `tollgate --gateway URL --admin-key CRED ARGS…` run from an empty directory, so nothing
/// but the admin API can serve it: (exit code, stdout, stderr).
pub(crate) fn remote(url: &str, cred: &str, args: &[&str]) -> (i32, String, String) {
    let empty = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .current_dir(empty.path())
        .args(["--gateway", url, "--admin-key", cred])
        .args(args)
        .env_remove("TOLLGATE_ADMIN_TOKEN")
        .env_remove("TOLLGATE_ADMIN_KEY")
        .env_remove("TOLLGATE_GATEWAY")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    // The command neither found nor created a store or master key.
    assert!(
        !empty.path().join("tollgate-data").exists(),
        "--gateway must not open a local store"
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Status of a chat call with `key`.
async fn status(url: &str, key: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Wait (at most a second, the documented propagation time) until `key` gets `want`.
async fn wait_status(url: &str, key: &str, want: u16) {
    let t0 = Instant::now();
    loop {
        let s = status(url, key).await;
        if s == want {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "still {s} after 1 s, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn json_of(out: &str) -> Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_and_kill_switches_through_the_admin_api() {
    let mock = MockUpstream::start().await.unwrap();
    let p = project(&mock, "");
    let server = Server::start(&p.dir, &[]);
    let url = server.url.clone();
    let owner = p.owner.clone();

    // keys create / list / show over the API; the new key works at once.
    let (code, out, err) = remote(
        &url,
        &owner,
        &[
            "keys",
            "create",
            "--name",
            "remote-app",
            "--team",
            "web",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let created = json_of(&out);
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(status(&url, &key).await, 200);
    let (code, out, err) = remote(&url, &owner, &["keys", "list", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        json_of(&out)
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == id.as_str())
    );
    let (code, out, err) = remote(&url, &owner, &["keys", "show", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("{id} is active")) && out.contains("web"),
        "{out}"
    );
    // A data-steward key is created over the API too.
    let (code, out, err) = remote(
        &url,
        &owner,
        &[
            "keys",
            "create",
            "--name",
            "datasets",
            "--role",
            "data-steward",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_of(&out)["role"], "data-steward");

    // kill / kill list / unkill by an incident responder.
    let (responder, _) = new_admin(&url, &owner, "incident-responder").await;
    let (code, out, err) = remote(&url, &responder, &["kill", "key", &id, "--reason", "drill"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("switched off"), "{out}");
    // The instance that took the call applies it at once.
    assert_eq!(status(&url, &key).await, 403);
    let (code, out, err) = remote(&url, &responder, &["kill", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&id) && out.contains("drill"), "{out}");
    let (code, _, err) = remote(&url, &responder, &["unkill", "key", &id]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(status(&url, &key).await, 200);
    let (code, _, err) = remote(&url, &responder, &["unkill", "key", &id]);
    assert_eq!(code, 2, "lifting a switch that is not on is an error");
    assert!(err.contains("no key switch"), "{err}");

    // rotate, then revoke the successor: refused within a second.
    let (code, out, err) = remote(
        &url,
        &owner,
        &["keys", "rotate", &id, "--grace", "1h", "--json"],
    );
    assert_eq!(code, 0, "{err}");
    let rotated = json_of(&out);
    let new_key = rotated["key"].as_str().unwrap().to_owned();
    let new_id = rotated["id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, id);
    assert_eq!(status(&url, &new_key).await, 200);
    assert_eq!(
        status(&url, &key).await,
        200,
        "the old key works through its grace"
    );
    let (code, _, err) = remote(&url, &owner, &["keys", "revoke", &new_id]);
    assert_eq!(code, 0, "{err}");
    wait_status(&url, &new_key, 401).await;

    // A credential whose role lacks the permission: exit 2, naming what is missing.
    let (auditor, _) = new_admin(&url, &owner, "auditor").await;
    let (code, _, err) = remote(&url, &auditor, &["keys", "create", "--name", "nope"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("permission denied")
            && err.contains("keys_write")
            && err.contains("owner, admin"),
        "{err}"
    );
    let (code, _, err) = remote(&url, &auditor, &["kill", "lockdown", "--reason", "x"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("kill_switch") && err.contains("incident-responder"),
        "{err}"
    );
    // An invalid credential, and a data-plane key offered as one.
    let (code, _, err) = remote(&url, "tg_admin_not-a-real-one", &["keys", "list"]);
    assert_eq!(code, 2);
    assert!(err.contains("refused the admin credential"), "{err}");
    let (code, _, err) = remote(&url, &key, &["kill", "list"]);
    assert_eq!(code, 2);
    assert!(err.contains("refused the admin credential"), "{err}");

    // audit export over the API, by the auditor: every action above is in it.
    let (code, out, err) = remote(&url, &auditor, &["audit", "export", "--since", "1h"]);
    assert_eq!(code, 0, "{err}");
    let actions: Vec<String> = out
        .lines()
        .map(|l| {
            json_of(l)["record"]["action"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    for a in [
        "keys.create",
        "killswitch.set",
        "killswitch.clear",
        "keys.rotate",
        "keys.revoke",
    ] {
        assert!(
            actions.iter().any(|x| x == a),
            "{a} missing from the export"
        );
    }
    // Without --gateway the CLI still uses the store (the project's), unchanged.
    let (code, out, err) = admin_cli(&p.dir, None, &["keys", "show", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&id), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn prompts_roll_back_through_the_admin_api() {
    let mock = MockUpstream::start().await.unwrap();
    let p = project(&mock, "");
    let (live, _) = create_key(&p.dir, &[]);
    let (staging, _) = create_key(&p.dir, &["--env", "staging"]);
    let server = Server::start(&p.dir, &[]);
    let url = server.url.clone();
    let (approver, _) = new_admin(&url, &p.owner, "approver").await;
    let (engineer, _) = new_admin(&url, &p.owner, "prompt-engineer").await;
    let dir: &Path = &p.dir;
    // Two versions, each pushed and evaluated locally, then promoted over the API.
    for tag in ["v1", "v2"] {
        let file = write_prompt(dir, tag);
        let (code, _, err) = admin_cli(dir, Some(&engineer), &["prompts", "push", &file]);
        assert_eq!(code, 0, "{err}");
        wait_for(&url, &staging, &format!("{tag} Ada asks")).await;
        let suite = write_suite(dir, "suite.yaml", &format!("{tag} Ada asks"));
        let (code, out, err) = admin_cli(
            dir,
            Some(&engineer),
            &[
                "prompts",
                "test",
                "support",
                "--suite",
                &suite,
                "--gateway",
                &url,
                "--key",
                &staging,
            ],
        );
        assert_eq!(code, 0, "{out}{err}");
        let (code, out, err) = remote(&url, &approver, &["prompts", "promote", "support"]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(&format!("Promoted support {tag}")), "{out}");
        wait_for(&url, &live, &format!("{tag} Ada asks")).await;
    }
    // The prompt engineer may read history but not roll back.
    let (code, out, err) = remote(&url, &engineer, &["prompts", "history", "support"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("production v2"), "{out}");
    let (code, _, err) = remote(&url, &engineer, &["prompts", "rollback", "support"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("prompts_promote") && err.contains("approver"),
        "{err}"
    );
    let (code, out, err) = remote(&url, &approver, &["prompts", "rollback", "support"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("from v2 to v1"), "{out}");
    wait_for(&url, &live, "v1 Ada asks").await;
    // Routes over the API: history of a route with no versions is a clear 404.
    let (code, _, err) = remote(&url, &approver, &["routes", "history", "gpt"]);
    assert_eq!(code, 2);
    assert!(err.contains("no route version"), "{err}");
}

/// Queue one review item straight into the running gateway's database (the gateway flushes
/// its own samples only every few seconds or at shutdown).
fn seed_review_item(db: &Path, id: &str) {
    let script = r#"
import sqlite3, sys, time, datetime
c = sqlite3.connect(sys.argv[1])
now = datetime.datetime.now(datetime.timezone.utc)
c.execute("INSERT INTO review_items (id, route, request_id, at, day, prompt, completion, truncated) VALUES (?, 'gpt', 'req_e2e', ?, ?, 'where is [EMAIL]''s order?', 'it shipped', 0)", (sys.argv[2], int(time.time() * 1000), now.date().isoformat()))
c.commit()
"#;
    let ok = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(db)
        .arg(id)
        .status()
        .unwrap();
    assert!(ok.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn prompts_push_diff_test_keys_audit_review_and_drift_through_the_admin_api() {
    let mock = MockUpstream::start().await.unwrap();
    let p = project(
        &mock,
        "[rotation]\nproduction = { max_age = \"90d\", warn_before = \"14d\" }\n",
    );
    let (staging, _) = create_key(&p.dir, &["--env", "staging"]);
    let server = Server::start(&p.dir, &[]);
    let url = server.url.clone();
    let (engineer, engineer_id) = new_admin(&url, &p.owner, "prompt-engineer").await;
    let (approver, approver_id) = new_admin(&url, &p.owner, "approver").await;
    let (auditor, _) = new_admin(&url, &p.owner, "auditor").await;
    let dir: &Path = &p.dir;

    // push: validated by the gateway against its config, recorded with the engineer as author.
    let file = write_prompt(dir, "v1");
    let (code, out, err) = remote(&url, &engineer, &["prompts", "push", &file]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Pushed support v1 to staging"), "{out}");
    let (code, out, _) = remote(&url, &engineer, &["prompts", "push", &file]);
    assert_eq!(code, 0);
    assert!(out.contains("Unchanged"), "{out}");
    let (code, _, err) = remote(&url, &approver, &["prompts", "push", &file]);
    assert_eq!(code, 2);
    assert!(err.contains("prompts_stage"), "{err}");
    let bad = dir.join("elsewhere.yaml");
    std::fs::write(&bad, "name: support\nroute: nowhere\nsystem: hi\n").unwrap();
    let (code, _, err) = remote(&url, &engineer, &["prompts", "push", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("not a route"), "{err}");
    let file = write_prompt(dir, "v2");
    let (code, out, err) = remote(&url, &engineer, &["prompts", "push", &file]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("support v2"), "{out}");
    wait_for(&url, &staging, "v2 Ada asks").await;

    // diff: by the approver, who reads what it is asked to promote.
    let (code, out, err) = remote(&url, &approver, &["prompts", "diff", "support"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("support: v1 → v2"), "{out}");
    assert!(
        out.contains("- ") && out.contains("+ ") && out.contains("v2 {{customer}}"),
        "{out}"
    );
    let (code, _, err) = remote(
        &url,
        &approver,
        &["prompts", "diff", "support", "--to", "9"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("no version 9"), "{err}");

    // test: the cases run through the gateway and the result is recorded through its API.
    let suite = write_suite(dir, "suite.yaml", "v2 Ada asks");
    let (code, out, err) = remote(
        &url,
        &engineer,
        &[
            "prompts", "test", "support", "--suite", &suite, "--key", &staging,
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("PASSED: support v2"), "{out}");
    let (code, out, err) = remote(&url, &approver, &["prompts", "promote", "support"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Promoted support v2"), "{out}");
    let (code, out, _) = remote(
        &url,
        &engineer,
        &["prompts", "history", "support", "--json"],
    );
    assert_eq!(code, 0);
    let h = json_of(&out);
    assert_eq!(h["versions"][1]["author"], engineer_id.as_str());
    assert_eq!(h["versions"][1]["eval"]["passed"], true);

    // keys audit: every key is young, so it passes (exit 0); JSON says a policy is set.
    let (code, out, err) = remote(&url, &auditor, &["keys", "audit"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("PASS: 0 key(s) past the rotation policy"),
        "{out}"
    );
    let (code, out, _) = remote(&url, &auditor, &["keys", "audit", "--json"]);
    assert_eq!(code, 0);
    let audit = json_of(&out);
    assert_eq!(
        (audit["policy"].clone(), audit["due"].clone()),
        (json!(true), json!(0))
    );
    let (code, _, err) = remote(&url, &engineer, &["keys", "audit"]);
    assert_eq!(code, 2);
    assert!(err.contains("keys_read"), "{err}");

    // review: read by the auditor, labelled by the approver (recorded as who did it).
    seed_review_item(&dir.join("tollgate-data").join("tollgate.db"), "rev_e2e");
    let (code, out, err) = remote(&url, &auditor, &["review"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("1 item(s) waiting for review"), "{out}");
    assert!(out.contains("rev_e2e"), "{out}");
    let (code, out, _) = remote(&url, &auditor, &["review", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(json_of(&out)[0]["id"], "rev_e2e");
    let (code, _, err) = remote(
        &url,
        &auditor,
        &["review", "label", "rev_e2e", "--label", "good"],
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("review_label") && err.contains("approver"),
        "{err}"
    );
    let (code, out, err) = remote(
        &url,
        &approver,
        &[
            "review",
            "label",
            "rev_e2e",
            "--label",
            "wrong",
            "--reviewer",
            "dana",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let item = json_of(&out);
    assert_eq!(item["label"], "wrong");
    assert_eq!(item["reviewer"], "dana");
    assert_eq!(item["labelled_by"], approver_id.as_str());
    let (code, _, err) = remote(
        &url,
        &approver,
        &["review", "label", "rev_nope", "--label", "good"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("no review item rev_nope"), "{err}");

    // drift: the day's label is in the series; one day is not enough to score.
    let (code, out, err) = remote(&url, &auditor, &["drift", "gpt"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("Not enough data to score route gpt"),
        "{out}"
    );
    let (code, out, _) = remote(&url, &auditor, &["drift", "gpt", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(json_of(&out)["series"][0]["labels"]["wrong"], 1, "{out}");
    let (code, _, err) = remote(&url, &auditor, &["drift", "nowhere"]);
    assert_eq!(code, 2);
    assert!(err.contains("not in the config"), "{err}");

    // Each of these is in the audit trail, with who did it.
    let (code, out, err) = remote(&url, &auditor, &["audit", "export", "--since", "1h"]);
    assert_eq!(code, 0, "{err}");
    let records: Vec<Value> = out.lines().map(json_of).collect();
    for (action, actor) in [
        ("prompts.push", engineer_id.as_str()),
        ("prompts.diff", approver_id.as_str()),
        ("prompts.test", engineer_id.as_str()),
        ("prompts.promote", approver_id.as_str()),
        ("review.label", approver_id.as_str()),
    ] {
        assert!(
            records.iter().any(|r| r["record"]["action"] == action
                && r["record"]["actor"] == actor
                && r["record"]["via"] == "admin_api"),
            "{action} by {actor} missing from the export"
        );
    }
    for action in ["keys.audit", "review.list", "drift.show"] {
        assert!(
            records.iter().any(|r| r["record"]["action"] == action),
            "{action} missing from the export"
        );
    }
}
