-- The class list of one course: its enrolled students in enrollment order.
-- param course_id: SELECT course_id FROM enrollments ORDER BY id LIMIT 1
-- budget: max_ms=50 no_seq_scan
SELECT id, student_id, student_name, enrolled_at
FROM enrollments
WHERE course_id = :course_id
  AND status = 'enrolled'
ORDER BY enrolled_at;
