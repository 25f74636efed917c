-- dbt projects registered with `sluice project add`. A project is a directory on the gateway's host (the one
-- holding dbt_project.yml), optionally bound to the connection that holds the warehouse dbt builds, so
-- that verification tools find a model's relation in the manifest instead of guessing its name.
-- Projects in the config file are not stored here and win over stored ones of the same name.

CREATE TABLE projects (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id),
    name         TEXT NOT NULL,
    -- Canonical absolute path (symlinks resolved when the project was added).
    dir          TEXT NOT NULL,
    connection   TEXT,
    description  TEXT,
    created_at   TEXT NOT NULL,
    UNIQUE (org_id, name)
);
