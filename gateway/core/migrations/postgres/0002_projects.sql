-- dbt projects registered with `sluice project add` (see ../sqlite/0002_projects.sql).
CREATE TABLE projects (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES orgs(id),
    name         TEXT NOT NULL,
    dir          TEXT NOT NULL,
    connection   TEXT,
    description  TEXT,
    created_at   TEXT NOT NULL,
    UNIQUE (org_id, name)
);
