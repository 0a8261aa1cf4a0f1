-- transactional: false
-- One search document per course, for one GIN index instead of one per column (spec section 4's
-- combined full-text index, with weights): the name counts above the description for ts_rank, a
-- course without a description is still found by its name, and a term is one index lookup, not two
-- OR-ed ones. An IMMUTABLE SQL function, so the service writes course_search_document(name,
-- description) instead of repeating the expression; the planner inlines it on both sides.
-- Not partial: the planner takes the statistics of an expression (the frequency of each word, which
-- tells a common term from a rare one) only from an index over the whole table.
CREATE OR REPLACE FUNCTION course_search_document(p_name VARCHAR, p_description TEXT)
RETURNS tsvector
LANGUAGE sql
IMMUTABLE PARALLEL SAFE
AS $$
    SELECT setweight(to_tsvector('english', coalesce(p_name, '')), 'A')
        || setweight(to_tsvector('english', coalesce(p_description, '')), 'B')
$$;

CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_courses_search ON courses
    USING gin (course_search_document(name, description));
