-- Kill switches (MI-3): every gateway instance polls this table.
CREATE TABLE kill_switches (
    kind    TEXT NOT NULL,
    target  TEXT NOT NULL,
    reason  TEXT NOT NULL,
    set_by  TEXT NOT NULL,
    set_at  INTEGER NOT NULL,
    PRIMARY KEY (kind, target)
);
