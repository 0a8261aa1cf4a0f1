-- The course list page, LIMIT/OFFSET as the spec paginates it (section 9, getCourses page 2).
-- param page_size: SELECT 10
-- param skip: SELECT 10
-- budget: max_ms=50 no_seq_scan
SELECT *
FROM courses
WHERE deleted_at IS NULL
ORDER BY created_at DESC
LIMIT :page_size OFFSET :skip;
