-- Per-key daily usage of governed queries, for budgets (`[budgets]`) and `check_budget`. One row per org,
-- key, MCP session and UTC day; a key's spend for a day is the sum over its sessions. Stateless calls use
-- the empty session id.
CREATE TABLE budget_usage (
    org_id      TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    session_id  TEXT NOT NULL DEFAULT '',
    day         TEXT NOT NULL,            -- YYYY-MM-DD, UTC
    queries     INTEGER NOT NULL DEFAULT 0,
    rows        INTEGER NOT NULL DEFAULT 0,
    bytes       INTEGER NOT NULL DEFAULT 0,
    seconds     REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, key_id, day, session_id)
);
