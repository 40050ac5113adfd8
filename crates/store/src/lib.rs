//! Persistence for tollgate, behind traits so that one gateway code path runs on the embedded
//! SQLite store (the default) and, for several instances, on Postgres.
//!
//! Main types:
//! - [`key::VirtualKey`]: a parsed, checksum-verified data-plane key; [`key::KeyRecord`] its
//!   stored metadata (only an HMAC of the key is ever persisted), including the
//!   [`class::DataClass`] of the data it carries (DP-4);
//! - [`master::MasterKey`]: the root secret in a 0600 file, from which the key pepper and the
//!   keystore cipher are derived;
//! - [`keystore::Keystore`]: provider credentials sealed with XChaCha20-Poly1305;
//! - [`audit`]: the hash-chained audit trail with signed checkpoints, sealed payloads and
//!   retention ([`audit::AuditStore`]);
//! - [`Store`]: the traits [`KeyStore`], [`SecretStore`], [`AdminStore`] and
//!   [`audit::AuditStore`] in one handle; [`sqlite::SqliteStore`] implements them.

pub mod audit;
pub mod class;
pub mod error;
pub mod key;
pub mod keystore;
pub mod master;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use error::StoreError;
use key::{KeyHash, KeyRecord};

/// Result type of every store operation.
pub type Result<T> = std::result::Result<T, StoreError>;

/// Virtual-key persistence.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Insert a new key record; fails if the id or hash already exists.
    async fn insert_key(&self, record: &KeyRecord) -> Result<()>;
    /// Look a key up by the HMAC of its text (the hot path of authentication).
    async fn key_by_hash(&self, hash: &KeyHash) -> Result<Option<KeyRecord>>;
    /// Look a key up by its id.
    async fn key_by_id(&self, id: &str) -> Result<Option<KeyRecord>>;
    /// All keys, newest first.
    async fn list_keys(&self) -> Result<Vec<KeyRecord>>;
    /// Mark a key revoked at `at`; returns false if no such key.
    async fn revoke_key(&self, id: &str, at: DateTime<Utc>) -> Result<bool>;
    /// Record that `old` was rotated to `new` and set `old` to expire at `grace_until`.
    async fn mark_rotated(&self, old: &str, new: &str, grace_until: DateTime<Utc>) -> Result<()>;
    /// Record last-use times in one batch (written off the request path).
    async fn touch_keys(&self, uses: &[(String, DateTime<Utc>)]) -> Result<()>;
    /// Whether the backend answers (readiness).
    async fn ping(&self) -> Result<()>;
}

/// Raw storage of sealed keystore values; encryption happens in [`keystore::Keystore`].
#[async_trait]
pub trait SecretStore: Send + Sync {
    /// Insert or replace a sealed value.
    async fn put_sealed(&self, name: &str, nonce: &[u8], ciphertext: &[u8]) -> Result<()>;
    /// Fetch a sealed value: `(nonce, ciphertext)`.
    async fn get_sealed(&self, name: &str) -> Result<Option<(Vec<u8>, Vec<u8>)>>;
    /// Names of all stored secrets (never their values).
    async fn secret_names(&self) -> Result<Vec<String>>;
    /// Delete a secret; returns false if it did not exist.
    async fn delete_secret(&self, name: &str) -> Result<bool>;
}

/// An admin-plane credential record (the credential itself is shown once, stored as HMAC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminCredential {
    /// Stable id, e.g. `adm_…`.
    pub id: String,
    /// HMAC of the credential text.
    pub hash: KeyHash,
    /// Who or what it belongs to.
    pub name: String,
    /// Role bound to it, e.g. `owner`.
    pub role: String,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
}

/// Admin credential persistence.
#[async_trait]
pub trait AdminStore: Send + Sync {
    /// Store a new admin credential.
    async fn insert_admin(&self, cred: &AdminCredential) -> Result<()>;
    /// Number of admin credentials that are not revoked.
    async fn active_admin_count(&self) -> Result<u64>;
    /// The active (not revoked) credential with this HMAC.
    async fn admin_by_hash(&self, hash: &KeyHash) -> Result<Option<AdminCredential>>;
}

/// Everything the gateway and CLI need from persistence, as one cloneable handle.
#[derive(Clone)]
pub struct Store {
    /// Virtual keys.
    pub keys: Arc<dyn KeyStore>,
    /// Sealed keystore values.
    pub secrets: Arc<dyn SecretStore>,
    /// Admin credentials.
    pub admins: Arc<dyn AdminStore>,
    /// The audit trail, payloads and legal holds.
    pub audit: Arc<dyn audit::AuditStore>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Store {
    /// Build a handle from one backend that implements every trait.
    pub fn from_backend<B>(backend: Arc<B>) -> Self
    where
        B: KeyStore + SecretStore + AdminStore + audit::AuditStore + 'static,
    {
        Self {
            keys: backend.clone(),
            secrets: backend.clone(),
            admins: backend.clone(),
            audit: backend,
        }
    }
}

/// Milliseconds since the Unix epoch, the portable time representation in every backend.
/// The current time at the millisecond precision every backend stores, so that a record
/// read back compares equal to the one written.
pub fn now() -> DateTime<Utc> {
    from_millis(to_millis(Utc::now()))
}

pub(crate) fn to_millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
