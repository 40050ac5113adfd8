//! Errors of the store crate.

/// Why a store operation failed. Messages never include key material or secret values.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying schema migrations failed.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// A file (data dir, master key) could not be read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The master key file exists but is not a valid key.
    #[error("master key file {path} is invalid: {reason}")]
    BadMasterKey {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A sealed value could not be opened: wrong master key or tampered data.
    #[error(
        "secret {name:?} cannot be decrypted (wrong master key, or the stored value was altered)"
    )]
    Decrypt {
        /// Name of the secret.
        name: String,
    },
    /// A stored row holds a value this version cannot interpret.
    #[error("corrupt stored value in {what}")]
    Corrupt {
        /// Which value.
        what: &'static str,
    },
    /// Appending to the audit trail failed (the database refused the write).
    #[error("audit append failed: {0}")]
    Append(String),
    /// A `--store` value names no store this version can open.
    #[error("invalid store location {url}: {reason}")]
    BadStoreUrl {
        /// The value, with any password removed.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The database server did not accept a connection in time.
    #[error("the database did not accept a connection within {0:?}")]
    ConnectTimeout(std::time::Duration),
    /// A Postgres schema name is not a plain identifier.
    #[error(
        "invalid Postgres schema name {0:?}: use 1-63 characters of a-z 0-9 _, not starting with a digit"
    )]
    BadSchemaName(String),
    /// A secret name is not acceptable.
    #[error("invalid secret name {0:?}: use 1-128 characters of A-Z a-z 0-9 . _ - /")]
    BadSecretName(String),
    /// A prompt version that does not exist was named.
    #[error("prompt {name:?} has no version {version}")]
    NoSuchPromptVersion {
        /// Prompt name.
        name: String,
        /// Version asked for.
        version: i64,
    },
}
