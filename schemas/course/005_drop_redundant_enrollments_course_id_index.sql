-- transactional: false
-- UNIQUE(course_id, student_id) keeps a btree that leads with course_id: it serves the foreign key
-- and every lookup by course, so idx_enrollments_course_id was only extra work on each enrollment.
-- dbtool: ignore drop-in-up redundant with enrollments_course_id_student_id_key, restored by the down file
DROP INDEX CONCURRENTLY IF EXISTS idx_enrollments_course_id;
