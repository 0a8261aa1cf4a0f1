-- danger: concurrent-in-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_users_name ON users(name);
