//! The official OpenAI and Anthropic Python SDKs against the real binary.
//!
//! The interpreter comes from `TOLLGATE_TEST_PYTHON` (set by `.ci/run`, which installs the
//! SDKs into a venv). Outside CI a missing interpreter skips the test with a message; in CI
//! (`CI` set) it fails, so a broken install step cannot pass silently.

use std::process::Command;

use tollgate_testkit::MockUpstream;

use crate::server::{Server, create_key, project};

fn python() -> Option<String> {
    let candidate = std::env::var("TOLLGATE_TEST_PYTHON").ok().or_else(|| {
        let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python");
        std::path::Path::new(venv).exists().then(|| venv.to_owned())
    })?;
    let ok = Command::new(&candidate)
        .args(["-c", "import openai, anthropic"])
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(candidate)
}

#[tokio::test(flavor = "multi_thread")]
async fn official_python_sdks_work_by_changing_only_base_url() {
    let Some(py) = python() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide TOLLGATE_TEST_PYTHON with openai and anthropic installed"
        );
        eprintln!(
            "SKIPPED: no python with openai+anthropic (set TOLLGATE_TEST_PYTHON or run .ci/run)"
        );
        return;
    };
    let mock = MockUpstream::start().await.unwrap();
    let (dir, _) = project(&mock);
    let (key, _) = create_key(dir.path(), &[]);
    let (scoped, _) = create_key(dir.path(), &["--models", "gpt"]);
    let server = Server::start(dir.path(), &[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/sdk_e2e.py");
    let url = server.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(py)
            .arg(script)
            .env("TOLLGATE_URL", url)
            .env("TOLLGATE_KEY", key)
            .env("TOLLGATE_SCOPED_KEY", scoped)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "SDK tests failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains(" 0 failed"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openai_sdk_fine_tunes_through_a_data_steward_key_only() {
    let Some(py) = python() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide TOLLGATE_TEST_PYTHON with openai and anthropic installed"
        );
        eprintln!(
            "SKIPPED: no python with openai+anthropic (set TOLLGATE_TEST_PYTHON or run .ci/run)"
        );
        return;
    };
    let mock = MockUpstream::start().await.unwrap();
    let (dir, config) = project(&mock);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[datasets]\nprovider = \"oa\"\n");
    std::fs::write(&config, text).unwrap();
    let (steward, _) = create_key(dir.path(), &["--role", "data-steward"]);
    let (app, _) = create_key(dir.path(), &[]);
    let server = Server::start(dir.path(), &[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/sdk_datasets.py");
    let url = server.url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(py)
            .arg(script)
            .env("TOLLGATE_URL", url)
            .env("TOLLGATE_STEWARD_KEY", steward)
            .env("TOLLGATE_APP_KEY", app)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("datasets: ok"),
        "SDK datasets test failed:\n{stdout}\n{stderr}"
    );
    // The upload reached the provider intact, as the SDK's multipart body.
    let files = mock.files();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].filename, "train.jsonl");
}
