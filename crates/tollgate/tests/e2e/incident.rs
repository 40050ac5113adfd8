//! Incident controls from the CLI against a running gateway (MI-3): `kill` reaches the server
//! within a second, needs an incident role, is listed and lifted; `runbook` names this
//! deployment.

use std::time::{Duration, Instant};

use serde_json::json;
use tollgate_testkit::MockUpstream;

use crate::audit::{admin_cli, project};
use crate::server::{Server, cli, create_key};

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

#[tokio::test(flavor = "multi_thread")]
async fn kill_from_the_cli_reaches_a_running_gateway_within_a_second() {
    let mock = MockUpstream::start().await.unwrap();
    let p = project(&mock, "");
    let (key, key_id) = create_key(&p.dir, &[]);
    let server = Server::start(&p.dir, &[]);
    assert_eq!(status(&server.url, &key).await, 200);

    // Without an incident role it is refused.
    let (code, _, err) = admin_cli(&p.dir, None, &["kill", "key", &key_id, "--reason", "x"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("incident-responder"), "{err}");
    let (code, _, err) = admin_cli(&p.dir, Some(&p.owner), &["kill", "key", &key_id]);
    assert_eq!(code, 2);
    assert!(err.contains("--reason"), "{err}");

    let (code, out, err) = admin_cli(
        &p.dir,
        Some(&p.owner),
        &["kill", "key", &key_id, "--reason", "leaked in a paste"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("switched off"), "{out}");
    let t0 = Instant::now();
    while status(&server.url, &key).await != 403 {
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "not refused within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, out, _) = admin_cli(&p.dir, Some(&p.owner), &["kill", "list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&key_id) && out.contains("leaked in a paste"),
        "{out}"
    );

    let (code, _, err) = admin_cli(&p.dir, Some(&p.owner), &["unkill", "key", &key_id]);
    assert_eq!(code, 0, "{err}");
    let t0 = Instant::now();
    while status(&server.url, &key).await != 200 {
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "not served again within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (code, _, err) = admin_cli(&p.dir, Some(&p.owner), &["unkill", "key", &key_id]);
    assert_eq!(
        code, 2,
        "lifting a switch that is not on is an error: {err}"
    );
    let (code, _, err) = admin_cli(
        &p.dir,
        Some(&p.owner),
        &["kill", "galaxy", "x", "--reason", "y"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("unknown kind"), "{err}");

    // Both changes are in the audit trail, which still verifies.
    let (code, out, _) = admin_cli(&p.dir, Some(&p.owner), &["audit", "export"]);
    assert_eq!(code, 0);
    assert!(out.contains("killswitch.set") && out.contains("killswitch.clear"));
    let (code, out, _) = cli(&p.dir, &["audit", "verify"], None);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn the_runbook_is_generated_from_the_config() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mock = rt.block_on(MockUpstream::start()).unwrap();
    let p = project(&mock, "");
    let (code, out, err) = cli(&p.dir, &["runbook"], None);
    assert_eq!(code, 0, "{err}");
    for needle in [
        "# tollgate incident-response runbook",
        "## 1. Provider outage",
        "## 6. Data leak to a provider",
        "kill provider oa",
        "route `gpt` has no fallback",
    ] {
        assert!(out.contains(needle), "missing {needle:?}");
    }
    let file = p.dir.join("RUNBOOK.md");
    let (code, _, _) = cli(&p.dir, &["runbook", "--out", file.to_str().unwrap()], None);
    assert_eq!(code, 0);
    assert!(
        std::fs::read_to_string(file)
            .unwrap()
            .contains("## 2. Leaked key")
    );
}
