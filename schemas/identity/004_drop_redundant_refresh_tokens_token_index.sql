-- transactional: false
-- The UNIQUE constraint on refresh_tokens.token already keeps a btree on token
-- (refresh_tokens_token_key); idx_refresh_tokens_token duplicated it.
-- dbtool: ignore drop-in-up redundant with refresh_tokens_token_key, restored by the down file
DROP INDEX CONCURRENTLY IF EXISTS idx_refresh_tokens_token;
