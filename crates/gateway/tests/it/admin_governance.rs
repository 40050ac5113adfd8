//! The governance endpoints of the admin API (AC-3, AC-4, DO-3, MI-4) through the real
//! router: pushing, diffing and evaluating prompt and route versions, the key audit, the
//! review queue and drift. Each is in the endpoint table (so the role × endpoint matrix and
//! the OpenAPI document cover it), audited on success and on denial, and answers bad input
//! with a clear 4xx.

use chrono::{Duration, Utc};
use serde_json::{Value, json};
use tollgate_gateway::admin::ENDPOINTS;
use tollgate_store::AdminCredential;
use tollgate_store::key::{
    Environment, KeyRecord, VirtualKey, new_admin_credential, random_base62,
};
use tollgate_store::review::ReviewItem;

use crate::harness::Harness;

/// A credential of `role`: (token, id).
async fn admin(h: &Harness, role: &str) -> (String, String) {
    let secret = new_admin_credential();
    let text = secrecy::ExposeSecret::expose_secret(&secret).to_owned();
    let id = format!("adm_{}", random_base62(12));
    h.store
        .admins
        .insert_admin(&AdminCredential {
            id: id.clone(),
            hash: h.hasher.hash_text(&text),
            name: format!("{role} person"),
            role: role.into(),
            created_at: tollgate_store::now(),
        })
        .await
        .unwrap();
    (text, id)
}

async fn call(
    h: &Harness,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut rb = h
        .client
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}{path}", h.url),
        )
        .bearer_auth(token);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The admin records written so far: (action, outcome, actor).
