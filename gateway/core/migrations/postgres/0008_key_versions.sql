-- Master key versions, for rotating the master key (`sluice secrets rotate`).
-- `master_keys`: every master key that has sealed something in this store, known by its check value
-- (HMAC-SHA-256 of a fixed label under the key), never by the key. The newest version is the current one:
-- new records are sealed with it, and a process that holds only an older key is refused at start.
CREATE TABLE master_keys (
    version      BIGINT PRIMARY KEY,
    check_value  BYTEA NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    -- Set by `sluice secrets rotate` once nothing in the store is sealed under this version any more.
    retired_at   TEXT
);

-- The version of the master key that sealed each DSN. Rows sealed before this migration were sealed by
-- the key the store meets first afterwards, which becomes version 1.
ALTER TABLE connections ADD COLUMN key_version BIGINT NOT NULL DEFAULT 1;

-- Secrets of the store itself, sealed like DSNs (`store_secret:<name>` is the associated data), each with
-- the version that sealed it. `api_key_hash`: the HMAC key API keys are hashed under. It is stored rather
-- than derived from the master key so that a rotation re-seals it and keys stay valid.
CREATE TABLE store_secrets (
    name         TEXT PRIMARY KEY,
    sealed       BYTEA NOT NULL,
    key_version  BIGINT NOT NULL,
    created_at   TEXT NOT NULL
);
