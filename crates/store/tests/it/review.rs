//! Review queue and route statistics on each backend: items are queued, listed, labelled
//! with who and when; route days add up across two handles (two instances); labels and
//! prompt evaluations show in the day they belong to; a drift alert is marked once per day;
//! retention (with time moved forward) deletes expired items, but not those of a request
//! under a legal hold.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tollgate_store::prompt::{EvalRecord, NewPromptVersion};
use tollgate_store::review::{
    DayCounts, Labelling, ReviewItem, ReviewLabel, ReviewQuery, RouteDayDelta,
};

use crate::backend::{Arg, TestDb, on_each_backend};

on_each_backend!(
    review_items_are_queued_listed_and_labelled_with_who_and_when,
    route_days_add_up_across_instances_and_carry_labels,
    prompt_evaluations_are_listed_since_a_time,
    a_drift_alert_is_marked_once_per_route_and_day,
    an_unknown_stored_label_is_corrupt,
    review_items_expire_with_retention_unless_their_request_is_held,
);

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn item(id: &str, route: &str, t: DateTime<Utc>) -> ReviewItem {
    ReviewItem {
        id: id.into(),
        route: route.into(),
        request_id: format!("req_{id}"),
        at: t,
        prompt: "my mail is [EMAIL]".into(),
        completion: "noted, [EMAIL]".into(),
        truncated: id.ends_with('t'),
        label: None,
        reviewer: None,
        labelled_by: None,
        note: None,
        labelled_at: None,
    }
}