async fn admin_records(h: &Harness) -> Vec<(String, String, String)> {
    h.gw.audit.flush().await;
    let recs =
        h.gw.store
            .audit
            .records_between(
                Utc::now() - Duration::minutes(10),
                Utc::now() + Duration::minutes(1),
                None,
                100_000,
            )
            .await
            .unwrap();
    recs.iter()
        .filter(|r| r.kind == "admin")
        .map(|r| {
            let v: Value = serde_json::from_str(&r.body).unwrap();
            (
                v["action"].as_str().unwrap_or_default().to_owned(),
                v["outcome"].as_str().unwrap_or_default().to_owned(),
                v["actor"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn has(records: &[(String, String, String)], action: &str, outcome: &str, actor: &str) -> bool {
    records
        .iter()
        .any(|(a, o, who)| a == action && o == outcome && (actor.is_empty() || who == actor))
}

fn prompt(system: &str) -> Value {
    json!({"name": "support", "route": "gpt", "system": system,
           "messages": [{"role": "user", "content": "Customer {{customer}} asks:"}]})
}

#[test]
fn the_governance_endpoints_are_in_the_one_table() {
    // The matrix test and the OpenAPI document walk ENDPOINTS: being listed here is what
    // puts these endpoints under both.
    for (method, path) in [
        ("POST", "/admin/v1/prompts/{id}/versions"),
        ("GET", "/admin/v1/prompts/{id}/diff"),
        ("POST", "/admin/v1/prompts/{id}/evals"),
        ("POST", "/admin/v1/routes/{id}/versions"),
        ("GET", "/admin/v1/routes/{id}/diff"),
        ("POST", "/admin/v1/routes/{id}/evals"),
        ("GET", "/admin/v1/keys/audit"),
        ("GET", "/admin/v1/review"),
        ("POST", "/admin/v1/review/{id}/label"),
        ("GET", "/admin/v1/drift/{id}"),
    ] {
        assert!(
            ENDPOINTS
                .iter()
                .any(|e| e.method == method && e.path == path),
            "{method} {path} is missing from the endpoint table"
        );
    }
}

#[tokio::test]
async fn prompts_are_pushed_diffed_evaluated_and_promoted_through_the_api() {
    let h = Harness::start().await;
    let (engineer, engineer_id) = admin(&h, "prompt-engineer").await;
    let (approver, approver_id) = admin(&h, "approver").await;
    let (responder, responder_id) = admin(&h, "incident-responder").await;
    let base = "/admin/v1/prompts/support";

    // Push (prompt-engineer); the same content again is no new version.
    let (s, v) = call(
        &h,
        "POST",
        &format!("{base}/versions"),
        &engineer,
        Some(prompt("You are v1.")),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        (v["version"].clone(), v["changed"].clone()),
        (json!(1), json!(true))
    );
    assert_eq!(v["sha256"].as_str().unwrap().len(), 64);
    let (s, v) = call(
        &h,
        "POST",
        &format!("{base}/versions"),
        &engineer,
        Some(prompt("You are v1.")),
    )
    .await;
    assert_eq!((s, v["changed"].clone()), (200, json!(false)));
    // Approvers promote; they do not write prompts.
    let (s, _) = call(
        &h,
        "POST",
        &format!("{base}/versions"),
        &approver,
        Some(prompt("x")),
    )
    .await;
    assert_eq!(s, 403);
    // Bad input: malformed JSON, another prompt's name, an unknown route, a broken template.
    for (body, says) in [
        (None, "invalid body"),
        (
            Some(json!({"name": "other", "route": "gpt", "system": "hi"})),
            "the prompt in the path",
        ),
        (
            Some(json!({"name": "support", "route": "nowhere", "system": "hi"})),
            "not a route",
        ),
        (
            Some(json!({"name": "support", "route": "gpt", "system": "{{ oops"})),
            "never closed",
        ),
        (
            Some(json!({"name": "support", "route": "gpt", "temprature": 1})),
            "unknown field",
        ),
    ] {
        let (s, v) = call(&h, "POST", &format!("{base}/versions"), &engineer, body).await;
        assert_eq!(s, 400, "{says}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(says),
            "{v}"
        );
    }
    let (s, v) = call(
        &h,
        "POST",
        &format!("{base}/versions"),
        &engineer,
        Some(prompt("You are v2.")),
    )
    .await;
    assert_eq!((s, v["version"].clone()), (201, json!(2)));
    let (_, hist) = call(&h, "GET", base, &approver, None).await;
    assert_eq!(hist["staging"], 2, "the approver reads the history: {hist}");
    assert_eq!(hist["versions"][1]["author"], engineer_id.as_str());

    // Diff: default is what a promotion would change (nothing in production: v1 → v2).
    let (s, d) = call(&h, "GET", &format!("{base}/diff"), &approver, None).await;
    assert_eq!(s, 200, "{d}");
    assert_eq!((d["from"].clone(), d["to"].clone()), (json!(1), json!(2)));
    let text = d["diff"].as_str().unwrap();
    assert!(
        text.contains("- ") && text.contains("+ ") && text.contains("You are v2."),
        "{text}"
    );
    let (_, d) = call(
        &h,
        "GET",
        &format!("{base}/diff?from=0&to=1"),
        &engineer,
        None,
    )
    .await;
    assert!(d["diff"].as_str().unwrap().contains("+ "), "{d}");
    let (s, _) = call(&h, "GET", &format!("{base}/diff?to=9"), &engineer, None).await;
    assert_eq!(s, 404);
    let (s, _) = call(&h, "GET", &format!("{base}/diff?from=abc"), &engineer, None).await;
    assert_eq!(s, 400);
    let (s, _) = call(&h, "GET", "/admin/v1/prompts/nothing/diff", &engineer, None).await;
    assert_eq!(s, 404);
    let (s, _) = call(&h, "GET", &format!("{base}/diff"), &responder, None).await;
    assert_eq!(s, 403);

    // Evaluations: recorded on the version, checked for consistency, then promotion passes.
    let passed =
        json!({"version": 2, "passed": true, "report": {"cases": [{"name": "a", "passed": true}]}});
    for (body, status) in [
        (
            json!({"version": 2, "passed": true, "report": {"cases": [{"passed": false}]}}),
            400,
        ),
        (json!({"version": 2, "passed": true, "report": "ok"}), 400),
        (json!({"version": 2, "passed": "yes", "report": {}}), 400),
        (json!({"version": 99, "passed": false, "report": {}}), 404),
    ] {
        let (s, v) = call(&h, "POST", &format!("{base}/evals"), &engineer, Some(body)).await;
        assert_eq!(s, status, "{v}");
    }
    let (s, _) = call(
        &h,
        "POST",
        &format!("{base}/evals"),
        &responder,
        Some(passed.clone()),
    )
    .await;
    assert_eq!(s, 403);
    // Limits: a version over MAX_PROMPT_BYTES, a report over MAX_EVAL_REPORT_BYTES.
    let huge = prompt(&"x".repeat(tollgate_gateway::prompt::MAX_PROMPT_BYTES));
    let (s, v) = call(
        &h,
        "POST",
        &format!("{base}/versions"),
        &engineer,
        Some(huge),
    )
    .await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("larger than"),
        "{v}"
    );
    let big = json!({"version": 2, "passed": false,
        "report": {"note": "x".repeat(tollgate_gateway::versioning::MAX_EVAL_REPORT_BYTES)}});
    let (s, v) = call(&h, "POST", &format!("{base}/evals"), &engineer, Some(big)).await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("larger than"),
        "{v}"
    );
    let (s, v) = call(
        &h,
        "POST",
        &format!("{base}/evals"),
        &engineer,
        Some(passed),
    )
    .await;
    assert_eq!((s, v["passed"].clone()), (200, json!(true)), "{v}");
    let (_, hist) = call(&h, "GET", base, &engineer, None).await;
    assert_eq!(hist["versions"][1]["eval"]["passed"], true, "{hist}");
    let (s, v) = call(
        &h,
        "POST",
        &format!("{base}/promote"),
        &approver,
        Some(json!({})),
    )
    .await;
    assert_eq!((s, v["production"].clone()), (200, json!(2)), "{v}");

    let recs = admin_records(&h).await;
    assert!(has(&recs, "prompts.push", "ok", &engineer_id));
    assert!(has(&recs, "prompts.push", "unchanged", &engineer_id));
    assert!(has(&recs, "prompts.push", "denied", &approver_id));
    assert!(has(&recs, "prompts.diff", "ok", &approver_id));
    assert!(has(&recs, "prompts.diff", "denied", &responder_id));
    assert!(has(&recs, "prompts.test", "passed", &engineer_id));
    assert!(has(&recs, "prompts.test", "denied", &responder_id));
    assert!(has(&recs, "prompts.promote", "ok", &approver_id));
}

#[tokio::test]
async fn route_versions_are_pushed_diffed_and_evaluated_through_the_api() {
    let h = Harness::start().await;
    let (model_admin, model_admin_id) = admin(&h, "model-admin").await;
    let (engineer, engineer_id) = admin(&h, "prompt-engineer").await;
    let base = "/admin/v1/routes/gpt";
    let spec =
        |model: &str| json!({"route": "gpt", "targets": [{"provider": "oa", "model": model}]});
    let (s, v) = call(
        &h,
        "POST",
        &format!("{base}/versions"),
        &model_admin,
        Some(spec("gpt-mock")),
    )
    .await;
    assert_eq!((s, v["version"].clone()), (201, json!(1)), "{v}");
    let (s, _) = call(
        &h,
        "POST",
        &format!("{base}/versions"),
        &engineer,
        Some(spec("gpt-mock")),
    )
    .await;
    assert_eq!(s, 403, "routes are the model admin's");
    for (body, says) in [
        (
            json!({"route": "gpt", "targets": [{"provider": "nowhere", "model": "x"}]}),
            "not a provider",
        ),
        (json!({"route": "gpt", "targets": []}), "1 to"),
        (
            json!({"route": "nopii", "targets": [{"provider": "oa", "model": "x"}]}),
            "the route in the path",
        ),
    ] {
        let (s, v) = call(
            &h,
            "POST",
            &format!("{base}/versions"),
            &model_admin,
            Some(body),
        )
        .await;
        assert_eq!(s, 400, "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(says),
            "{says}: {v}"
        );
    }
    let (s, _) = call(
        &h,
        "POST",
        &format!("{base}/versions"),
        &model_admin,
        Some(spec("gpt-mock-2")),
    )
    .await;
    assert_eq!(s, 201);
    let (s, d) = call(&h, "GET", &format!("{base}/diff"), &engineer, None).await;
    assert_eq!(s, 200, "{d}");
    assert!(
        d["diff"]
            .as_str()
            .unwrap()
            .lines()
            .any(|l| l.starts_with("+ ") && l.contains("\"gpt-mock-2\"")),
        "{d}"
    );
    let (s, v) = call(
        &h,
        "POST",
        &format!("{base}/evals"),
        &model_admin,
        Some(json!({"version": 2, "passed": false, "report": {"cases": [{"passed": false}]}})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (_, hist) = call(&h, "GET", base, &engineer, None).await;
    assert_eq!(hist["versions"][1]["eval"]["passed"], false, "{hist}");
    let recs = admin_records(&h).await;
    assert!(has(&recs, "routes.push", "ok", &model_admin_id));
    assert!(has(&recs, "routes.push", "denied", &engineer_id));
    assert!(has(&recs, "routes.diff", "ok", &engineer_id));
    assert!(has(&recs, "routes.test", "failed", &model_admin_id));
}

async fn old_key(h: &Harness, name: &str, days: i64) -> String {
    let key = VirtualKey::generate(Environment::Production);
    let mut rec = KeyRecord::new(&key, h.hasher.hash(&key), name);
    rec.created_at = Utc::now() - Duration::days(days);
    h.store.keys.insert_key(&rec).await.unwrap();
    rec.id
}

#[tokio::test]
async fn the_key_audit_lists_keys_near_the_rotation_policy() {
    // Only keys the scheduler leaves alone (not yet due): it rotates due keys on its own, at
    // start, so a due key's standing here would race it. `audit_keys` below covers due keys.
    let h = Harness::start_extra(
        "[rotation]\nproduction = { max_age = \"90d\", warn_before = \"14d\" }\n",
    )
    .await;
    let aging = old_key(&h, "aging", 80).await;
    let (auditor, auditor_id) = admin(&h, "auditor").await;
    let (engineer, engineer_id) = admin(&h, "prompt-engineer").await;
    let (s, v) = call(&h, "GET", "/admin/v1/keys/audit", &auditor, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["policy"].clone(), v["due"].clone()),
        (json!(true), json!(0)),
        "{v}"
    );
    let aged = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == aging.as_str())
        .unwrap();
    assert_eq!(
        aged["age"],
        json!({"status": "due_soon", "days_left": 9}),
        "{v}"
    );
    assert_eq!(aged["name"], "aging");
    let (s, _) = call(&h, "GET", "/admin/v1/keys/audit", &engineer, None).await;
    assert_eq!(s, 403);
    let recs = admin_records(&h).await;
    assert!(has(&recs, "keys.audit", "ok", &auditor_id));
    assert!(has(&recs, "keys.audit", "denied", &engineer_id));

    // Without a policy no key has a maximum age: said, not an empty pass.
    let plain = Harness::start().await;
    let (auditor, _) = admin(&plain, "auditor").await;
    let (s, v) = call(&plain, "GET", "/admin/v1/keys/audit", &auditor, None).await;
    assert_eq!((s, v["policy"].clone()), (200, json!(false)), "{v}");
    assert_eq!(v["keys"], json!([]));
}

#[tokio::test]
async fn the_key_audit_counts_due_keys() {
    // A gateway without a rotation scheduler, so nothing rotates the due key meanwhile.
    let h = Harness::start().await;
    let due = old_key(&h, "old", 100).await;
    let (config, _) = tollgate_gateway::config::Config::parse(
        "[rotation]\nproduction = { max_age = \"90d\", warn_before = \"14d\" }\n",
        std::path::Path::new("t.toml"),
    )
    .unwrap();
    let report =
        tollgate_gateway::rotation::audit_keys(&h.store, config.rotation.as_ref(), Utc::now())
            .await
            .unwrap();
    assert!(report.policy);
    assert_eq!(report.due, 1, "{report:?}");
    let k = report.keys.iter().find(|k| k.id == due).unwrap();
    assert_eq!(
        k.age,
        tollgate_gateway::rotation::KeyAge::Due { days_over: 10 }
    );
}

fn item(id: &str, route: &str) -> ReviewItem {
    ReviewItem {
        id: id.into(),
        route: route.into(),
        request_id: format!("req_{id}"),
        at: tollgate_store::now(),
        prompt: "my mail is [EMAIL]".into(),
        completion: "noted".into(),
        truncated: false,
        label: None,
        reviewer: None,
        labelled_by: None,
        note: None,
        labelled_at: None,
    }
}

#[tokio::test]
async fn the_review_queue_is_read_labelled_with_who_and_drift_is_reported() {
    let h = Harness::start().await;
    h.store
        .reviews
        .enqueue_reviews(&[item("rev_a", "gpt"), item("rev_b", "nopii")])
        .await
        .unwrap();
    let (auditor, auditor_id) = admin(&h, "auditor").await;
    let (approver, approver_id) = admin(&h, "approver").await;
    let (engineer, engineer_id) = admin(&h, "prompt-engineer").await;

    let (s, page) = call(&h, "GET", "/admin/v1/review", &auditor, None).await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["summary"]["pending"], 2);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["sampling"], false, "the shared config samples nothing");
    let (_, page) = call(
        &h,
        "GET",
        "/admin/v1/review?route=gpt&limit=5",
        &auditor,
        None,
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    for q in ["limit=0", "limit=10001", "limit=many", "colour=red"] {
        let (s, _) = call(&h, "GET", &format!("/admin/v1/review?{q}"), &auditor, None).await;
        assert_eq!(s, 400, "{q}");
    }
    let (s, _) = call(&h, "GET", "/admin/v1/review", &engineer, None).await;
    assert_eq!(
        s, 403,
        "the queue holds users' words: prompt engineers do not read it"
    );

    // Labelling: the approver may; auditors only read; the author of prompts may not grade.
    let label = json!({"label": "hallucinated", "reviewer": "dana", "note": "invented a date"});
    for token in [&auditor, &engineer] {
        let (s, _) = call(
            &h,
            "POST",
            "/admin/v1/review/rev_a/label",
            token,
            Some(label.clone()),
        )
        .await;
        assert_eq!(s, 403);
    }
    let (s, v) = call(
        &h,
        "POST",
        "/admin/v1/review/rev_a/label",
        &approver,
        Some(label.clone()),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["item"]["label"], "hallucinated");
    assert_eq!(v["item"]["reviewer"], "dana");
    assert_eq!(v["item"]["labelled_by"], approver_id.as_str());
    // Without a reviewer name, the credential's name is the reviewer.
    let (_, v) = call(
        &h,
        "POST",
        "/admin/v1/review/rev_b/label",
        &approver,
        Some(json!({"label": "good"})),
    )
    .await;
    assert_eq!(v["item"]["reviewer"], "approver person", "{v}");
    for (body, status) in [
        (json!({"label": "meh"}), 400),
        (json!({"label": "good", "reviewer": " "}), 400),
        (json!({"label": "good", "note": "x".repeat(2_001)}), 400),
        (json!({"verdict": "good"}), 400),
    ] {
        let (s, v) = call(
            &h,
            "POST",
            "/admin/v1/review/rev_a/label",
            &approver,
            Some(body),
        )
        .await;
        assert_eq!(s, status, "{v}");
    }
    let (s, v) = call(
        &h,
        "POST",
        "/admin/v1/review/rev_nope/label",
        &approver,
        Some(label),
    )
    .await;
    assert_eq!(s, 404);
    assert!(v["error"]["message"].as_str().unwrap().contains("rev_nope"));
    let (_, page) = call(&h, "GET", "/admin/v1/review?all=true", &auditor, None).await;
    assert_eq!(page["summary"]["labelled"], 2, "{page}");

    // Drift: a configured route's series (today holds the labels); unknown routes are 404.
    let (s, r) = call(
        &h,
        "GET",
        "/admin/v1/drift/gpt?days=3&baseline_days=7",
        &auditor,
        None,
    )
    .await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["route"], "gpt");
    assert!(r["min_samples"].as_u64().unwrap() > 0);
    assert_eq!(r["series"][0]["labels"]["hallucinated"], 1, "{r}");
    let (s, _) = call(&h, "GET", "/admin/v1/drift/nowhere", &auditor, None).await;
    assert_eq!(s, 404);
    let (s, _) = call(&h, "GET", "/admin/v1/drift/gpt?days=0", &auditor, None).await;
    assert_eq!(s, 400);
    let (s, _) = call(&h, "GET", "/admin/v1/drift/gpt", &engineer, None).await;
    assert_eq!(s, 403);

    let recs = admin_records(&h).await;
    assert!(has(&recs, "review.list", "ok", &auditor_id));
    assert!(has(&recs, "review.list", "denied", &engineer_id));
    assert!(has(&recs, "review.label", "ok", &approver_id));
    assert!(has(&recs, "review.label", "not_found", &approver_id));
    assert!(has(&recs, "review.label", "denied", &auditor_id));
    assert!(has(&recs, "drift.show", "ok", &auditor_id));
    assert!(has(&recs, "drift.show", "denied", &engineer_id));
}
