-- Browse by category and level: published live courses, newest first (idx_courses_category/level).
-- param category: SELECT category FROM courses WHERE deleted_at IS NULL ORDER BY id LIMIT 1
-- param level: SELECT level FROM courses WHERE deleted_at IS NULL ORDER BY id LIMIT 1
-- budget: max_ms=50 no_seq_scan
SELECT id, name, price, instructor_name, duration_minutes, category, level, created_at
FROM courses
WHERE category = :category
  AND level = :level
  AND is_published
  AND deleted_at IS NULL
ORDER BY created_at DESC
LIMIT 20;
