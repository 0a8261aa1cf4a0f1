-- transactional: false
DROP INDEX CONCURRENTLY IF EXISTS idx_users_name;
