-- transactional: false
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_refresh_tokens_token ON refresh_tokens(token);
