//! `tollgate review` and `tollgate drift` against the real binary (MI-4): sampled traffic
//! reaches the queue PII-masked, a label is recorded with its reviewer and credential and
//! lands in the audit trail, and `drift` prints the route's days and its verdict, exiting 1
//! on a shifted route.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use tollgate_testkit::MockUpstream;

use crate::audit::{admin_cli, project, stop};
use crate::server::{Server, cli, create_key};

const EMAIL: &str = "jane.doe@example.com";

/// Add `days` of statistics to the route `watched` directly in the database: 14 baseline
/// days of short answers, then today with long ones (or the same, without `shift`).
fn seed_days(db: &Path, shift: bool) {
    let script = r#"
import sqlite3, sys, datetime
db, shift = sys.argv[1], sys.argv[2] == "1"
c = sqlite3.connect(db)
today = datetime.datetime.now(datetime.timezone.utc).date()
for back in range(0, 15):
    day = (today - datetime.timedelta(days=back)).isoformat()
    long = shift and back == 0
    c.execute("INSERT INTO route_days (route, day, requests, completions, output_tokens, refusals, guard_blocks, errors, latency_ms_total, cost_nanos) VALUES ('watched', ?, 200, 200, ?, 4, 0, 0, 60000, 200000)", (day, 200 * (900 if long else 50)))
    c.execute("INSERT INTO route_day_bins (route, day, metric, bin, count) VALUES ('watched', ?, 'output_tokens', ?, 200)", (day, 7 if long else 3))
    c.execute("INSERT INTO route_day_bins (route, day, metric, bin, count) VALUES ('watched', ?, 'latency_ms', 2, 200)", (day,))
c.commit()
"#;
    let ok = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(db)
        .arg(if shift { "1" } else { "0" })
        .status()
        .unwrap();
    assert!(ok.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn sampled_traffic_is_reviewed_labelled_and_audited() {
    let mock = MockUpstream::start().await.unwrap();
    let p = project(
        &mock,
        "[routes.gpt.review]\nsample_rate = 1.0\n[routes.watched]\ntargets = [{ provider = \"oa\", model = \"gpt-mock\" }]\n",
    );
    let (key, _) = create_key(&p.dir, &[]);
    let mut server = Server::start(&p.dir, &[]);
    let r = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.url))
        .bearer_auth(&key)
        .json(&json!({"model": "gpt", "messages": [{"role": "user", "content": format!("Mail {EMAIL} the invoice")}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let request_id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    // A graceful stop flushes the sample and the day's counters.
    assert!(stop(&mut server).success());

    // Reading the queue needs a credential.
    let (code, _, err) = admin_cli(&p.dir, None, &["review"]);
    assert_eq!(code, 2, "{err}");
    let (code, out, err) = admin_cli(&p.dir, Some(&p.owner), &["review"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("1 item(s) waiting for review"), "{out}");
    assert!(!out.contains(EMAIL), "{out}");
    let (code, out, err) = admin_cli(&p.dir, Some(&p.owner), &["review", "--json"]);
    assert_eq!(code, 0, "{err}");
    let items: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(items.as_array().unwrap().len(), 1, "{items}");
    let item = &items[0];
    assert_eq!(item["request_id"], request_id.as_str());
    assert_eq!(item["route"], "gpt");
    assert!(!out.contains("jane.doe"), "raw PII in the queue: {out}");
    assert!(item["prompt"].as_str().unwrap().contains("the invoice"));
    let id = item["id"].as_str().unwrap().to_owned();

    // A bad label is a usage error; an unknown item is an error (and on the record).
    let (code, _, _) = admin_cli(
        &p.dir,
        Some(&p.owner),
        &["review", "label", &id, "--label", "meh"],
    );
    assert_eq!(code, 2);
    let (code, _, err) = admin_cli(
        &p.dir,
        Some(&p.owner),
        &["review", "label", "rev_nope", "--label", "good"],
    );
    assert_eq!(code, 2);
    assert!(err.contains("no review item rev_nope"), "{err}");

    let (code, out, err) = admin_cli(
        &p.dir,
        Some(&p.owner),
        &[
            "review",
            "label",
            &id,
            "--label",
            "hallucinated",
            "--reviewer",
            "dana",
            "--note",
            "invented an invoice number",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let labelled: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(labelled["label"], "hallucinated");
    assert_eq!(labelled["reviewer"], "dana");
    assert!(
        labelled["labelled_by"]
            .as_str()
            .unwrap()
            .starts_with("adm_"),
        "{labelled}"
    );
    assert!(labelled["labelled_at"].is_string());
    let (code, out, _) = admin_cli(&p.dir, Some(&p.owner), &["review"]);
    assert_eq!(code, 0);
    assert!(
        out.starts_with("0 item(s) waiting for review, 1 labelled"),
        "{out}"
    );

    // The label is on the audit record, which still verifies.
    let (code, out, _) = admin_cli(&p.dir, Some(&p.owner), &["audit", "export"]);
    assert_eq!(code, 0);
    let labels: Vec<Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["record"]["action"] == "review.label")
        .collect();
    assert_eq!(labels.len(), 2, "one not_found, one ok: {labels:?}");
    assert!(labels.iter().any(|r| r["record"]["outcome"] == "ok"
        && r["record"]["target"] == id.as_str()
        && r["record"]["details"]["reviewer"] == "dana"));
    let (code, out, _) = cli(&p.dir, &["audit", "verify"], None);
    assert_eq!(code, 0, "{out}");

    // The day's series shows the request and its label; one day is not enough to score.
    let (code, out, err) = cli(&p.dir, &["drift", "gpt"], None);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("Not enough data to score route gpt"),
        "{out}"
    );
    let (code, out, _) = cli(&p.dir, &["drift", "gpt", "--json"], None);
    assert_eq!(code, 0);
    let report: Value = serde_json::from_str(&out).unwrap();
    let series = report["series"].as_array().unwrap();
    assert_eq!(series.len(), 1, "{report}");
    assert_eq!(series[0]["counts"]["requests"], 1);
    assert_eq!(series[0]["labels"]["hallucinated"], 1);

    // A shifted route: verdict first, exit 1; the same days unshifted: exit 0.
    let db = p.dir.join("tollgate-data").join("tollgate.db");
    seed_days(&db, true);
    let (code, out, err) = cli(&p.dir, &["drift", "watched"], None);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.starts_with("DRIFT on route watched: output_tokens PSI"),
        "{out}"
    );
    assert!(out.contains("Look at recent answers"), "{out}");
    let (code, out, _) = cli(
        &p.dir,
        &["drift", "watched", "--json", "--baseline-days", "7"],
        None,
    );
    assert_eq!(code, 1);
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["drifted"], true);
    assert_eq!(report["series"].as_array().unwrap().len(), 8);
    let (code, _, err) = cli(&p.dir, &["drift", "nowhere"], None);
    assert_eq!(code, 2);
    assert!(err.contains("not in the config"), "{err}");
    let (code, _, _) = cli(&p.dir, &["drift", "watched", "--days", "0"], None);
    assert_eq!(code, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_is_quiet_on_an_unshifted_route() {
    let mock = MockUpstream::start().await.unwrap();
    let p = project(
        &mock,
        "[routes.watched]\ntargets = [{ provider = \"oa\", model = \"gpt-mock\" }]\n",
    );
    // Opening the store once creates the database and its tables.
    let (code, _, err) = cli(&p.dir, &["drift", "watched"], None);
    assert_eq!(code, 0, "{err}");
    seed_days(&p.dir.join("tollgate-data").join("tollgate.db"), false);
    let (code, out, err) = cli(&p.dir, &["drift", "watched"], None);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("No drift on route watched: largest PSI 0.000"),
        "{out}"
    );
}
