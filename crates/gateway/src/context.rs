//! Per-request context: what the pipeline learned about one call, and the single place where
//! it becomes a structured log line and metrics (first part of checklist MI-1).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use tokio::time::Instant;
use tollgate_store::audit::PayloadKind;

use crate::audit::Draft;

use crate::metrics::{ErrorLabels, GuardLabels, RequestLabels, RouteLabels, TokenLabels};
use crate::state::Gateway;
use crate::wire::{Usage, WireFormat};

/// Everything recorded about one request.
#[derive(Debug)]
pub struct RequestContext {
    /// Request id (also returned as `x-request-id`).
    pub id: String,
    /// When the request arrived.
    pub started: Instant,
    /// Endpoint label.
    pub endpoint: &'static str,
    /// Client wire format.
    pub format: WireFormat,
    /// Authenticated key id.
    pub key_id: Option<String>,
    /// Team of the key.
    pub team: Option<String>,
    /// Model alias.
    pub route: Option<String>,
    /// `provider/model` that answered (or was last tried).
    pub target: Option<String>,
    /// HTTP status sent.
    pub status: u16,
    /// Time to upstream response headers of the successful attempt.
    pub upstream_ms: Option<f64>,
    /// Tokens.
    pub usage: Option<Usage>,
    /// Error class, if the request failed.
    pub error_class: Option<&'static str>,
    /// Error message (never holds secrets or prompt text).
    pub error: Option<String>,
    /// Upstream attempts made.
    pub attempts: u32,
    /// Whether the response was streamed.
    pub stream: bool,
    /// Prompt text, only when `logging.log_payloads` is on.
    pub prompt: Option<String>,
    /// Completion text, only when `logging.log_payloads` is on.
    pub completion: Option<String>,
    /// What the input guards found (counts by type, never values).
    pub guards: crate::guards::InputReport,
    /// The guard that blocked the request, if one did.
    pub blocked_by: Option<&'static str>,
    /// What the scoring guards found.
    pub checks: crate::guards::checks::CheckReport,
    /// Environment of the key (`live` / `test`).
    pub environment: Option<&'static str>,
    /// SHA-256 of the request body as sent upstream (last attempt).
    pub request_digest: Option<[u8; 32]>,
    /// Payloads the route stores beside the audit record.
    pub payloads: Vec<(PayloadKind, Vec<u8>)>,
    /// Class under which the response is stored, if the route stores it.
    pub response_payload: Option<PayloadKind>,
    /// Wall-clock arrival time, for the audit record.
    pub arrived: DateTime<Utc>,
    /// The request's hold on the limiter (token reservation, concurrency slots), settled on
    /// finish and released when the context is dropped.
    pub admission: Option<crate::limits::Admission>,
    /// The rate admission left by the limits stage to the budgets stage, to be made in the
    /// same round trip as the budget reservation (shared limits and budgets in Redis): the
    /// subjects and the tokens to reserve.
    pub deferred_admission: Option<(Vec<crate::limits::Subject>, u64)>,
    /// Cost in USD from the price table, once usage is known.
    pub cost_usd: Option<f64>,
    /// Effective data class: the more sensitive of the key's and the route's (DP-4).
    pub data_class: Option<crate::config::DataClass>,
    /// Why targets were skipped by provider policy (DP-4), in target order.
    pub policy_skips: Vec<String>,
    /// The request's reservation in the budgets that apply to it (DO-2), settled with the
    /// actual cost on finish.
    pub budget: Option<crate::budget::BudgetHold>,
    /// The prompt and version rendered into the request (`NAME@vN`), if it named one.
    pub prompt_ref: Option<String>,
    /// The route version that served the request (`ALIAS@vN`), if one is deployed for the
    /// key's environment (None: the config's targets).
    pub route_ref: Option<String>,
    /// The answer's text, bounded to the review window, once the request is answered: the
    /// refusal detector reads it and, if sampled, the review queue keeps it (MI-4).
    pub answer: Option<String>,
    /// The prompt as sent upstream, bounded, when the request was sampled for review.
    pub review_prompt: Option<String>,
    /// The request's `max_tokens` (or `max_completion_tokens`), when it set one.
    pub max_tokens: Option<u64>,
    /// The request's trace (MI-1): None when tracing is off. Boxed: most of it is only
    /// read when the request finishes.
    pub trace: Option<Box<crate::telemetry::RequestTrace>>,
}

