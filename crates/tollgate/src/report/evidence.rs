//! Gathering the evidence behind `tollgate report`: the store's runtime records, the scan of
//! the repository and, with `--gateway`, unauthenticated probes of the data plane.
//!
//! Everything here reuses the library calls the single-purpose commands use (`audit verify`,
//! `keys audit`, `budgets`, `drift`, `scan`), so the report and those commands never disagree.
//! What could not be gathered is kept as the reason why, never as an empty success.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use tollgate_gateway::alert::Alerter;
use tollgate_gateway::budget::{BudgetStatus, Budgets};
use tollgate_gateway::config::Config;
use tollgate_gateway::drift::DriftReport;
use tollgate_gateway::rotation::KeysAudit;
use tollgate_scan::ScanOptions;
use tollgate_scan::finding::Finding;
use tollgate_store::StoreUrl;
use tollgate_store::alert::AlertRecord;
use tollgate_store::audit::PayloadKind;
use tollgate_store::audit::verify::{VerifyReport, verify};
use tollgate_store::control::KillSwitch;
use tollgate_store::prompt::{Deployment, PromptEnv};
use tollgate_store::review::{EvalRow, ReviewSummary};

use crate::setup;

/// How far back runtime activity (audit records, alerts) is summarised.
pub const ACTIVITY_DAYS: i64 = 30;
/// Most audit records read for the activity summary; beyond, the summary says it is partial.
pub const MAX_ACTIVITY_RECORDS: u64 = 200_000;
/// Audit records fetched per page.
const PAGE: u32 = 2_000;
/// Most alerts read.
const MAX_ALERTS: u32 = 1_000;
/// Time allowed for one unauthenticated probe of the gateway.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the report judges.
pub struct Facts {
    /// The static policy.
    pub config: Config,
    /// Where the config came from (None: built-in defaults).
    pub config_path: Option<PathBuf>,
    /// When the report was made.
    pub now: DateTime<Utc>,
    /// The store's evidence, or why there is none.
    pub store: Result<StoreFacts, String>,
    /// The repository scan.
    pub scan: ScanFacts,
    /// Unauthenticated probes of a running gateway (`--gateway`), if asked for.
    pub probes: Option<Vec<Probe>>,
}

impl Facts {
    /// Today's date (UTC).
    pub fn today(&self) -> NaiveDate {
        self.now.date_naive()
    }
}

/// The repository scan's outcome.
pub enum ScanFacts {
    /// `--no-scan`.
    Skipped,
    /// The scan could not run.
    Failed(String),
    /// The findings.
    Done {
        /// The scanned root.
        root: PathBuf,
        /// Files read.
        files: usize,
        /// Every finding.
        findings: Vec<Finding>,
        /// Whether an advisory database was given (SC-4 needs one).
        advisories: bool,
    },
}

/// One unauthenticated request to a data-plane route.
pub struct Probe {
    /// Method and path, e.g. `POST /v1/chat/completions`.
    pub route: String,
    /// The status it answered, or why it did not.
    pub status: Result<u16, String>,
}

