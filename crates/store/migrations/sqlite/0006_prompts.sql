-- Versioned prompts (DO-3, DO-4): every change is an immutable version; `staging` and
-- `production` point at versions through an append-only deployment log, whose latest row
-- per (name, env) is the version in force. Every gateway instance polls it.
CREATE TABLE prompt_versions (
    name         TEXT NOT NULL,
    version      INTEGER NOT NULL,
    content      TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    author       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    diff         TEXT NOT NULL,
    eval_passed  INTEGER,
    eval_report  TEXT,
    eval_at      INTEGER,
    PRIMARY KEY (name, version)
);
CREATE TABLE prompt_deployments (
    name     TEXT NOT NULL,
    env      TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    version  INTEGER NOT NULL,
    set_by   TEXT NOT NULL,
    set_at   INTEGER NOT NULL,
    action   TEXT NOT NULL,
    PRIMARY KEY (name, env, seq)
);
