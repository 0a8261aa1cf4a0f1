-- danger: drop
DROP INDEX idx_enrollments_student_id;
