-- Per-key daily usage of governed queries (see ../sqlite/0003_budgets.sql).
CREATE TABLE budget_usage (
    org_id      TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    session_id  TEXT NOT NULL DEFAULT '',
    day         TEXT NOT NULL,
    queries     BIGINT NOT NULL DEFAULT 0,
    rows        BIGINT NOT NULL DEFAULT 0,
    bytes       BIGINT NOT NULL DEFAULT 0,
    seconds     DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, key_id, day, session_id)
);
