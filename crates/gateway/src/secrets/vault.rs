//! HashiCorp Vault / OpenBao client for the KV version 2 secrets engine.
//!
//! Reads are `GET {address}/v1/{mount}/data/{path}` and the value is `data.data[FIELD]`;
//! writes merge one field into a secret with `PATCH` (JSON merge patch) and create the secret
//! with `POST` when it does not exist yet.
//!
//! Authentication:
//! - `token`: the token comes from a reference (typically a file that Vault Agent keeps
//!   fresh); it is cached like any credential and re-read when Vault refuses it (403);
//! - `approle`: `POST /v1/auth/{mount}/login` exchanges the role id and secret id for a
//!   token. tollgate logs in again when two thirds of the token's lease have passed and when
//!   Vault refuses the token (403: revoked, used up, expired early). Logging in again, rather
//!   than renewing, also covers a token that has reached its maximum TTL, so there is one
//!   path to get right.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::time::Instant;
use tollgate_store::keystore::Keystore;

use super::config::{VaultAuthKind, VaultConfig, manager_credential};
use super::{SecretsError, clip, http_client, read_limited, sensitive, unreachable};
use crate::credential::{CredentialSource, valid_segments};

const SERVICE: &str = "vault";
/// Header that carries the token.
pub const TOKEN_HEADER: &str = "X-Vault-Token";
/// Header that carries the namespace.
pub const NAMESPACE_HEADER: &str = "X-Vault-Namespace";
/// Shortest lease after which tollgate logs in again; guards against a server that hands out
/// zero-length leases making tollgate log in on every read.
pub const MIN_RELOGIN_AFTER: Duration = Duration::from_secs(5);

enum Auth {
    Token(CredentialSource),
    AppRole {
        mount: String,
        role_id: CredentialSource,
        secret_id: CredentialSource,
    },
}

struct Session {
    token: Arc<SecretString>,
    /// When to log in again; `None` for tokens that do not expire.
    relogin_at: Option<Instant>,
}

/// A client of one Vault / OpenBao server.
pub struct VaultClient {
    address: String,
    namespace: Option<String>,
    auth: Auth,
    session: tokio::sync::Mutex<Option<Session>>,
    http: reqwest::Client,
}

impl std::fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match &self.auth {
            Auth::Token(src) => format!("token from {}", src.reference().describe()),
            Auth::AppRole { mount, .. } => format!("approle at auth/{mount}"),
        };
        f.debug_struct("VaultClient")
            .field("address", &self.address)
            .field("namespace", &self.namespace)
            .field("auth", &auth)
            .finish_non_exhaustive()
    }
}

/// Vault answered 403: the token is unknown, expired, revoked, used up, or lacks a policy.
struct Forbidden;

impl VaultClient {
    /// A client for a validated `[secrets.vault]` section; `keystore` resolves `keystore://`
    /// references to the token, role id or secret id.
    pub fn from_config(cfg: &VaultConfig, keystore: Option<Keystore>) -> Result<Self, String> {
        let source = |name: &str, r: &Option<toml::Spanned<String>>| {
            let r = r
                .as_ref()
                .ok_or_else(|| format!("{name} is required with this auth method"))?;
            let parsed = manager_credential(r.get_ref()).map_err(|e| format!("{name}: {e}"))?;
            Ok::<_, String>(CredentialSource::new(parsed, keystore.clone()))
        };
        let auth = match cfg.auth {
            VaultAuthKind::Token => Auth::Token(source("token", &cfg.token)?),
            VaultAuthKind::Approle => Auth::AppRole {
                mount: cfg.approle_mount().to_owned(),
                role_id: source("role_id", &cfg.role_id)?,
                secret_id: source("secret_id", &cfg.secret_id)?,
            },
        };
        Ok(Self {
            address: cfg.address.trim_end_matches('/').to_owned(),
            namespace: cfg.namespace.clone(),
            auth,
            session: tokio::sync::Mutex::new(None),
            http: http_client()?,
        })
    }

    /// Read `data.data[field]` of the KV v2 secret at `mount`/`path`.
    pub async fn read(
        &self,
        mount: &str,
        path: &str,
        field: &str,
    ) -> Result<SecretString, SecretsError> {
        let url = self.data_url(mount, path)?;
        let body = self
            .authorized(|token| {
                self.with_headers(self.http.get(&url), token)
                    .header("accept", "application/json")
            })
            .await?;
        let doc: Value = parse_json(&body)?;
        let data = doc.get("data").and_then(|d| d.get("data")).ok_or_else(|| {
            SecretsError::Malformed(
                "the answer has no data.data; is the mount a KV version 2 engine?".into(),
            )
        })?;
        if data.is_null() {
            // A deleted (soft-deleted) latest version reads as data: null.
            return Err(SecretsError::NotFound);
        }
        match data.get(field) {
            Some(Value::String(s)) => Ok(SecretString::from(s.clone())),
            Some(_) => Err(SecretsError::Malformed(format!(
                "field {field:?} is not a string"
            ))),
            None => Err(SecretsError::FieldMissing(field.to_owned())),
        }
    }

