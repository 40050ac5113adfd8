//! Provider credentials by reference (checklist AC-1).
//!
//! A provider's `api_key` names where the secret lives; the value is fetched at start-up,
//! cached, re-read after [`CREDENTIAL_TTL`] (so a rotated file or keystore entry is picked up)
//! and re-read at once after an upstream 401. Values are `SecretString`s and never reach logs,
//! errors or `Debug` output.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use secrecy::SecretString;
use tollgate_store::keystore::Keystore;

/// How long a fetched credential is used before it is read again.
pub const CREDENTIAL_TTL: Duration = Duration::from_secs(60);
/// Largest credential file accepted.
pub const MAX_CREDENTIAL_FILE_BYTES: u64 = 64 * 1024;

/// Where a credential lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialRef {
    /// `keystore://NAME`: the embedded, encrypted keystore.
    Keystore(String),
    /// `file:///abs/path`: a mounted secret file (trailing newline trimmed).
    File(PathBuf),
    /// `env:NAME`: an environment variable; accepted, but reported as a warning.
    Env(String),
}

/// Why a credential reference is not acceptable. Never contains the value itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialRefError {
    /// The value is not a reference at all: most likely a literal key.
    #[error(
        "not a credential reference; literal keys are not allowed in config: store the key with `tollgate secrets set NAME` and write \"keystore://NAME\" (or use file:///path or env:NAME)"
    )]
    Literal,
    /// A reference scheme this build cannot resolve yet.
    #[error(
        "credential scheme {0}:// is not supported by this build; use keystore://, file:// or env:"
    )]
    Unsupported(String),
    /// A reference with a bad name or path.
    #[error("malformed credential reference: {0}")]
    Malformed(&'static str),
}

impl CredentialRef {
    /// Parse a reference string.
    pub fn parse(s: &str) -> Result<Self, CredentialRefError> {
        if let Some(name) = s.strip_prefix("keystore://") {
            if tollgate_store::keystore::valid_name(name) {
                return Ok(Self::Keystore(name.to_owned()));
            }
            return Err(CredentialRefError::Malformed(
                "keystore names use A-Z a-z 0-9 . _ - /",
            ));
        }
        if let Some(path) = s.strip_prefix("file://") {
            if path.starts_with('/') && !path.contains('\0') {
                return Ok(Self::File(PathBuf::from(path)));
            }
            return Err(CredentialRefError::Malformed(
                "file references need an absolute path: file:///run/secrets/openai",
            ));
        }
        if let Some(var) = s.strip_prefix("env:") {
            if !var.is_empty() && var.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Ok(Self::Env(var.to_owned()));
            }
            return Err(CredentialRefError::Malformed(
                "environment variable names use A-Z 0-9 _",
            ));
        }
        for scheme in ["vault", "aws-sm", "gcp-sm", "azure-kv"] {
            if s.starts_with(&format!("{scheme}://")) {
                return Err(CredentialRefError::Unsupported(scheme.to_owned()));
            }
        }
        Err(CredentialRefError::Literal)
    }

    /// A warning to show for weak but accepted references.
    pub fn warning(&self) -> Option<String> {
        match self {
            Self::Env(v) => Some(format!(
                "credential from environment variable {v}: environment variables leak into child processes and crash dumps; prefer keystore:// or a mounted file:// secret (checklist AC-1)"
            )),
            _ => None,
        }
    }

    /// The reference as written (safe to show).
    pub fn describe(&self) -> String {
        match self {
            Self::Keystore(n) => format!("keystore://{n}"),
            Self::File(p) => format!("file://{}", p.display()),
            Self::Env(v) => format!("env:{v}"),
        }
    }
}

/// Why a credential could not be fetched.
#[derive(Debug, thiserror::Error)]
#[error("credential {reference}: {reason}")]
pub struct CredentialError {
    /// The reference (safe to show).
    pub reference: String,
    /// What went wrong.
    pub reason: String,
}

/// A credential reference with its cached value.
pub struct CredentialSource {
    reference: CredentialRef,
    keystore: Option<Keystore>,
    cached: Mutex<Option<(Arc<SecretString>, Instant)>>,
}

impl std::fmt::Debug for CredentialSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CredentialSource({})", self.reference.describe())
    }
}

impl CredentialSource {
    /// A source for `reference`; `keystore` is needed for `keystore://` references.
    pub fn new(reference: CredentialRef, keystore: Option<Keystore>) -> Self {
        Self {
            reference,
            keystore,
            cached: Mutex::new(None),
        }
    }

    /// The reference (safe to show).
    pub fn reference(&self) -> &CredentialRef {
        &self.reference
    }

