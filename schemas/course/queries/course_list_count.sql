-- The total the course list page shows beside its pages (section 9, getCourses countResult).
-- budget: max_ms=2000 no_seq_scan
SELECT count(*)
FROM courses
WHERE deleted_at IS NULL;