    /// Set `field` of the KV v2 secret at `mount`/`path` to `value`, keeping its other
    /// fields; the secret is created when it does not exist.
    pub async fn write_field(
        &self,
        mount: &str,
        path: &str,
        field: &str,
        value: &SecretString,
    ) -> Result<(), SecretsError> {
        let url = self.data_url(mount, path)?;
        let mut data = serde_json::Map::new();
        data.insert(
            field.to_owned(),
            Value::String(value.expose_secret().to_owned()),
        );
        let body = json!({ "data": data });
        let patched = self
            .authorized(|token| {
                self.with_headers(self.http.patch(&url), token)
                    .header("content-type", "application/merge-patch+json")
                    .json(&body)
            })
            .await;
        match patched {
            Err(SecretsError::NotFound) => self
                .authorized(|token| self.with_headers(self.http.post(&url), token).json(&body))
                .await
                .map(drop),
            other => other.map(drop),
        }
    }

    /// The KV v2 data URL. Mount and path are joined into the URL as they are, so they must
    /// hold only URL-safe segments, as [`crate::credential::CredentialRef::parse`] ensures for references; a
    /// `..` could otherwise reach other APIs of the server.
    fn data_url(&self, mount: &str, path: &str) -> Result<String, SecretsError> {
        if !valid_segments(mount) || !valid_segments(path) {
            return Err(SecretsError::Malformed(
                "vault mounts and paths use A-Z a-z 0-9 . _ - between single '/'".into(),
            ));
        }
        Ok(format!("{}/v1/{mount}/data/{path}", self.address))
    }

    fn with_headers(
        &self,
        rb: reqwest::RequestBuilder,
        token: &SecretString,
    ) -> reqwest::RequestBuilder {
        let mut rb = rb.header(TOKEN_HEADER, sensitive(token.expose_secret()));
        if let Some(ns) = &self.namespace {
            rb = rb.header(NAMESPACE_HEADER, ns);
        }
        rb
    }

    /// Send a request built with the current token; when Vault refuses the token, drop it,
    /// get a fresh one (re-read or log in again) and try once more.
    async fn authorized<F>(&self, build: F) -> Result<Vec<u8>, SecretsError>
    where
        F: Fn(&SecretString) -> reqwest::RequestBuilder,
    {
        let mut retried = false;
        loop {
            let token = self.token().await?;
            match self.send(build(&token)).await {
                Ok(result) => return result,
                Err(Forbidden) if !retried => {
                    tracing::warn!(
                        address = %self.address,
                        "Vault refused tollgate's token; getting a fresh one"
                    );
                    self.forget_token(&token).await;
                    retried = true;
                }
                Err(Forbidden) => {
                    return Err(SecretsError::Denied {
                        service: SERVICE,
                        message: "permission denied (check the token's policies for this path)"
                            .into(),
                    });
                }
            }
        }
    }

