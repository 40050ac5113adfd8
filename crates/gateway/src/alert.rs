//! Alerts (checklist MI-2): one [`Alerter`] per gateway takes every alert — budget
//! thresholds ([`crate::budget`]), automatic key suspensions, anomalies found by the
//! [`crate::anomaly::Detector`], a key's first use of a model or of a client IP — and sends it
//! to the sinks of `[alerts]`: the `tollgate::alert` log target, webhooks (generic JSON or
//! Slack-compatible `{"text": …}`), and the store, which `tollgate alerts` reads.
//!
//! An alert carries a dedup key; the same key within the cooldown (default 15 minutes) is
//! dropped, so a spike lasting ten minutes, or a suspended key retrying, is one alert.
//! Delivery runs off the request path; [`Alerter::idle`] waits for it (tests, shutdown).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};
use serde_json::{Value, json};
use tokio::time::Instant;
use tollgate_store::alert::{AlertRecord, AlertStore};

use crate::anomaly::{Detector, Metric};
use secrecy::ExposeSecret;

use crate::config::alerts::{AlertsConfig, DEFAULT_WEBHOOK_TIMEOUT, is_reference, web_url_ok};
use crate::credential::{CredentialRef, CredentialSource};
use crate::secrets::SecretBackends;

/// Most dedup keys remembered; past it, expired ones are dropped.
pub const MAX_DEDUP_KEYS: usize = 100_000;
/// Most (key, kind, value) sightings remembered in memory before the cache is cleared (the
/// store stays the source of truth).
pub const MAX_SIGHTINGS_CACHED: usize = 100_000;

/// The wall clock, replaceable in tests.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The system clock.
pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

/// How bad an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Worth looking at.
    Warning,
    /// Act now.
    Critical,
}

impl Severity {
    /// Name in records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// One alert to raise.
#[derive(Debug, Clone)]
pub struct Alert {
    /// `budget_threshold`, `budget_exceeded`, `key_suspended`, `anomaly`, `new_model`,
    /// `new_ip`.
    pub kind: &'static str,
    /// How bad.
    pub severity: Severity,
    /// Whom it is about: `key:ID`, `team:NAME`, `global`.
    pub subject: String,
    /// Alerts with the same key within the cooldown are one.
    pub dedup_key: String,
    /// One line for humans; never prompt text or secrets.
    pub message: String,
    /// Figures behind it.
    pub details: Value,
}

/// Counts background work so that [`Pending::idle`] can wait for it.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    n: AtomicUsize,
    done: tokio::sync::Notify,
}

impl Pending {
    /// Run `fut` in the background, counted.
    pub(crate) fn spawn(self: &Arc<Self>, fut: impl Future<Output = ()> + Send + 'static) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.n.fetch_add(1, Ordering::SeqCst);
        let me = self.clone();
        rt.spawn(async move {
            fut.await;
            if me.n.fetch_sub(1, Ordering::SeqCst) == 1 {
                me.done.notify_waiters();
            }
        });
    }

    /// Wait until no counted work is left.
    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.n.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

#[derive(Debug, Clone)]
enum Destination {
    /// A URL written in the config.
    Url(String),
    /// A credential reference to the URL, resolved (and cached) at delivery.
    Secret(Arc<CredentialSource>),
}

#[derive(Debug, Clone)]
struct Webhook {
    to: Destination,
    slack: bool,
    timeout: Duration,
}

impl Webhook {
    /// The URL to POST to, or why there is none (never the URL itself: it may be secret).
    async fn url(&self) -> Result<String, String> {
        match &self.to {
            Destination::Url(u) => Ok(u.clone()),
            Destination::Secret(c) => {
                let u = c.get().await.map_err(|e| e.to_string())?;
                let u = u.expose_secret().trim().to_owned();
                if web_url_ok(&u) {
                    Ok(u)
                } else {
                    Err(format!(
                        "{} does not hold an https URL (or http to localhost)",
                        c.reference().describe()
                    ))
                }
            }
        }
    }
}

fn destination(url: &str, backends: &SecretBackends) -> Destination {
    match CredentialRef::parse(url) {
        Ok(r) if is_reference(url) => Destination::Secret(Arc::new(
            CredentialSource::with_backends(r, backends.clone()),
        )),
        _ => Destination::Url(url.to_owned()),
    }
}

/// What one finished request contributes to the anomaly detector and sightings.
#[derive(Debug, Clone, Default)]
pub struct Observation<'a> {
    /// The key, if authenticated.
    pub key_id: Option<&'a str>,
    /// Its team.
    pub team: Option<&'a str>,
    /// Model alias asked for.
    pub model: Option<&'a str>,
    /// Client IP.
    pub ip: Option<std::net::IpAddr>,
    /// Input plus output tokens.
    pub tokens: u64,
    /// Cost in USD, if priced.
    pub cost_usd: Option<f64>,
    /// The request failed (any error class other than authentication).
    pub error: bool,
    /// A guard blocked it.
    pub blocked: bool,
    /// Authentication failed.
    pub auth_failed: bool,
}

