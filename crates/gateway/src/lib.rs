//! tollgate's gateway: an OpenAI- and Anthropic-compatible reverse proxy (chat, legacy text
//! completions, messages, embeddings, models) in which every call is authenticated, routed
//! with fallbacks, recorded and measured.
//!
//! How the pieces compose:
//! - [`config::Config`] is `tollgate.toml`, validated as a whole;
//! - [`state::Gateway`] resolves it into [`provider::Provider`]s and [`state::Route`]s and
//!   holds the [`auth::Authenticator`] and [`metrics::Metrics`];
//! - [`pipeline`] holds the handlers, whose stages run in the order written at its top;
//! - [`upstream`] calls targets with retries, fallback and circuit breakers
//!   ([`resilience`]), skipping providers not approved for the request's data class
//!   ([`policy`], DP-4);
//! - [`wire`] translates requests, responses and streams between the OpenAI and Anthropic
//!   formats, reading upstream streams with the bounded [`sse`] parser;
//! - [`credential`] resolves providers' `api_key` references, with the clients of the
//!   secrets managers in [`secrets`] (Vault / OpenBao, AWS Secrets Manager);
//! - [`audit`] writes every call to the hash-chained audit trail before its response ends;
//! - [`datasets`] proxies the fine-tuning file and job endpoints for data-steward keys;
//! - [`budget`] enforces spend limits (DO-2) and [`alert`] raises alerts, with the
//!   [`anomaly`] detector (MI-2);
//! - [`review`] samples masked interactions into the review queue and counts each route's
//!   day; [`drift`] scores those days against a baseline and alerts (MI-4);
//! - [`prompt`] and [`rollout`] serve versioned prompts and routes per environment, and
//!   [`versioning`] pushes, diffs and evaluates their versions for the admin API and the CLI;
//! - [`telemetry`] exports OpenTelemetry traces of every call over OTLP/HTTP (MI-1);
//! - [`router`] wires the handlers to paths and [`serve`] runs them.

pub mod admin;
pub mod alert;
pub mod anomaly;
pub mod audit;
pub mod auth;
pub mod budget;
pub mod config;
pub mod context;
pub mod credential;
pub mod datasets;
pub mod drift;
pub mod error;
pub mod guards;
pub mod killswitch;
pub mod limits;
pub mod metrics;
pub mod pipeline;
pub mod policy;
pub mod prompt;
pub mod provider;
pub mod resilience;
pub mod review;
pub mod rollout;
pub mod rotation;
pub mod secrets;
pub mod sse;
pub mod state;
pub mod telemetry;
pub mod upstream;
pub mod versioning;
pub mod wire;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};

use crate::state::Gateway;

/// How often batched key last-use times are written to the store.
pub const LAST_USED_FLUSH_INTERVAL: Duration = Duration::from_secs(5);
/// How long in-flight requests (long streams included) may take to finish after a shutdown
/// signal before the process exits anyway; orchestrators typically kill at 30 s.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(25);

/// The HTTP router with every endpoint.
pub fn router(gw: Arc<Gateway>) -> Router {
    // Every data-plane call passes the audit layer; health and metrics do not, so that a
    // failing audit store shows in /readyz instead of hiding it.
    let data = Router::new()
        .route("/v1/chat/completions", post(pipeline::chat_completions))
        .route("/v1/completions", post(pipeline::completions))
        .route("/v1/messages", post(pipeline::messages))
        .route("/v1/embeddings", post(pipeline::embeddings))
        .route("/v1/models", get(pipeline::models))
        .merge(datasets::router())
        .fallback(pipeline::fallback)
        .layer(axum::middleware::from_fn_with_state(
            gw.clone(),
            audit::audit_layer,
        ));
    Router::new()
        .route("/healthz", get(pipeline::healthz))
        .route("/readyz", get(pipeline::readyz))
        .route("/metrics", get(pipeline::metrics))
        .merge(admin::router())
        .merge(data)
        .with_state(gw)
}

