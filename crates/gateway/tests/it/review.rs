//! Review sample and drift (MI-4): sampled traffic, streams included, lands in the review
//! queue PII-masked; every request adds to its route's day (refusals detected); a synthetic
//! shift in output length and refusals raises exactly one drift alert, and the same traffic
//! without a shift raises none.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use tollgate_gateway::drift::{
    self, LATENCY_MS, LATENCY_MS_EDGES, OUTPUT_TOKEN_EDGES, OUTPUT_TOKENS, bin_of,
};
use tollgate_store::review::{DayCounts, ReviewQuery, RouteDayDelta};

use crate::harness::{Harness, openai_stream_text, user};

const SAMPLED: &str = r#"
[routes.sampled]
targets = [{ provider = "oa", model = "gpt-mock" }]
guards = { pii = { enabled = false } }
review = { sample_rate = 1.0 }
[routes.watched]
targets = [{ provider = "oa", model = "gpt-mock" }]
[review.drift]
enabled = false
min_samples = 50
"#;

const EMAIL: &str = "jane.doe@example.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampled_traffic_lands_in_the_queue_pii_masked_streams_included() {
    let h = Harness::start_extra(SAMPLED).await;
    // The route lets PII through to the model (pii disabled), and the mock echoes it back:
    // both the prompt sent upstream and the completion hold the address.
    let text = format!("Write to {EMAIL} about the refund");
    let r = h
        .post("/v1/chat/completions", &user("sampled", &text))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id_json = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains(EMAIL),
        "the client still gets its answer unchanged"
    );
    let mut streamed = user("sampled", &text);
    streamed["stream"] = serde_json::json!(true);
    let (status, events) = h.stream("/v1/chat/completions", &streamed).await;
    assert_eq!(status, 200);
    assert!(openai_stream_text(&events).contains(EMAIL));
    // A route that samples nothing still counts.
    let (status, _) = h
        .json(
            "/v1/chat/completions",
            &user("gpt", "I can't help with that"),
        )
        .await;
    assert_eq!(status, 200);

    h.gw.reviews.flush().await;
    let items = h
        .store
        .reviews
        .review_items(&ReviewQuery {
            limit: 100,
            ..ReviewQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(items.len(), 2, "{items:?}");
    assert!(items.iter().any(|i| i.request_id == id_json));
    for i in &items {
        assert_eq!(i.route, "sampled");
        assert!(i.label.is_none());
        for t in [&i.prompt, &i.completion] {
            assert!(!t.contains(EMAIL), "raw PII stored: {t}");
            assert!(!t.contains("jane.doe"), "raw PII stored: {t}");
            assert!(t.contains("[EMAIL]"), "{t}");
            assert!(t.contains("about the refund"), "{t}");
        }
        assert!(i.completion.starts_with("mock:openai:"), "{}", i.completion);
    }
    let metrics = h.gw.metrics.render();
    assert!(
        metrics.contains("tollgate_review_samples_total{outcome=\"queued\"} 2"),
        "{metrics}"
    );

    let today = Utc::now().date_naive().to_string();
    let days = h
        .store
        .reviews
        .route_days("sampled", &today, &today)
        .await
        .unwrap();
    assert_eq!(days.len(), 1);
    let c = days[0].counts;
    assert_eq!((c.requests, c.completions, c.refusals), (2, 2, 0));
    assert!(c.output_tokens > 0);
    assert_eq!(days[0].bins[OUTPUT_TOKENS].values().sum::<i64>(), 2);
    assert_eq!(days[0].bins[LATENCY_MS].values().sum::<i64>(), 2);
    let gpt = h
        .store
        .reviews
        .route_days("gpt", &today, &today)
        .await
        .unwrap();
    assert_eq!(gpt[0].counts.refusals, 1, "the echoed refusal is counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_review_queue_drops_and_counts_instead_of_waiting() {
    let h = Harness::start_extra(
        r#"
[routes.sampled]
targets = [{ provider = "oa", model = "gpt-mock" }]
review = { sample_rate = 1.0 }
[review]
max_pending = 1
"#,
    )
    .await;
    for _ in 0..3 {
        let (status, _) = h
            .json("/v1/chat/completions", &user("sampled", "hello"))
            .await;
        assert_eq!(status, 200, "a full queue never fails or delays a request");
    }
    h.gw.reviews.flush().await;
    let items = h
        .store
        .reviews
        .review_items(&ReviewQuery {
            limit: 100,
            ..ReviewQuery::default()
        })
        .await
        .unwrap();
    // The background flusher may have emptied the queue once in between; either way every
    // sample was either stored or dropped and counted, and at least one was dropped.
    let metrics = h.gw.metrics.render();
    let dropped: usize = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tollgate_review_samples_total{outcome=\"dropped\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(dropped >= 1, "{metrics}");
    assert_eq!(items.len() + dropped, 3, "{metrics}");
}

/// `n` completions of one day: output lengths drawn round-robin from `lengths`, `refused`
/// of them refusals, latencies of ~300 ms.
fn day(route: &str, d: NaiveDate, n: i64, lengths: &[i64], refused: i64) -> RouteDayDelta {
    let mut bins = BTreeMap::new();
    let mut tokens = 0;
    for i in 0..n {
        let len = lengths[(i as usize) % lengths.len()];
        tokens += len;
        *bins
            .entry((OUTPUT_TOKENS.to_owned(), bin_of(&OUTPUT_TOKEN_EDGES, len)))
            .or_insert(0) += 1;
    }
    bins.insert((LATENCY_MS.to_owned(), bin_of(&LATENCY_MS_EDGES, 300)), n);
    RouteDayDelta {
        route: route.into(),
        day: d.to_string(),
        counts: DayCounts {
            requests: n,
            completions: n,
            output_tokens: tokens,
            refusals: refused,
            latency_ms_total: 300 * n,
            cost_nanos: 1_000 * n,
            ..DayCounts::default()
        },
        bins,
    }
}

async fn drift_alerts(h: &Harness) -> Vec<tollgate_store::alert::AlertRecord> {
    h.gw.alerts.idle().await;
    h.store
        .alerts
        .alerts_since(DateTime::<Utc>::MIN_UTC, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.kind == "drift")
        .collect()
}

/// Two weeks of baseline traffic, then today's: `shifted` makes today's answers much longer
/// and five times as often refusals.
async fn seed(h: &Harness, now: DateTime<Utc>, shifted: bool) {
    let today = now.date_naive();
    let mut deltas = Vec::new();
    for back in 1..=14 {
        deltas.push(day(
            "watched",
            today - Duration::days(back),
            100,
            &[40, 60, 90, 120],
            4,
        ));
    }
    deltas.push(if shifted {
        day("watched", today, 100, &[600, 900, 1500], 20)
    } else {
        day("watched", today, 100, &[40, 60, 90, 120], 5)
    });
    h.store.reviews.add_route_days(&deltas).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synthetic_shift_raises_exactly_one_drift_alert() {
    let h = Harness::start_extra(SAMPLED).await;
    // Time is moved, not waited for: the check runs "at" a fixed instant.
    let now = DateTime::parse_from_rfc3339("2026-11-20T15:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    h.gw.alerts.set_clock(Arc::new(move || now));
    seed(&h, now, true).await;

    let drifted = drift::check(&h.gw, now).await;
    assert_eq!(drifted.len(), 1);
    let r = &drifted[0];
    assert_eq!(r.route, "watched");
    let by: BTreeMap<_, _> = r.metrics.iter().map(|m| (m.metric.as_str(), m)).collect();
    assert!(by["output_tokens"].drifted, "{r:#?}");
    assert!(by["refusal_rate"].drifted, "{r:#?}");
    assert!(!by["latency_ms"].drifted, "{r:#?}");
    assert!(by["guard_block_rate"].psi.is_some());
    assert_eq!(r.series.len(), 15);
    assert_eq!(r.recent, ("2026-11-20".to_owned(), "2026-11-20".to_owned()));
    assert_eq!(r.baseline.0, "2026-11-06");

    // Checked again the same day (the next hourly run): still one alert.
    drift::check(&h.gw, now + Duration::hours(1)).await;
    let alerts = drift_alerts(&h).await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = &alerts[0];
    assert_eq!(a.subject, "route:watched");
    assert_eq!(a.severity, "warning");
    assert!(a.message.contains("output_tokens"), "{}", a.message);
    assert!(a.message.contains("refusal_rate"), "{}", a.message);
    assert_eq!(a.details["route"], "watched");
    assert!(a.details["score"].as_f64().unwrap() >= 0.2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_traffic_without_a_shift_raises_no_drift_alert() {
    let h = Harness::start_extra(SAMPLED).await;
    let now = DateTime::parse_from_rfc3339("2026-11-20T15:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    h.gw.alerts.set_clock(Arc::new(move || now));
    seed(&h, now, false).await;
    let drifted = drift::check(&h.gw, now).await;
    assert!(drifted.is_empty(), "{drifted:#?}");
    let r = drift::report(
        &h.store,
        "watched",
        now.date_naive(),
        &h.gw.config.review.drift,
    )
    .await
    .unwrap();
    let score = r.score.unwrap();
    assert!(score < 0.1, "{r:#?}");
    assert!(drift_alerts(&h).await.is_empty());
    // Too little traffic is not scored at all, however different it looks.
    let quiet = drift::report(
        &h.store,
        "sampled",
        now.date_naive(),
        &h.gw.config.review.drift,
    )
    .await
    .unwrap();
    assert_eq!(quiet.score, None);
    assert!(!quiet.drifted);
}
