//! Persistence for tollgate, behind traits so that one gateway code path runs on the embedded
//! SQLite store (the default) and, for several instances, on Postgres.
//!
//! Two backends implement every trait, and the integration tests run each test on both:
//! - [`sqlite::SqliteStore`]: one file in WAL mode under the data directory;
//! - [`postgres::PgStore`]: a bounded connection pool to a shared database, for several
//!   gateway instances (DESIGN.md, "Storage").
//!
//! [`Store::connect`] picks one from a location ([`StoreUrl`]): a path or `sqlite://` for
//! SQLite, `postgres://` for Postgres. Both keep the same tables (`migrations/sqlite` and
//! `migrations/postgres` mirror each other) and share every decision that is not SQL: the
//! audit chain ([`audit::chain_batch`]) and retention (`audit::retention`).
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
//! - [`prompt::PromptStore`]: versioned prompts and their staging/production pointers;
//! - [`budget::BudgetLedger`]: budget spend with atomic reservations (DO-2);
//!   [`alert::AlertStore`]: raised alerts and what each key was seen using (MI-2);
//! - [`review::ReviewStore`]: the review queue of sampled, masked interactions and the daily
//!   per-route statistics behind drift scores (MI-4);
//! - [`Store`]: the traits [`KeyStore`], [`SecretStore`], [`AdminStore`],
//!   [`audit::AuditStore`], [`control::ControlStore`], [`budget::BudgetLedger`] and
//!   [`alert::AlertStore`] and [`review::ReviewStore`] in one handle, over either backend.

pub mod alert;
pub mod audit;
pub mod budget;
pub mod class;
pub mod control;
pub mod error;
pub mod key;
pub mod keystore;
pub mod master;
pub mod postgres;
pub mod prompt;
pub mod review;
pub mod sqlite;

use std::path::PathBuf;
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

/// An admin credential as listed: everything but its hash.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AdminEntry {
    /// Stable id, e.g. `adm_…`.
    pub id: String,
    /// Who or what it belongs to.
    pub name: String,
    /// Role bound to it, e.g. `owner`.
    pub role: String,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl AdminEntry {
    /// The entry as the admin API and the CLI show it, with its `state` (`active` or
    /// `revoked`).
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v["state"] = serde_json::Value::from(if self.revoked_at.is_some() {
            "revoked"
        } else {
            "active"
        });
        v
    }
}

/// The outcome of [`AdminStore::revoke_admin`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRevocation {
    /// Revoked now: it no longer opens the admin plane.
    Revoked,
    /// No credential has that id.
    NotFound,
    /// It was revoked before.
    AlreadyRevoked,
    /// It is the last active owner credential: revoking it would lock every owner out
    /// (nobody could make an owner again), so it stays.
    LastOwner,
}

/// The role that may do everything on the admin plane, and of which one must remain.
pub const OWNER_ROLE: &str = "owner";

/// Admin credential persistence.
#[async_trait]
pub trait AdminStore: Send + Sync {
    /// Store a new admin credential.
    async fn insert_admin(&self, cred: &AdminCredential) -> Result<()>;
    /// Number of admin credentials that are not revoked.
    async fn active_admin_count(&self) -> Result<u64>;
    /// The active (not revoked) credential with this HMAC.
    async fn admin_by_hash(&self, hash: &KeyHash) -> Result<Option<AdminCredential>>;
    /// Every admin credential, revoked ones included, oldest first.
    async fn list_admins(&self) -> Result<Vec<AdminEntry>>;
    /// Revoke credential `id` as of `at`, unless it is the last active [`OWNER_ROLE`]
    /// credential; atomic against concurrent revocations, so two owners revoking each other
    /// cannot leave none.
    async fn revoke_admin(&self, id: &str, at: DateTime<Utc>) -> Result<AdminRevocation>;
}

/// The conditional update behind [`AdminStore::revoke_admin`] (`?1`/`$1` the time, `?2`/`$2`
/// the id): it revokes an active credential unless it is the last active owner.
pub(crate) const REVOKE_ADMIN_SQL: &str = "UPDATE admin_credentials SET revoked_at = $1
     WHERE id = $2 AND revoked_at IS NULL
       AND (role <> 'owner'
            OR (SELECT COUNT(*) FROM admin_credentials WHERE role = 'owner' AND revoked_at IS NULL) > 1)";

/// Why [`REVOKE_ADMIN_SQL`] changed nothing, from the credential's row (`None`: no such id).
pub(crate) fn unrevoked_reason(revoked: Option<Option<i64>>) -> AdminRevocation {
    match revoked {
        None => AdminRevocation::NotFound,
        Some(Some(_)) => AdminRevocation::AlreadyRevoked,
        Some(None) => AdminRevocation::LastOwner,
    }
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
    /// Kill switches.
    pub control: Arc<dyn control::ControlStore>,
    /// Budget spend and reservations (DO-2).
    pub budgets: Arc<dyn budget::BudgetLedger>,
    /// Alerts and key sightings (MI-2).
    pub alerts: Arc<dyn alert::AlertStore>,
    /// Versioned prompts and their environments.
    pub prompts: Arc<dyn prompt::PromptStore>,
    /// The review queue and daily route statistics (MI-4).
    pub reviews: Arc<dyn review::ReviewStore>,
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
        B: KeyStore
            + SecretStore
            + AdminStore
            + audit::AuditStore
            + control::ControlStore
            + budget::BudgetLedger
            + alert::AlertStore
            + prompt::PromptStore
            + review::ReviewStore
            + 'static,
    {
        Self {
            keys: backend.clone(),
            secrets: backend.clone(),
            admins: backend.clone(),
            budgets: backend.clone(),
            alerts: backend.clone(),
            audit: backend.clone(),
            prompts: backend.clone(),
            reviews: backend.clone(),
            control: backend,
        }
    }
}

