//! `tollgate serve`: start-up, demo mode, request logs, config errors.

use std::os::unix::fs::PermissionsExt;

use serde_json::{Value, json};
use tollgate_testkit::MockUpstream;

use crate::server::{Server, cli, create_key, project};

#[tokio::test(flavor = "multi_thread")]
async fn demo_mode_starts_with_no_flags_and_echoes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--demo"]);
    let line = server.wait_for_line(|l| l.starts_with("demo key: "));
    let key = line.trim_start_matches("demo key: ").to_owned();
    assert!(key.starts_with("tg_test_") && key.len() == 44, "{key}");

    let data = dir.path().join("tollgate-data");
    assert_eq!(
        std::fs::metadata(&data).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(
        std::fs::metadata(data.join("master.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );

    let client = reqwest::Client::new();
    let r = client
        .post(format!("{}/v1/chat/completions", server.url))
        .bearer_auth(&key)
        .json(&json!({"model": "echo", "messages": [{"role": "user", "content": "my prompt"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "my prompt");
    let r = client
        .post(format!("{}/v1/chat/completions", server.url))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "no flag turns authentication off, not even --demo"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn one_json_log_line_per_request_without_keys_or_prompts() {
    let mock = MockUpstream::start().await.unwrap();
    let (dir, _) = project(&mock);
    let (key, id) = create_key(dir.path(), &[]);
    let server = Server::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{}/v1/chat/completions", server.url))
        .bearer_auth(&key)
        .json(&json!({"model": "gpt", "messages": [{"role": "user", "content": "very secret prompt"}]}))
        .send()
        .await
        .unwrap();
    let request_id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(r.status(), 200);
    let line = server.wait_for_line(|l| l.contains(&request_id));
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["message"], "request");
    assert_eq!(v["key_id"], id);
    assert_eq!(v["route"], "gpt");
    assert_eq!(v["upstream"], "oa/gpt-mock");
    assert_eq!(v["status"], 200);
    assert_eq!(v["tokens_in"], 11);
    assert_eq!(v["tokens_out"], 7);
    assert!(v["latency_ms"].as_f64().unwrap() > 0.0);
    assert!(v["upstream_ms"].as_f64().is_some());
    let all = server.output().join("\n");
    assert!(!all.contains(&key), "the virtual key must never be logged");
    assert!(
        !all.contains("very secret prompt"),
        "prompts are not logged by default"
    );
    assert!(
        !all.contains(tollgate_testkit::MOCK_KEY),
        "provider credentials are never logged"
    );

    // A failed request is logged too, with its error class.
    let r = client
        .post(format!("{}/v1/chat/completions", server.url))
        .bearer_auth(&key)
        .json(&json!({"model": "slow", "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    let rid = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let v: Value = serde_json::from_str(&server.wait_for_line(|l| l.contains(&rid))).unwrap();
    assert_eq!(v["error_class"], "upstream_timeout");
    assert_eq!(v["status"], 504);
}

#[tokio::test(flavor = "multi_thread")]
async fn payload_logging_is_opt_in() {
    let mock = MockUpstream::start().await.unwrap();
    let (dir, path) = project(&mock);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("[logging]\nlog_payloads = true\n{text}")).unwrap();
    let (key, _) = create_key(dir.path(), &[]);
    let server = Server::start(dir.path(), &[]);
    reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.url))
        .bearer_auth(&key)
        .json(&json!({"model": "gpt", "messages": [{"role": "user", "content": "logged prompt"}]}))
        .send()
        .await
        .unwrap();
    let line = server.wait_for_line(|l| l.contains("\"message\":\"request\""));
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["prompt"], "logged prompt");
    assert_eq!(v["completion"], "mock:openai:logged prompt");
}

#[test]
fn literal_key_in_config_is_a_load_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "sk-proj-aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7dE9fG1hJ3";
    std::fs::write(
        dir.path().join("tollgate.toml"),
        format!("[providers.openai]\nkind = \"openai\"\n\napi_key = \"{secret}\"\n"),
    )
    .unwrap();
    let (code, out, err) = cli(dir.path(), &["serve", "--listen", "127.0.0.1:0"], None);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("line 4"), "{err}");
    assert!(err.contains("keystore://"), "says what to do: {err}");
    assert!(
        !err.contains("aB3dE5fG7hJ9") && !out.contains("aB3dE5fG7hJ9"),
        "the key is not echoed"
    );
}

#[test]
fn missing_provider_credential_fails_start_up_clearly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tollgate.toml"),
        "[providers.openai]\nkind = \"openai\"\napi_key = \"keystore://openai\"\n",
    )
    .unwrap();
    let (code, _, err) = cli(dir.path(), &["serve", "--listen", "127.0.0.1:0"], None);
    assert_eq!(code, 2);
    assert!(err.contains("tollgate secrets set openai"), "{err}");
}

#[test]
fn bad_config_reports_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tollgate.toml"),
        "[routes.a]\ntargets = [{ provider = \"nope\", model = \"m\" }]\n[routes.b]\ntargets = []\n",
    )
    .unwrap();
    let (code, _, err) = cli(dir.path(), &["serve"], None);
    assert_eq!(code, 2);
    assert!(err.contains("2 problem(s)"), "{err}");
    assert!(
        err.contains("routes.a.targets[0].provider") && err.contains("routes.b.targets"),
        "{err}"
    );
    let (code, _, err) = cli(dir.path(), &["serve", "--config", "missing.toml"], None);
    assert_eq!(code, 2);
    assert!(err.contains("missing.toml"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn listen_flag_in_use_is_a_clear_error() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = cli(dir.path(), &["serve", "--listen", &addr], None);
    assert_eq!(code, 2);
    assert!(err.contains("cannot listen on"), "{err}");
}
