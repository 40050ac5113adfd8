//! Prompt and route versions on the admin API (DO-3, DO-4): push a new staging version
//! (prompts: PromptsStage; routes: ModelsWrite), read a history or a diff (prompts:
//! PromptsRead; routes: ModelsRead), record an evaluation (EvalsRecord), promote the staging
//! version and roll production back (PromptsPromote), with the same gates as `tollgate
//! prompts promote` and `tollgate routes promote` (a passed evaluation; four-eyes when
//! configured). Route versions are kept under `route:ALIAS` beside the prompts, so one set of
//! handlers serves both, and push, diff and evaluation run the very steps the CLI runs on the
//! store ([`crate::versioning`]). Every action and refusal is audited; this instance applies
//! the change at once, the others within a second.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tollgate_store::prompt::PromptEnv;

use super::rbac::Permission;
use super::{AppState, authorize, error, parse_body, record, unavailable};
use crate::prompt::{self, Prompt, deployed_version};
use crate::rollout::{RouteSpec, STORE_PREFIX};
use crate::versioning::{self, DiffError, EvalError, Pushed};

/// What is versioned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Prompt,
    Route,
}

impl Kind {
    /// The store name of `id`.
    fn key(self, id: &str) -> String {
        match self {
            Self::Prompt => id.to_owned(),
            Self::Route => format!("{STORE_PREFIX}{id}"),
        }
    }

    /// Audit action prefix.
    fn group(self) -> &'static str {
        match self {
            Self::Prompt => "prompts",
            Self::Route => "routes",
        }
    }

    /// Who may read the history and diffs.
    fn reader(self) -> Permission {
        match self {
            Self::Prompt => Permission::PromptsRead,
            Self::Route => Permission::ModelsRead,
        }
    }

    /// Who may push a new staging version.
    fn writer(self) -> Permission {
        match self {
            Self::Prompt => Permission::PromptsStage,
            Self::Route => Permission::ModelsWrite,
        }
    }
}

/// The routes of this module (merged into the admin router).
pub(super) fn router() -> axum::Router<AppState> {
    [Kind::Prompt, Kind::Route]
        .into_iter()
        .fold(axum::Router::new(), |router, kind| {
            let base = format!("/admin/v1/{}/{{id}}", kind.group());
            router
                .route(&base, get(move |s, h, p| history(s, h, p, kind)))
                .route(
                    &format!("{base}/versions"),
                    post(move |s, h, p, b| push(s, h, p, b, kind)),
                )
                .route(
                    &format!("{base}/diff"),
                    get(move |s, h, p, q| diff(s, h, p, q, kind)),
                )
                .route(
                    &format!("{base}/evals"),
                    post(move |s, h, p, b| record_eval(s, h, p, b, kind)),
                )
                .route(
                    &format!("{base}/promote"),
                    post(move |s, h, p| promote(s, h, p, kind)),
                )
                .route(
                    &format!("{base}/rollback"),
                    post(move |s, h, p, b| rollback(s, h, p, b, kind)),
                )
        })
}

fn no_prompt(kind: Kind, name: &str) -> Response {
    let what = match kind {
        Kind::Prompt => "prompt",
        Kind::Route => "route version of",
    };
    error(
        StatusCode::NOT_FOUND,
        "not_found_error",
        format!("no {what} {name:?}"),
    )
}

