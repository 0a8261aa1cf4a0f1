-- A student's enrollments with the course names, latest first.
-- param student_id: SELECT student_id FROM enrollments ORDER BY id LIMIT 1
-- budget: max_ms=50 no_seq_scan
SELECT e.id, e.course_id, c.name, e.status, e.enrolled_at, e.completed_at
FROM enrollments e
JOIN courses c ON c.id = e.course_id
WHERE e.student_id = :student_id
ORDER BY e.enrolled_at DESC;
