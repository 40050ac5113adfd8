//! The CLI pointed at a running gateway (`--gateway URL`, AC-3): keys, kill switches, prompt
//! rollback and audit export go through the admin API with an admin credential, with no
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
fn remote(url: &str, cred: &str, args: &[&str]) -> (i32, String, String) {
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

fn json_of(out: &str) -> Value {
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
