//! Provider credentials by reference (checklist AC-1).
//!
//! A provider's `api_key` names where the secret lives: the embedded keystore, a mounted file,
//! an environment variable, or a secrets manager (`vault://`, `aws-sm://`; see
//! [`crate::secrets`]). The value is fetched at start-up, cached, re-read after
//! [`CREDENTIAL_TTL`] (so a rotated file, keystore entry or managed secret is picked up) and
//! re-read at once after an upstream 401. Values are `SecretString`s and never reach logs,
//! errors or `Debug` output.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use secrecy::SecretString;
use tollgate_store::keystore::Keystore;

use crate::secrets::SecretBackends;

/// How long a fetched credential is used before it is read again.
pub const CREDENTIAL_TTL: Duration = Duration::from_secs(60);
/// Largest credential file accepted.
pub const MAX_CREDENTIAL_FILE_BYTES: u64 = 64 * 1024;
/// Longest credential reference accepted.
pub const MAX_REFERENCE_LEN: usize = 1024;
/// Longest `#FIELD` of a `vault://` or `aws-sm://` reference.
pub const MAX_FIELD_LEN: usize = 128;
/// Longest AWS secret name or ARN (AWS allows 512 characters for a name; an ARN adds its
/// prefix and suffix).
pub const MAX_AWS_SECRET_ID_LEN: usize = 2048;

/// Where a credential lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialRef {
    /// `keystore://NAME`: the embedded, encrypted keystore.
    Keystore(String),
    /// `file:///abs/path`: a mounted secret file (trailing newline trimmed).
    File(PathBuf),
    /// `env:NAME`: an environment variable; accepted, but reported as a warning.
    Env(String),
    /// `vault://MOUNT/PATH#FIELD`: field `FIELD` of the Vault / OpenBao KV v2 secret `PATH`
    /// in the engine mounted at `MOUNT`.
    Vault {
        /// The KV v2 engine's mount, e.g. `secret`.
        mount: String,
        /// The secret's path inside the engine, e.g. `tollgate/openai`.
        path: String,
        /// The field holding the value, e.g. `api_key`.
        field: String,
    },
    /// `aws-sm://NAME[#FIELD]`: the AWS Secrets Manager secret `NAME` (a name or an ARN);
    /// its whole `SecretString`, or one field of the JSON object it holds.
    AwsSm {
        /// Secret name or ARN.
        name: String,
        /// Field of the JSON `SecretString`, if any.
        field: Option<String>,
    },
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
        "credential scheme {0}:// is not supported by this build; use keystore://, vault://, aws-sm://, file:// or env:"
    )]
    Unsupported(String),
    /// A reference with a bad name or path.
    #[error("malformed credential reference: {0}")]
    Malformed(&'static str),
}

impl CredentialRef {
    /// Parse a reference string.
    pub fn parse(s: &str) -> Result<Self, CredentialRefError> {
        if s.len() > MAX_REFERENCE_LEN {
            return Err(CredentialRefError::Malformed(
                "references are at most 1024 bytes long",
            ));
        }
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
        if let Some(rest) = s.strip_prefix("vault://") {
            return parse_vault(rest);
        }
        if let Some(rest) = s.strip_prefix("aws-sm://") {
            return parse_aws_sm(rest);
        }
        for scheme in ["gcp-sm", "azure-kv"] {
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
            Self::Vault { mount, path, field } => format!("vault://{mount}/{path}#{field}"),
            Self::AwsSm { name, field: None } => format!("aws-sm://{name}"),
            Self::AwsSm {
                name,
                field: Some(f),
            } => format!("aws-sm://{name}#{f}"),
        }
    }
}

/// `MOUNT/PATH#FIELD` after `vault://`. Every segment is restricted to characters that are
/// safe in a URL path as they are, and `.` / `..` are refused, so a reference cannot walk
/// out of its engine (`vault://secret/../sys/...`).
fn parse_vault(rest: &str) -> Result<CredentialRef, CredentialRefError> {
    const SHAPE: &str = "vault references look like vault://MOUNT/PATH#FIELD, e.g. vault://secret/tollgate/openai#api_key";
    let (location, field) = rest
        .split_once('#')
        .ok_or(CredentialRefError::Malformed(SHAPE))?;
    let (mount, path) = location
        .split_once('/')
        .ok_or(CredentialRefError::Malformed(SHAPE))?;
    if !valid_segments(mount) || !valid_segments(path) {
        return Err(CredentialRefError::Malformed(
            "vault mounts and paths use A-Z a-z 0-9 . _ - between single '/' (no '.' or '..' parts)",
        ));
    }
    if !valid_field(field) {
        return Err(CredentialRefError::Malformed(
            "a vault #FIELD uses A-Z a-z 0-9 . _ - (at most 128)",
        ));
    }
    Ok(CredentialRef::Vault {
        mount: mount.to_owned(),
        path: path.to_owned(),
        field: field.to_owned(),
    })
}

