//! The mock's fine-tuning endpoints: OpenAI's `/v1/files` and `/v1/fine_tuning/jobs`, kept in
//! memory, with the response shapes the official SDKs parse.
//!
//! Uploads are `multipart/form-data` with a `purpose` field and a `file` part, as
//! `client.files.create` sends them; the mock parses them itself (a few lines, for tests) and
//! answers 400 when either is missing, so a gateway that mangles the body fails the test.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::MOCK_KEY;

/// One uploaded file as the mock holds it.
#[derive(Debug, Clone)]
pub struct MockFile {
    /// `file-…` id.
    pub id: String,
    /// The file name given in the upload.
    pub filename: String,
    /// The `purpose` field.
    pub purpose: String,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

/// One fine-tuning job.
#[derive(Debug, Clone)]
pub struct MockJob {
    /// `ftjob-…` id.
    pub id: String,
    /// Base model.
    pub model: String,
    /// Training file id.
    pub training_file: String,
    /// `queued` or `cancelled`.
    pub status: String,
}

/// In-memory files and jobs.
#[derive(Debug, Default)]
pub(crate) struct Datasets {
    pub(crate) files: Mutex<Vec<MockFile>>,
    pub(crate) jobs: Mutex<Vec<MockJob>>,
}

type St = Arc<Datasets>;

/// The routes (with their state applied).
pub(crate) fn router(state: St) -> Router {
    Router::new()
        .route("/v1/files", get(list_files).post(create_file))
        .route("/v1/files/{id}", get(get_file).delete(delete_file))
        .route("/v1/files/{id}/content", get(file_content))
        .route("/v1/fine_tuning/jobs", get(list_jobs).post(create_job))
        .route("/v1/fine_tuning/jobs/{id}", get(get_job))
        .route("/v1/fine_tuning/jobs/{id}/cancel", post(cancel_job))
        .route("/v1/fine_tuning/jobs/{id}/events", get(job_events))
        .with_state(state)
}

fn err(status: StatusCode, msg: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"message": msg, "type": "invalid_request_error", "param": null, "code": null}})),
    )
        .into_response()
}

#[expect(clippy::result_large_err, reason = "the error is the response")]
fn authorized(h: &HeaderMap) -> Result<(), Response> {
    let ok = h
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        == Some(MOCK_KEY);
    if ok {
        Ok(())
    } else {
        Err(err(StatusCode::UNAUTHORIZED, "invalid upstream credential"))
    }
}

fn file_json(f: &MockFile) -> Value {
    json!({
        "id": f.id, "object": "file", "bytes": f.bytes.len(), "created_at": 1_700_000_000,
        "filename": f.filename, "purpose": f.purpose, "status": "processed",
    })
}

fn job_json(j: &MockJob) -> Value {
    json!({
        "id": j.id, "object": "fine_tuning.job", "created_at": 1_700_000_000,
        "model": j.model, "training_file": j.training_file, "validation_file": null,
        "status": j.status, "fine_tuned_model": null, "finished_at": null,
        "organization_id": "org-mock", "result_files": [], "trained_tokens": null,
        "hyperparameters": {"n_epochs": "auto"}, "error": null, "seed": 42,
    })
}

fn next_id(prefix: &str, n: usize) -> String {
    format!("{prefix}-mock{n:06}")
}

/// One part of a multipart body: (name, filename, bytes).
type Part = (String, Option<String>, Vec<u8>);

/// The parts of a multipart body.
fn multipart(content_type: &str, body: &[u8]) -> Option<Vec<Part>> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))?
        .trim_matches('"');
    let delim = format!("--{boundary}").into_bytes();
    let mut parts = Vec::new();
    let mut rest = body;
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let start = find(rest, &delim)?;
    rest = &rest[start + delim.len()..];
    loop {
        if rest.starts_with(b"--") {
            return Some(parts);
        }
        rest = rest.strip_prefix(b"\r\n")?;
        let head_end = find(rest, b"\r\n\r\n")?;
        // Only the Content-Disposition line names the part (and its file).
        let head = String::from_utf8_lossy(&rest[..head_end])
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
            .unwrap_or_default()
            .to_owned();
        rest = &rest[head_end + 4..];
        let end = find(rest, &delim)?;
        let content = rest[..end].strip_suffix(b"\r\n")?.to_vec();
        rest = &rest[end + delim.len()..];
        let attr = |key: &str| {
            head.split(';')
                .map(str::trim)
                .find_map(|p| p.strip_prefix(&format!("{key}=")))
                .map(|v| v.trim_matches('"').to_owned())
        };
        parts.push((attr("name")?, attr("filename"), content));
    }
}

