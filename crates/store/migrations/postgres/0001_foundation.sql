-- The Postgres mirror of migrations/sqlite/0001_foundation.sql: same tables and columns,
-- BYTEA for blobs, BIGINT milliseconds since the Unix epoch for times. Identifiers that are
-- ordered or compared use the "C" collation, so the order matches SQLite's byte order.

-- Virtual keys: only an HMAC of the key is stored; the key itself is shown once.
CREATE TABLE virtual_keys (
    id             TEXT COLLATE "C" PRIMARY KEY,
    hash           BYTEA NOT NULL UNIQUE,
    display_prefix TEXT NOT NULL,
    name           TEXT NOT NULL,
    owner          TEXT,
    team           TEXT,
    environment    TEXT NOT NULL,
    allowed_models TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT,
    revoked_at     BIGINT,
    last_used_at   BIGINT,
    rotated_from   TEXT,
    rotated_to     TEXT
);

-- The embedded keystore: values sealed with an AEAD under a key derived from the master key.
CREATE TABLE secrets (
    name       TEXT COLLATE "C" PRIMARY KEY,
    nonce      BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Admin-plane credentials, distinct from data-plane virtual keys.
CREATE TABLE admin_credentials (
    id         TEXT COLLATE "C" PRIMARY KEY,
    hash       BYTEA NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
