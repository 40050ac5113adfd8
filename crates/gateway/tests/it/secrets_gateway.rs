//! A provider whose `api_key` lives in a real secrets manager authenticates against the mock
//! upstream, and a key rotated in the manager is picked up after the upstream's 401 without a
//! restart.

use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use tollgate_gateway::config::Config;
use tollgate_gateway::state::Gateway;
use tollgate_store::Store;
use tollgate_store::key::{Environment, KeyHasher, KeyRecord, VirtualKey};
use tollgate_store::sqlite::SqliteStore;
use tollgate_testkit::{MOCK_KEY, MockUpstream};

use crate::harness::{error_message, user};
use crate::secret_servers::{BAO_ROOT_TOKEN, Bao, Moto, TEST_AWS_KEYS, secret_file};

struct Running {
    url: String,
    key: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Running {
    /// A gateway over `secrets` (a `[secrets.*]` section) with provider `oa` using `api_key`.
    async fn start(mock: &MockUpstream, secrets: &str, api_key: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n{secrets}\n[providers.oa]\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = \"{api_key}\"\nmax_retries = 0\n[providers.oa.review]\n{}\n[routes.gpt]\ntargets = [{{ provider = \"oa\", model = \"gpt-mock\" }}]\n",
            mock.openai_base(),
            crate::harness::review_block()
        );
        let (config, _) = Config::parse(&text, Path::new("test.toml")).unwrap();
        let db = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
        let store = Store::from_backend(Arc::new(db));
        let hasher = KeyHasher::new([42; 32]);
        let auditor = crate::harness::test_auditor(&store, true);
        let gw = Gateway::new(
            config,
            store.clone(),
            None,
            hasher.clone(),
            [7; 32],
            auditor,
        )
        .unwrap();
        let problems = gw.check_credentials().await;
        assert!(problems.is_empty(), "{problems:?}");
        let key = VirtualKey::generate(Environment::Production);
        let mut rec = KeyRecord::new(&key, hasher.hash(&key), "secrets");
        rec.allowed_models = vec!["*".into()];
        store.keys.insert_key(&rec).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(tollgate_gateway::serve(
            listener,
            Arc::new(gw),
            std::future::pending(),
        ));
        Self {
            url,
            key: key.expose().to_owned(),
            client: reqwest::Client::new(),
            _dir: dir,
        }
    }

    async fn chat(&self, text: &str) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}/v1/chat/completions", self.url))
            .bearer_auth(&self.key)
            .json(&user("gpt", text))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }
}

/// The rotation story both managers must tell: a stale key is refused upstream (and never
/// shown), the key is rotated in the manager, and the next request uses the new one.
async fn rotation_after_401(mock: &MockUpstream, gw: &Running, rotate: impl AsyncFnOnce()) {
    let (s, v) = gw.chat("before").await;
    assert_eq!(s, 502, "{v}");
    let msg = error_message(&v);
    assert!(msg.contains("rejected tollgate's credential"), "{msg}");
    assert!(!v.to_string().contains("stale-provider-key"), "{v}");
    rotate().await;
    let (s, v) = gw.chat("after").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["choices"][0]["message"]["content"], "mock:openai:after");
    let last = mock.requests().pop().unwrap();
    assert_eq!(
        last.headers.get("authorization").map(String::as_str),
        Some(format!("Bearer {MOCK_KEY}").as_str())
    );
}

#[tokio::test]
async fn vault_provider_key_authenticates_and_a_rotation_is_picked_up_after_401() {
    let Some(bao) = Bao::start().await else {
        return;
    };
    let mock = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secrets = format!(
        "[secrets.vault]\naddress = \"{}\"\ntoken = \"{}\"\n",
        bao.addr,
        secret_file(dir.path(), "token", BAO_ROOT_TOKEN)
    );
    bao.put("tollgate/openai", json!({"api_key": "stale-provider-key"}))
        .await;
    let gw = Running::start(&mock, &secrets, "vault://secret/tollgate/openai#api_key").await;
    rotation_after_401(&mock, &gw, async || {
        bao.put("tollgate/openai", json!({"api_key": MOCK_KEY}))
            .await;
    })
    .await;
}

#[tokio::test]
async fn aws_provider_key_authenticates_and_a_rotation_is_picked_up_after_401() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let mock = MockUpstream::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let secrets = format!(
        "[secrets.aws]\nregion = \"us-east-1\"\nendpoint = \"{}\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\n",
        moto.addr,
        secret_file(dir.path(), "id", TEST_AWS_KEYS.0),
        secret_file(dir.path(), "secret", TEST_AWS_KEYS.1),
    );
    moto.sm(
        "CreateSecret",
        json!({"Name": "prod/llm", "SecretString": "{\"openai\":\"stale-provider-key\"}"}),
    )
    .await;
    let gw = Running::start(&mock, &secrets, "aws-sm://prod/llm#openai").await;
    rotation_after_401(&mock, &gw, async || {
        moto.sm(
            "PutSecretValue",
            json!({"SecretId": "prod/llm", "SecretString": json!({"openai": MOCK_KEY}).to_string()}),
        )
        .await;
    })
    .await;
}