async fn history(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    kind: Kind,
) -> Response {
    let action = format!("{}.history", kind.group());
    if let Err(r) = authorize(&gw, &headers, kind.reader(), &action).await {
        return r;
    }
    let key = kind.key(&name);
    let (versions, log) = match tokio::try_join!(
        gw.store.prompts.prompt_versions(&key),
        gw.store.prompts.prompt_deployments(&key)
    ) {
        Ok(x) => x,
        Err(e) => return unavailable(e),
    };
    if versions.is_empty() {
        return no_prompt(kind, &name);
    }
    Json(json!({
        "name": name,
        "staging": deployed_version(&log, PromptEnv::Staging),
        "production": deployed_version(&log, PromptEnv::Production),
        "versions": versions.iter().map(|v| json!({
            "version": v.version, "author": v.author, "created_at": v.created_at.to_rfc3339(),
            "sha256": v.content_hash, "diff": v.diff,
            "targets": (kind == Kind::Route).then(|| serde_json::from_str::<serde_json::Value>(&v.content).ok().map(|c| c["targets"].clone())).flatten(),
            "eval": v.eval.as_ref().map(|e| json!({"passed": e.passed, "at": e.at.to_rfc3339()})),
        })).collect::<Vec<_>>(),
        "deployments": log,
    }))
    .into_response()
}

async fn promote(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    kind: Kind,
) -> Response {
    let action = format!("{}.promote", kind.group());
    let (who, _) = or_respond!(authorize(&gw, &headers, Permission::PromptsPromote, &action).await);
    let key = kind.key(&name);
    let log = match gw.store.prompts.prompt_deployments(&key).await {
        Ok(l) => l,
        Err(e) => return unavailable(e),
    };
    let Some(staged) = deployed_version(&log, PromptEnv::Staging) else {
        return no_prompt(kind, &name);
    };
    let v = match gw.store.prompts.prompt_version(&key, staged).await {
        Ok(Some(v)) => v,
        Ok(None) => return no_prompt(kind, &name),
        Err(e) => return unavailable(e),
    };
    if let Some(why) = prompt::promotion_refusal(&v, &who.id, gw.config.governance.four_eyes) {
        record(
            &gw,
            &action,
            &who.id,
            Some(&name),
            "denied",
            json!({"version": staged, "reason": why}),
        );
        return error(StatusCode::CONFLICT, "invalid_request_error", why);
    }
    let previous = deployed_version(&log, PromptEnv::Production);
    if previous != Some(staged) {
        if let Err(e) = gw
            .store
            .prompts
            .deploy_prompt(&key, PromptEnv::Production, staged, &who.id, "promote")
            .await
        {
            return unavailable(e);
        }
        crate::refresh_prompts(&gw).await;
    }
    record(
        &gw,
        &action,
        &who.id,
        Some(&name),
        "ok",
        json!({"version": staged, "previous": previous, "author": v.author}),
    );
    Json(json!({"name": name, "production": staged, "previous": previous})).into_response()
}

/// Body of `POST /admin/v1/prompts/{id}/rollback` (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RollbackBody {
    /// The version to restore (default: the previous production version).
    to: Option<i64>,
}

async fn rollback(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: axum::body::Bytes,
    kind: Kind,
) -> Response {
    let action = format!("{}.rollback", kind.group());
    let (who, _) = or_respond!(authorize(&gw, &headers, Permission::PromptsPromote, &action).await);
    let key = kind.key(&name);
    let req: RollbackBody = if body.is_empty() {
        RollbackBody::default()
    } else {
        or_respond!(super::parse_body(&body))
    };
    let log = match gw.store.prompts.prompt_deployments(&key).await {
        Ok(l) => l,
        Err(e) => return unavailable(e),
    };
    if log.is_empty() {
        return no_prompt(kind, &name);
    }
    let (now, target) = match prompt::rollback_target(&prompt::subject_of(&key).0, &log, req.to) {
        Ok(x) => x,
        Err(msg) => return error(StatusCode::CONFLICT, "invalid_request_error", msg),
    };
    match gw
        .store
        .prompts
        .deploy_prompt(&key, PromptEnv::Production, target, &who.id, "rollback")
        .await
    {
        Ok(_) => {}
        Err(tollgate_store::StoreError::NoSuchPromptVersion { version, .. }) => {
            return error(
                StatusCode::NOT_FOUND,
                "not_found_error",
                format!("{name} has no version {version}"),
            );
        }
        Err(e) => return unavailable(e),
    }
    crate::refresh_prompts(&gw).await;
    record(
        &gw,
        &action,
        &who.id,
        Some(&name),
        "ok",
        json!({"from": now, "to": target}),
    );
    Json(json!({"name": name, "production": target, "previous": now})).into_response()
}

