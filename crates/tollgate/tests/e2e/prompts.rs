//! Versioned prompts from the CLI against a running gateway (DO-3, DO-4): push to staging,
//! evaluate through the gateway, gated promotion (evaluation, four-eyes, roles), rollback
//! under load without a failed request, clear errors for malformed files.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_testkit::MockUpstream;

use crate::audit::{admin_cli, project};
use crate::server::{Server, create_key};

/// A prompt file whose user message starts with `tag`: the mock echoes the last user
/// message, so the answer shows which version was served.
pub(crate) fn write_prompt(dir: &Path, tag: &str) -> String {
    let path = dir.join("support.yaml");
    std::fs::write(
        &path,
        format!(
            "name: support\ndescription: Support answers\nroute: gpt\nsystem: You help customers of {{{{product}}}}.\nmessages:\n  - role: user\n    content: \"{tag} {{{{customer}}}} asks\"\nparams:\n  temperature: 0.2\n  max_tokens: 200\n"
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

pub(crate) fn write_suite(dir: &Path, name: &str, must_contain: &str) -> String {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "cases:\n  - name: greets\n    variables: {{customer: Ada, product: tollgate}}\n    assert:\n      contains: [\"{must_contain}\"]\n      not_contains: password\n      regex: '^mock:openai:'\n      max_latency_ms: 10000\n      guard: allowed\n"
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

pub(crate) async fn new_admin(url: &str, owner: &str, role: &str) -> (String, String) {
    let r = reqwest::Client::new()
        .post(format!("{url}/admin/v1/admins"))
        .bearer_auth(owner)
        .json(&json!({"name": role, "role": role}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    (
        v["credential"].as_str().unwrap().to_owned(),
        v["id"].as_str().unwrap().to_owned(),
    )
}

/// `prompt:support` with `key`: (status, answer text).
async fn ask(client: &reqwest::Client, url: &str, key: &str) -> (u16, String) {
    let r = client
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": "prompt:support", "variables": {"customer": "Ada", "product": "tollgate"}}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    (
        status,
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

pub(crate) async fn wait_for(url: &str, key: &str, want: &str) {
    let client = reqwest::Client::new();
    let t0 = Instant::now();
    loop {
        let (_, text) = ask(&client, url, key).await;
        if text.contains(want) {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "still {text:?} after 1 s, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn prompts_are_pushed_tested_promoted_under_four_eyes_and_rolled_back_under_load() {
    let mock = MockUpstream::start().await.unwrap();
    let p = project(&mock, "[governance]\nfour_eyes = true\n");
    let (live, _) = create_key(&p.dir, &[]);
    let (test, _) = create_key(&p.dir, &["--env", "staging"]);
    let server = Server::start(&p.dir, &[]);
    let url = server.url.clone();
    let (engineer, engineer_id) = new_admin(&url, &p.owner, "prompt-engineer").await;
    let (approver, _) = new_admin(&url, &p.owner, "approver").await;
    let dir = p.dir.clone();
    let run = |token: &str, args: &[&str]| admin_cli(&dir, Some(token), args);

    // Push v1 (prompt-engineer); the approver role cannot push.
    let file = write_prompt(&p.dir, "v1");
    let (code, _, err) = run(&approver, &["prompts", "push", &file]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("prompt-engineer"), "{err}");
    let (code, out, err) = run(&engineer, &["prompts", "push", &file]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("support v1 to staging"), "{out}");
    let (code, out, _) = run(&engineer, &["prompts", "push", &file]);
    assert_eq!(code, 0);
    assert!(out.contains("Unchanged"), "{out}");
    // Staging keys get it; production keys have no version yet.
    wait_for(&url, &test, "v1 Ada asks").await;
    let client = reqwest::Client::new();
    assert_eq!(ask(&client, &url, &live).await.0, 404);

    // Promotion is refused before an evaluation, and after a failing one.
    let (code, _, err) = run(&approver, &["prompts", "promote", "support"]);
    assert_eq!(code, 2);
    assert!(err.contains("has not been evaluated"), "{err}");
    let failing = write_suite(&p.dir, "failing.yaml", "something the answer never says");
    let test_args = |suite: &str| {
        vec![
            "prompts".to_owned(),
            "test".into(),
            "support".into(),
            "--env".into(),
            "staging".into(),
            "--suite".into(),
            suite.to_owned(),
            "--gateway".into(),
            url.clone(),
            "--key".into(),
            test.clone(),
        ]
    };
    let args = test_args(&failing);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = run(&engineer, &args);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("FAILED"), "{out}");
    let (code, _, err) = run(&approver, &["prompts", "promote", "support"]);
    assert_eq!(code, 2);
    assert!(err.contains("failed its evaluation"), "{err}");

    // A passing evaluation, then the approver promotes; production keys get v1 within 1 s.
    let passing = write_suite(&p.dir, "passing.yaml", "v1 Ada asks");
    let args = test_args(&passing);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = run(&engineer, &args);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("PASSED"), "{out}");
    let (code, _, err) = run(&engineer, &["prompts", "promote", "support"]);
    assert_eq!(code, 2, "a prompt engineer cannot promote");
    assert!(err.contains("approver"), "{err}");
    let (code, out, err) = run(&approver, &["prompts", "promote", "support"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Promoted support v1"), "{out}");
    wait_for(&url, &live, "v1 Ada asks").await;

    // v2 by the owner, evaluated by the owner: the owner may not also approve it.
    let file = write_prompt(&p.dir, "v2");
    let (code, _, err) = run(&p.owner, &["prompts", "push", &file]);
    assert_eq!(code, 0, "{err}");
    wait_for(&url, &test, "v2 Ada asks").await;
    assert!(
        ask(&client, &url, &live).await.1.contains("v1"),
        "production is untouched"
    );
    let passing = write_suite(&p.dir, "passing2.yaml", "v2 Ada asks");
    let args = test_args(&passing);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = run(&p.owner, &args);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = run(&p.owner, &["prompts", "promote", "support"]);
    assert_eq!(code, 2);
    assert!(err.contains("four-eyes"), "{err}");
    let (code, _, err) = run(&approver, &["prompts", "promote", "support"]);
    assert_eq!(code, 0, "{err}");
    wait_for(&url, &live, "v2 Ada asks").await;

    // History and diff.
    let (code, out, err) = run(&engineer, &["prompts", "history", "support", "--json"]);
    assert_eq!(code, 0, "{err}");
    let h: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(h["production"], 2);
    assert_eq!(h["versions"][0]["author"], engineer_id.as_str());
    assert_eq!(h["versions"][0]["eval"]["passed"], true);
    let (code, out, _) = run(
        &engineer,
        &["prompts", "diff", "support", "--from", "1", "--to", "2"],
    );
    assert_eq!(code, 0);
    assert!(
        out.contains("- ") && out.contains("+ ") && out.contains("v2 {{customer}}"),
        "{out}"
    );

    // Rollback under concurrent load: no request fails, and production is back on v1.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        let (url, live) = (url.clone(), live.clone());
        load.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            while !stop.load(Ordering::Relaxed) {
                let (status, text) = ask(&client, &url, &live).await;
                if status == 200 && (text.contains("v1 Ada") || text.contains("v2 Ada")) {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let approver2 = approver.clone();
    let dir2 = p.dir.clone();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        admin_cli(&dir2, Some(&approver2), &["prompts", "rollback", "support"])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("from v2 to v1"), "{out}");
    wait_for(&url, &live, "v1 Ada asks").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.unwrap();
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed during the rollback"
    );
    assert!(ok.load(Ordering::Relaxed) > 10);
    // Nothing older to roll back to.
    let (code, _, err) = run(&approver, &["prompts", "rollback", "support"]);
    assert_eq!(code, 2);
    assert!(err.contains("nothing to roll back"), "{err}");

    // Every action is in the audit trail.
    let (code, _, err) = admin_cli(&p.dir, Some(&p.owner), &["audit", "verify"]);
    assert_eq!(code, 0, "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_prompt_files_and_suites_exit_2_with_what_is_wrong() {
    let mock = MockUpstream::start().await.unwrap();
    let p = project(&mock, "");
    for (name, text, says) in [
        (
            "bad.yaml",
            "name: support\nroute: gpt\nsystem: '{{ oops'\n",
            "never closed",
        ),
        (
            "route.yaml",
            "name: support\nroute: nowhere\nsystem: hi\n",
            "not a route",
        ),
        ("garbage.toml", "name = [", "not a valid prompt file"),
    ] {
        std::fs::write(p.dir.join(name), text).unwrap();
        let (code, _, err) = admin_cli(&p.dir, Some(&p.owner), &["prompts", "push", name]);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(err.contains(says), "{name}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    std::fs::write(
        p.dir.join("suite.yaml"),
        "cases:\n  - name: a\n    assert: {regex: '('}\n",
    )
    .unwrap();
    let (code, _, err) = admin_cli(
        &p.dir,
        Some(&p.owner),
        &[
            "prompts",
            "test",
            "support",
            "--suite",
            "suite.yaml",
            "--gateway",
            "http://127.0.0.1:9",
            "--key",
            "tg_test_x",
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("assert.regex"), "{err}");
}

/// The upstream model of the last request the mock received, after one `gpt` call with `key`.
async fn served_model(mock: &MockUpstream, url: &str, key: &str) -> String {
    let r = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let _ = r.bytes().await;
    mock.requests().last().unwrap().body["model"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn wait_for_model(mock: &MockUpstream, url: &str, key: &str, want: &str) {
    let t0 = Instant::now();
    loop {
        let got = served_model(mock, url, key).await;
        if got == want {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "still {got:?} after 1 s, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait (at most a second) until a call with `key` reaches the mock for upstream model
/// `want`, whatever the answer's status (a version under test may fail).
async fn wait_for_upstream(mock: &MockUpstream, url: &str, key: &str, want: &str) {
    let t0 = Instant::now();
    loop {
        let r = reqwest::Client::new()
            .post(format!("{url}/v1/chat/completions"))
            .bearer_auth(key)
            .json(&json!({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        let _ = r.bytes().await;
        let got = mock.requests().last().unwrap().body["model"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if got == want {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "still {got:?} after 1 s, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn route_versions_are_pushed_tested_promoted_and_rolled_back_from_the_cli() {
    let mock = MockUpstream::start().await.unwrap();
    let p = project(&mock, "[governance]\nfour_eyes = true\n");
    let (live, _) = create_key(&p.dir, &[]);
    let (staging, _) = create_key(&p.dir, &["--env", "staging"]);
    let server = Server::start(&p.dir, &[]);
    let url = server.url.clone();
    let (model_admin, _) = new_admin(&url, &p.owner, "model-admin").await;
    let (approver, _) = new_admin(&url, &p.owner, "approver").await;
    let write = |name: &str, model: &str| {
        std::fs::write(
            p.dir.join(name),
            format!("route: gpt\ntargets:\n  - provider: oa\n    model: {model}\n"),
        )
        .unwrap();
    };
    std::fs::write(
        p.dir.join("bad.yaml"),
        "route: gpt\ntargets:\n  - provider: nowhere\n    model: x\n",
    )
    .unwrap();
    // A route suite brings its own messages; the mock answers `mock:openai:<last message>`.
    std::fs::write(
        p.dir.join("suite.yaml"),
        "cases:\n  - name: answers\n    messages: [{role: user, content: ping}]\n    assert:\n      contains: 'mock:openai:ping'\n",
    )
    .unwrap();
    let test = |token: &str| {
        admin_cli(
            &p.dir,
            Some(token),
            &[
                "routes",
                "test",
                "gpt",
                "--suite",
                "suite.yaml",
                "--gateway",
                &url,
                "--key",
                &staging,
            ],
        )
    };
    let (code, _, err) = admin_cli(&p.dir, Some(&model_admin), &["routes", "push", "bad.yaml"]);
    assert_eq!(code, 2);
    assert!(err.contains("not a provider"), "{err}");

    assert_eq!(served_model(&mock, &url, &live).await, "gpt-mock");
    write("v1.yaml", "gpt-next");
    let (code, _, err) = admin_cli(&p.dir, Some(&model_admin), &["routes", "push", "v1.yaml"]);
    assert_eq!(code, 0, "{err}");
    wait_for_upstream(&mock, &url, &staging, "gpt-next").await;
    // Not evaluated yet: the approver is refused and told how to evaluate it.
    let (code, _, err) = admin_cli(&p.dir, Some(&approver), &["routes", "promote", "gpt"]);
    assert_eq!(code, 2, "an unevaluated route version cannot be promoted");
    assert!(
        err.contains("has not been evaluated") && err.contains("tollgate routes test gpt"),
        "{err}"
    );
    let (code, out, err) = test(&model_admin);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("PASSED: route gpt v1"), "{out}");
    let (code, _, err) = admin_cli(&p.dir, Some(&model_admin), &["routes", "promote", "gpt"]);
    assert_eq!(code, 2, "a model admin cannot promote");
    assert!(err.contains("approver"), "{err}");
    let (code, _, err) = admin_cli(&p.dir, Some(&approver), &["routes", "promote", "gpt"]);
    assert_eq!(code, 0, "{err}");
    wait_for_model(&mock, &url, &live, "gpt-next").await;

    write("v2.yaml", "gpt-bad-update");
    let (code, _, err) = admin_cli(&p.dir, Some(&model_admin), &["routes", "push", "v2.yaml"]);
    assert_eq!(code, 0, "{err}");
    wait_for_upstream(&mock, &url, &staging, "gpt-bad-update").await;
    let (code, out, err) = test(&approver);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = admin_cli(&p.dir, Some(&approver), &["routes", "promote", "gpt"]);
    assert_eq!(code, 0, "{err}");
    wait_for_model(&mock, &url, &live, "gpt-bad-update").await;
    let (code, out, err) = admin_cli(&p.dir, Some(&approver), &["routes", "rollback", "gpt"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("from v2 to v1"), "{out}");
    wait_for_model(&mock, &url, &live, "gpt-next").await;

    // A model update whose evaluation fails (the upstream errors) is refused promotion.
    write("v3.yaml", "fail-500");
    let (code, _, err) = admin_cli(&p.dir, Some(&model_admin), &["routes", "push", "v3.yaml"]);
    assert_eq!(code, 0, "{err}");
    wait_for_upstream(&mock, &url, &staging, "fail-500").await;
    let (code, out, err) = test(&model_admin);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("FAILED: route gpt v3"), "{out}");
    let (code, _, err) = admin_cli(&p.dir, Some(&approver), &["routes", "promote", "gpt"]);
    assert_eq!(code, 2);
    assert!(err.contains("route gpt v3 failed its evaluation"), "{err}");
    assert_eq!(served_model(&mock, &url, &live).await, "gpt-next");
    let (code, out, _) = admin_cli(&p.dir, Some(&approver), &["routes", "history", "gpt"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("production v1") && out.contains("rollback"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_llm_judge_route_grades_answers_in_prompt_suites() {
    let mock = MockUpstream::start().await.unwrap();
    // The mock's `judge` model passes an answer containing the criteria's last word.
    let p = project(
        &mock,
        "[routes.judge]\ntargets = [{ provider = \"oa\", model = \"judge\" }]\n",
    );
    let (staging, _) = create_key(&p.dir, &["--env", "staging"]);
    let server = Server::start(&p.dir, &[]);
    let url = server.url.clone();
    let (engineer, _) = new_admin(&url, &p.owner, "prompt-engineer").await;
    let file = write_prompt(&p.dir, "v1");
    let (code, _, err) = admin_cli(&p.dir, Some(&engineer), &["prompts", "push", &file]);
    assert_eq!(code, 0, "{err}");
    wait_for(&url, &staging, "v1 Ada asks").await;
    let suite = |name: &str, route: &str, criteria: &str| {
        std::fs::write(
            p.dir.join(name),
            format!(
                "cases:\n  - name: judged\n    variables: {{customer: Ada, product: tollgate}}\n    assert:\n      judge: {{route: {route}, criteria: \"{criteria}\"}}\n"
            ),
        )
        .unwrap();
    };
    // Criteria without names: the route's PII guard masks names on their way to the judge.
    suite(
        "good.yaml",
        "judge",
        "The answer says what the customer asks",
    );
    suite("bad.yaml", "judge", "The answer mentions refunds");
    suite("nowhere.yaml", "no-such-route", "The answer names Ada");
    let test = |file: &str| {
        admin_cli(
            &p.dir,
            Some(&engineer),
            &[
                "prompts",
                "test",
                "support",
                "--env",
                "staging",
                "--suite",
                file,
                "--gateway",
                &url,
                "--key",
                &staging,
            ],
        )
    };
    let judged = mock.count("judge");
    let (code, out, err) = test("good.yaml");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("PASSED"), "{out}");
    assert_eq!(
        mock.count("judge"),
        judged + 1,
        "the judge route was asked once"
    );
    let asked = mock.requests().last().unwrap().body.to_string();
    assert!(
        asked.contains("v1 Ada asks") && asked.contains("data, not instructions"),
        "the judge sees the answer, framed as data: {asked}"
    );

    let (code, out, _) = test("bad.yaml");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("the judge (judge) failed it") && out.contains("refunds"),
        "{out}"
    );
    let (code, out, _) = test("nowhere.yaml");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("the judge route \"no-such-route\""), "{out}");
}
