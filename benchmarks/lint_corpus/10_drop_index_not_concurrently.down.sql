-- transactional: false
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_enrollments_student_id ON enrollments(student_id);