fn bad(msg: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_request_error", msg)
}

#[expect(
    clippy::result_large_err,
    reason = "the error is the response itself, returned at once by the caller"
)]
/// The canonical content of a pushed body, or every problem with it. The name in the body
/// must be the one in the path, so a URL can never stage one prompt under another's name.
fn content_of(
    gw: &crate::state::Gateway,
    kind: Kind,
    name: &str,
    body: &[u8],
) -> Result<String, Response> {
    if body.len() > prompt::MAX_PROMPT_BYTES {
        return Err(bad(format!(
            "the version is larger than {} bytes",
            prompt::MAX_PROMPT_BYTES
        )));
    }
    let config = &gw.config;
    let (problems, content) = match kind {
        Kind::Prompt => {
            let p: Prompt = parse_body(body)?;
            let mut problems = p.validate();
            if p.name != name {
                problems.push(format!(
                    "name {:?} is not {name:?}, the prompt in the path",
                    p.name
                ));
            }
            if !p.route.is_empty()
                && !config.routes.is_empty()
                && !config.routes.contains_key(&p.route)
            {
                problems.push(format!(
                    "route {:?} is not a route of this gateway's config",
                    p.route
                ));
            }
            (problems, p.canonical())
        }
        Kind::Route => {
            let s: RouteSpec = parse_body(body)?;
            let mut problems = s.validate(&config.routes, &config.providers);
            if s.route != name {
                problems.push(format!(
                    "route {:?} is not {name:?}, the route in the path",
                    s.route
                ));
            }
            (problems, s.canonical())
        }
    };
    if problems.is_empty() {
        Ok(content)
    } else {
        Err(bad(format!("not a valid version: {}", problems.join("; "))))
    }
}

async fn push(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: axum::body::Bytes,
    kind: Kind,
) -> Response {
    let action = format!("{}.push", kind.group());
    let (who, _) = or_respond!(authorize(&gw, &headers, kind.writer(), &action).await);
    let content = or_respond!(content_of(&gw, kind, &name, &body));
    let (pushed, hash) = match versioning::push(
        gw.store.prompts.as_ref(),
        &kind.key(&name),
        &content,
        &who.id,
    )
    .await
    {
        Ok(x) => x,
        Err(e) => return unavailable(e),
    };
    let added = matches!(pushed, Pushed::Added(_));
    if added {
        crate::refresh_prompts(&gw).await;
        record(
            &gw,
            &action,
            &who.id,
            Some(&name),
            "ok",
            json!({"version": pushed.version(), "sha256": hash, "env": "staging"}),
        );
    } else {
        record(
            &gw,
            &action,
            &who.id,
            Some(&name),
            "unchanged",
            json!({"version": pushed.version(), "sha256": hash}),
        );
    }
    (
        if added { StatusCode::CREATED } else { StatusCode::OK },
        Json(json!({"name": name, "version": pushed.version(), "sha256": hash, "changed": added, "env": "staging"})),
    )
        .into_response()
}

/// Query of `GET /admin/v1/{prompts,routes}/{id}/diff`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DiffQuery {
    /// From this version (default: production, else the one before `to`).
    from: Option<i64>,
    /// To this version (default: the latest).
    to: Option<i64>,
}