impl RequestContext {
    /// A fresh context.
    pub fn new(endpoint: &'static str, format: WireFormat) -> Self {
        Self {
            id: format!("req_{}", uuid::Uuid::now_v7().simple()),
            started: Instant::now(),
            endpoint,
            format,
            key_id: None,
            team: None,
            route: None,
            target: None,
            status: 200,
            upstream_ms: None,
            usage: None,
            error_class: None,
            error: None,
            attempts: 0,
            stream: false,
            prompt: None,
            completion: None,
            guards: crate::guards::InputReport::default(),
            blocked_by: None,
            checks: crate::guards::checks::CheckReport::default(),
            environment: None,
            request_digest: None,
            payloads: Vec::new(),
            response_payload: None,
            arrived: Utc::now(),
            admission: None,
            deferred_admission: None,
            cost_usd: None,
            data_class: None,
            policy_skips: Vec::new(),
            budget: None,
            prompt_ref: None,
            route_ref: None,
            answer: None,
            review_prompt: None,
            max_tokens: None,
            trace: crate::audit::take_trace().map(Box::new),
        }
    }

    /// The audit record of this request (DP-2): who, what, where it went, what the guards
    /// found (types, counts and scores, never values) and digests, never prompt text.
    fn draft(&self, latency_ms: f64) -> Draft {
        let (provider, model) = match self.target.as_deref().and_then(|t| t.split_once('/')) {
            Some((p, m)) => (Some(p), Some(m)),
            None => (None, None),
        };
        let mut guards = Map::new();
        if !self.guards.pii.is_empty() {
            guards.insert("pii".into(), json!(self.guards.pii));
        }
        if !self.guards.secrets.is_empty() {
            guards.insert("secrets".into(), json!(self.guards.secrets));
        }
        if let Some((score, rules)) = &self.checks.injection {
            guards.insert(
                "injection".into(),
                json!({"score": (f64::from(*score) * 1000.0).round() / 1000.0, "rules": rules}),
            );
        }
        if !self.checks.content.is_empty() {
            guards.insert("content".into(), json!(self.checks.content));
        }
        if !self.checks.output.is_empty() {
            guards.insert("output".into(), json!(self.checks.output));
        }
        if let Some(b) = self.blocked_by {
            guards.insert("blocked_by".into(), json!(b));
        }
        let mut f = Map::new();
        f.insert("endpoint".into(), json!(self.endpoint));
        f.insert("format".into(), json!(self.format.as_str()));
        f.insert("environment".into(), json!(self.environment));
        f.insert("route".into(), json!(self.route));
        f.insert("data_class".into(), json!(self.data_class));
        f.insert("provider".into(), json!(provider));
        f.insert("model".into(), json!(model));
        f.insert("status".into(), json!(self.status));
        f.insert("stream".into(), json!(self.stream));
        f.insert(
            "latency_ms".into(),
            json!((latency_ms * 1000.0).round() / 1000.0),
        );
        f.insert(
            "upstream_ms".into(),
            json!(self.upstream_ms.map(|m| (m * 1000.0).round() / 1000.0)),
        );
        f.insert("attempts".into(), json!(self.attempts));
        f.insert("tokens_in".into(), json!(self.usage.map(|u| u.input)));
        f.insert("tokens_out".into(), json!(self.usage.map(|u| u.output)));
        f.insert(
            "cost_usd".into(),
            json!(self.cost_usd.map(|c| (c * 1e8).round() / 1e8)),
        );
        f.insert("error_class".into(), json!(self.error_class));
        if let Some(p) = &self.prompt_ref {
            f.insert("prompt".into(), json!(p));
        }
        if let Some(r) = &self.route_ref {
            f.insert("route_version".into(), json!(r));
        }
        f.insert("guards".into(), Value::Object(guards));
        f.insert(
            "request_sha256".into(),
            json!(self.request_digest.map(hex::encode)),
        );
        Draft {
            request_id: self.id.clone(),
            time: self.arrived,
            key_id: self.key_id.clone(),
            team: self.team.clone(),
            fields: f,
            payloads: Vec::new(),
            response_payload: self.response_payload,
        }
    }

    /// Record a failure.
    pub fn fail(&mut self, err: &crate::error::GatewayError) {
        self.status = err.status().as_u16();
        self.error_class = Some(err.class());
        self.error = Some(err.message.clone());
    }

