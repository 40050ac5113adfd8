//! `tollgate budgets` and `tollgate alerts` against a running gateway (DO-2, MI-2): a spent
//! budget refuses with 429 `budget_exceeded`, the CLI shows the spend from the shared store,
//! and the threshold and refusal alerts are listed.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tollgate_testkit::MockUpstream;

use crate::audit::{admin_cli, project};
use crate::server::{Server, create_key};

/// gpt-mock answers with 18 tokens: $0.018 at $1000 per million; each call reserves about
/// $0.022, so one fits in $0.035 and the second is refused.
const BUDGET: &str = r#"
[prices]
gpt-mock = { input = 1000.0, output = 1000.0 }
[budgets_settings]
timezone = "Europe/Berlin"
[[budgets]]
scope = "global"
period = "month"
limit_usd = 0.035
thresholds = [0.5]
"#;

async fn chat(url: &str, key: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": "gpt", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn budgets_and_alerts_show_spend_and_what_fired() {
    let mock = MockUpstream::start().await.unwrap();
    let p = project(&mock, BUDGET);
    let (key, _) = create_key(&p.dir, &[]);
    let server = Server::start(&p.dir, &[]);

    let (code, out, err) = admin_cli(&p.dir, None, &["budgets"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("All 1 budget(s) within their limits."),
        "{out}"
    );

    assert_eq!(chat(&server.url, &key).await.0, 200);
    // Settlement is written just after the response: wait for it to show.
    let t0 = Instant::now();
    let status = loop {
        let (code, out, err) = admin_cli(&p.dir, None, &["budgets", "--json"]);
        assert_eq!(code, 0, "{err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        if v[0]["reserved_usd"] == 0.0 && v[0]["spent_usd"].as_f64() > Some(0.0) {
            break v;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "not settled: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status[0]["scope"], "global");
    assert_eq!(status[0]["period"], "month");
    assert!((status[0]["spent_usd"].as_f64().unwrap() - 0.018).abs() < 1e-9);
    assert_eq!(status[0]["limit_usd"], 0.035);

    let (code, body) = chat(&server.url, &key).await;
    assert_eq!(code, 429, "{body}");
    assert_eq!(body["error"]["code"], "budget_exceeded");

    let (code, out, _) = admin_cli(&p.dir, None, &["budgets"]);
    assert_eq!(code, 0);
    assert!(out.contains("global") && out.contains("51.4%"), "{out}");

    let t0 = Instant::now();
    let alerts = loop {
        let (code, out, err) = admin_cli(&p.dir, None, &["alerts", "--json"]);
        assert_eq!(code, 0, "{err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        if v.as_array().unwrap().len() >= 2 {
            break v;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "alerts missing: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let kinds: Vec<&str> = alerts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"budget_threshold"), "{kinds:?}");
    assert!(kinds.contains(&"budget_exceeded"), "{kinds:?}");
    let (code, out, _) = admin_cli(&p.dir, None, &["alerts", "--since", "1h"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("alert(s) in the last 1h") && out.contains("budget_exceeded"),
        "{out}"
    );
    let (code, _, err) = admin_cli(&p.dir, None, &["alerts", "--since", "yesterday"]);
    assert_eq!(code, 2);
    assert!(err.contains("--since"), "{err}");
    // The gateway logged them on the alert target too.
    server.wait_for_line(|l| l.contains("tollgate::alert") && l.contains("budget_threshold"));
}
