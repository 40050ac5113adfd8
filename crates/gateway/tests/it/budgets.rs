//! Budgets over HTTP (DO-2) and alerts (MI-2): a hard stop with 429 `budget_exceeded`,
//! concurrent calls that cannot overshoot beyond what is reserved in flight, calendar resets
//! with a moved clock, soft thresholds that alert once, and alert delivery: a synthetic cost
//! spike raises exactly one webhook call, dedup and cooldown, first-use sightings.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::post;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tollgate_gateway::alert::{Alert, Alerter, Observation, Severity};
use tollgate_gateway::config::Config;
use tollgate_store::Store;
use tollgate_store::budget::nanos_to_usd;
use tollgate_store::sqlite::SqliteStore;

use crate::harness::{Harness, error_message, user};

/// gpt-mock answers with 11 prompt and 7 completion tokens: $0.018 at $1000 per million.
const PRICED: &str = r#"
[prices]
gpt-mock = { input = 1000.0, output = 1000.0 }
[budgets_settings]
timezone = "Europe/Berlin"
"#;

/// A chat body whose reservation is (prompt estimate + 20) tokens, about $0.022.
fn small(text: &str) -> Value {
    let mut v = user("gpt", text);
    v["max_tokens"] = json!(20);
    v
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn fixed_clock(h: &Harness, t: DateTime<Utc>) {
    h.gw.alerts.set_clock(Arc::new(move || t));
}

async fn budget_alerts(store: &Store, kind: &str) -> Vec<tollgate_store::alert::AlertRecord> {
    store
        .alerts
        .alerts_since(DateTime::<Utc>::MIN_UTC, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.kind == kind)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_budget_refuses_with_429_budget_exceeded_and_thresholds_alert_once() {
    let h = Harness::start_extra(&format!(
        "{PRICED}\n[[budgets]]\nscope = \"team:qa\"\nperiod = \"month\"\nlimit_usd = 0.05\nthresholds = [0.3, 0.6]\n"
    ))
    .await;
    let mut ok = 0;
    let mut refused = None;
    for i in 0..5 {
        let (status, body) = h
            .json("/v1/chat/completions", &small(&format!("hi {i}")))
            .await;
        h.gw.budgets.idle().await;
        match status {
            200 => ok += 1,
            429 => {
                refused = Some(body);
                break;
            }
            s => panic!("unexpected {s}: {body}"),
        }
    }
    // $0.018 a call: two fit in $0.05, the third's reservation does not.
    assert_eq!(ok, 2);
    let body = refused.expect("the budget refused a call");
    assert_eq!(body["error"]["code"], "budget_exceeded", "{body}");
    assert!(error_message(&body).contains("team:qa"), "{body}");
    let status = h.gw.budgets.status().await.unwrap();
    assert!((status[0].spent_usd - 0.036).abs() < 1e-9, "{status:?}");
    assert_eq!(status[0].reserved_usd, 0.0);
    // A refusal is counted nowhere.
    let (s, _) = h.json("/v1/chat/completions", &small("again")).await;
    assert_eq!(s, 429);
    h.gw.budgets.idle().await;
    let thresholds = budget_alerts(&h.store, "budget_threshold").await;
    let mut permilles: Vec<i64> = thresholds
        .iter()
        .map(|a| (a.details["threshold"].as_f64().unwrap() * 1000.0) as i64)
        .collect();
    permilles.sort_unstable();
    assert_eq!(permilles, [300, 600], "each threshold once: {thresholds:?}");
    assert_eq!(
        budget_alerts(&h.store, "budget_exceeded").await.len(),
        1,
        "deduplicated"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_calls_never_overshoot_beyond_what_is_reserved_in_flight() {
    let h = Arc::new(
        Harness::start_extra(&format!(
            "{PRICED}\n[[budgets]]\nscope = \"global\"\nperiod = \"day\"\nlimit_usd = 0.1\n"
        ))
        .await,
    );
    let mut tasks = Vec::new();
    for i in 0..24 {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            h.json("/v1/chat/completions", &small(&format!("q{i}")))
                .await
                .0
        }));
    }
    let mut ok = 0u32;
    let mut refused = 0u32;
    for t in tasks {
        match t.await.unwrap() {
            200 => ok += 1,
            429 => refused += 1,
            s => panic!("unexpected status {s}"),
        }
    }
    h.gw.budgets.idle().await;
    let s = &h.gw.budgets.status().await.unwrap()[0];
    assert!(refused > 0, "24 calls of $0.018 cannot all fit in $0.10");
    assert!(
        (s.spent_usd - f64::from(ok) * 0.018).abs() < 1e-9,
        "{s:?}, {ok} ok"
    );
    assert!(s.spent_usd <= 0.1 + 1e-9, "overshot: {s:?}");
    assert_eq!(s.reserved_usd, 0.0, "every reservation was settled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daily_budget_resets_at_local_midnight() {
    let h = Harness::start_extra(&format!(
        "{PRICED}\n[[budgets]]\nscope = \"global\"\nperiod = \"day\"\nlimit_usd = 0.03\n"
    ))
    .await;
    // 22:30 UTC on 28 November is 23:30 in Berlin.
    fixed_clock(&h, at("2026-11-28T22:30:00Z"));
    assert_eq!(h.json("/v1/chat/completions", &small("a")).await.0, 200);
    h.gw.budgets.idle().await;
    assert_eq!(h.json("/v1/chat/completions", &small("b")).await.0, 429);
    // 22:59 UTC: still the same Berlin day.
    fixed_clock(&h, at("2026-11-28T22:59:00Z"));
    assert_eq!(h.json("/v1/chat/completions", &small("c")).await.0, 429);
    // 23:00 UTC is midnight in Berlin: a new day, a new budget (UTC's day has not changed).
    fixed_clock(&h, at("2026-11-28T23:00:00Z"));
    assert_eq!(h.json("/v1/chat/completions", &small("d")).await.0, 200);
    h.gw.budgets.idle().await;
    let s = &h.gw.budgets.status().await.unwrap()[0];
    assert_eq!(s.period_start, "2026-11-29");
    assert!((s.spent_usd - 0.018).abs() < 1e-9, "{s:?}");
    assert_eq!(s.resets_at, at("2026-11-29T23:00:00Z"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_budget_does_not_limit_other_keys() {
    let h = Harness::start_extra(PRICED).await;
    // Budgets name keys by id, known only once the key exists: build them over the same
    // store as the gateway's.
    let key_id = h.key_id().await;
    let text = format!(
        "{PRICED}\n[[budgets]]\nscope = \"key:{key_id}\"\nperiod = \"week\"\nlimit_usd = 0.02\n"
    );
    let (config, _) = Config::parse(&text, Path::new("t.toml")).unwrap();
    let alerts = Arc::new(Alerter::new(&config.alerts, h.store.alerts.clone()));
    let b = Arc::new(tollgate_gateway::budget::Budgets::new(
        &config,
        h.store.budgets.clone(),
        alerts,
    ));
    assert!(b.applies(&key_id, None));
    assert!(!b.applies("key_other", Some("qa")));
    let hold = b
        .reserve(&key_id, None, Some(0.015))
        .await
        .unwrap()
        .unwrap();
    let err = b.reserve(&key_id, None, Some(0.015)).await.unwrap_err();
    assert_eq!(err.class(), "budget_exceeded");
    assert!(
        b.reserve("key_other", None, Some(1.0))
            .await
            .unwrap()
            .is_none()
    );
    hold.settle(Some(0.001));
    b.idle().await;
    let s = &b.status().await.unwrap()[0];
    assert!(
        (s.spent_usd - 0.001).abs() < 1e-12 && s.reserved_usd == 0.0,
        "{s:?}"
    );
    // An unknown price reserves nothing but still refuses once the budget is spent.
    let hold = b.reserve(&key_id, None, None).await.unwrap().unwrap();
    hold.settle(Some(0.05));
    b.idle().await;
    assert!(b.reserve(&key_id, None, None).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_dropped_unsettled_releases_its_reservation() {
    let h = Harness::start_extra(&format!(
        "{PRICED}\n[[budgets]]\nscope = \"team:qa\"\nperiod = \"day\"\nlimit_usd = 1.0\n"
    ))
    .await;
    let key_id = h.key_id().await;
    let hold =
        h.gw.budgets
            .reserve(&key_id, Some("qa"), Some(0.7))
            .await
            .unwrap();
    assert!(hold.is_some());
    let ledger = &h.store.budgets;
    let id = &h.gw.budgets.status().await.unwrap()[0];
    assert_eq!(
        ledger
            .spend(&id.budget, &id.period_start)
            .await
            .unwrap()
            .reserved,
        tollgate_store::budget::usd_to_nanos(0.7)
    );
    drop(hold);
    h.gw.budgets.idle().await;
    let s = &h.gw.budgets.status().await.unwrap()[0];
    assert_eq!((s.spent_usd, s.reserved_usd), (0.0, 0.0));
    assert!(nanos_to_usd(1_000_000_000) == 1.0);
}

/// An in-test webhook receiver on 127.0.0.1: every POSTed body arrives on the channel.
async fn webhook_server() -> (String, mpsc::UnboundedReceiver<(String, Value)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/{kind}",
        post(
            move |axum::extract::Path(kind): axum::extract::Path<String>,
                  axum::Json(v): axum::Json<Value>| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send((kind, v));
                    "ok"
                }
            },
        ),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, rx)
}

async fn alerter(extra: &str) -> (Arc<Alerter>, Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::from_backend(Arc::new(
        SqliteStore::open(&dir.path().join("a.db")).await.unwrap(),
    ));
    let (config, _) = Config::parse(extra, Path::new("t.toml")).unwrap_or_else(|e| panic!("{e}"));
    let a = Arc::new(Alerter::new(&config.alerts, store.alerts.clone()));
    (a, store, dir)
}

fn spend(a: &Arc<Alerter>, minute: i64, usd: f64) {
    let t = DateTime::from_timestamp(1_790_000_000 / 60 * 60 + minute * 60 + 5, 0).unwrap();
    a.set_clock(Arc::new(move || t));
    a.observe(&Observation {
        key_id: Some("key_spender"),
        team: None,
        model: Some("gpt"),
        cost_usd: Some(usd),
        ..Observation::default()
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_synthetic_cost_spike_raises_exactly_one_webhook_alert() {
    let (url, mut rx) = webhook_server().await;
    // The Slack-style hook is a secret: the config names a file holding its URL.
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), format!("{url}/slack\n")).unwrap();
    let (a, store, _dir) = alerter(&format!(
        "[alerts]\n[[alerts.webhooks]]\nurl = \"{url}/json\"\n[[alerts.webhooks]]\nurl = \"file://{}\"\nformat = \"slack\"\n",
        secret.path().display()
    ))
    .await;
    // Half an hour of a few cents a minute.
    for minute in 0..30 {
        spend(&a, minute, 0.02 + 0.005 * f64::from(minute as i32 % 3));
    }
    a.idle().await;
    assert!(rx.try_recv().is_err(), "a steady baseline raises nothing");
    // Then $2 a minute, in twenty calls (too few for a request-rate alert), for three
    // minutes: one spike, one alert, whatever its length.
    for minute in 30..33 {
        for _ in 0..20 {
            spend(&a, minute, 0.1);
        }
    }
    a.idle().await;
    let mut got = Vec::new();
    while let Ok(m) = rx.try_recv() {
        got.push(m);
    }
    assert_eq!(
        got.len(),
        2,
        "one alert, to each of the two webhooks: {got:?}"
    );
    let json = &got.iter().find(|(k, _)| k == "json").unwrap().1;
    assert_eq!(json["kind"], "anomaly");
    assert_eq!(json["subject"], "key:key_spender");
    assert_eq!(json["details"]["metric"], "cost_usd");
    assert!(
        json["message"].as_str().unwrap().contains("cost_usd"),
        "{json}"
    );
    let slack = &got.iter().find(|(k, _)| k == "slack").unwrap().1;
    let text = slack["text"].as_str().unwrap();
    assert!(
        text.contains("anomaly") && text.contains("key:key_spender"),
        "{slack}"
    );
    assert_eq!(
        slack.as_object().unwrap().len(),
        1,
        "Slack takes only `text`"
    );
    let stored = store
        .alerts
        .alerts_since(DateTime::<Utc>::MIN_UTC, 10)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
}

#[tokio::test]
async fn the_same_alert_is_dropped_within_its_cooldown_and_raised_after() {
    let (a, _store, _dir) = alerter("[alerts]\ncooldown = \"10m\"\nlog = false\n").await;
    a.idle().await;
    tokio::time::pause();
    let alert = |dedup: &str| Alert {
        kind: "key_suspended",
        severity: Severity::Critical,
        subject: "key:k".into(),
        dedup_key: dedup.into(),
        message: "suspended".into(),
        details: json!({}),
    };
    assert!(a.raise(alert("key_suspended:k")));
    assert!(!a.raise(alert("key_suspended:k")));
    assert!(
        a.raise(alert("key_suspended:other")),
        "another dedup key is another alert"
    );
    tokio::time::advance(Duration::from_secs(9 * 60)).await;
    assert!(!a.raise(alert("key_suspended:k")));
    tokio::time::advance(Duration::from_secs(61)).await;
    assert!(a.raise(alert("key_suspended:k")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_model_or_client_ip_for_a_known_key_raises_one_alert() {
    let (a, store, _dir) = alerter("[alerts]\nlog = false\n").await;
    let see = |model: &'static str, ip: &str| {
        let ip = ip.parse().unwrap();
        a.observe(&Observation {
            key_id: Some("key_k"),
            model: Some(model),
            ip: Some(ip),
            ..Observation::default()
        });
    };
    // The key's first request sets what is usual for it.
    see("gpt", "10.0.0.1");
    a.idle().await;
    see("gpt", "10.0.0.1");
    see("claude", "10.0.0.1");
    a.idle().await;
    see("claude", "10.9.9.9");
    see("claude", "10.9.9.9");
    a.idle().await;
    let mut kinds: Vec<(String, String)> = store
        .alerts
        .alerts_since(DateTime::<Utc>::MIN_UTC, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.kind, r.message))
        .collect();
    kinds.sort();
    assert_eq!(kinds.len(), 2, "{kinds:?}");
    assert_eq!(kinds[0].0, "new_ip");
    assert!(kinds[0].1.contains("10.9.9.9"));
    assert_eq!(kinds[1].0, "new_model");
    assert!(kinds[1].1.contains("claude"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_automatic_suspension_is_an_alert() {
    let h = Harness::start().await;
    // `[limits.abuse] denials = 5` in the harness: a key asking for what it may not have.
    let (key, key_id) = h
        .create_key(crate::harness::KeyOpts {
            models: vec!["claude"],
            ..Default::default()
        })
        .await;
    for _ in 0..6 {
        h.client
            .post(format!("{}/v1/chat/completions", h.url))
            .bearer_auth(&key)
            .json(&user("gpt", "hi"))
            .send()
            .await
            .unwrap();
    }
    h.gw.alerts.idle().await;
    let list = budget_alerts(&h.store, "key_suspended").await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].subject, format!("key:{key_id}"));
    assert_eq!(list[0].severity, "critical");
}