/// Runtime evidence from the store.
pub struct StoreFacts {
    /// Keys against the rotation policy.
    pub keys_audit: KeysAudit,
    /// Keys neither revoked nor expired, by environment.
    pub active_keys: BTreeMap<String, usize>,
    /// Active keys bound to a role, by role.
    pub key_roles: BTreeMap<String, usize>,
    /// Admin credentials not revoked.
    pub admin_credentials: u64,
    /// Admin credentials not revoked, by role.
    pub admin_roles: BTreeMap<String, u64>,
    /// Admin credentials revoked (people who left, leaked credentials).
    pub admins_revoked: u64,
    /// `audit verify`.
    pub verify: Option<VerifyReport>,
    /// Why verification could not run.
    pub verify_error: Option<String>,
    /// The oldest stored payload per kind.
    pub oldest_payloads: Vec<(PayloadKind, DateTime<Utc>)>,
    /// What the audit trail shows of the last [`ACTIVITY_DAYS`] days.
    pub activity: Activity,
    /// Alerts of the last [`ACTIVITY_DAYS`] days.
    pub alerts: Vec<AlertRecord>,
    /// Kill switches set now.
    pub switches: Vec<KillSwitch>,
    /// The review queue.
    pub review: ReviewSummary,
    /// Each configured route's drift report.
    pub drift: Vec<DriftReport>,
    /// Spend against each budget, or why it could not be read.
    pub budgets: Result<Vec<BudgetStatus>, String>,
    /// Versioned subjects (prompts, `route:ALIAS`) in force, per environment.
    pub deployed: Vec<(String, PromptEnv, i64)>,
    /// The deployment log of every versioned subject.
    pub history: Vec<Deployment>,
    /// Every recorded evaluation.
    pub evals: Vec<EvalRow>,
}

impl StoreFacts {
    /// The key audit and admin count, with nothing else gathered yet.
    pub fn new(keys_audit: KeysAudit, admin_credentials: u64) -> Self {
        Self {
            keys_audit,
            active_keys: BTreeMap::new(),
            key_roles: BTreeMap::new(),
            admin_credentials,
            admin_roles: BTreeMap::new(),
            admins_revoked: 0,
            verify: None,
            verify_error: None,
            oldest_payloads: Vec::new(),
            activity: Activity::default(),
            alerts: Vec::new(),
            switches: Vec::new(),
            review: ReviewSummary::default(),
            drift: Vec::new(),
            budgets: Ok(Vec::new()),
            deployed: Vec::new(),
            history: Vec::new(),
            evals: Vec::new(),
        }
    }
}

/// Counts from the audit records of the last [`ACTIVITY_DAYS`] days. Types and counts only:
/// the records hold no prompt text, and neither does this.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Activity {
    /// Records read.
    pub records: u64,
    /// Whether reading stopped at [`MAX_ACTIVITY_RECORDS`].
    pub partial: bool,
    /// Data-plane requests.
    pub requests: u64,
    /// Requests by HTTP status.
    pub statuses: BTreeMap<u16, u64>,
    /// PII detections by type.
    pub pii: BTreeMap<String, u64>,
    /// Refusals by the guard that refused.
    pub blocked_by: BTreeMap<String, u64>,
    /// Flagged content categories.
    pub content: BTreeMap<String, u64>,
    /// Output-validation findings by kind.
    pub output: BTreeMap<String, u64>,
    /// Requests whose injection score was recorded.
    pub injection_scored: u64,
    /// Requests that needed more than one upstream attempt (retries or fallbacks).
    pub retried: u64,
    /// Admin actions refused for lack of a role or credential.
    pub admin_denied: u64,
    /// Admin actions recorded.
    pub admin_actions: u64,
}

impl Activity {
    /// Requests answered with `status`.
    pub fn status(&self, status: u16) -> u64 {
        self.statuses.get(&status).copied().unwrap_or(0)
    }

    /// Add one audit record's body.
    pub fn add(&mut self, kind: &str, body: &Value) {
        self.records += 1;
        let count = |m: &mut BTreeMap<String, u64>, k: &str, n: u64| {
            *m.entry(k.to_owned()).or_default() += n;
        };
        if kind == "admin" {
            self.admin_actions += 1;
            if body.get("outcome").and_then(Value::as_str) == Some("denied") {
                self.admin_denied += 1;
            }
            return;
        }
        self.requests += 1;
        if let Some(s) = body
            .get("status")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
        {
            *self.statuses.entry(s).or_default() += 1;
        }
        if body.get("attempts").and_then(Value::as_u64).unwrap_or(0) > 1 {
            self.retried += 1;
        }
        let Some(guards) = body.get("guards") else {
            return;
        };
        if let Some(pii) = guards.get("pii").and_then(Value::as_object) {
            for (label, n) in pii {
                count(&mut self.pii, label, n.as_u64().unwrap_or(1));
            }
        }
        if let Some(b) = guards.get("blocked_by").and_then(Value::as_str) {
            count(&mut self.blocked_by, b, 1);
        }
        for (field, map) in [("content", &mut self.content), ("output", &mut self.output)] {
            for c in guards
                .get(field)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(c) = c.as_str() {
                    count(map, c, 1);
                }
            }
        }
        if guards.get("injection").is_some() {
            self.injection_scored += 1;
        }
    }
}

