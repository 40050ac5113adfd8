//! Provider policy (DP-4): a request goes only to providers whose current review lists its
//! data class (the more sensitive of its key's and its route's). Other targets are skipped
//! before anything is sent; with none left the request is refused with 403, in the caller's
//! error shape, naming each provider and why.

use serde_json::Value;
use tollgate_store::class::DataClass;

use crate::harness::{Harness, KeyOpts, anthropic_user, error_message, user};

/// Providers with different reviews, and routes over them; `policy` is a `[policy]` body.
fn extra(policy: &str) -> String {
    let review = |classes: &str, on: &str, expires: &str| {
        format!(
            "reviewed_by = \"security-team@example.com\"\nreviewed_on = {on}\nexpires = {expires}\nretention_days = 30\nzero_data_retention = false\ntrains_on_customer_data = false\nregions = [\"us\"]\ndpa_signed = true\ndata_classes = {classes}\n"
        )
    };
    let today = chrono::Utc::now().date_naive();
    let on = (today - chrono::Duration::days(10)).to_string();
    let exp = (today + chrono::Duration::days(200)).to_string();
    let provider = |name: &str, review: Option<String>| {
        let mut s = format!(
            "[providers.{name}]\nkind = \"openai\"\nbase_url = \"{{OPENAI}}\"\napi_key = \"file://{{CRED}}\"\nmax_retries = 0\n"
        );
        if let Some(r) = review {
            s.push_str(&format!("[providers.{name}.review]\n{r}"));
        }
        s
    };
    [
        provider(
            "internal_only",
            Some(review("[\"public\", \"internal\"]", &on, &exp)),
        ),
        provider(
            "pii_ok",
            Some(review("[\"internal\", \"confidential\", \"pii\"]", &on, &exp)),
        ),
        provider(
            "stale",
            Some(review(
                "[\"public\", \"internal\", \"confidential\", \"pii\", \"phi\"]",
                "2023-01-01",
                "2024-01-01",
            )),
        ),
        provider("unreviewed", None),
        r#"
[routes.pii-direct]
targets = [{ provider = "internal_only", model = "pol-internal" }]
data_class = "pii"
[routes.pii-fallback]
targets = [{ provider = "internal_only", model = "pol-skip" }, { provider = "pii_ok", model = "pol-pii" }]
data_class = "pii"
[routes.plain]
targets = [{ provider = "internal_only", model = "pol-plain" }]
[routes.stale]
targets = [{ provider = "stale", model = "pol-stale" }]
[routes.unreviewed]
targets = [{ provider = "unreviewed", model = "pol-unrev" }, { provider = "stale", model = "pol-stale" }]
[routes.phi-echo]
targets = [{ provider = "echo", model = "echo" }]
data_class = "phi"
"#
        .to_owned(),
        format!("[policy]\n{policy}\n"),
    ]
    .join("\n")
}

/// The audit record of request `id` (its JSON body).
async fn record(h: &Harness, id: &str) -> Value {
    let recs = h.gw.store.audit.records_by_ref(id).await.unwrap();
    assert_eq!(recs.len(), 1, "one record for {id}");
    serde_json::from_str(&recs[0].body).unwrap()
}

async fn post_as(h: &Harness, key: &str, path: &str, body: &Value) -> reqwest::Response {
    h.client
        .post(format!("{}{path}", h.url))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
}

