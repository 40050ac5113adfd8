//! OpenTelemetry traces from the real binary (MI-1): `tollgate serve` with `[telemetry]`
//! exports a span per call to a collector, continues the caller's trace into the provider
//! call, and flushes what is queued when it is stopped.

use std::time::Duration;

use serde_json::json;
use tollgate_testkit::MockUpstream;
use tollgate_testkit::collector::{MockCollector, attr};

use crate::audit::stop;
use crate::server::{Server, create_key, project};

#[tokio::test(flavor = "multi_thread")]
async fn serve_exports_spans_and_flushes_them_on_sigterm() {
    let mock = MockUpstream::start().await.unwrap();
    let collector = MockCollector::start().await.unwrap();
    let (dir, path) = project(&mock);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        format!(
            "[telemetry]\nendpoint = \"{}\"\nservice_name = \"gw-e2e\"\n{text}",
            collector.url
        ),
    )
    .unwrap();
    let (key, key_id) = create_key(dir.path(), &[]);
    let mut server = Server::start(dir.path(), &[]);
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let r = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.url))
        .bearer_auth(&key)
        .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
        .json(&json!({"model": "gpt", "messages": [{"role": "user", "content": "very secret prompt"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    // Stopped at once: the span is exported by the shutdown flush if the batch timer has
    // not sent it yet; either way it is at the collector when the process has exited.
    assert!(stop(&mut server).success());
    let spans = collector.wait_for(2, Duration::from_secs(1)).await;
    let s = spans
        .iter()
        .find(|s| attr(s, "tollgate.request.id") == id.as_str())
        .unwrap_or_else(|| panic!("no span for {id}: {spans:?} {:?}", server.output()));
    assert_eq!(s["traceId"], trace);
    assert_eq!(s["parentSpanId"], "00f067aa0ba902b7");
    assert_eq!(attr(s, "gen_ai.request.model"), "gpt");
    assert_eq!(attr(s, "gen_ai.response.model"), "gpt-mock");
    assert_eq!(attr(s, "gen_ai.usage.input_tokens"), "11");
    assert_eq!(attr(s, "gen_ai.usage.output_tokens"), "7");
    assert_eq!(attr(s, "tollgate.key.id"), key_id.as_str());
    assert_eq!(spans.len(), 2, "{spans:?}");
    let sent = &mock.requests()[0].headers["traceparent"];
    assert!(sent.starts_with(&format!("00-{trace}-")), "{sent}");
    let exports = collector.exports();
    let resource = &exports[0].1["resourceSpans"][0]["resource"]["attributes"][0];
    assert_eq!(resource["value"]["stringValue"], "gw-e2e");
    let raw = collector.raw();
    assert!(!raw.contains("very secret prompt"));
    assert!(!raw.contains(&key));
}
