-- The tools an API key may use (`sluice key create --tool NAME`, repeatable): a comma-separated list of
-- tool names, or NULL for every tool its scopes allow.
ALTER TABLE api_keys ADD COLUMN tools TEXT;
