-- Audit chains: one per instance (gateway process or CLI). The chain logic is in
-- crates/store/src/audit; these tables only hold what it computed.
CREATE TABLE audit_records (
    instance  TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    ts        INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    ref_id    TEXT NOT NULL,
    key_id    TEXT,
    team      TEXT,
    body      TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash      BLOB NOT NULL,
    mac       BLOB NOT NULL,
    PRIMARY KEY (instance, seq)
);
CREATE INDEX audit_records_ref ON audit_records (ref_id);
CREATE INDEX audit_records_ts ON audit_records (ts, instance, seq);

-- The writer's view of each chain's head, updated in the same transaction as the records.
CREATE TABLE audit_heads (
    instance TEXT PRIMARY KEY,
    seq      INTEGER NOT NULL,
    hash     BLOB NOT NULL
);

-- Ed25519-signed checkpoints.
CREATE TABLE audit_checkpoints (
    instance   TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    hash       TEXT NOT NULL,
    ts         INTEGER NOT NULL,
    public_key TEXT NOT NULL,
    signature  TEXT NOT NULL,
    PRIMARY KEY (instance, seq)
);

-- Where retention cut the beginning of a chain off (must match a signed checkpoint).
CREATE TABLE audit_anchors (
    instance TEXT PRIMARY KEY,
    seq      INTEGER NOT NULL,
    hash     BLOB NOT NULL
);

-- Per-day data keys, wrapped by a key derived from the master key; NULL once destroyed.
CREATE TABLE audit_day_keys (
    day          TEXT PRIMARY KEY,
    nonce        BLOB,
    wrapped      BLOB,
    created_at   INTEGER NOT NULL,
    destroyed_at INTEGER
);

-- Sealed payloads, referenced from the chain by digest.
CREATE TABLE audit_payloads (
    request_id TEXT NOT NULL,
    kind       TEXT NOT NULL,
    digest     BLOB NOT NULL,
    day        TEXT NOT NULL,
    ts         INTEGER NOT NULL,
    key_id     TEXT,
    team       TEXT,
    nonce      BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    PRIMARY KEY (request_id, kind)
);
CREATE INDEX audit_payloads_ts ON audit_payloads (kind, ts);
CREATE INDEX audit_payloads_day ON audit_payloads (day);

-- Legal holds suspend retention for a key or a team.
CREATE TABLE legal_holds (
    scope     TEXT NOT NULL,
    value     TEXT NOT NULL,
    reason    TEXT NOT NULL,
    placed_by TEXT NOT NULL,
    placed_at INTEGER NOT NULL,
    PRIMARY KEY (scope, value)
);
