//! Secrets managers that provider credentials can live in (checklist AC-1).
//!
//! A provider's `api_key` may name a secret in a real secrets manager instead of the embedded
//! keystore:
//!
//! - `vault://MOUNT/PATH#FIELD`: HashiCorp Vault or OpenBao, KV version 2 ([`vault`]); the
//!   client logs in with a token or with AppRole and logs in again when the token expires or is
//!   refused;
//! - `aws-sm://NAME[#FIELD]`: AWS Secrets Manager ([`aws`]); requests are signed with
//!   Signature Version 4 ([`sigv4`]).
//!
//! Where each manager is and how tollgate authenticates to it is the `[secrets]` section of
//! `tollgate.toml` ([`SecretsConfig`]); the credentials *for* the manager are themselves
//! references to `file://`, `env:` or `keystore://`, never literals, and never another manager
//! (which would make start-up order a puzzle).
//!
//! [`SecretBackends`] bundles the clients built from that section with the keystore; a
//! [`crate::credential::CredentialSource`] holds one and asks the right client for its value.
//! Caching, the re-read after [`crate::credential::CREDENTIAL_TTL`] and the re-read after an
//! upstream 401 stay in `CredentialSource`, so a secret rotated in the manager is picked up
//! without a restart. [`SecretBackends::write`] stores a value at a reference, for automatic
//! key rotation.
//!
//! Secret values travel only as [`SecretString`]; errors ([`SecretsError`]) name the reference
//! and what went wrong, never a value or a response body.

pub mod aws;
pub mod config;
pub mod sigv4;
pub mod vault;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use secrecy::SecretString;
use tollgate_store::keystore::Keystore;

pub use config::{AwsConfig, SecretsConfig, VaultAuthKind, VaultConfig};

use crate::credential::CredentialRef;

/// Time allowed to connect to a secrets manager.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time allowed for one whole request to a secrets manager.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest response body read from a secrets manager. A KV secret or a `SecretString` is a
/// few kilobytes (Secrets Manager caps values at 64 KiB); anything far larger is refused.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;
/// Longest server error message repeated in an error (the rest is cut).
pub const MAX_SERVER_MESSAGE_CHARS: usize = 200;

/// Why a secrets manager could not give or take a value. Never contains a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    /// The reference needs a `[secrets.*]` section that the config does not have.
    #[error("no [secrets.{0}] section in the config")]
    NotConfigured(&'static str),
    /// The manager could not be reached or did not answer in time.
    #[error("cannot reach {service}: {reason}")]
    Unreachable {
        /// `vault` or `aws-sm`.
        service: &'static str,
        /// Transport error (no secret in it).
        reason: String,
    },
    /// The manager refused tollgate's own credentials, even after logging in again.
    #[error("{service} refused tollgate's credentials: {message}")]
    Denied {
        /// `vault` or `aws-sm`.
        service: &'static str,
        /// The manager's message.
        message: String,
    },
    /// The secret (path or name) does not exist.
    #[error("secret not found")]
    NotFound,
    /// The secret exists but has no such field.
    #[error("the secret has no field {0:?}")]
    FieldMissing(String),
    /// The secret or the response does not have the expected shape.
    #[error("{0}")]
    Malformed(String),
    /// The response is larger than [`MAX_RESPONSE_BYTES`].
    #[error("response larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    /// Any other refusal by the manager.
    #[error("{service} answered HTTP {status}: {message}")]
    Status {
        /// `vault` or `aws-sm`.
        service: &'static str,
        /// HTTP status.
        status: u16,
        /// The manager's message.
        message: String,
    },
    /// A credential *for* the manager (token, role id, access key) is unavailable.
    #[error("{0}")]
    Credential(String),
    /// The reference cannot be written to.
    #[error("{0}")]
    Unsupported(String),
}

/// The clients that resolve credential references, shared by every provider.
#[derive(Clone, Default)]
pub struct SecretBackends {
    /// The embedded keystore, for `keystore://`.
    pub keystore: Option<Keystore>,
    /// Vault / OpenBao, for `vault://`.
    pub vault: Option<Arc<vault::VaultClient>>,
    /// AWS Secrets Manager, for `aws-sm://`.
    pub aws: Option<Arc<aws::AwsSecretsManager>>,
}

impl std::fmt::Debug for SecretBackends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBackends")
            .field("keystore", &self.keystore.is_some())
            .field("vault", &self.vault)
            .field("aws", &self.aws)
            .finish()
    }
}

impl SecretBackends {
    /// Backends with only the keystore (no `[secrets]` section).
    pub fn keystore_only(keystore: Option<Keystore>) -> Self {
        Self {
            keystore,
            ..Self::default()
        }
    }