/// Why there is no store to read, if so. The report never creates a store nor a master key
/// as a side effect: a new master key beside an old database would make every audit MAC
/// look forged.
fn missing_store(global: &setup::GlobalArgs, data_dir: &Path) -> Option<String> {
    let db = match &global.store {
        Some(StoreUrl::Postgres(_)) => None,
        Some(StoreUrl::Sqlite(p)) => Some(p.clone()),
        None => Some(data_dir.join("tollgate.db")),
    };
    if let Some(db) = db.filter(|p| !p.exists()) {
        return Some(format!(
            "no store at {} (the gateway has not run here, or --data-dir/--store point elsewhere)",
            db.display()
        ));
    }
    let key = global
        .master_key_file
        .clone()
        .unwrap_or_else(|| data_dir.join("master.key"));
    (!key.exists()).then(|| {
        format!(
            "no master key at {}, so the store cannot be read (pass --master-key-file or --data-dir)",
            key.display()
        )
    })
}

/// Read the store's evidence, or say why there is none.
pub async fn store_facts(
    global: &setup::GlobalArgs,
    loaded: &setup::Loaded,
    now: DateTime<Utc>,
) -> Result<StoreFacts, String> {
    if let Some(why) = missing_store(global, &loaded.data_dir) {
        return Err(why);
    }
    gather_store(global, loaded, now)
        .await
        .map_err(|e| format!("{e:#}"))
}

async fn gather_store(
    global: &setup::GlobalArgs,
    loaded: &setup::Loaded,
    now: DateTime<Utc>,
) -> Result<StoreFacts> {
    let config = &loaded.config;
    let opened = setup::open(global, &loaded.data_dir).await?;
    let store = &opened.store;
    let mut facts = StoreFacts::new(
        tollgate_gateway::rotation::audit_keys(store, config.rotation.as_ref(), now)
            .await
            .context("reading keys")?,
        store.admins.active_admin_count().await?,
    );
    for a in store.admins.list_admins().await? {
        if a.revoked_at.is_some() {
            facts.admins_revoked += 1;
        } else {
            *facts.admin_roles.entry(a.role).or_default() += 1;
        }
    }
    for k in store.keys.list_keys().await? {
        if k.state(now) != tollgate_store::key::KeyState::Active {
            continue;
        }
        *facts
            .active_keys
            .entry(k.environment.as_str().to_owned())
            .or_default() += 1;
        if let Some(role) = &k.role {
            *facts.key_roles.entry(role.clone()).or_default() += 1;
        }
    }
    match opened.signer().await {
        Ok(signer) => match verify(
            store.audit.as_ref(),
            Some(&opened.audit_mac_key),
            Some(&signer.verifying_key()),
            &[],
        )
        .await
        {
            Ok(r) => facts.verify = Some(r),
            Err(e) => facts.verify_error = Some(e.to_string()),
        },
        Err(e) => facts.verify_error = Some(format!("{e:#}")),
    }
    facts.oldest_payloads = store.audit.oldest_payloads().await?;
    let since = now - chrono::Duration::days(ACTIVITY_DAYS);
    facts.activity = activity(store, since, now).await?;
    facts.alerts = store.alerts.alerts_since(since, MAX_ALERTS).await?;
    facts.switches = store
        .control
        .switches()
        .await?
        .into_iter()
        .filter(|s| s.active_at(now))
        .collect();
    facts.review = store.reviews.review_summary().await?;
    for route in config.routes.keys() {
        facts.drift.push(
            tollgate_gateway::drift::report(store, route, now.date_naive(), &config.review.drift)
                .await?,
        );
    }
    let alerter = Arc::new(Alerter::new(&config.alerts, store.alerts.clone()));
    facts.budgets = Budgets::new(config, store.budgets.clone(), alerter)
        .status()
        .await
        .map_err(|e| e.to_string());
    for d in store.prompts.deployed_prompts().await? {
        if !facts.history.iter().any(|h| h.name == d.name) {
            facts
                .history
                .extend(store.prompts.prompt_deployments(&d.name).await?);
        }
        facts.deployed.push((d.name, d.env, d.version));
    }
    facts.evals = store
        .reviews
        .prompt_evals_since(DateTime::<Utc>::MIN_UTC)
        .await?;
    Ok(facts)
}

