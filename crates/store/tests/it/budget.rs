//! Budget ledger and alert store on each backend: reservations never pass the limit, even
//! from many tasks and two handles at once; settlement swaps a reservation for the actual
//! cost; thresholds are crossed once per period; alerts and sightings round-trip.

use std::sync::Arc;

use chrono::Duration;
use serde_json::json;
use tollgate_store::alert::{AlertRecord, Sighting};
use tollgate_store::budget::Spend;

use crate::backend::{TestDb, on_each_backend};

on_each_backend!(
    reservations_stop_at_the_limit_and_settle_to_the_actual_cost,
    concurrent_reservations_from_two_handles_never_pass_the_limit,
    a_threshold_is_crossed_once_per_period,
    alerts_are_listed_newest_first_since_a_time,
    sightings_say_whether_a_value_is_new_and_whether_others_came_before,
);

async fn reservations_stop_at_the_limit_and_settle_to_the_actual_cost(db: TestDb) {
    let l = &db.store.budgets;
    assert_eq!(
        l.spend("key:a/day", "2026-11-29").await.unwrap(),
        Spend::default()
    );
    assert!(l.reserve("key:a/day", "2026-11-29", 60, 100).await.unwrap());
    assert!(!l.reserve("key:a/day", "2026-11-29", 41, 100).await.unwrap());
    assert!(l.reserve("key:a/day", "2026-11-29", 40, 100).await.unwrap());
    assert_eq!(
        l.spend("key:a/day", "2026-11-29").await.unwrap(),
        Spend {
            spent: 0,
            reserved: 100
        }
    );
    // The first call cost less than reserved: the difference is free again.
    l.settle("key:a/day", "2026-11-29", 60, 10).await.unwrap();
    assert_eq!(
        l.spend("key:a/day", "2026-11-29").await.unwrap(),
        Spend {
            spent: 10,
            reserved: 40
        }
    );
    assert!(l.reserve("key:a/day", "2026-11-29", 50, 100).await.unwrap());
    // Over-release never goes negative; a cost without a reservation is still counted.
    l.settle("key:a/day", "2026-11-29", 1_000, 95)
        .await
        .unwrap();
    assert_eq!(
        l.spend("key:a/day", "2026-11-29").await.unwrap(),
        Spend {
            spent: 105,
            reserved: 0
        }
    );
    // At or past the limit even a zero reservation (unknown price) is refused.
    assert!(!l.reserve("key:a/day", "2026-11-29", 0, 100).await.unwrap());
    // A new period starts at zero.
    assert!(
        l.reserve("key:a/day", "2026-11-30", 100, 100)
            .await
            .unwrap()
    );
    l.settle("key:b/day", "2026-11-29", 0, 7).await.unwrap();
    assert_eq!(l.spend("key:b/day", "2026-11-29").await.unwrap().spent, 7);
}

async fn concurrent_reservations_from_two_handles_never_pass_the_limit(db: TestDb) {
    let other = db.reopen().await;
    let ledgers = [db.store.budgets.clone(), other.budgets.clone()];
    let mut tasks = Vec::new();
    for i in 0..40 {
        let l = Arc::clone(&ledgers[i % 2]);
        tasks.push(tokio::spawn(async move {
            l.reserve("global/month", "2026-11-01", 7, 100)
                .await
                .unwrap()
        }));
    }
    let mut granted = 0;
    for t in tasks {
        granted += i64::from(t.await.unwrap());
    }
    assert_eq!(granted, 100 / 7, "exactly as many as fit");
    let s = db
        .store
        .budgets
        .spend("global/month", "2026-11-01")
        .await
        .unwrap();
    assert_eq!(s.reserved, granted * 7);
    assert!(s.reserved <= 100);
}

async fn a_threshold_is_crossed_once_per_period(db: TestDb) {
    let l = &db.store.budgets;
    let now = tollgate_store::now();
    assert!(
        l.cross_threshold("team:x/week", "2026-11-23", 500, now)
            .await
            .unwrap()
    );
    assert!(
        !l.cross_threshold("team:x/week", "2026-11-23", 500, now)
            .await
            .unwrap()
    );
    let other = db.reopen().await;
    assert!(
        !other
            .budgets
            .cross_threshold("team:x/week", "2026-11-23", 500, now)
            .await
            .unwrap()
    );
    assert!(
        l.cross_threshold("team:x/week", "2026-11-23", 800, now)
            .await
            .unwrap()
    );
    assert!(
        l.cross_threshold("team:x/week", "2026-11-30", 500, now)
            .await
            .unwrap()
    );
}

async fn alerts_are_listed_newest_first_since_a_time(db: TestDb) {
    let a = &db.store.alerts;
    let t0 = tollgate_store::now();
    for i in 0..3 {
        a.insert_alert(&AlertRecord {
            id: format!("alr_{i}"),
            at: t0 + Duration::minutes(i),
            kind: "anomaly".into(),
            severity: "warning".into(),
            subject: "key:k1".into(),
            dedup_key: format!("anomaly:key:k1:cost:{i}"),
            message: format!("spike {i}"),
            details: json!({"value": i}),
        })
        .await
        .unwrap();
    }
    let all = a.alerts_since(t0, 10).await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["alr_2", "alr_1", "alr_0"]
    );
    assert_eq!(all[0].details, json!({"value": 2}));
    assert_eq!(all[0].at, t0 + Duration::minutes(2));
    assert_eq!(
        a.alerts_since(t0 + Duration::minutes(1), 10)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(a.alerts_since(t0, 1).await.unwrap().len(), 1);
}

async fn sightings_say_whether_a_value_is_new_and_whether_others_came_before(db: TestDb) {
    let a = &db.store.alerts;
    let now = tollgate_store::now();
    assert_eq!(
        a.sight("k1", "model", "gpt-4o", now).await.unwrap(),
        Sighting {
            new: true,
            had_others: false
        }
    );
    assert_eq!(
        a.sight("k1", "model", "gpt-4o", now).await.unwrap(),
        Sighting {
            new: false,
            had_others: false
        }
    );
    assert_eq!(
        a.sight("k1", "model", "o1", now).await.unwrap(),
        Sighting {
            new: true,
            had_others: true
        }
    );
    assert_eq!(
        a.sight("k1", "ip", "10.0.0.1", now).await.unwrap(),
        Sighting {
            new: true,
            had_others: false
        }
    );
    assert!(!a.sight("k2", "model", "o1", now).await.unwrap().had_others);
}