    /// The current value, from cache when fresh.
    pub async fn get(&self) -> Result<Arc<SecretString>, CredentialError> {
        if let Some((v, at)) = self.cached.lock().as_ref() {
            if at.elapsed() < CREDENTIAL_TTL {
                return Ok(v.clone());
            }
        }
        let v = Arc::new(self.fetch().await?);
        *self.cached.lock() = Some((v.clone(), Instant::now()));
        Ok(v)
    }

    /// Drop the cached value so the next use re-reads it (after an upstream 401).
    pub fn invalidate(&self) {
        *self.cached.lock() = None;
    }

    async fn fetch(&self) -> Result<SecretString, CredentialError> {
        let fail = |reason: String| CredentialError {
            reference: self.reference.describe(),
            reason,
        };
        let value = match &self.reference {
            CredentialRef::Keystore(name) => {
                let ks = self
                    .keystore
                    .as_ref()
                    .ok_or_else(|| fail("no keystore available".into()))?;
                ks.get(name)
                    .await
                    .map_err(|e| fail(e.to_string()))?
                    .ok_or_else(|| {
                        fail(format!(
                            "not found in the keystore; add it with `tollgate secrets set {name}`"
                        ))
                    })?
            }
            CredentialRef::File(path) => {
                let meta = tokio::fs::metadata(path)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                if meta.len() > MAX_CREDENTIAL_FILE_BYTES {
                    return Err(fail("file too large to be a credential".into()));
                }
                let text = tokio::fs::read_to_string(path)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                SecretString::from(text.trim_end_matches(['\n', '\r']).to_owned())
            }
            CredentialRef::Env(var) => {
                let v = std::env::var(var)
                    .map_err(|_| fail("environment variable is not set".into()))?;
                SecretString::from(v)
            }
        };
        if secrecy::ExposeSecret::expose_secret(&value).is_empty() {
            return Err(fail("credential is empty".into()));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn references_parse() {
        assert_eq!(
            CredentialRef::parse("keystore://openai").unwrap(),
            CredentialRef::Keystore("openai".into())
        );
        assert_eq!(
            CredentialRef::parse("file:///run/secrets/k").unwrap(),
            CredentialRef::File("/run/secrets/k".into())
        );
        assert_eq!(
            CredentialRef::parse("env:OPENAI_API_KEY").unwrap(),
            CredentialRef::Env("OPENAI_API_KEY".into())
        );
    }

    #[test]
    fn literals_and_malformed_references_are_refused() {
        assert_eq!(
            CredentialRef::parse("sk-abc123").unwrap_err(),
            CredentialRefError::Literal
        );
        assert_eq!(
            CredentialRef::parse("").unwrap_err(),
            CredentialRefError::Literal
        );
        assert!(matches!(
            CredentialRef::parse("file://relative"),
            Err(CredentialRefError::Malformed(_))
        ));
        assert!(matches!(
            CredentialRef::parse("keystore://"),
            Err(CredentialRefError::Malformed(_))
        ));
        assert!(matches!(
            CredentialRef::parse("keystore://a b"),
            Err(CredentialRefError::Malformed(_))
        ));
        assert!(matches!(
            CredentialRef::parse("env:"),
            Err(CredentialRefError::Malformed(_))
        ));
        assert!(matches!(
            CredentialRef::parse("vault://kv/openai"),
            Err(CredentialRefError::Unsupported(_))
        ));
    }

    #[tokio::test]
    async fn file_source_reads_trims_and_rereads_after_invalidate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "first\n").unwrap();
        let src = CredentialSource::new(CredentialRef::File(path.clone()), None);
        assert_eq!(src.get().await.unwrap().expose_secret(), "first");
        std::fs::write(&path, "second\n").unwrap();
        assert_eq!(
            src.get().await.unwrap().expose_secret(),
            "first",
            "cached within TTL"
        );
        src.invalidate();
        assert_eq!(src.get().await.unwrap().expose_secret(), "second");
        assert!(!format!("{src:?}").contains("second"));
    }

    #[tokio::test]
    async fn missing_or_empty_credentials_are_errors_without_values() {
        let dir = tempfile::tempdir().unwrap();
        let src = CredentialSource::new(CredentialRef::File(dir.path().join("none")), None);
        assert!(src.get().await.is_err());
        let path = dir.path().join("empty");
        std::fs::write(&path, "\n").unwrap();
        let src = CredentialSource::new(CredentialRef::File(path), None);
        assert!(src.get().await.unwrap_err().to_string().contains("empty"));
        let src = CredentialSource::new(CredentialRef::Keystore("x".into()), None);
        assert!(src.get().await.is_err());
    }
}