/// Where a store lives: the value of `tollgate serve --store`.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// A SQLite file (`/path/to/tollgate.db`, `sqlite:///abs/path.db`, `sqlite://rel.db`).
    Sqlite(PathBuf),
    /// A Postgres database (`postgres://…` or `postgresql://…`), passed to the driver as is.
    Postgres(String),
}

impl StoreUrl {
    /// Parse a store location: `postgres://` and `postgresql://` URLs name Postgres,
    /// `sqlite://` (or `sqlite:`) URLs and anything without a scheme name a SQLite file.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |reason| StoreError::BadStoreUrl {
            url: redact_url(s),
            reason,
        };
        let s = s.trim();
        if s.is_empty() {
            return Err(bad("it is empty"));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(Self::Postgres(s.to_owned()));
        }
        let path = match s
            .strip_prefix("sqlite://")
            .or_else(|| s.strip_prefix("sqlite:"))
        {
            Some(p) => p,
            None if s.contains("://") => {
                return Err(bad("use a file path, sqlite://PATH or postgres://…"));
            }
            None => s,
        };
        if path.is_empty() || path.contains('?') {
            return Err(bad("a SQLite location is a file path, without options"));
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }
}

/// Shows the location without a password (`postgres://user:***@host/db`).
impl std::fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            Self::Postgres(u) => f.write_str(&redact_url(u)),
        }
    }
}

impl std::fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreUrl({self})")
    }
}

/// `url` with the password of its user info replaced by `***` and its query (which may
/// hold `password=`) cut off, for messages and logs.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, _)) => (r, "?…"),
        None => (rest, ""),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => format!("{user}@{host}"),
        },
        None => authority.to_owned(),
    };
    format!("{scheme}://{authority}{path}{query}")
}

impl Store {
    /// Open the store at `location` ([`StoreUrl::parse`]); see [`Store::open`].
    pub async fn connect(location: &str) -> Result<Self> {
        Self::open(&StoreUrl::parse(location)?).await
    }

    /// Open the store at `location`: a SQLite file is created if missing; a Postgres
    /// database is connected to with [`postgres::PgOptions::default`]. Either way the schema
    /// is migrated to this version.
    pub async fn open(location: &StoreUrl) -> Result<Self> {
        match location {
            StoreUrl::Sqlite(path) => Ok(Self::from_backend(Arc::new(
                sqlite::SqliteStore::open(path).await?,
            ))),
            StoreUrl::Postgres(url) => Ok(Self::from_backend(Arc::new(
                postgres::PgStore::connect(url, &postgres::PgOptions::default()).await?,
            ))),
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_locations_pick_the_backend() {
        let pg = StoreUrl::parse("postgres://u:pw@db:5432/tollgate").unwrap_or_else(|e| {
            unreachable!("{e}");
        });
        assert_eq!(
            pg,
            StoreUrl::Postgres("postgres://u:pw@db:5432/tollgate".into())
        );
        assert!(matches!(
            StoreUrl::parse("postgresql://db/x"),
            Ok(StoreUrl::Postgres(_))
        ));
        for (text, path) in [
            ("sqlite:///var/lib/tollgate.db", "/var/lib/tollgate.db"),
            ("sqlite://data/t.db", "data/t.db"),
            ("sqlite:t.db", "t.db"),
            ("./tollgate-data/tollgate.db", "./tollgate-data/tollgate.db"),
        ] {
            assert!(
                matches!(StoreUrl::parse(text), Ok(StoreUrl::Sqlite(p)) if p == std::path::Path::new(path)),
                "{text}"
            );
        }
        for bad in [
            "",
            "  ",
            "mysql://db/x",
            "sqlite://",
            "sqlite://t.db?mode=ro",
        ] {
            assert!(StoreUrl::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn store_locations_never_show_a_password() {
        let url =
            "postgres://svc:hunter2@db.internal:5432/tollgate?password=hunter2&sslmode=require";
        let shown = StoreUrl::parse(url)
            .map(|u| format!("{u} {u:?}"))
            .unwrap_or_default();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            shown.contains("postgres://svc:***@db.internal:5432/tollgate?…"),
            "{shown}"
        );
        let err = StoreUrl::parse("mysql://root:hunter2@db/x")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("mysql://root:***@db/x"), "{err}");
        assert_eq!(redact_url("postgres://db/x"), "postgres://db/x");
        assert_eq!(redact_url("postgres://me@db/x"), "postgres://me@db/x");
    }
}