/// `NAME[#FIELD]` after `aws-sm://`; `NAME` is a secret name (`A-Z a-z 0-9 / _ + = . @ -`)
/// or an ARN (which adds `:`).
fn parse_aws_sm(rest: &str) -> Result<CredentialRef, CredentialRefError> {
    let (name, field) = match rest.split_once('#') {
        Some((n, f)) => (n, Some(f)),
        None => (rest, None),
    };
    if name.is_empty()
        || name.len() > MAX_AWS_SECRET_ID_LEN
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_+=.@-:".contains(&b))
    {
        return Err(CredentialRefError::Malformed(
            "aws-sm references look like aws-sm://NAME or aws-sm://NAME#FIELD; names use A-Z a-z 0-9 / _ + = . @ - (and : in an ARN)",
        ));
    }
    if let Some(f) = field {
        if !valid_field(f) {
            return Err(CredentialRefError::Malformed(
                "an aws-sm #FIELD uses A-Z a-z 0-9 . _ - (at most 128)",
            ));
        }
    }
    Ok(CredentialRef::AwsSm {
        name: name.to_owned(),
        field: field.map(str::to_owned),
    })
}

/// Whether `s` is one or more `/`-separated segments of `A-Z a-z 0-9 . _ -`, none empty,
/// `.` or `..`: safe to put in a URL path as it is.
pub(crate) fn valid_segments(s: &str) -> bool {
    !s.is_empty()
        && s.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

fn valid_field(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_FIELD_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
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
    backends: SecretBackends,
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
        Self::with_backends(reference, SecretBackends::keystore_only(keystore))
    }

    /// A source for `reference` resolved with `backends` (keystore, Vault, AWS).
    pub fn with_backends(reference: CredentialRef, backends: SecretBackends) -> Self {
        Self {
            reference,
            backends,
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
                    .backends
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
            CredentialRef::Vault { mount, path, field } => self
                .backends
                .vault
                .as_ref()
                .ok_or_else(|| fail("no [secrets.vault] section in the config".into()))
                // Boxed: the Vault client reads its own token through a CredentialSource, so
                // this future would otherwise contain itself.
                .map(|v| Box::pin(v.read(mount, path, field)))?
                .await
                .map_err(|e| fail(e.to_string()))?,
            CredentialRef::AwsSm { name, field } => self
                .backends
                .aws
                .as_ref()
                .ok_or_else(|| fail("no [secrets.aws] section in the config".into()))
                .map(|a| Box::pin(a.get_secret(name, field.as_deref())))?
                .await
                .map_err(|e| fail(e.to_string()))?,
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
            CredentialRef::parse("gcp-sm://p/s"),
            Err(CredentialRefError::Unsupported(_))
        ));
    }

    #[test]
    fn vault_and_aws_references_parse_and_describe_themselves() {
        let v = CredentialRef::parse("vault://secret/tollgate/openai#api_key").unwrap();
        assert_eq!(
            v,
            CredentialRef::Vault {
                mount: "secret".into(),
                path: "tollgate/openai".into(),
                field: "api_key".into()
            }
        );
        assert_eq!(v.describe(), "vault://secret/tollgate/openai#api_key");
        let a = CredentialRef::parse("aws-sm://prod/openai").unwrap();
        assert_eq!(
            a,
            CredentialRef::AwsSm {
                name: "prod/openai".into(),
                field: None
            }
        );
        assert_eq!(a.describe(), "aws-sm://prod/openai");
        let arn =
            "aws-sm://arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/openai-AbCdEf#key";
        let a = CredentialRef::parse(arn).unwrap();
        assert_eq!(a.describe(), arn);
        assert!(a.warning().is_none() && v.warning().is_none());
    }

    #[test]
    fn malformed_vault_and_aws_references_are_refused() {
        let long_field = format!("vault://secret/a#{}", "f".repeat(MAX_FIELD_LEN + 1));
        let long_ref = format!("aws-sm://{}", "n".repeat(MAX_REFERENCE_LEN));
        let long_name = format!("aws-sm://{}", "n".repeat(MAX_AWS_SECRET_ID_LEN + 1));
        for bad in [
            "vault://",
            "vault://secret",
            "vault://secret/openai",
            "vault://secret/openai#",
            "vault://secret#field",
            "vault:///openai#k",
            "vault://secret//openai#k",
            "vault://secret/openai/#k",
            "vault://secret/../sys/seal#k",
            "vault://secret/./a#k",
            "vault://secret/a b#k",
            "vault://secret/a?x=1#k",
            "vault://secret/a%2F..#k",
            "vault://secret/a#k#j",
            "vault://secret/a#fi eld",
            "vault://secret/ä#k",
            long_field.as_str(),
            "aws-sm://",
            "aws-sm://#field",
            "aws-sm://name#",
            "aws-sm://na me",
            "aws-sm://name?x",
            "aws-sm://name#a#b",
            "aws-sm://name#fi eld",
            long_ref.as_str(),
            long_name.as_str(),
        ] {
            assert!(
                matches!(
                    CredentialRef::parse(bad),
                    Err(CredentialRefError::Malformed(_))
                ),
                "{bad:?} should be malformed"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn parsing_arbitrary_references_never_panics_and_round_trips(
            s in "(vault://|aws-sm://)?[a-z/#.:_ -]{0,40}"
        ) {
            if let Ok(r) = CredentialRef::parse(&s) {
                proptest::prop_assert_eq!(r.describe(), s);
            }
        }
    }

    #[tokio::test]
    async fn managed_references_without_a_backend_fail_naming_the_reference() {
        let r = CredentialRef::parse("vault://secret/a#k").unwrap();
        let e = CredentialSource::new(r, None).get().await.unwrap_err();
        assert_eq!(e.reference, "vault://secret/a#k");
        assert!(e.reason.contains("[secrets.vault]"), "{e}");
        let r = CredentialRef::parse("aws-sm://a").unwrap();
        let e = CredentialSource::new(r, None).get().await.unwrap_err();
        assert!(e.reason.contains("[secrets.aws]"), "{e}");
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
