-- Code run in the sandbox is audited as its SHA-256 and length, never its text.
ALTER TABLE audit_log ADD COLUMN code_sha256 TEXT;
ALTER TABLE audit_log ADD COLUMN code_len BIGINT;
