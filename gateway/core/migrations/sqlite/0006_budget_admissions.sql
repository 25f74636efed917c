-- Governed queries admitted per key and UTC day under a query budget. Admission is one conditional upsert
-- on this row (`queries < limit`), so gateway instances sharing the store admit exactly the limit between
-- them; `budget_usage` keeps the per-session spend that `check_budget` reports.
CREATE TABLE budget_admissions (
    org_id   TEXT NOT NULL,
    key_id   TEXT NOT NULL,
    day      TEXT NOT NULL,
    queries  INTEGER NOT NULL,
    PRIMARY KEY (org_id, key_id, day)
);