async fn create_file(State(s): State<St>, h: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = authorized(&h) {
        return r;
    }
    let ct = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(parts) = multipart(ct, &body) else {
        return err(
            StatusCode::BAD_REQUEST,
            "expected a multipart/form-data body",
        );
    };
    let purpose = parts
        .iter()
        .find(|p| p.0 == "purpose")
        .map(|p| String::from_utf8_lossy(&p.2).to_string());
    let file = parts.iter().find(|p| p.0 == "file");
    let (Some(purpose), Some(file)) = (purpose, file) else {
        return err(StatusCode::BAD_REQUEST, "purpose and file are required");
    };
    let mut files = s.files.lock();
    let f = MockFile {
        id: next_id("file", files.len() + 1),
        filename: file.1.clone().unwrap_or_else(|| "upload".into()),
        purpose,
        bytes: file.2.clone(),
    };
    files.push(f.clone());
    axum::Json(file_json(&f)).into_response()
}

async fn list_files(State(s): State<St>, h: HeaderMap) -> Response {
    if let Err(r) = authorized(&h) {
        return r;
    }
    let data: Vec<Value> = s.files.lock().iter().map(file_json).collect();
    axum::Json(json!({"object": "list", "data": data, "has_more": false})).into_response()
}

async fn get_file(State(s): State<St>, h: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = authorized(&h) {
        return r;
    }
    match s.files.lock().iter().find(|f| f.id == id) {
        Some(f) => axum::Json(file_json(f)).into_response(),
        None => err(StatusCode::NOT_FOUND, "no such file"),
    }
}

async fn delete_file(State(s): State<St>, h: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = authorized(&h) {
        return r;
    }
    let mut files = s.files.lock();
    let before = files.len();
    files.retain(|f| f.id != id);
    if files.len() == before {
        return err(StatusCode::NOT_FOUND, "no such file");
    }
    axum::Json(json!({"id": id, "object": "file", "deleted": true})).into_response()
}

async fn file_content(State(s): State<St>, h: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = authorized(&h) {
        return r;
    }
    match s.files.lock().iter().find(|f| f.id == id) {
        Some(f) => (
            [(header::CONTENT_TYPE, "application/octet-stream")],
            f.bytes.clone(),
        )
            .into_response(),
        None => err(StatusCode::NOT_FOUND, "no such file"),
    }
}

async fn create_job(State(s): State<St>, h: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = authorized(&h) {
        return r;
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return err(StatusCode::BAD_REQUEST, "body is not JSON");
    };
    let (Some(model), Some(file)) = (
        v.get("model").and_then(Value::as_str),
        v.get("training_file").and_then(Value::as_str),
    ) else {
        return err(
            StatusCode::BAD_REQUEST,
            "model and training_file are required",
        );
    };
    if !s.files.lock().iter().any(|f| f.id == file) {
        return err(StatusCode::BAD_REQUEST, "training_file does not exist");
    }
    let mut jobs = s.jobs.lock();
    let j = MockJob {
        id: next_id("ftjob", jobs.len() + 1),
        model: model.to_owned(),
        training_file: file.to_owned(),
        status: "queued".into(),
    };
    jobs.push(j.clone());
    axum::Json(job_json(&j)).into_response()
}

async fn list_jobs(State(s): State<St>, h: HeaderMap) -> Response {
    if let Err(r) = authorized(&h) {
        return r;
    }
    let data: Vec<Value> = s.jobs.lock().iter().map(job_json).collect();
    axum::Json(json!({"object": "list", "data": data, "has_more": false})).into_response()
}

async fn get_job(State(s): State<St>, h: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = authorized(&h) {
        return r;
    }
    match s.jobs.lock().iter().find(|j| j.id == id) {
        Some(j) => axum::Json(job_json(j)).into_response(),
        None => err(StatusCode::NOT_FOUND, "no such job"),
    }
}

async fn cancel_job(State(s): State<St>, h: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = authorized(&h) {
        return r;
    }
    let mut jobs = s.jobs.lock();
    match jobs.iter_mut().find(|j| j.id == id) {
        Some(j) => {
            j.status = "cancelled".into();
            axum::Json(job_json(j)).into_response()
        }
        None => err(StatusCode::NOT_FOUND, "no such job"),
    }
}

async fn job_events(State(s): State<St>, h: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = authorized(&h) {
        return r;
    }
    if !s.jobs.lock().iter().any(|j| j.id == id) {
        return err(StatusCode::NOT_FOUND, "no such job");
    }
    axum::Json(json!({"object": "list", "has_more": false, "data": [
        {"id": "ftevent-mock1", "object": "fine_tuning.job.event", "created_at": 1_700_000_000,
         "level": "info", "message": "Job queued", "data": {}, "type": "message"}
    ]}))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_bodies_parse() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nfine-tune\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"t.jsonl\"\r\nContent-Type: application/jsonl\r\n\r\n{\"a\":1}\n\r\n--XyZ--\r\n";
        let parts = multipart("multipart/form-data; boundary=XyZ", body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].0, "purpose");
        assert_eq!(parts[0].2, b"fine-tune");
        assert_eq!(parts[1].1.as_deref(), Some("t.jsonl"));
        assert_eq!(parts[1].2, b"{\"a\":1}\n");
        assert!(multipart("multipart/form-data; boundary=Q", body).is_none());
    }
}
