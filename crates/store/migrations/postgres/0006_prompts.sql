-- Versioned prompts (DO-3, DO-4): every change is an immutable version; `staging` and
-- `production` point at versions through an append-only deployment log, whose latest row
-- per (name, env) is the version in force. Every gateway instance polls it.
CREATE TABLE prompt_versions (
    name         TEXT NOT NULL,
    version      BIGINT NOT NULL,
    content      TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    author       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    diff         TEXT NOT NULL,
    eval_passed  BIGINT,
    eval_report  TEXT,
    eval_at      BIGINT,
    PRIMARY KEY (name, version)
);
CREATE TABLE prompt_deployments (
    name     TEXT NOT NULL,
    env      TEXT NOT NULL,
    seq      BIGINT NOT NULL,
    version  BIGINT NOT NULL,
    set_by   TEXT NOT NULL,
    set_at   BIGINT NOT NULL,
    action   TEXT NOT NULL,
    PRIMARY KEY (name, env, seq)
);
