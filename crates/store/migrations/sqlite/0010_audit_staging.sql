-- Lone audit records are committed here first: plain tables without indexes, so a commit
-- writes one page per table instead of one per index (crates/store/src/sqlite/appender.rs).
-- Rows move verbatim into audit_records / audit_payloads, in rowid order, soon after.
CREATE TABLE audit_staged (
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
    mac       BLOB NOT NULL
);

CREATE TABLE audit_staged_payloads (
    request_id TEXT NOT NULL,
    kind       TEXT NOT NULL,
    digest     BLOB NOT NULL,
    day        TEXT NOT NULL,
    ts         INTEGER NOT NULL,
    key_id     TEXT,
    team       TEXT,
    nonce      BLOB NOT NULL,
    ciphertext BLOB NOT NULL
);
