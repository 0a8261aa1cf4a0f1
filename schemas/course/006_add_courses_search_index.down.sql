-- transactional: false
DROP INDEX CONCURRENTLY IF EXISTS idx_courses_search;
DROP FUNCTION IF EXISTS course_search_document(VARCHAR, TEXT);
