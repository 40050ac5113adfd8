-- Budgets (DO-2): spend and in-flight reservations per budget and calendar period, in
-- nano-USD so that a reservation is one atomic integer UPDATE on every instance.
CREATE TABLE budget_spend (
    budget    TEXT NOT NULL,
    period    TEXT NOT NULL,
    spent     BIGINT NOT NULL DEFAULT 0,
    reserved  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (budget, period)
);
-- Soft thresholds already crossed, so that each raises its alert once per period.
CREATE TABLE budget_thresholds (
    budget    TEXT NOT NULL,
    period    TEXT NOT NULL,
    permille  BIGINT NOT NULL,
    at        BIGINT NOT NULL,
    PRIMARY KEY (budget, period, permille)
);
-- Alerts raised (MI-2), newest read first.
CREATE TABLE alerts (
    id         TEXT PRIMARY KEY,
    at         BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    severity   TEXT NOT NULL,
    subject    TEXT NOT NULL,
    dedup_key  TEXT NOT NULL,
    message    TEXT NOT NULL,
    details    TEXT NOT NULL
);
CREATE INDEX alerts_at ON alerts (at);
-- What each key has been seen using (models, client IPs), for "first use" alerts.
CREATE TABLE key_sightings (
    key_id  TEXT NOT NULL,
    kind    TEXT NOT NULL,
    value   TEXT NOT NULL,
    at      BIGINT NOT NULL,
    PRIMARY KEY (key_id, kind, value)
);