    /// Emit the log line and metrics, and hand the audit record to the audit layer, which
    /// adds the response digest and returns the response once the record is durable.
    /// Called exactly once per request.
    pub fn finish(mut self, gw: &Arc<Gateway>) {
        self.settle(gw);
        let draft = self.take_draft();
        self.log(gw);
        crate::audit::deposit(&gw.audit, draft);
    }

    /// Like [`Self::finish`] for a streamed response whose bytes (`response`) have all been
    /// produced except what the caller holds back until the returned ticket resolves.
    pub fn finish_stream(
        mut self,
        gw: &Arc<Gateway>,
        digest: [u8; 32],
        kept: Option<Vec<u8>>,
    ) -> crate::audit::Ticket {
        self.settle(gw);
        let mut draft = self.take_draft();
        draft.set_response_digest(digest, kept);
        self.log(gw);
        gw.audit.submit(draft)
    }

    /// Like [`Self::finish`] for a pass-through response of any size ([`crate::datasets`]),
    /// which the audit layer must not buffer to digest: the record is submitted now, without
    /// a response digest, and the caller waits on the ticket before answering.
    pub fn finish_unbuffered(mut self, gw: &Arc<Gateway>) -> crate::audit::Ticket {
        self.settle(gw);
        let draft = self.take_draft();
        self.log(gw);
        gw.audit.submit(draft)
    }

    /// Settle the token reservation and price the call from its usage.
    fn settle(&mut self, gw: &Gateway) {
        let used = self.usage.map(|u| u.input + u.output);
        // With both held in Redis, the rate settlement travels with the budget's: one round
        // trip (crate::budget::shared::SETTLE_BOTH_SCRIPT).
        let mut rate = None;
        if let Some(a) = self.admission.as_mut() {
            if self.budget.as_ref().is_some_and(|b| b.in_redis()) {
                rate = a.take_shared_settlement(used.unwrap_or(0));
            }
            a.settle(used.unwrap_or(0));
        }
        if let (Some(u), Some(model)) = (
            self.usage,
            self.target
                .as_deref()
                .and_then(|t| t.split_once('/'))
                .map(|(_, m)| m),
        ) {
            self.cost_usd = gw.prices.cost(model, u.input, 0, u.output);
        }
        if let Some(hold) = self.budget.take() {
            hold.settle_with(self.cost_usd, rate);
        } else if let Some(rate) = rate {
            rate.send();
        }
        gw.alerts.observe(&crate::alert::Observation {
            key_id: self.key_id.as_deref(),
            team: self.team.as_deref(),
            model: self.route.as_deref(),
            ip: crate::audit::client_ip(),
            tokens: used.unwrap_or(0),
            cost_usd: self.cost_usd,
            error: self.error_class.is_some_and(|c| c != "auth"),
            blocked: self.blocked_by.is_some(),
            auth_failed: self.error_class == Some("auth"),
        });
        self.review(gw);
    }

    /// The review step: add the request to its route's day and, if it was sampled and
    /// answered, hand prompt and answer to the review queue (masked there, off this path).
    fn review(&mut self, gw: &Gateway) {
        let Some(route) = self.route.as_deref() else {
            return;
        };
        if !gw.routes.contains_key(route) {
            return;
        }
        // An answer counts only if it reached the client whole.
        if self.error_class.is_some() || self.blocked_by.is_some() {
            self.answer = None;
        }
        gw.reviews.observe(&crate::review::Finished {
            route,
            at: self.arrived,
            answer: self.answer.as_deref(),
            output_tokens: self.usage.map_or(0, |u| u.output),
            blocked: self.blocked_by.is_some(),
            error: self.error_class.is_some(),
            latency_ms: self.started.elapsed().as_secs_f64() * 1000.0,
            cost_usd: self.cost_usd,
        });
        if let (Some(prompt), Some(answer)) = (self.review_prompt.take(), self.answer.take()) {
            gw.reviews
                .keep(&gw.metrics, route, &self.id, self.arrived, prompt, answer);
        }
    }

    fn take_draft(&mut self) -> Draft {
        let latency_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        let mut draft = self.draft(latency_ms);
        draft.payloads = std::mem::take(&mut self.payloads);
        draft
    }

