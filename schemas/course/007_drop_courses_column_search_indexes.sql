-- transactional: false
-- idx_courses_search (006) answers a search on name or description in one lookup; the two indexes
-- of one column each were only extra work on every course write (two to_tsvector calls a row).
-- dbtool: ignore drop-in-up superseded by idx_courses_search, restored by the down file
DROP INDEX CONCURRENTLY IF EXISTS idx_courses_name_search;
-- dbtool: ignore drop-in-up superseded by idx_courses_search, restored by the down file
DROP INDEX CONCURRENTLY IF EXISTS idx_courses_description_search;