    /// `Ok(result)` for every answer but a 403, which is `Err(Forbidden)`.
    async fn send(
        &self,
        rb: reqwest::RequestBuilder,
    ) -> Result<Result<Vec<u8>, SecretsError>, Forbidden> {
        let resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => return Ok(Err(unreachable(SERVICE, &e))),
        };
        let status = resp.status().as_u16();
        let body = match read_limited(resp, SERVICE).await {
            Ok(b) => b,
            Err(e) => return Ok(Err(e)),
        };
        Ok(match status {
            200..=299 => Ok(body),
            403 => return Err(Forbidden),
            404 => Err(SecretsError::NotFound),
            _ => Err(SecretsError::Status {
                service: SERVICE,
                status,
                message: server_message(&body),
            }),
        })
    }

    async fn token(&self) -> Result<Arc<SecretString>, SecretsError> {
        match &self.auth {
            Auth::Token(src) => src
                .get()
                .await
                .map_err(|e| SecretsError::Credential(e.to_string())),
            Auth::AppRole {
                mount,
                role_id,
                secret_id,
            } => {
                let mut session = self.session.lock().await;
                if let Some(s) = session.as_ref() {
                    if s.relogin_at.is_none_or(|at| Instant::now() < at) {
                        return Ok(s.token.clone());
                    }
                }
                let fresh = match self.login(mount, role_id, secret_id).await {
                    Ok(s) => s,
                    Err(e) => {
                        // The secret id may have been rotated (or used up): read both again
                        // on the next attempt.
                        role_id.invalidate();
                        secret_id.invalidate();
                        return Err(e);
                    }
                };
                tracing::info!(address = %self.address, mount = %mount, "logged in to Vault with AppRole");
                let token = fresh.token.clone();
                *session = Some(fresh);
                Ok(token)
            }
        }
    }

    async fn forget_token(&self, refused: &Arc<SecretString>) {
        match &self.auth {
            Auth::Token(src) => src.invalidate(),
            Auth::AppRole { .. } => {
                let mut session = self.session.lock().await;
                // Another request may already have logged in again; keep its token.
                if session
                    .as_ref()
                    .is_some_and(|s| Arc::ptr_eq(&s.token, refused))
                {
                    *session = None;
                }
            }
        }
    }

    async fn login(
        &self,
        mount: &str,
        role_id: &CredentialSource,
        secret_id: &CredentialSource,
    ) -> Result<Session, SecretsError> {
        let role = role_id
            .get()
            .await
            .map_err(|e| SecretsError::Credential(e.to_string()))?;
        let secret = secret_id
            .get()
            .await
            .map_err(|e| SecretsError::Credential(e.to_string()))?;
        let mut rb = self
            .http
            .post(format!("{}/v1/auth/{mount}/login", self.address))
            .json(&json!({
                "role_id": role.expose_secret(),
                "secret_id": secret.expose_secret(),
            }));
        if let Some(ns) = &self.namespace {
            rb = rb.header(NAMESPACE_HEADER, ns);
        }
        let resp = rb.send().await.map_err(|e| unreachable(SERVICE, &e))?;
        let status = resp.status().as_u16();
        let body = read_limited(resp, SERVICE).await?;
        match status {
            200..=299 => {}
            400 | 403 => {
                return Err(SecretsError::Denied {
                    service: SERVICE,
                    message: format!("AppRole login failed: {}", server_message(&body)),
                });
            }
            _ => {
                return Err(SecretsError::Status {
                    service: SERVICE,
                    status,
                    message: format!("AppRole login: {}", server_message(&body)),
                });
            }
        }
        let doc = parse_json(&body)?;
        let auth = doc.get("auth").ok_or_else(|| {
            SecretsError::Malformed("the AppRole login answer has no auth block".into())
        })?;
        let token = auth
            .get("client_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                SecretsError::Malformed("the AppRole login answer has no client_token".into())
            })?;
        let lease = auth
            .get("lease_duration")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        Ok(Session {
            token: Arc::new(SecretString::from(token.to_owned())),
            relogin_at: relogin_after(lease).map(|d| Instant::now() + d),
        })
    }
}

/// How long a token with a lease of `lease_secs` is used before logging in again: two thirds
/// of the lease (at least [`MIN_RELOGIN_AFTER`]); `None` for a lease of 0 (no expiry).
pub fn relogin_after(lease_secs: u64) -> Option<Duration> {
    (lease_secs > 0).then(|| Duration::from_secs(lease_secs * 2 / 3).max(MIN_RELOGIN_AFTER))
}

fn parse_json(body: &[u8]) -> Result<Value, SecretsError> {
    // serde_json's syntax errors give a position only, never the text around it.
    serde_json::from_slice(body).map_err(|e| {
        SecretsError::Malformed(format!(
            "the answer is not valid JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

/// Vault's `{"errors": [...]}` message, clipped; never the body itself.
fn server_message(body: &[u8]) -> String {
    let joined = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("errors").and_then(Value::as_array).map(|errs| {
                errs.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        })
        .unwrap_or_default();
    if joined.is_empty() {
        "no message".to_owned()
    } else {
        clip(&joined)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relogin_comes_before_the_lease_ends() {
        assert_eq!(relogin_after(0), None);
        assert_eq!(relogin_after(3600), Some(Duration::from_secs(2400)));
        assert_eq!(relogin_after(1), Some(MIN_RELOGIN_AFTER));
    }

    #[test]
    fn server_messages_come_from_the_errors_list_only() {
        assert_eq!(
            server_message(br#"{"errors":["permission denied"]}"#),
            "permission denied"
        );
        assert_eq!(server_message(b"<html>secret-ish</html>"), "no message");
        assert_eq!(server_message(br#"{"errors":[]}"#), "no message");
    }

    #[test]
    fn debug_names_the_token_reference_not_the_token() {
        let cfg: VaultConfig = toml::from_str(
            "address = \"http://127.0.0.1:8200/\"\ntoken = \"env:VAULT_TOKEN\"\nnamespace = \"team-a\"",
        )
        .unwrap();
        let c = VaultClient::from_config(&cfg, None).unwrap();
        let d = format!("{c:?}");
        assert!(d.contains("env:VAULT_TOKEN") && d.contains("team-a"), "{d}");
        assert_eq!(
            c.data_url("secret", "a/b").unwrap(),
            "http://127.0.0.1:8200/v1/secret/data/a/b"
        );
        for (mount, path) in [
            ("secret", "../../sys/seal"),
            ("sec ret", "a"),
            ("secret", ""),
        ] {
            assert!(c.data_url(mount, path).is_err(), "{mount} {path}");
        }
    }

    #[test]
    fn malformed_json_errors_give_a_position_only() {
        let e = parse_json(b"{\"data\": sk-live-123")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1"), "{e}");
        assert!(!e.contains("sk-live"), "{e}");
    }
}
