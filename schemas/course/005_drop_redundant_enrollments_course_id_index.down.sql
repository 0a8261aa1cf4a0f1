-- transactional: false
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_enrollments_course_id ON enrollments(course_id);
