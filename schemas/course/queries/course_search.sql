-- Full-text search on name and description; each side repeats its GIN index's expression exactly
-- (idx_courses_name_search, idx_courses_description_search), or the planner cannot use them.
-- param term: SELECT split_part(name, ': ', 2) FROM courses WHERE deleted_at IS NULL ORDER BY id LIMIT 1
-- budget: max_ms=2000 no_seq_scan
SELECT id, name, price, instructor_name, category, level
FROM courses
WHERE (to_tsvector('english', name) @@ plainto_tsquery('english', :term)
       OR to_tsvector('english', description) @@ plainto_tsquery('english', :term))
  AND deleted_at IS NULL
ORDER BY created_at DESC
LIMIT 20;