async fn review_items_are_queued_listed_and_labelled_with_who_and_when(db: TestDb) {
    let r = &db.store.reviews;
    assert_eq!(r.review_summary().await.unwrap().pending, 0);
    r.enqueue_reviews(&[]).await.unwrap();
    let t0 = at("2026-11-20T10:00:00Z");
    r.enqueue_reviews(&[
        item("rev_b", "gpt", t0 + Duration::minutes(1)),
        item("rev_a", "gpt", t0),
        item("rev_ct", "claude", t0 + Duration::minutes(2)),
    ])
    .await
    .unwrap();
    // Ids are unique: a duplicate fails the whole batch.
    assert!(
        r.enqueue_reviews(&[item("rev_d", "gpt", t0), item("rev_a", "gpt", t0)])
            .await
            .is_err()
    );
    let all = r
        .review_items(&ReviewQuery {
            limit: 10,
            ..ReviewQuery::default()
        })
        .await
        .unwrap();
    let ids: Vec<_> = all.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["rev_a", "rev_b", "rev_ct"], "oldest first");
    assert_eq!(all[0], item("rev_a", "gpt", t0));
    assert!(all[2].truncated);
    let gpt = r
        .review_items(&ReviewQuery {
            route: Some("gpt".into()),
            pending_only: true,
            limit: 1,
        })
        .await
        .unwrap();
    assert_eq!(gpt.len(), 1);
    assert_eq!(gpt[0].id, "rev_a");

    let when = tollgate_store::now();
    let labelling = Labelling {
        label: ReviewLabel::Hallucinated,
        reviewer: "dana",
        labelled_by: "adm_1",
        note: Some("invented a citation"),
        at: when,
    };
    assert!(r.label_review("rev_a", &labelling).await.unwrap());
    assert!(!r.label_review("rev_nope", &labelling).await.unwrap());
    let got = r.review_item("rev_a").await.unwrap().unwrap();
    assert_eq!(got.label, Some(ReviewLabel::Hallucinated));
    assert_eq!(got.reviewer.as_deref(), Some("dana"));
    assert_eq!(got.labelled_by.as_deref(), Some("adm_1"));
    assert_eq!(got.note.as_deref(), Some("invented a citation"));
    assert_eq!(got.labelled_at, Some(when));
    assert!(r.review_item("rev_nope").await.unwrap().is_none());
    let pending = r
        .review_items(&ReviewQuery {
            pending_only: true,
            limit: 10,
            ..ReviewQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(pending.len(), 2);
    assert!(pending.iter().all(|i| i.label.is_none()));
    let s = r.review_summary().await.unwrap();
    assert_eq!((s.pending, s.labelled), (2, 1));
    assert_eq!(s.last_labelled_at, Some(when));
}

async fn route_days_add_up_across_instances_and_carry_labels(db: TestDb) {
    let other = db.reopen().await;
    let stores = [db.store.reviews.clone(), other.reviews.clone()];
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = Arc::clone(&stores[i % 2]);
        tasks.push(tokio::spawn(async move {
            let mut bins = BTreeMap::new();
            bins.insert(("output_tokens".to_owned(), (i % 3) as i64), 1);
            bins.insert(("latency_ms".to_owned(), 4), 1);
            s.add_route_days(&[RouteDayDelta {
                route: "gpt".into(),
                day: "2026-11-20".into(),
                counts: DayCounts {
                    requests: 1,
                    completions: 1,
                    output_tokens: 10,
                    refusals: i64::from(i % 4 == 0),
                    latency_ms_total: 100,
                    cost_nanos: 7,
                    ..DayCounts::default()
                },
                bins,
            }])
            .await
            .unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    db.store
        .reviews
        .add_route_days(&[
            RouteDayDelta {
                route: "gpt".into(),
                day: "2026-11-21".into(),
                counts: DayCounts {
                    requests: 2,
                    guard_blocks: 1,
                    errors: 1,
                    ..DayCounts::default()
                },
                bins: BTreeMap::new(),
            },
            RouteDayDelta {
                route: "claude".into(),
                day: "2026-11-10".into(),
                counts: DayCounts {
                    requests: 1,
                    ..DayCounts::default()
                },
                bins: BTreeMap::new(),
            },
        ])
        .await
        .unwrap();
    // A labelled item of the 20th and a pending one of the 22nd (no traffic that day).
    let r = &db.store.reviews;
    r.enqueue_reviews(&[
        item("rev_1", "gpt", at("2026-11-20T23:59:00Z")),
        item("rev_2", "gpt", at("2026-11-22T00:01:00Z")),
    ])
    .await
    .unwrap();
    r.label_review(
        "rev_1",
        &Labelling {
            label: ReviewLabel::Good,
            reviewer: "dana",
            labelled_by: "adm_1",
            note: None,
            at: tollgate_store::now(),
        },
    )
    .await
    .unwrap();

    let days = r
        .route_days("gpt", "2026-11-01", "2026-11-30")
        .await
        .unwrap();
    let names: Vec<_> = days.iter().map(|d| d.day.as_str()).collect();
    assert_eq!(
        names,
        ["2026-11-20", "2026-11-21"],
        "pending items add no day"
    );
    let d = &days[0];
    assert_eq!(
        d.counts,
        DayCounts {
            requests: 20,
            completions: 20,
            output_tokens: 200,
            refusals: 5,
            guard_blocks: 0,
            errors: 0,
            latency_ms_total: 2000,
            cost_nanos: 140,
        }
    );
    assert_eq!(
        d.bins["output_tokens"],
        BTreeMap::from([(0, 7), (1, 7), (2, 6)])
    );
    assert_eq!(d.bins["latency_ms"], BTreeMap::from([(4, 20)]));
    assert_eq!(d.labels, BTreeMap::from([("good".to_owned(), 1)]));
    assert_eq!(days[1].counts.guard_blocks, 1);
    assert!(days[1].bins.is_empty());
    // Bounds are inclusive and other routes stay apart.
    assert_eq!(
        r.route_days("gpt", "2026-11-21", "2026-11-21")
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        r.route_days("nope", "2026-11-01", "2026-11-30")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        r.routes_with_days("2026-11-01").await.unwrap(),
        ["claude", "gpt"]
    );
    assert_eq!(r.routes_with_days("2026-11-15").await.unwrap(), ["gpt"]);
}

async fn prompt_evaluations_are_listed_since_a_time(db: TestDb) {
    let p = &db.store.prompts;
    let t0 = tollgate_store::now();
    for (name, content) in [
        ("support", r#"{"route":"gpt"}"#),
        ("faq", r#"{"route":"claude"}"#),
    ] {
        p.add_prompt_version(&NewPromptVersion {
            name,
            content,
            content_hash: "00",
            author: "adm_1",
            diff: "",
            at: t0,
        })
        .await
        .unwrap();
    }
    let old = t0 - Duration::days(30);
    p.record_prompt_eval(
        "faq",
        1,
        &EvalRecord {
            passed: true,
            report: "{}".into(),
            at: old,
        },
    )
    .await
    .unwrap();
    p.record_prompt_eval(
        "support",
        1,
        &EvalRecord {
            passed: false,
            report: "{}".into(),
            at: t0,
        },
    )
    .await
    .unwrap();
    let rows = db
        .store
        .reviews
        .prompt_evals_since(t0 - Duration::days(1))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].name, "support");
    assert_eq!(rows[0].version, 1);
    assert!(!rows[0].passed);
    assert_eq!(rows[0].content, r#"{"route":"gpt"}"#);
    assert_eq!(rows[0].at, t0);
    let all = db.store.reviews.prompt_evals_since(old).await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all[0].passed, "oldest first");
}

async fn a_drift_alert_is_marked_once_per_route_and_day(db: TestDb) {
    let other = db.reopen().await;
    let now = tollgate_store::now();
    let r = &db.store.reviews;
    assert!(r.mark_drift_alert("gpt", "2026-11-20", now).await.unwrap());
    assert!(
        !other
            .reviews
            .mark_drift_alert("gpt", "2026-11-20", now)
            .await
            .unwrap()
    );
    assert!(r.mark_drift_alert("gpt", "2026-11-21", now).await.unwrap());
    assert!(
        r.mark_drift_alert("claude", "2026-11-20", now)
            .await
            .unwrap()
    );
}

async fn an_unknown_stored_label_is_corrupt(db: TestDb) {
    let r = &db.store.reviews;
    r.enqueue_reviews(&[item("rev_x", "gpt", tollgate_store::now())])
        .await
        .unwrap();
    db.exec(
        "UPDATE review_items SET label = 'meh' WHERE id = ?",
        &[Arg::Text("rev_x")],
    )
    .await;
    let err = r.review_item("rev_x").await.unwrap_err().to_string();
    assert!(err.contains("review_items.label"), "{err}");
}

async fn review_items_expire_with_retention_unless_their_request_is_held(db: TestDb) {
    use tollgate_store::audit::{HoldScope, LegalHold, NewRecord, PurgePlan, RecordKind};
    let r = &db.store.reviews;
    let t0 = at("2026-10-01T12:00:00Z");
    r.enqueue_reviews(&[
        item("rev_old", "gpt", t0),
        item("rev_held", "gpt", t0 + Duration::minutes(1)),
        item("rev_new", "gpt", t0 + Duration::days(20)),
    ])
    .await
    .unwrap();
    assert!(
        r.label_review(
            "rev_old",
            &Labelling {
                label: ReviewLabel::Good,
                reviewer: "dana",
                labelled_by: "adm_1",
                note: None,
                at: t0,
            },
        )
        .await
        .unwrap(),
        "labelled items expire like pending ones"
    );
    // The held item's request was made with a key under a legal hold; its audit record says so.
    let record = |id: &str, key: &str| {
        NewRecord::new(
            t0,
            RecordKind::Request,
            format!("req_{id}"),
            Some(key.to_owned()),
            Some("team-a".to_owned()),
            &serde_json::json!({"key_id": key}),
        )
    };
    db.store
        .audit
        .append(
            "gw",
            &[record("rev_old", "k_free"), record("rev_held", "k_case")],
            &[1; 32],
        )
        .await
        .unwrap();
    db.store
        .audit
        .put_hold(&LegalHold {
            scope: HoldScope::Key,
            value: "k_case".into(),
            reason: "case 9".into(),
            placed_by: "adm_x".into(),
            placed_at: t0,
        })
        .await
        .unwrap();
    let ids = || async {
        let all = r
            .review_items(&ReviewQuery {
                limit: 10,
                ..ReviewQuery::default()
            })
            .await
            .unwrap();
        all.into_iter().map(|i| i.id).collect::<Vec<_>>()
    };
    // Time moved forward: 30 days after the first items, with a 14-day TTL.
    let now = t0 + Duration::days(30);
    let plan = |dry_run| PurgePlan {
        reviews_before: Some(now - Duration::days(14)),
        dry_run,
        ..PurgePlan::default()
    };
    let dry = db.store.audit.purge(&plan(true), now).await.unwrap();
    assert_eq!((dry.reviews_deleted, dry.reviews_held), (1, 1));
    assert_eq!(
        ids().await,
        ["rev_old", "rev_held", "rev_new"],
        "a dry run deletes nothing"
    );
    let done = db.store.audit.purge(&plan(false), now).await.unwrap();
    assert_eq!((done.reviews_deleted, done.reviews_held), (1, 1));
    assert_eq!(ids().await, ["rev_held", "rev_new"]);
    assert!(r.review_item("rev_old").await.unwrap().is_none());
    // Without a review TTL the queue is untouched; once the hold is lifted the item goes.
    let none = db
        .store
        .audit
        .purge(&PurgePlan::default(), now + Duration::days(365))
        .await
        .unwrap();
    assert_eq!(none.reviews_deleted, 0);
    assert!(
        db.store
            .audit
            .remove_hold(HoldScope::Key, "k_case")
            .await
            .unwrap()
    );
    let done = db.store.audit.purge(&plan(false), now).await.unwrap();
    assert_eq!((done.reviews_deleted, done.reviews_held), (1, 0));
    assert_eq!(ids().await, ["rev_new"]);
}
