//! The fine-tuning endpoints (AC-3): only keys bound to the data-steward role reach the
//! provider's `/v1/files` and `/v1/fine_tuning/jobs`; everyone else gets OpenAI's 403, every
//! call and refusal is audited, and uploads over `[datasets] max_upload_bytes` get 413.

use serde_json::Value;

use crate::harness::{Harness, KeyOpts, error_message};

const DATASETS: &str = "[datasets]\nprovider = \"oa\"\nmax_upload_bytes = 2048\n";
const BOUNDARY: &str = "tollgate-test-boundary";

/// A `multipart/form-data` upload body as the OpenAI SDK sends it.
fn upload_body(content: &[u8]) -> Vec<u8> {
    let mut b = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nfine-tune\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"train.jsonl\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    b.extend_from_slice(content);
    b.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    b
}

async fn upload(h: &Harness, key: &str, body: Vec<u8>) -> reqwest::Response {
    h.client
        .post(format!("{}/v1/files", h.url))
        .bearer_auth(key)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn audit_of(h: &Harness, r: &reqwest::Response) -> Value {
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let recs = h.gw.store.audit.records_by_ref(&id).await.unwrap();
    assert_eq!(recs.len(), 1, "one audit record for {id}");
    serde_json::from_str(&recs[0].body).unwrap()
}

fn steward() -> KeyOpts {
    KeyOpts {
        role: Some("data-steward"),
        ..KeyOpts::default()
    }
}

#[tokio::test]
async fn a_data_steward_key_uploads_lists_and_starts_a_job() {
    let h = Harness::start_extra(DATASETS).await;
    let (key, key_id) = h.create_key(steward()).await;
    let line = b"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"assistant\",\"content\":\"hello\"}]}\n";
    let r = upload(&h, &key, upload_body(line)).await;
    assert_eq!(r.status(), 200);
    let rec = audit_of(&h, &r).await;
    assert_eq!(rec["endpoint"], "files.create");
    assert_eq!(rec["key_id"], key_id);
    assert_eq!(rec["status"], 200);
    assert_eq!(rec["provider"], "oa");
    let file: Value = r.json().await.unwrap();
    let file_id = file["id"].as_str().unwrap().to_owned();
    assert_eq!(file["purpose"], "fine-tune");
    // The provider got the file byte for byte, with the provider's credential, not the key.
    let got = h.mock.files();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].bytes, line);
    assert_eq!(got[0].filename, "train.jsonl");

    let list: Value = h
        .client
        .get(format!("{}/v1/files?purpose=fine-tune", h.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"][0]["id"], file_id.as_str());
    let content = h
        .client
        .get(format!("{}/v1/files/{file_id}/content", h.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(content.status(), 200);
    assert_eq!(content.bytes().await.unwrap().as_ref(), line);

    let r = h
        .client
        .post(format!("{}/v1/fine_tuning/jobs", h.url))
        .bearer_auth(&key)
        .json(&serde_json::json!({"model": "gpt-4o-mini-2024-07-18", "training_file": file_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(audit_of(&h, &r).await["endpoint"], "fine_tuning.create");
    let job: Value = r.json().await.unwrap();
    let job_id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(job["status"], "queued");
    assert_eq!(h.mock.jobs()[0].training_file, file_id);
    for (method, path, endpoint) in [
        (
            "GET",
            format!("/v1/fine_tuning/jobs/{job_id}"),
            "fine_tuning.get",
        ),
        (
            "GET",
            format!("/v1/fine_tuning/jobs/{job_id}/events"),
            "fine_tuning.events",
        ),
        ("GET", "/v1/fine_tuning/jobs".to_owned(), "fine_tuning.list"),
        (
            "POST",
            format!("/v1/fine_tuning/jobs/{job_id}/cancel"),
            "fine_tuning.cancel",
        ),
        ("GET", format!("/v1/files/{file_id}"), "files.get"),
        ("DELETE", format!("/v1/files/{file_id}"), "files.delete"),
    ] {
        let r = h
            .client
            .request(method.parse().unwrap(), format!("{}{path}", h.url))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{method} {path}");
        assert_eq!(audit_of(&h, &r).await["endpoint"], endpoint);
    }
    assert_eq!(h.mock.jobs()[0].status, "cancelled");
    assert!(h.mock.files().is_empty());
}

#[tokio::test]
async fn app_keys_and_unbound_keys_get_403_and_the_denial_is_audited() {
    let h = Harness::start_extra(DATASETS).await;
    // The harness key is a plain app key (no role bound).
    let r = upload(&h, &h.key, upload_body(b"{}\n")).await;
    assert_eq!(r.status(), 403);
    let rec = audit_of(&h, &r).await;
    assert_eq!(rec["endpoint"], "files.create");
    assert_eq!(rec["status"], 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "permission_error", "{body}");
    assert!(error_message(&body).contains("data-steward"), "{body}");
    // A key explicitly bound to `app` is refused the same way, on every operation.
    let (app, _) = h
        .create_key(KeyOpts {
            role: Some("app"),
            ..KeyOpts::default()
        })
        .await;
    for (method, path) in [
        ("GET", "/v1/files"),
        ("GET", "/v1/files/file-x/content"),
        ("POST", "/v1/fine_tuning/jobs"),
        ("POST", "/v1/fine_tuning/jobs/ftjob-x/cancel"),
    ] {
        let r = h
            .client
            .request(method.parse().unwrap(), format!("{}{path}", h.url))
            .bearer_auth(&app)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{method} {path}");
        assert_eq!(audit_of(&h, &r).await["status"], 403);
    }
    // Nothing reached the provider.
    assert!(h.mock.files().is_empty() && h.mock.jobs().is_empty());
    // Without a key at all: 401, as everywhere on /v1.
    let r = h
        .client
        .get(format!("{}/v1/files", h.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn an_upload_over_the_cap_gets_413_and_never_reaches_the_provider() {
    let h = Harness::start_extra(DATASETS).await;
    let (key, _) = h.create_key(steward()).await;
    let r = upload(&h, &key, upload_body(&[b'x'; 4096])).await;
    assert_eq!(r.status(), 413);
    assert_eq!(audit_of(&h, &r).await["status"], 413);
    // A chunked body declares no length: it is counted as it streams and cut off.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..8).map(|_| Ok(vec![b'y'; 1024])).collect();
    let r = h
        .client
        .post(format!("{}/v1/files", h.url))
        .bearer_auth(&key)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(h.mock.files().is_empty());
    // Under the cap it goes through.
    let r = upload(&h, &key, upload_body(&[b'z'; 512])).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn without_a_datasets_section_the_endpoints_are_off() {
    let h = Harness::start().await;
    let (key, _) = h.create_key(steward()).await;
    let r = h
        .client
        .get(format!("{}/v1/files", h.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert!(error_message(&body).contains("[datasets]"), "{body}");
    // Ids that could climb out of the upstream path are refused before anything is sent.
    let h = Harness::start_extra(DATASETS).await;
    let (key, _) = h.create_key(steward()).await;
    let r = h
        .client
        .get(format!("{}/v1/files/a.b/content", h.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn keys_of_a_steward_team_are_stewards_unless_bound_to_another_role() {
    // Harness keys belong to team "qa".
    let h = Harness::start_extra(
        "[datasets]\nprovider = \"oa\"\nmax_upload_bytes = 2048\nsteward_teams = [\"qa\"]\n",
    )
    .await;
    let (member, _) = h.create_key(KeyOpts::default()).await;
    let line = b"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}\n";
    let r = upload(&h, &member, upload_body(line)).await;
    assert_eq!(r.status(), 200, "a key of a steward team uploads");
    assert_eq!(h.mock.files().len(), 1);
    // A key's own binding is more specific than its team's.
    let (app, _) = h
        .create_key(KeyOpts {
            role: Some("app"),
            ..KeyOpts::default()
        })
        .await;
    let r = upload(&h, &app, upload_body(line)).await;
    assert_eq!(r.status(), 403);
    assert_eq!(audit_of(&h, &r).await["status"], 403);
    assert_eq!(
        h.mock.files().len(),
        1,
        "the refused upload never reached the provider"
    );
}

#[tokio::test]
async fn an_empty_steward_team_name_is_a_config_error() {
    let cfg = "[datasets]\nprovider = \"oa\"\nsteward_teams = [\"ml\", \" \"]\n";
    let e = tollgate_gateway::config::Config::parse(cfg, std::path::Path::new("t.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("datasets.steward_teams[1]"), "{e}");
}
