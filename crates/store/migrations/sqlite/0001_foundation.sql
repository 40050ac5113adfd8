-- Virtual keys: only an HMAC of the key is stored; the key itself is shown once.
CREATE TABLE virtual_keys (
    id             TEXT PRIMARY KEY,
    hash           BLOB NOT NULL UNIQUE,
    display_prefix TEXT NOT NULL,
    name           TEXT NOT NULL,
    owner          TEXT,
    team           TEXT,
    environment    TEXT NOT NULL,
    allowed_models TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER,
    revoked_at     INTEGER,
    last_used_at   INTEGER,
    rotated_from   TEXT,
    rotated_to     TEXT
);

-- The embedded keystore: values sealed with an AEAD under a key derived from the master key.
CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    nonce      BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Admin-plane credentials, distinct from data-plane virtual keys.
CREATE TABLE admin_credentials (
    id         TEXT PRIMARY KEY,
    hash       BLOB NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