/// Summarise the audit records between `since` and `until`, page by page.
async fn activity(
    store: &tollgate_store::Store,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Activity> {
    let mut a = Activity::default();
    let mut after = None;
    loop {
        let page = store
            .audit
            .records_between(since, until, after.clone(), PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some((
            last.time.timestamp_millis(),
            last.instance.clone(),
            last.seq,
        ));
        for r in &page {
            // A body that is not JSON is tampering, which `audit verify` reports (DP-2).
            let body: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
            a.add(&r.kind, &body);
        }
        if a.records >= MAX_ACTIVITY_RECORDS {
            a.partial = true;
            break;
        }
    }
    Ok(a)
}

/// Scan `root` for AC-1 and SC-1..SC-4.
pub fn scan(root: &Path, advisories: Option<&Path>) -> ScanFacts {
    if !root.exists() {
        return ScanFacts::Failed(format!("{}: no such file or directory", root.display()));
    }
    let options = ScanOptions {
        roots: vec![root.to_path_buf()],
        advisories: advisories.map(Path::to_path_buf),
    };
    match tollgate_scan::scan(&options, None) {
        Ok(r) => ScanFacts::Done {
            root: root.to_path_buf(),
            files: r.files_scanned,
            findings: r.findings,
            advisories: advisories.is_some(),
        },
        Err(e) => ScanFacts::Failed(e.to_string()),
    }
}

/// The data-plane routes of a gateway with this config, as (method, path).
pub fn data_plane_routes(config: &Config) -> Vec<(&'static str, &'static str)> {
    let mut routes = vec![
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/completions"),
        ("POST", "/v1/messages"),
        ("POST", "/v1/embeddings"),
        ("GET", "/v1/models"),
    ];
    if config.datasets.is_some() {
        routes.extend([("GET", "/v1/files"), ("GET", "/v1/fine_tuning/jobs")]);
    }
    routes
}

/// Call each data-plane route of `base` without a credential (AC-2: each must answer 401).
pub async fn probe(base: &str, config: &Config) -> Result<Vec<Probe>> {
    let client = reqwest::Client::builder()
        .timeout(PROBE_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("building the HTTP client")?;
    let base = base.trim_end_matches('/');
    let mut out = Vec::new();
    for (method, path) in data_plane_routes(config) {
        let url = format!("{base}{path}");
        let req = if method == "GET" {
            client.get(&url)
        } else {
            client
                .post(&url)
                .header("content-type", "application/json")
                .body(r#"{"model":"probe","messages":[{"role":"user","content":"ping"}],"input":"ping","max_tokens":1}"#)
        };
        let status = match req.send().await {
            Ok(r) => Ok(r.status().as_u16()),
            Err(e) => Err(e.without_url().to_string()),
        };
        out.push(Probe {
            route: format!("{method} {path}"),
            status,
        });
    }
    Ok(out)
}
