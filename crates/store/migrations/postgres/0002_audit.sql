-- Audit chains: one per instance (gateway process or CLI). The chain logic is in
-- crates/store/src/audit; these tables only hold what it computed. Mirrors
-- migrations/sqlite/0002_audit.sql.
CREATE TABLE audit_records (
    instance  TEXT COLLATE "C" NOT NULL,
    seq       BIGINT NOT NULL,
    ts        BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    ref_id    TEXT COLLATE "C" NOT NULL,
    key_id    TEXT,
    team      TEXT,
    body      TEXT NOT NULL,
    prev_hash BYTEA NOT NULL,
    hash      BYTEA NOT NULL,
    mac       BYTEA NOT NULL,
    PRIMARY KEY (instance, seq)
);
CREATE INDEX audit_records_ref ON audit_records (ref_id);
CREATE INDEX audit_records_ts ON audit_records (ts, instance, seq);

-- The writer's view of each chain's head, updated in the same transaction as the records.
-- Appends lock this row (SELECT ... FOR UPDATE), so writers to one chain queue.
CREATE TABLE audit_heads (
    instance TEXT COLLATE "C" PRIMARY KEY,
    seq      BIGINT NOT NULL,
    hash     BYTEA NOT NULL
);

-- Ed25519-signed checkpoints.
CREATE TABLE audit_checkpoints (
    instance   TEXT COLLATE "C" NOT NULL,
    seq        BIGINT NOT NULL,
    hash       TEXT NOT NULL,
    ts         BIGINT NOT NULL,
    public_key TEXT NOT NULL,
    signature  TEXT NOT NULL,
    PRIMARY KEY (instance, seq)
);

-- Where retention cut the beginning of a chain off (must match a signed checkpoint).
CREATE TABLE audit_anchors (
    instance TEXT COLLATE "C" PRIMARY KEY,
    seq      BIGINT NOT NULL,
    hash     BYTEA NOT NULL
);

-- Per-day data keys, wrapped by a key derived from the master key; NULL once destroyed.
CREATE TABLE audit_day_keys (
    day          TEXT COLLATE "C" PRIMARY KEY,
    nonce        BYTEA,
    wrapped      BYTEA,
    created_at   BIGINT NOT NULL,
    destroyed_at BIGINT
);

-- Sealed payloads, referenced from the chain by digest.
CREATE TABLE audit_payloads (
    request_id TEXT COLLATE "C" NOT NULL,
    kind       TEXT COLLATE "C" NOT NULL,
    digest     BYTEA NOT NULL,
    day        TEXT COLLATE "C" NOT NULL,
    ts         BIGINT NOT NULL,
    key_id     TEXT,
    team       TEXT,
    nonce      BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL,
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
    placed_at BIGINT NOT NULL,
    PRIMARY KEY (scope, value)
);