fn request_id(r: &reqwest::Response) -> String {
    r.headers()["x-request-id"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_pii_route_to_a_provider_approved_for_internal_is_refused_and_nothing_is_sent() {
    let h = Harness::start_extra(&extra("")).await;
    let r = h
        .post("/v1/chat/completions", &user("pii-direct", "hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let id = request_id(&r);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        error_message(&v),
        "request refused by provider policy (DP-4): provider \"internal_only\" is not approved for data class \"pii\" (approved: public, internal)"
    );
    assert_eq!(v["error"]["type"], "permission_error");
    assert_eq!(v["error"]["code"], "provider_not_approved");
    // Streaming and the Anthropic format are refused the same way, in their own shape.
    let mut body = user("pii-direct", "hello");
    body["stream"] = true.into();
    let (s, _) = h.json("/v1/chat/completions", &body).await;
    assert_eq!(s, 403);
    let r = h.messages(&anthropic_user("pii-direct", "hello")).await;
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "permission_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not approved for data class \"pii\"")
    );
    assert!(
        h.mock.requests().is_empty(),
        "the provider received nothing"
    );
    // The audit record names the class and no provider: nothing went anywhere.
    let rec = record(&h, &id).await;
    assert_eq!(rec["data_class"], "pii");
    assert_eq!(rec["status"], 403);
    assert_eq!(rec["error_class"], "policy");
    assert_eq!(rec["provider"], Value::Null);
}

#[tokio::test]
async fn a_pii_key_raises_the_class_of_an_internal_route_and_never_lowers_one() {
    let h = Harness::start_extra(&extra("")).await;
    let (pii_key, _) = h
        .create_key(KeyOpts {
            data_class: Some(DataClass::Pii),
            ..KeyOpts::default()
        })
        .await;
    let r = post_as(&h, &pii_key, "/v1/chat/completions", &user("plain", "hi")).await;
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert!(
        error_message(&v).contains("\"internal_only\" is not approved for data class \"pii\""),
        "{v}"
    );
    // Embeddings are data too.
    let r = post_as(
        &h,
        &pii_key,
        "/v1/embeddings",
        &serde_json::json!({"model": "embed", "input": "x"}),
    )
    .await;
    assert_eq!(r.status(), 403);
    assert_eq!(h.mock.requests().len(), 0);
    // A key without a class uses the route's (internal by default): served.
    let r = h
        .post("/v1/chat/completions", &user("plain", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rec = record(&h, &request_id(&r)).await;
    assert_eq!(rec["data_class"], "internal");
    // A public key on a pii route is still pii.
    let (public_key, _) = h
        .create_key(KeyOpts {
            data_class: Some(DataClass::Public),
            ..KeyOpts::default()
        })
        .await;
    let r = post_as(
        &h,
        &public_key,
        "/v1/chat/completions",
        &user("pii-direct", "hi"),
    )
    .await;
    assert_eq!(r.status(), 403);
    assert_eq!(h.mock.count("pol-internal"), 0);
}

#[tokio::test]
async fn fallback_skips_an_unapproved_first_target_and_uses_an_approved_second() {
    let h = Harness::start_extra(&extra("")).await;
    let r = h
        .post("/v1/chat/completions", &user("pii-fallback", "hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = request_id(&r);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "mock:openai:hello");
    assert_eq!(
        h.mock.count("pol-skip"),
        0,
        "the unapproved target got nothing"
    );
    assert_eq!(h.mock.count("pol-pii"), 1);
    let rec = record(&h, &id).await;
    assert_eq!(rec["data_class"], "pii");
    assert_eq!(rec["provider"], "pii_ok");
    assert_eq!(rec["attempts"], 1, "a skipped target is not an attempt");
}

#[tokio::test]
async fn an_expired_review_is_refused() {
    let h = Harness::start_extra(&extra("")).await;
    let (s, v) = h
        .json("/v1/chat/completions", &user("stale", "hello"))
        .await;
    assert_eq!(s, 403);
    assert_eq!(
        error_message(&v),
        "request refused by provider policy (DP-4): the review of provider \"stale\" expired on 2024-01-01, so it may receive no data until it is reviewed again"
    );
    assert_eq!(h.mock.count("pol-stale"), 0);
}

#[tokio::test]
async fn an_expired_review_is_served_with_expired_review_warn() {
    let h = Harness::start_extra(&extra("expired_review = \"warn\"")).await;
    let (s, v) = h
        .json("/v1/chat/completions", &user("stale", "hello"))
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(h.mock.count("pol-stale"), 1);
    // Warn mode does not widen what the review approves, nor admit the unreviewed.
    let (s, _) = h
        .json("/v1/chat/completions", &user("pii-direct", "hello"))
        .await;
    assert_eq!(s, 403);
}

#[tokio::test]
async fn an_unreviewed_provider_is_refused_and_every_reason_is_named() {
    let h = Harness::start_extra(&extra("")).await;
    let (s, v) = h
        .json("/v1/chat/completions", &user("unreviewed", "hello"))
        .await;
    assert_eq!(s, 403);
    let msg = error_message(&v);
    assert!(
        msg.contains("provider \"unreviewed\" has not been reviewed")
            && msg.contains("[providers.unreviewed.review]")
            && msg.contains("the review of provider \"stale\" expired"),
        "{msg}"
    );
    assert!(h.mock.requests().is_empty());
}

#[tokio::test]
async fn the_echo_provider_needs_no_review() {
    let h = Harness::start_extra(&extra("default_data_class = \"phi\"")).await;
    let (phi_key, _) = h
        .create_key(KeyOpts {
            data_class: Some(DataClass::Phi),
            ..KeyOpts::default()
        })
        .await;
    let r = post_as(
        &h,
        &phi_key,
        "/v1/chat/completions",
        &user("phi-echo", "hello"),
    )
    .await;
    assert_eq!(r.status(), 200);
    let rec = record(&h, &request_id(&r)).await;
    assert_eq!(rec["data_class"], "phi");
    // The default class applies to routes without one: `gpt`'s provider stops at
    // confidential, so with default_data_class = "phi" it is refused.
    let (s, _) = h.json("/v1/chat/completions", &user("gpt", "hello")).await;
    assert_eq!(s, 403);
}