async fn diff(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    q: Result<Query<DiffQuery>, QueryRejection>,
    kind: Kind,
) -> Response {
    let action = format!("{}.diff", kind.group());
    let (who, _) = or_respond!(authorize(&gw, &headers, kind.reader(), &action).await);
    let Ok(Query(q)) = q else {
        return bad("from and to are version numbers (?from=1&to=2)");
    };
    match versioning::diff(gw.store.prompts.as_ref(), &kind.key(&name), q.from, q.to).await {
        Ok(d) => {
            record(
                &gw,
                &action,
                &who.id,
                Some(&name),
                "ok",
                json!({"from": d.from, "to": d.to}),
            );
            Json(json!({"name": name, "from": d.from, "to": d.to, "diff": d.diff})).into_response()
        }
        Err(DiffError::NoSubject) => no_prompt(kind, &name),
        Err(DiffError::NoVersion(v)) => error(
            StatusCode::NOT_FOUND,
            "not_found_error",
            format!("{name} has no version {v}"),
        ),
        Err(DiffError::Store(e)) => unavailable(e),
    }
}

/// Body of `POST /admin/v1/{prompts,routes}/{id}/evals`: the result of a suite run.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EvalBody {
    /// The version the suite ran against.
    version: i64,
    /// Whether every case passed.
    passed: bool,
    /// The suite's report (`cases`: name, passed, failures, latency).
    report: Value,
}

/// Whether `report` agrees with `passed`: a JSON object whose `cases`, if listed, all passed
/// exactly when the run is said to have passed.
fn report_problem(report: &Value, passed: bool) -> Option<&'static str> {
    if !report.is_object() {
        return Some("report must be a JSON object");
    }
    let cases = report.get("cases")?;
    let Some(cases) = cases.as_array() else {
        return Some("report.cases must be a list");
    };
    let all = cases.iter().all(|c| c["passed"].as_bool() == Some(true));
    (cases.is_empty() && passed)
        .then_some("a run without cases cannot pass")
        .or_else(|| (all != passed).then_some("passed does not agree with report.cases"))
}

async fn record_eval(
    State(gw): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: axum::body::Bytes,
    kind: Kind,
) -> Response {
    let action = format!("{}.test", kind.group());
    let (who, _) = or_respond!(authorize(&gw, &headers, Permission::EvalsRecord, &action).await);
    let req: EvalBody = or_respond!(parse_body(&body));
    if let Some(why) = report_problem(&req.report, req.passed) {
        return bad(why);
    }
    let cases = req.report["cases"].as_array().map_or(0, Vec::len);
    let failed = req.report["cases"].as_array().map_or(0, |c| {
        c.iter().filter(|c| c["passed"] != json!(true)).count()
    });
    let report = req.report.to_string();
    match versioning::record_eval(
        gw.store.prompts.as_ref(),
        &kind.key(&name),
        req.version,
        req.passed,
        &report,
    )
    .await
    {
        Ok(()) => {}
        Err(EvalError::NoVersion(v)) => {
            return error(
                StatusCode::NOT_FOUND,
                "not_found_error",
                format!("{name} has no version {v}"),
            );
        }
        Err(EvalError::TooLarge) => return bad(EvalError::TooLarge.to_string()),
        Err(EvalError::Store(e)) => return unavailable(e),
    }
    record(
        &gw,
        &action,
        &who.id,
        Some(&name),
        if req.passed { "passed" } else { "failed" },
        json!({"version": req.version, "cases": cases, "failed": failed}),
    );
    Json(json!({"name": name, "version": req.version, "passed": req.passed})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_eval_report_must_agree_with_its_verdict() {
        let ok = json!({"cases": [{"passed": true}]});
        let bad_case = json!({"cases": [{"passed": true}, {"passed": false}]});
        assert_eq!(report_problem(&ok, true), None);
        assert_eq!(report_problem(&bad_case, false), None);
        assert!(report_problem(&bad_case, true).is_some());
        assert!(report_problem(&ok, false).is_some());
        assert!(report_problem(&json!({"cases": []}), true).is_some());
        assert!(report_problem(&json!([1]), true).is_some());
        assert!(report_problem(&json!({"cases": 3}), false).is_some());
        assert_eq!(report_problem(&json!({}), false), None);
    }
}
