-- Sluice store, first migration. Designed so that later features slot in without rewrites:
-- orgs own everything; keys carry scopes; connections are sealed; the audit log is append-only.

CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES orgs(id),
    name        TEXT NOT NULL,
    -- The first characters of the key, shown in listings and the audit log; not secret.
    prefix      TEXT NOT NULL,
    -- HMAC-SHA-256 of the whole key under a key derived from the master key. Keys are 256-bit random,
    -- so a keyed hash is the right lookup (a password hash would only slow every request down).
    key_hash    BLOB NOT NULL UNIQUE,
    scopes      TEXT NOT NULL,           -- space-separated: query schema sandbox fs_write admin
    created_at  TEXT NOT NULL,
    revoked_at  TEXT,
    UNIQUE (org_id, name)
);

CREATE TABLE connections (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id),
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL,
    -- AES-256-GCM: 12-byte nonce || ciphertext+tag; the row id is the associated data, so a sealed DSN
    -- cannot be moved to another row.
    dsn_sealed   BLOB NOT NULL,
    description  TEXT,
    -- JSON: per-connection limits and governance policy.
    settings     TEXT NOT NULL DEFAULT '{}',
    created_at   TEXT NOT NULL,
    UNIQUE (org_id, name)
);

-- Bumped on every change to keys or connections, so running gateways notice without polling the tables.
CREATE TABLE revisions (
    name      TEXT PRIMARY KEY,
    revision  INTEGER NOT NULL
);
INSERT INTO revisions (name, revision) VALUES ('api_keys', 0), ('connections', 0);

CREATE TABLE audit_log (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    ts            TEXT NOT NULL,
    org_id        TEXT NOT NULL,
    key_prefix    TEXT NOT NULL,
    session_id    TEXT,
    tool          TEXT NOT NULL,
    connection    TEXT,
    -- Literals redacted; NULL when the SQL could not be parsed (then only hash and length are kept).
    sql_redacted  TEXT,
    sql_sha256    TEXT,
    sql_len       INTEGER,
    system_query  INTEGER NOT NULL DEFAULT 0,
    decision      TEXT NOT NULL,          -- ok | denied | error
    rule          TEXT,
    rows          INTEGER,
    duration_ms   REAL NOT NULL,
    error         TEXT
);
CREATE INDEX audit_log_org_ts ON audit_log (org_id, ts);
CREATE INDEX audit_log_key_conn ON audit_log (org_id, key_prefix, connection, id);
