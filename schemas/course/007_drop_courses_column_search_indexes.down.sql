-- transactional: false
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_courses_name_search ON courses USING gin(to_tsvector('english', name));
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_courses_description_search ON courses USING gin(to_tsvector('english', description));
