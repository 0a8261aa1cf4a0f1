-- The course list's total (live courses, spec section 9's countResult) kept by the database, so a
-- page view reads 32 small rows instead of counting the catalogue. The total is the sum of the
-- slots: each writing session adds to the slot of its backend pid, so concurrent course writers
-- wait on each other only when they share a slot, never all on one row. Enrollments do not
-- touch it: they update current_students, which fires none of these triggers.
-- dbtool: ignore uuid-primary-key a fixed set of 32 slot numbers, never created by the service
-- dbtool: ignore missing-timestamps derived counters, rewritten by every course write; no history to keep
CREATE TABLE course_counts (
    slot SMALLINT PRIMARY KEY CHECK (slot >= 0 AND slot < 32),
    live_courses BIGINT NOT NULL DEFAULT 0
);

-- One function for every event: inserts and deletes come a statement at a time (transition tables,
-- so a COPY of a million rows updates one slot once), soft deletes and restores a row at a time.
CREATE FUNCTION count_live_courses()
RETURNS TRIGGER
LANGUAGE plpgsql
AS $$
DECLARE
    v_delta BIGINT;
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT count(*) INTO v_delta FROM new_rows WHERE deleted_at IS NULL;
    ELSIF TG_OP = 'DELETE' THEN
        SELECT -count(*) INTO v_delta FROM old_rows WHERE deleted_at IS NULL;
    ELSIF TG_OP = 'UPDATE' THEN
        v_delta := CASE WHEN NEW.deleted_at IS NULL THEN 1 ELSE -1 END;
    ELSE  -- TRUNCATE
        DELETE FROM course_counts;
        RETURN NULL;
    END IF;
    IF v_delta <> 0 THEN
        INSERT INTO course_counts AS c (slot, live_courses) VALUES (pg_backend_pid() % 32, v_delta)
        ON CONFLICT (slot) DO UPDATE SET live_courses = c.live_courses + EXCLUDED.live_courses;
    END IF;
    RETURN NULL;
END;
$$;

-- Creating the triggers locks out course writes until this migration commits (a write lock, no
-- read is blocked): the count below then sees every committed course and misses no concurrent one.
CREATE TRIGGER count_live_courses_on_insert
    AFTER INSERT ON courses
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION count_live_courses();

CREATE TRIGGER count_live_courses_on_delete
    AFTER DELETE ON courses
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION count_live_courses();

-- Only a change of deleted_at between NULL and not NULL moves the total: other updates (an
-- enrollment's current_students) skip the function altogether.
CREATE TRIGGER count_live_courses_on_soft_delete
    AFTER UPDATE OF deleted_at ON courses
    FOR EACH ROW
    WHEN ((OLD.deleted_at IS NULL) IS DISTINCT FROM (NEW.deleted_at IS NULL))
    EXECUTE FUNCTION count_live_courses();

CREATE TRIGGER count_live_courses_on_truncate
    AFTER TRUNCATE ON courses
    FOR EACH STATEMENT
    EXECUTE FUNCTION count_live_courses();

-- A slot row appears with its first write; one without courses holds nothing, so on a database
-- without courses rolling this migration back drops an empty table.
INSERT INTO course_counts (slot, live_courses)
SELECT 0, count(*) FROM courses WHERE deleted_at IS NULL
HAVING count(*) > 0;

-- Statistics from the start, so the planner (and dbtool explain) need not wait for autovacuum.
ANALYZE course_counts;
