-- transactional: false
DROP INDEX CONCURRENTLY IF EXISTS idx_courses_live_created_at_id;