/// One scheduled rotation run (AC-4): rotate due keys and audit each rotation.
pub async fn run_rotation(gw: &Gateway) {
    let Some(cfg) = &gw.config.rotation else {
        return;
    };
    match rotation::rotate_due(
        &gw.store,
        gw.auth.hasher(),
        &gw.secrets,
        cfg,
        chrono::Utc::now(),
    )
    .await
    {
        Ok(done) => {
            for r in done {
                let mut fields = serde_json::Map::new();
                fields.insert("action".into(), serde_json::json!("keys.rotate"));
                fields.insert("actor".into(), serde_json::json!("rotation-scheduler"));
                fields.insert("target".into(), serde_json::json!(r.old_id));
                fields.insert(
                    "outcome".into(),
                    serde_json::json!(if r.delivery_error.is_some() {
                        "delivery_failed"
                    } else {
                        "ok"
                    }),
                );
                fields.insert("details".into(), serde_json::json!(r));
                gw.audit.record(audit::Draft {
                    request_id: format!("act_{}", uuid::Uuid::now_v7().simple()),
                    time: chrono::Utc::now(),
                    key_id: None,
                    team: None,
                    fields,
                    payloads: Vec::new(),
                    response_payload: None,
                });
            }
        }
        Err(e) => tracing::error!(target: "tollgate::alert", error = %e, "key rotation run failed"),
    }
}

/// Reload the kill switches from the store; on failure keep the last snapshot (and say so).
pub async fn refresh_switches(gw: &Gateway) {
    match gw.store.control.switches().await {
        Ok(list) => {
            gw.switches.load(&list);
            // A suspension lifted in the store (`tollgate unkill key`) is lifted here too.
            gw.limiter.reconcile(|key| gw.switches.key_off(key));
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read kill switches; keeping the last known set")
        }
    }
}

/// Reload the deployed prompt and route versions from the store; on failure keep the last
/// snapshot.
pub async fn refresh_prompts(gw: &Gateway) {
    match gw.store.prompts.deployed_prompts().await {
        Ok(list) => {
            gw.prompts.load(&list);
            gw.route_versions.load(gw, &list);
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read deployed prompts; keeping the last known set")
        }
    }
}

/// Serve on `listener` until `shutdown` resolves, then drain in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    gw: Arc<Gateway>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Trace export (MI-1), off the request path; a no-op without [telemetry].
    gw.tracer.start();
    if let Some(endpoint) = gw.tracer.endpoint() {
        tracing::info!(endpoint, "exporting OpenTelemetry traces over OTLP/HTTP");
    }
    let flusher = {
        let gw = gw.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(LAST_USED_FLUSH_INTERVAL);
            loop {
                tick.tick().await;
                gw.auth.flush_last_used().await;
            }
        })
    };
    // Shared limits: ask Redis once before serving, so an unreachable one raises its alert
    // (and shows in /readyz) at start-up rather than on the first request.
    if let limits::Readiness::Unavailable(why) | limits::Readiness::Degraded(why) =
        gw.rate_limiter.readiness().await
    {
        tracing::warn!(reason = %why, "starting with shared rate limits unavailable");
    }
    // Kill switches: loaded before the first request, then kept fresh so that one flipped on
    // any instance takes effect here within a second.
    refresh_switches(&gw).await;
    refresh_prompts(&gw).await;
    let switches = {
        let gw = gw.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(killswitch::REFRESH_INTERVAL);
            loop {
                tick.tick().await;
                refresh_switches(&gw).await;
                // Prompt promotions and rollbacks reach every instance on the same beat.
                refresh_prompts(&gw).await;
            }
        })
    };
    let rotation = gw.config.rotation.as_ref().map(|cfg| {
        let gw = gw.clone();
        let every = cfg.interval();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                run_rotation(&gw).await;
            }
        })
    });
    let retention = gw.config.retention.any().then(|| {
        let gw = gw.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(gw.config.retention.interval());
            loop {
                tick.tick().await;
                audit::run_retention(&gw).await;
            }
        })
    });
    // The review sample and route statistics (MI-4) reach the store off the request path.
    let reviews = {
        let gw = gw.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(review::FLUSH_INTERVAL);
            loop {
                tick.tick().await;
                gw.reviews.flush().await;
            }
        })
    };
    let drift_check = gw.config.review.drift.enabled.then(|| {
        let gw = gw.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(gw.config.review.drift.interval());
            loop {
                tick.tick().await;
                drift::check(&gw, gw.alerts.now()).await;
            }
        })
    });
    let app = router(gw.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    flusher.abort();
    switches.abort();
    if let Some(r) = rotation {
        r.abort();
    }
    if let Some(r) = retention {
        r.abort();
    }
    reviews.abort();
    if let Some(d) = drift_check {
        d.abort();
    }
    gw.auth.flush_last_used().await;
    gw.reviews.flush().await;
    gw.audit.shutdown().await;
    // Spans of the drained requests: flushed, but never holding the exit for long.
    gw.tracer.shutdown(telemetry::SHUTDOWN_FLUSH_TIMEOUT).await;
    result
}
