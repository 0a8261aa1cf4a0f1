-- An instructor's courses, newest first: the spec's own EXPLAIN ANALYZE example (section 9).
-- param instructor_id: SELECT instructor_id FROM courses WHERE deleted_at IS NULL ORDER BY id LIMIT 1
-- budget: max_ms=50 no_seq_scan
SELECT *
FROM courses
WHERE instructor_id = :instructor_id
  AND deleted_at IS NULL
ORDER BY created_at DESC
LIMIT 10;