    /// Build the clients of a validated `[secrets]` section. Nothing is fetched yet: tokens
    /// and keys are read on first use.
    pub fn from_config(cfg: &SecretsConfig, keystore: Option<Keystore>) -> Result<Self, String> {
        let vault = match &cfg.vault {
            Some(v) => Some(Arc::new(
                vault::VaultClient::from_config(v, keystore.clone())
                    .map_err(|e| format!("secrets.vault: {e}"))?,
            )),
            None => None,
        };
        let aws = match &cfg.aws {
            Some(a) => Some(Arc::new(
                aws::AwsSecretsManager::from_config(a, keystore.clone())
                    .map_err(|e| format!("secrets.aws: {e}"))?,
            )),
            None => None,
        };
        Ok(Self {
            keystore,
            vault,
            aws,
        })
    }

    /// Store `value` at `reference`, replacing what is there (for key rotation): a Vault
    /// field is merged into its secret, an `aws-sm://NAME#FIELD` into its JSON object, and a
    /// missing secret is created. `file://` and `env:` references cannot be written.
    pub async fn write(
        &self,
        reference: &CredentialRef,
        value: &SecretString,
    ) -> Result<(), SecretsError> {
        match reference {
            CredentialRef::Vault { mount, path, field } => {
                self.vault
                    .as_ref()
                    .ok_or(SecretsError::NotConfigured("vault"))?
                    .write_field(mount, path, field, value)
                    .await
            }
            CredentialRef::AwsSm { name, field } => {
                self.aws
                    .as_ref()
                    .ok_or(SecretsError::NotConfigured("aws"))?
                    .put_secret(name, field.as_deref(), value)
                    .await
            }
            CredentialRef::Keystore(name) => self
                .keystore
                .as_ref()
                .ok_or_else(|| SecretsError::Unsupported("no keystore available".into()))?
                .set(name, value)
                .await
                .map_err(|e| SecretsError::Unsupported(e.to_string())),
            CredentialRef::File(_) | CredentialRef::Env(_) => Err(SecretsError::Unsupported(
                "file:// and env: references cannot be written; use keystore://, vault:// or aws-sm://"
                    .into(),
            )),
        }
    }
}

/// An HTTP client for a secrets manager: bounded connect and request time, no redirects
/// (a redirect could carry the token to another host), no proxy from the environment.
pub(crate) fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("tollgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build HTTP client: {e}"))
}

/// A header value kept out of `Debug` output of requests. A value that cannot be a header
/// (control characters) becomes an empty one, which the server then refuses.
pub(crate) fn sensitive(value: &str) -> reqwest::header::HeaderValue {
    let mut v = reqwest::header::HeaderValue::from_str(value)
        .unwrap_or_else(|_| reqwest::header::HeaderValue::from_static(""));
    v.set_sensitive(true);
    v
}

/// Read a response body of at most [`MAX_RESPONSE_BYTES`]; a larger one is an error rather
/// than a truncated (and misleading) document.
pub(crate) async fn read_limited(
    resp: reqwest::Response,
    service: &'static str,
) -> Result<Vec<u8>, SecretsError> {
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(SecretsError::TooLarge);
    }
    let mut out = Vec::new();
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| unreachable(service, &e))?;
        if out.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(SecretsError::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A transport error, in words (the URL in it holds no secret: tokens travel in headers).
pub(crate) fn unreachable(service: &'static str, e: &reqwest::Error) -> SecretsError {
    let reason = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        e.to_string()
    };
    SecretsError::Unreachable {
        service,
        reason: clip(&reason),
    }
}

/// A server message fit to repeat: control characters dropped, at most
/// [`MAX_SERVER_MESSAGE_CHARS`] characters.
pub(crate) fn clip(s: &str) -> String {
    let mut out: String = s
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_SERVER_MESSAGE_CHARS)
        .collect();
    if s.chars().filter(|c| !c.is_control()).count() > MAX_SERVER_MESSAGE_CHARS {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_messages_are_clipped_and_cleaned() {
        assert_eq!(clip("permission\ndenied"), "permissiondenied");
        let long = "x".repeat(MAX_SERVER_MESSAGE_CHARS + 50);
        let c = clip(&long);
        assert_eq!(c.chars().count(), MAX_SERVER_MESSAGE_CHARS + 1);
        assert!(c.ends_with('…'));
    }

    #[tokio::test]
    async fn file_and_env_references_cannot_be_written() {
        let b = SecretBackends::default();
        let v = SecretString::from("x".to_owned());
        for r in [
            CredentialRef::Env("X".into()),
            CredentialRef::File("/x".into()),
        ] {
            assert!(matches!(
                b.write(&r, &v).await,
                Err(SecretsError::Unsupported(_))
            ));
        }
        let r = CredentialRef::parse("vault://secret/a#k").unwrap();
        assert_eq!(
            b.write(&r, &v).await,
            Err(SecretsError::NotConfigured("vault"))
        );
    }
}
