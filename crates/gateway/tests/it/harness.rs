//! A gateway wired to a mock provider, with helpers to make keys and requests.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tollgate_gateway::audit::{AuditSettings, Auditor};
use tollgate_gateway::config::Config;
use tollgate_gateway::state::Gateway;
use tollgate_store::Store;
use tollgate_store::audit::Signer;
use tollgate_store::audit::payload::Keyring;
use tollgate_store::class::DataClass;
use tollgate_store::key::{Environment, KeyHasher, KeyRecord, VirtualKey};
use tollgate_store::sqlite::SqliteStore;
use tollgate_testkit::{MOCK_KEY, MockUpstream};

/// Keys of the audit trail in tests (a real deployment derives them from the master key).
pub const AUDIT_MAC_KEY: [u8; 32] = [6; 32];
pub const AUDIT_WRAP_KEY: [u8; 32] = [5; 32];

pub struct Harness {
    pub gw: Arc<Gateway>,
    pub db_path: std::path::PathBuf,
    pub mock: MockUpstream,
    pub url: String,
    pub key: String,
    pub store: Store,
    pub hasher: KeyHasher,
    pub client: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// An audit writer on `store` with test keys, chain `gw-test`.
pub fn test_auditor(store: &Store, fail_closed: bool) -> Auditor {
    Auditor::start(
        store.audit.clone(),
        Keyring::new(store.audit.clone(), AUDIT_WRAP_KEY),
        Signer::generate(),
        AUDIT_MAC_KEY,
        AuditSettings {
            instance: "gw-test".into(),
            fail_closed,
            checkpoint_every: 100,
        },
    )
}

/// A provider review (DP-4) as a security team would write it; `{REVIEWED_ON}` and
/// `{EXPIRES}` are filled in relative to today so the fixture never lapses.
pub const REVIEW: &str = r#"reviewed_by = "security-team@example.com"
reviewed_on = {REVIEWED_ON}
expires = {EXPIRES}
retention_days = 30
zero_data_retention = false
trains_on_customer_data = false
regions = ["us", "eu"]
dpa_signed = true
certifications = ["SOC 2 Type II", "ISO 27001"]
data_classes = ["public", "internal", "confidential"]"#;

/// `REVIEW` with its dates: reviewed 60 days ago, expiring in 305 days.
pub fn review_block() -> String {
    let today = chrono::Utc::now().date_naive();
    REVIEW
        .replace(
            "{REVIEWED_ON}",
            &(today - chrono::Duration::days(60)).to_string(),
        )
        .replace(
            "{EXPIRES}",
            &(today + chrono::Duration::days(305)).to_string(),
        )
}

/// Providers and routes used across the tests; `{..}` placeholders are filled in.
const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:0"
max_body_bytes = 4096

[limits.abuse]
denials = 5

[providers.oa]
kind = "openai"
base_url = "{OPENAI}"
api_key = "file://{CRED}"
retry_backoff = "5ms"
first_byte_timeout = "5s"
[providers.oa.review]
{REVIEW}

[providers.an]
kind = "anthropic"
base_url = "{BASE}"
api_key = "file://{CRED}"
retry_backoff = "5ms"
[providers.an.review]
{REVIEW}

[providers.oa_fast]
kind = "openai"
base_url = "{OPENAI}"
api_key = "file://{CRED}"
first_byte_timeout = "200ms"
max_retries = 0
[providers.oa_fast.review]
{REVIEW}

[providers.oa_patient]
kind = "openai"
base_url = "{OPENAI}"
api_key = "file://{CRED}"
first_byte_timeout = "60s"
max_retries = 0
[providers.oa_patient.review]
{REVIEW}

[providers.oa_brk]
kind = "openai"
base_url = "{OPENAI}"
api_key = "file://{CRED}"
max_retries = 0
breaker_failures = 3
breaker_cooldown = "60s"
[providers.oa_brk.review]
{REVIEW}

[providers.oa_badcred]
kind = "openai"
base_url = "{OPENAI}"
api_key = "file://{BADCRED}"
max_retries = 0
[providers.oa_badcred.review]
{REVIEW}

[providers.az]
kind = "azure"
base_url = "{BASE}"
api_key = "file://{CRED}"
api_version = "2024-10-21"
[providers.az.review]
{REVIEW}

[providers.echo]
kind = "echo"

[routes.gpt]
targets = [{ provider = "oa", model = "gpt-mock" }]
[routes.claude]
targets = [{ provider = "an", model = "claude-mock" }]
[routes.azure]
targets = [{ provider = "az", model = "my-deployment" }]
[routes.tool]
targets = [{ provider = "oa", model = "tool" }]
[routes.tool-claude]
targets = [{ provider = "an", model = "tool" }]
[routes.fallback-cross]
targets = [{ provider = "oa", model = "fail-500" }, { provider = "an", model = "claude-mock" }]
[routes.fallback-cross-rev]
targets = [{ provider = "an", model = "fail-500" }, { provider = "oa", model = "gpt-mock" }]
[routes.flaky]
targets = [{ provider = "oa", model = "flaky-2" }]
[routes.rate-limited]
targets = [{ provider = "oa", model = "fail-429" }, { provider = "an", model = "claude-mock" }]
[routes.broken]
targets = [{ provider = "oa_brk", model = "fail-500" }]
[routes.slow]
targets = [{ provider = "oa_fast", model = "slow-1000" }]
[routes.hang]
targets = [{ provider = "oa_patient", model = "hang" }]
[routes.drip]
targets = [{ provider = "oa_patient", model = "drip-100" }]
[routes.garbage]
targets = [{ provider = "oa", model = "garbage" }]
[routes.bad]
targets = [{ provider = "oa", model = "bad-request" }]
[routes.truncate]
targets = [{ provider = "oa", model = "truncate" }]
[routes.truncate-claude]
targets = [{ provider = "an", model = "truncate" }]
[routes.badcred]
targets = [{ provider = "oa_badcred", model = "gpt-mock" }, { provider = "an", model = "claude-mock" }]
[routes.badcred-only]
targets = [{ provider = "oa_badcred", model = "gpt-mock" }]
[routes.embed]
targets = [{ provider = "oa", model = "embed-mock" }]
[routes.audited]
targets = [{ provider = "oa", model = "gpt-mock" }]
audit = { prompts = true, completions = true, original_prompts = true }
[routes.limited]
targets = [{ provider = "oa", model = "gpt-mock" }]
limits = { route = { rpm = 3 } }
[routes.tpm]
targets = [{ provider = "oa", model = "gpt-mock" }]
limits = { key = { tpm = 300 } }
[routes.single]
targets = [{ provider = "oa_patient", model = "slow-400" }]
limits = { route = { concurrency = 1 } }
[routes.capped]
targets = [{ provider = "oa", model = "gpt-mock" }]
limits = { caps = { max_messages = 2, max_n = 1, max_tokens = 100 } }
[routes.priced]
targets = [{ provider = "oa", model = "gpt-4o-2024-08-06" }]
[routes.embed-echo]
targets = [{ provider = "echo", model = "echo-embed" }]
[routes.embed-claude]
targets = [{ provider = "an", model = "claude-mock" }]
[routes.echo]
targets = [{ provider = "echo", model = "echo" }]
[routes.strict]
targets = [{ provider = "oa", model = "gpt-mock" }]
guards = { pii = { actions = { SSN = "block", EMAIL = "redact" }, custom = [{ label = "EMPLOYEE_ID", pattern = "EMP-\\d{6}", action = "hash" }] }, secrets = "block" }
[routes.canary]
targets = [{ provider = "oa", model = "gpt-mock" }]
guards = { injection = { canary = true, spotlight = true } }
[routes.validated]
targets = [{ provider = "oa", model = "gpt-mock" }]
guards = { output = { deny_patterns = ["(?i)project bluebird"] } }
[routes.contentonly]
targets = [{ provider = "oa", model = "gpt-mock" }]
guards = { injection = { enabled = false } }
[routes.flagonly]
targets = [{ provider = "oa", model = "gpt-mock" }]
guards = { injection = { action = "flag" }, content = { action = "flag" } }
[routes.json]
targets = [{ provider = "oa", model = "json-repair" }]
[routes.json-valid]
targets = [{ provider = "oa", model = "json-valid" }]
[routes.json-block]
targets = [{ provider = "oa", model = "json-repair" }]
guards = { output = { on_invalid = "block" } }
[routes.json-fallback]
targets = [{ provider = "oa", model = "json-repair" }]
guards = { output = { on_invalid = "fallback", fallback_message = "Sorry, I cannot answer that right now." } }
[routes.safe-fallback]
targets = [{ provider = "oa_brk", model = "fail-500" }]
guards = { output = { fallback_message = "The assistant is unavailable; please try again later." } }
[routes.route-schema]
targets = [{ provider = "oa", model = "json-valid" }]
guards = { output = { json_schema = { type = "object", required = ["country"] }, on_invalid = "block" } }
[routes.guardmodel]
targets = [{ provider = "oa", model = "guard" }]
guards = { injection = { enabled = false }, content = { enabled = false } }
[routes.guarded]
targets = [{ provider = "oa", model = "gpt-mock" }]
guards = { content = { guard_route = "guardmodel" } }
[routes.guarded-closed]
targets = [{ provider = "oa", model = "gpt-mock" }]
guards = { content = { guard_route = "broken", guard_fail = "closed", guard_timeout = "500ms" } }
[routes.guarded-open]
targets = [{ provider = "oa", model = "gpt-mock" }]
guards = { content = { guard_route = "broken", guard_timeout = "500ms" } }
[routes.leaks]
targets = [{ provider = "oa", model = "gpt-mock" }]
guards = { pii = { enabled = false }, output = { pii_leak = "redact", require_patterns = ["mock:"] } }
[routes.requires]
targets = [{ provider = "oa", model = "gpt-mock" }]
guards = { output = { require_patterns = ["(?i)disclaimer"] } }
[routes.leaks-block]
targets = [{ provider = "oa", model = "gpt-mock" }]
guards = { pii = { enabled = false }, output = { pii_leak = "block" } }
[routes.nopii]
targets = [{ provider = "oa", model = "gpt-mock" }]
guards = { pii = { enabled = false } }
"#;

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(true).await
    }

    /// A harness whose audit writer refuses (`fail_closed`) or serves when its store fails.
    pub async fn start_with(fail_closed: bool) -> Self {
        Self::start_full(fail_closed, "").await
    }

    /// A harness whose config is the shared one plus `extra` TOML (more providers, routes,
    /// a `[policy]` section); `{BASE}`, `{OPENAI}`, `{CRED}` and `{REVIEW}` are filled in.
    pub async fn start_extra(extra: &str) -> Self {
        Self::start_full(true, extra).await
    }

    async fn start_full(fail_closed: bool, extra: &str) -> Self {
        let mock = MockUpstream::start().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let cred = dir.path().join("cred");
        std::fs::write(&cred, format!("{MOCK_KEY}\n")).unwrap();
        let badcred = dir.path().join("badcred");
        std::fs::write(&badcred, "wrong-credential").unwrap();
        let text = format!("{CONFIG}\n{extra}")
            .replace("{REVIEW}", &review_block())
            .replace("{OPENAI}", &mock.openai_base())
            .replace("{BASE}", &mock.base())
            .replace("{CRED}", cred.to_str().unwrap())
            .replace("{BADCRED}", badcred.to_str().unwrap());
        let (config, _) =
            Config::parse(&text, Path::new("test.toml")).unwrap_or_else(|e| panic!("{e}"));
        let db = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
        let store = Store::from_backend(Arc::new(db));
        let hasher = KeyHasher::new([42; 32]);
        let auditor = test_auditor(&store, fail_closed);
        let gw = Arc::new(
            Gateway::new(
                config,
                store.clone(),
                None,
                hasher.clone(),
                [7; 32],
                auditor,
            )
            .unwrap(),
        );
        assert!(gw.check_credentials().await.is_empty());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(tollgate_gateway::serve(
            listener,
            gw.clone(),
            std::future::pending(),
        ));
        let mut h = Self {
            gw,
            db_path: dir.path().join("t.db"),
            mock,
            url,
            key: String::new(),
            store,
            hasher,
            client: reqwest::Client::new(),
            _dir: dir,
        };
        h.key = h.create_key(KeyOpts::default()).await.0;
        h
    }

    /// Id of the default key.
    pub async fn key_id(&self) -> String {
        let key = VirtualKey::parse(&self.key).unwrap();
        self.store
            .keys
            .key_by_hash(&self.hasher.hash(&key))
            .await
            .unwrap()
            .unwrap()
            .id
    }

    pub async fn create_key(&self, opts: KeyOpts) -> (String, String) {
        let key = VirtualKey::generate(opts.env);
        let mut rec = KeyRecord::new(&key, self.hasher.hash(&key), "test");
        rec.allowed_models = opts.models.iter().map(|s| s.to_string()).collect();
        rec.expires_at = opts.expires_at;
        rec.team = Some("qa".into());
        rec.data_class = opts.data_class;
        rec.role = opts.role.map(str::to_owned);
        self.store.keys.insert_key(&rec).await.unwrap();
        (key.expose().to_owned(), rec.id)
    }

    pub fn post(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.key)
            .json(body)
    }

    /// POST and return status and parsed JSON body.
    pub async fn json(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self.post(path, body).send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// POST an Anthropic-format body to `/v1/messages` with the harness key as `x-api-key`.
    pub async fn messages(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/messages", self.url))
            .header("x-api-key", &self.key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// POST a streaming request and return the raw SSE events (event name, data).
    pub async fn stream(&self, path: &str, body: &Value) -> (u16, Vec<(Option<String>, String)>) {
        let r = self.post(path, body).send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, parse_sse(&text))
    }
}

/// The `error.message` of a provider-shaped error body.
pub fn error_message(v: &Value) -> &str {
    v["error"]["message"].as_str().unwrap_or_default()
}

pub fn parse_sse(text: &str) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut name = None;
        let mut data = Vec::new();
        for line in block.lines() {
            if let Some(n) = line.strip_prefix("event: ") {
                name = Some(n.to_owned());
            } else if let Some(d) = line.strip_prefix("data: ") {
                data.push(d);
            }
        }
        if !data.is_empty() {
            out.push((name, data.join("\n")));
        }
    }
    out
}

pub struct KeyOpts {
    pub env: Environment,
    pub models: Vec<&'static str>,
    pub expires_at: Option<DateTime<Utc>>,
    pub data_class: Option<DataClass>,
    /// Data-plane role (`data-steward`), None for `app`.
    pub role: Option<&'static str>,
}

impl Default for KeyOpts {
    fn default() -> Self {
        Self {
            env: Environment::Production,
            models: vec!["*"],
            expires_at: None,
            data_class: None,
            role: None,
        }
    }
}

pub fn user(model: &str, text: &str) -> Value {
    serde_json::json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

pub fn anthropic_user(model: &str, text: &str) -> Value {
    serde_json::json!({"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": text}]})
}

/// Concatenated `delta.content` of OpenAI chunks.
pub fn openai_stream_text(events: &[(Option<String>, String)]) -> String {
    events
        .iter()
        .filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

/// Concatenated text deltas of Anthropic events.
pub fn anthropic_stream_text(events: &[(Option<String>, String)]) -> String {
    events
        .iter()
        .filter(|(n, _)| n.as_deref() == Some("content_block_delta"))
        .filter_map(|(_, d)| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["delta"]["text"].as_str().map(str::to_owned))
        .collect()
}
