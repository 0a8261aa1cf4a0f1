-- The same page 1001 by keyset: start after the last row of the page before, whatever its depth.
-- id breaks ties between courses created at the same instant, so no row is skipped or repeated.
-- The cursor is the 10,000th live course (or the last one on smaller data).
-- param after_created_at: SELECT created_at FROM (SELECT created_at, id FROM courses WHERE deleted_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 10000) p ORDER BY created_at, id LIMIT 1
-- param after_id: SELECT id FROM (SELECT created_at, id FROM courses WHERE deleted_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 10000) p ORDER BY created_at, id LIMIT 1
-- budget: max_ms=50 no_seq_scan
SELECT *
FROM courses
WHERE deleted_at IS NULL
  AND (created_at, id) < (:after_created_at, :after_id)
ORDER BY created_at DESC, id DESC
LIMIT 10;
