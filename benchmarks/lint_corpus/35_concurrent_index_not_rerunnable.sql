-- danger: not-rerunnable
-- transactional: false
CREATE INDEX CONCURRENTLY idx_users_name ON users(name);
