//! CLI commands against a running gateway: keys, secrets, init, scan.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_testkit::MockUpstream;

use crate::server::{Server, cli, create_key, project};

async fn chat(url: &str, key: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": "gpt", "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_lifecycle_against_a_running_gateway() {
    let mock = MockUpstream::start().await.unwrap();
    let (dir, _) = project(&mock);
    let d = dir.path();
    let (key, id) = create_key(
        d,
        &[
            "--team",
            "search",
            "--env",
            "staging",
            "--models",
            "gpt,claude",
        ],
    );
    assert!(key.starts_with("tg_test_"));
    let server = Server::start(d, &[]);
    assert_eq!(chat(&server.url, &key).await, 200);

    let (code, out, _) = cli(d, &["keys", "list", "--json"], None);
    assert_eq!(code, 0);
    let list: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(list[0]["id"], id);
    assert_eq!(list[0]["team"], "search");
    assert_eq!(list[0]["environment"], "staging");
    assert!(!out.contains(&key), "listing never shows the key");
    let (code, out, _) = cli(d, &["keys", "list"], None);
    assert_eq!(code, 0);
    assert!(out.contains(&id) && out.contains("active"));

    // Rotate with grace: both keys work, the old one until the grace ends.
    let (code, out, err) = cli(d, &["keys", "rotate", &id, "--grace", "1h", "--json"], None);
    assert_eq!(code, 0, "{err}");
    let rotated: Value = serde_json::from_str(out.trim()).unwrap();
    let new_key = rotated["key"].as_str().unwrap().to_owned();
    let new_id = rotated["id"].as_str().unwrap().to_owned();
    assert_eq!(rotated["rotated_from"], id);
    assert_eq!(rotated["allowed_models"], json!(["gpt", "claude"]));
    assert_eq!(chat(&server.url, &new_key).await, 200);
    assert_eq!(chat(&server.url, &key).await, 200);
    let (_, out, _) = cli(d, &["keys", "show", &id, "--json"], None);
    let old: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(old["rotated_to"], new_id);
    assert!(old["expires_at"].is_string());

    // Rotation with zero grace ends the old key now.
    let (code, out, _) = cli(
        d,
        &["keys", "rotate", &new_id, "--grace", "0s", "--json"],
        None,
    );
    assert_eq!(code, 0);
    let newest: Value = serde_json::from_str(out.trim()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(1);
    while chat(&server.url, &new_key).await != 401 {
        assert!(
            Instant::now() < deadline,
            "rotated key still works after its grace"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let newest_key = newest["key"].as_str().unwrap().to_owned();
    assert_eq!(chat(&server.url, &newest_key).await, 200);

    // Revoke through the CLI: the running gateway refuses within a second.
    let newest_id = newest["id"].as_str().unwrap();
    let (code, _, _) = cli(d, &["keys", "revoke", newest_id], None);
    assert_eq!(code, 0);
    let revoked = Instant::now();
    while chat(&server.url, &newest_key).await != 401 {
        assert!(
            revoked.elapsed() < Duration::from_secs(1),
            "revoked key still accepted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (code, _, err) = cli(d, &["keys", "revoke", "key_doesnotexist"], None);
    assert_eq!(code, 2);
    assert!(err.contains("no key"));
    let (code, _, err) = cli(d, &["keys", "create", "--name", "x", "--env", "moon"], None);
    assert_eq!(code, 2);
    assert!(err.contains("production or staging"), "{err}");
}

#[test]
fn secrets_come_from_stdin_and_are_encrypted_at_rest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let value = "sk-live-value-that-must-not-appear-on-disk";
    let (code, out, err) = cli(
        d,
        &["secrets", "set", "openai"],
        Some(&format!("{value}\n")),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("keystore://openai"));
    let (_, out, _) = cli(d, &["secrets", "list"], None);
    assert_eq!(out.trim(), "openai");
    for entry in std::fs::read_dir(d.join("tollgate-data")).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(value),
            "plaintext secret found on disk"
        );
    }
    let (code, _, err) = cli(d, &["secrets", "set", "empty"], Some(""));
    assert_eq!(code, 2);
    assert!(err.contains("no value"), "{err}");
    let (code, _, _) = cli(d, &["secrets", "set", "bad name"], Some("x"));
    assert_eq!(code, 2);
    let (code, _, _) = cli(d, &["secrets", "delete", "openai"], None);
    assert_eq!(code, 0);
    let (code, _, _) = cli(d, &["secrets", "delete", "openai"], None);
    assert_eq!(code, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn init_writes_a_working_config_and_a_one_time_admin_credential() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = cli(dir.path(), &["init", "proj"], None);
    assert_eq!(code, 0, "{err}");
    let cred = out
        .lines()
        .find(|l| l.starts_with("tg_admin_"))
        .expect("admin credential printed");
    assert_eq!(cred.len(), "tg_admin_".len() + 36);
    let proj = dir.path().join("proj");
    assert!(proj.join("tollgate.toml").exists());
    let db = std::fs::read(proj.join("tollgate-data/tollgate.db")).unwrap_or_default();
    assert!(!String::from_utf8_lossy(&db).contains(cred));
    let (code, _, err) = cli(dir.path(), &["init", "proj"], None);
    assert_eq!(code, 2, "init never overwrites");
    assert!(err.contains("already exists"));

    // The written config runs as is.
    let (key, _) = create_key(&proj, &["--models", "echo"]);
    let server = Server::start(&proj, &[]);
    let r = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.url))
        .bearer_auth(&key)
        .json(&json!({"model": "echo", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn scan_reports_leaked_keys_with_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("clean.py"), "print('hello')\n").unwrap();
    let (code, out, _) = cli(dir.path(), &["scan", "."], None);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("PASS"));
    std::fs::write(
        dir.path().join("app.py"),
        "KEY = 'AIzaSyD4bC7dE9fG1hJ3kL5mN7pQ9rS1tU3vW5x'\n",
    )
    .unwrap();
    let (code, out, _) = cli(dir.path(), &["scan", ".", "--json"], None);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["verdict"], "FAIL");
    assert_eq!(v["findings"][0]["file"], "app.py");
    assert_eq!(v["findings"][0]["line"], 1);
    assert_eq!(v["findings"][0]["checklist_id"], "AC-1");
    assert!(!out.contains("kL5mN7pQ9rS1tU3vW5x"));
    let (code, _, _) = cli(dir.path(), &["scan", "does-not-exist"], None);
    assert_eq!(code, 2);
}
