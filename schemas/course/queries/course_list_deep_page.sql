-- Page 1001 of the course list with LIMIT/OFFSET: every skipped row is read and thrown away.
-- Kept to show the deep OFFSET warning and why course_list_keyset exists; no budget on purpose.
-- param page_size: SELECT 10
-- param skip: SELECT 10000
SELECT *
FROM courses
WHERE deleted_at IS NULL
ORDER BY created_at DESC
LIMIT :page_size OFFSET :skip;