/// The alert sinks, dedup, the anomaly detector and sightings; see the module doc.
pub struct Alerter {
    log: bool,
    cooldown: Duration,
    webhooks: Vec<Webhook>,
    client: reqwest::Client,
    store: Arc<dyn AlertStore>,
    last: Mutex<HashMap<String, Instant>>,
    pending: Arc<Pending>,
    detector: Option<Mutex<Detector>>,
    new_model: bool,
    new_ip: bool,
    seen: Mutex<HashSet<(String, &'static str, String)>>,
    clock: RwLock<Clock>,
}

impl std::fmt::Debug for Alerter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerter")
            .field("webhooks", &self.webhooks.len())
            .field("cooldown", &self.cooldown)
            .finish_non_exhaustive()
    }
}

impl Alerter {
    /// An alerter for `[alerts]`, storing alerts in `store`.
    pub fn new(config: &AlertsConfig, store: Arc<dyn AlertStore>) -> Self {
        let a = config.anomaly;
        Self {
            log: config.log,
            cooldown: config.cooldown(),
            webhooks: config
                .webhooks
                .iter()
                .map(|w| Webhook {
                    to: destination(&w.url, &SecretBackends::default()),
                    slack: w.format.as_deref() == Some("slack"),
                    timeout: w.timeout.map_or(DEFAULT_WEBHOOK_TIMEOUT, |d| d.0),
                })
                .collect(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            store,
            last: Mutex::new(HashMap::new()),
            pending: Arc::new(Pending::default()),
            detector: a.enabled.then(|| Mutex::new(Detector::new(a))),
            new_model: a.enabled && a.new_model,
            new_ip: a.enabled && a.new_ip,
            seen: Mutex::new(HashSet::new()),
            clock: RwLock::new(system_clock()),
        }
    }

    /// Resolve webhook URLs given as credential references with `backends` (the keystore,
    /// Vault, AWS Secrets Manager of `[secrets]`); without it only `file://` and `env:` work.
    pub fn with_secrets(mut self, backends: &SecretBackends) -> Self {
        for w in &mut self.webhooks {
            if let Destination::Secret(c) = &w.to {
                w.to = Destination::Secret(Arc::new(CredentialSource::with_backends(
                    c.reference().clone(),
                    backends.clone(),
                )));
            }
        }
        self
    }

    /// Replace the wall clock (tests move time without sleeping).
    pub fn set_clock(&self, clock: Clock) {
        *self.clock.write() = clock;
    }

    /// The time now, by this alerter's clock.
    pub fn now(&self) -> DateTime<Utc> {
        (self.clock.read())()
    }

    /// Raise `alert`: unless its dedup key fired within the cooldown, log it now and store
    /// and deliver it in the background. Returns whether it was raised.
    pub fn raise(&self, alert: Alert) -> bool {
        let now = Instant::now();
        {
            let mut last = self.last.lock();
            if let Some(t) = last.get(&alert.dedup_key) {
                if now.saturating_duration_since(*t) < self.cooldown {
                    return false;
                }
            }
            if last.len() >= MAX_DEDUP_KEYS {
                let cd = self.cooldown;
                last.retain(|_, t| now.saturating_duration_since(*t) < cd);
            }
            last.insert(alert.dedup_key.clone(), now);
        }
        if self.log {
            tracing::warn!(
                target: "tollgate::alert",
                kind = alert.kind,
                severity = alert.severity.as_str(),
                subject = %alert.subject,
                dedup_key = %alert.dedup_key,
                details = %alert.details,
                "{}",
                alert.message
            );
        }
        let record = AlertRecord {
            id: format!("alr_{}", uuid::Uuid::now_v7().simple()),
            at: self.now(),
            kind: alert.kind.to_owned(),
            severity: alert.severity.as_str().to_owned(),
            subject: alert.subject,
            dedup_key: alert.dedup_key,
            message: alert.message,
            details: alert.details,
        };
        let store = self.store.clone();
        let client = self.client.clone();
        let hooks = self.webhooks.clone();
        self.pending.spawn(async move {
            if let Err(e) = store.insert_alert(&record).await {
                tracing::error!(target: "tollgate::alert", error = %e, id = %record.id, "cannot store an alert");
            }
            for h in hooks {
                let body = if h.slack {
                    json!({"text": format!("[tollgate {}] {}: {}", record.severity, record.kind, record.message)})
                } else {
                    serde_json::to_value(&record).unwrap_or(Value::Null)
                };
                let url = match h.url().await {
                    Ok(u) => u,
                    Err(why) => {
                        tracing::warn!(target: "tollgate::alert", reason = %why, "an alert webhook has no usable URL");
                        continue;
                    }
                };
                let sent = client.post(&url).timeout(h.timeout).json(&body).send().await;
                match sent {
                    Ok(r) if r.status().is_success() => {}
                    Ok(r) => tracing::warn!(target: "tollgate::alert", status = r.status().as_u16(), "an alert webhook refused the alert"),
                    // No URL in the message: a webhook URL is often a credential.
                    Err(e) => tracing::warn!(target: "tollgate::alert", error = %e.without_url(), "an alert webhook could not be reached"),
                }
            }
        });
        true
    }

    /// Wait until every alert raised so far is stored and delivered (or failed).
    pub async fn idle(&self) {
        self.pending.idle().await;
    }

    /// Feed one finished request to the anomaly detector and the sightings.
    pub fn observe(self: &Arc<Self>, o: &Observation<'_>) {
        let minute = self.now().timestamp().div_euclid(60);
        if let Some(det) = &self.detector {
            let mut spikes = Vec::new();
            {
                let mut d = det.lock();
                if o.auth_failed {
                    spikes.extend(d.add("global", Metric::AuthFailures, 1.0, minute));
                }
                let subjects = o
                    .key_id
                    .map(|k| format!("key:{k}"))
                    .into_iter()
                    .chain(o.team.map(|t| format!("team:{t}")));
                for s in subjects {
                    spikes.extend(d.add(&s, Metric::Requests, 1.0, minute));
                    if o.tokens > 0 {
                        spikes.extend(d.add(&s, Metric::Tokens, o.tokens as f64, minute));
                    }
                    if let Some(c) = o.cost_usd.filter(|c| *c > 0.0) {
                        spikes.extend(d.add(&s, Metric::Cost, c, minute));
                    }
                    if o.error {
                        spikes.extend(d.add(&s, Metric::Errors, 1.0, minute));
                    }
                    if o.blocked {
                        spikes.extend(d.add(&s, Metric::GuardBlocks, 1.0, minute));
                    }
                }
            }
            for s in spikes {
                let fmt = |v: f64| {
                    if s.metric == Metric::Cost {
                        format!("${v:.2}")
                    } else {
                        format!("{v:.0}")
                    }
                };
                self.raise(Alert {
                    kind: "anomaly",
                    severity: Severity::Warning,
                    dedup_key: format!("anomaly:{}:{}", s.subject, s.metric.as_str()),
                    message: format!(
                        "{} of {} this minute is {}, far above its baseline (median {} a minute; alert above {})",
                        s.metric.as_str(),
                        s.subject,
                        fmt(s.value),
                        fmt(s.median),
                        fmt(s.threshold)
                    ),
                    details: json!({
                        "metric": s.metric.as_str(), "value": s.value, "median": s.median,
                        "spread": s.spread, "threshold": s.threshold, "minute": s.minute * 60,
                    }),
                    subject: s.subject,
                });
            }
        }
        let Some(key) = o.key_id else { return };
        let ip = o.ip.map(|ip| ip.to_string());
        for (on, kind, value) in [
            (self.new_model, "model", o.model.map(str::to_owned)),
            (self.new_ip, "ip", ip),
        ] {
            let Some(value) = value.filter(|_| on) else {
                continue;
            };
            {
                let mut seen = self.seen.lock();
                if seen.len() >= MAX_SIGHTINGS_CACHED {
                    seen.clear();
                }
                if !seen.insert((key.to_owned(), kind, value.clone())) {
                    continue;
                }
            }
            self.sight(key.to_owned(), kind, value);
        }
    }

    fn sight(self: &Arc<Self>, key: String, kind: &'static str, value: String) {
        let store = self.store.clone();
        let at = self.now();
        let me = self.clone();
        self.pending.spawn(async move {
            match store.sight(&key, kind, &value, at).await {
                Ok(s) if s.new && s.had_others => {
                    let (what, alert_kind) = if kind == "model" {
                        ("model", "new_model")
                    } else {
                        ("client IP", "new_ip")
                    };
                    me.raise(Alert {
                        kind: alert_kind,
                        severity: Severity::Info,
                        subject: format!("key:{key}"),
                        dedup_key: format!("{alert_kind}:{key}:{value}"),
                        message: format!("key {key} used {what} {value} for the first time"),
                        details: json!({ "key_id": key, kind: value }),
                    });
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot record a key sighting"),
            }
        });
    }
}