    fn log(self, gw: &Arc<Gateway>) {
        // The spans are built only for a recorded trace, and queued without waiting.
        if let Some(t) = self.trace.as_deref().filter(|t| t.sampled) {
            gw.tracer
                .submit(crate::telemetry::span::request_spans(&self, t, gw));
        }
        let latency = self.started.elapsed();
        let route = self.route.clone().unwrap_or_else(|| "-".to_owned());
        let target = self.target.clone().unwrap_or_else(|| "-".to_owned());
        let m = &gw.metrics;
        m.requests
            .get_or_create(&RequestLabels {
                endpoint: self.endpoint.to_owned(),
                route: route.clone(),
                target: target.clone(),
                status: self.status.to_string(),
            })
            .inc();
        m.request_seconds
            .get_or_create(&RouteLabels {
                route: route.clone(),
            })
            .observe(latency.as_secs_f64());
        if let Some(u) = self.usage {
            for (direction, n) in [("input", u.input), ("output", u.output)] {
                m.tokens
                    .get_or_create(&TokenLabels {
                        route: route.clone(),
                        direction: direction.to_owned(),
                    })
                    .inc_by(n);
            }
        }
        if let Some(c) = self.cost_usd.filter(|c| *c > 0.0) {
            m.cost_micro_usd
                .get_or_create(&RouteLabels {
                    route: route.clone(),
                })
                .inc_by((c * 1e6).round() as u64);
        }
        if let Some(class) = self.error_class {
            m.errors
                .get_or_create(&ErrorLabels {
                    route: route.clone(),
                    class: class.to_owned(),
                })
                .inc();
        }
        for (guard, counts) in [("pii", &self.guards.pii), ("secrets", &self.guards.secrets)] {
            for (kind, n) in counts {
                m.guard_detections
                    .get_or_create(&GuardLabels {
                        route: route.clone(),
                        guard: guard.to_owned(),
                        kind: kind.clone(),
                    })
                    .inc_by(*n as u64);
            }
        }
        if let Some(guard) = self.blocked_by {
            m.guard_blocks
                .get_or_create(&GuardLabels {
                    route: route.clone(),
                    guard: guard.to_owned(),
                    kind: "-".to_owned(),
                })
                .inc();
        }
        let guards = self.guards.summary();
        if let Some((score, _)) = &self.checks.injection {
            m.injection_score
                .get_or_create(&RouteLabels {
                    route: route.clone(),
                })
                .observe(f64::from(*score));
        }
        for (guard, kinds) in [
            ("content", &self.checks.content),
            ("output", &self.checks.output),
        ] {
            for kind in kinds.iter() {
                m.guard_detections
                    .get_or_create(&GuardLabels {
                        route: route.clone(),
                        guard: guard.to_owned(),
                        kind: (*kind).to_owned(),
                    })
                    .inc();
            }
        }
        let injection_score = self.checks.injection.as_ref().map(|(s, _)| f64::from(*s));
        let injection_rules = self
            .checks
            .injection
            .as_ref()
            .filter(|(_, r)| !r.is_empty())
            .map(|(_, r)| r.join(","));
        let content_flags =
            (!self.checks.content.is_empty()).then(|| self.checks.content.join(","));
        let output_flags = (!self.checks.output.is_empty()).then(|| self.checks.output.join(","));
        let policy_skips = (!self.policy_skips.is_empty()).then(|| self.policy_skips.join("; "));
        tracing::info!(
            target: "tollgate::request",
            request_id = %self.id,
            key_id = self.key_id.as_deref(),
            team = self.team.as_deref(),
            endpoint = self.endpoint,
            format = self.format.as_str(),
            route = %route,
            data_class = self.data_class.map(|c| c.as_str()),
            upstream = %target,
            status = self.status,
            stream = self.stream,
            latency_ms = latency.as_secs_f64() * 1000.0,
            upstream_ms = self.upstream_ms,
            tokens_in = self.usage.map(|u| u.input),
            tokens_out = self.usage.map(|u| u.output),
            attempts = self.attempts,
            error_class = self.error_class,
            error = self.error.as_deref(),
            guards = guards.as_deref(),
            blocked_by = self.blocked_by,
            injection_score = injection_score,
            injection_rules = injection_rules.as_deref(),
            content_flags = content_flags.as_deref(),
            output_flags = output_flags.as_deref(),
            policy_skips = policy_skips.as_deref(),
            prompt = self.prompt.as_deref(),
            completion = self.completion.as_deref(),
            "request"
        );
    }
}
