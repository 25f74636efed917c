-- Roles and per-connection grants for API keys (`sluice key create --role R --connection C`).
-- `role`: viewer | analyst | engineer | admin, or NULL for a key created with explicit scopes (the scopes
-- column always holds the effective scopes, so older gateways read the same rights).
-- `connections`: the connection names the key may use, comma-separated, or NULL for every connection of
-- its org.
ALTER TABLE api_keys ADD COLUMN role TEXT;
ALTER TABLE api_keys ADD COLUMN connections TEXT;
