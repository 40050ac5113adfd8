-- Review and drift (MI-4).
-- A sampled share of completed interactions, PII-masked and truncated by the gateway before
-- they get here, waiting for a reviewer's label. `label` is NULL while the item is pending.
CREATE TABLE review_items (
    id           TEXT PRIMARY KEY,
    route        TEXT NOT NULL,
    request_id   TEXT NOT NULL,
    at           BIGINT NOT NULL,
    day          TEXT NOT NULL,
    prompt       TEXT NOT NULL,
    completion   TEXT NOT NULL,
    truncated    BIGINT NOT NULL,
    label        TEXT,
    reviewer     TEXT,
    labelled_by  TEXT,
    note         TEXT,
    labelled_at  BIGINT
);
CREATE INDEX review_items_at ON review_items (at);
CREATE INDEX review_items_route_day ON review_items (route, day);
-- Per route and UTC day: counters every gateway instance adds to (one atomic upsert each),
-- so several instances sharing a database sum up rather than overwrite each other.
CREATE TABLE route_days (
    route             TEXT NOT NULL,
    day               TEXT NOT NULL,
    requests          BIGINT NOT NULL DEFAULT 0,
    completions       BIGINT NOT NULL DEFAULT 0,
    output_tokens     BIGINT NOT NULL DEFAULT 0,
    refusals          BIGINT NOT NULL DEFAULT 0,
    guard_blocks      BIGINT NOT NULL DEFAULT 0,
    errors            BIGINT NOT NULL DEFAULT 0,
    latency_ms_total  BIGINT NOT NULL DEFAULT 0,
    cost_nanos        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (route, day)
);
-- Histograms behind the drift score: counts per (route, day, metric, bin); the bin edges are
-- fixed by the gateway (`drift` module), so days are comparable across versions.
CREATE TABLE route_day_bins (
    route   TEXT NOT NULL,
    day     TEXT NOT NULL,
    metric  TEXT NOT NULL,
    bin     BIGINT NOT NULL,
    count   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (route, day, metric, bin)
);
-- Drift alerts already raised, so that each route alerts once per UTC day on any instance.
CREATE TABLE drift_alerts (
    route  TEXT NOT NULL,
    day    TEXT NOT NULL,
    at     BIGINT NOT NULL,
    PRIMARY KEY (route, day)
);
