-- Course search with a rare term (a course's catalogue code, MC<n> in the synthetic descriptions:
-- one course; on the development rows, which have no codes, one course's name): the same
-- statement as course_search_common.
-- 1. newest: the 500 newest live courses in date order (idx_courses_live_created_at_id), filtered
--    until 20 match. A common term fills the page there: its 20 newest matches are among them.
-- 2. matches: otherwise the term is rare, and idx_courses_search (006) finds all its matches, to
--    sort; this part runs only then. The planner would guess a rare or absent term at 0.5% of the
--    rows and walk the whole table in date order, so the query does not leave it that choice.
-- param term: SELECT coalesce((SELECT substring(description from 'MC[0-9]+') FROM courses WHERE deleted_at IS NULL AND description ~ 'MC[0-9]+' ORDER BY id LIMIT 1), (SELECT name FROM courses WHERE deleted_at IS NULL ORDER BY id LIMIT 1))
-- budget: max_ms=50 no_seq_scan
WITH newest AS (
    SELECT id, name, price, instructor_name, category, level, created_at
    FROM (SELECT * FROM courses
          WHERE deleted_at IS NULL
          ORDER BY created_at DESC, id DESC
          LIMIT 500) recent
    WHERE course_search_document(name, description) @@ plainto_tsquery('english', :term)
    ORDER BY created_at DESC, id DESC
    LIMIT 20
), matches AS MATERIALIZED (
    SELECT id, name, price, instructor_name, category, level, created_at
    FROM courses
    WHERE course_search_document(name, description) @@ plainto_tsquery('english', :term)
      AND deleted_at IS NULL
)
SELECT id, name, price, instructor_name, category, level
FROM (SELECT * FROM newest WHERE (SELECT count(*) FROM newest) = 20
      UNION ALL
      SELECT * FROM (SELECT * FROM matches ORDER BY created_at DESC, id DESC LIMIT 20) older
      WHERE (SELECT count(*) FROM newest) < 20) page
ORDER BY created_at DESC, id DESC;
