-- Overbooking is impossible at the database level (spec section 8), whatever path writes:
-- 1. the enrolled count kept on the course can never pass its capacity;
-- 2. a statement that adds or changes enrollments fails when a course then holds more enrolled
--    rows than max_students, even when it bypasses the counter (a plain INSERT, a COPY);
-- 3. enroll_student() is the specification's enrollment transaction in one call.
-- The course row lock serialises concurrent enrollments into one course instead of overbooking.
ALTER TABLE courses ADD CONSTRAINT courses_capacity_check CHECK (current_students <= max_students);

-- Statement-level with a transition table, so a bulk load checks each course once, not once a row.
CREATE FUNCTION guard_course_capacity()
RETURNS TRIGGER
LANGUAGE plpgsql
AS $$
DECLARE
    v_course UUID;
    v_max INTEGER;
    v_enrolled BIGINT;
BEGIN
    -- Lock in id order so two guards never wait on each other; NO KEY UPDATE does not conflict
    -- with the KEY SHARE lock the foreign key check already holds on the same rows.
    PERFORM 1 FROM courses
    WHERE id IN (SELECT course_id FROM new_rows WHERE status = 'enrolled')
    ORDER BY id
    FOR NO KEY UPDATE;

    -- A new statement, so a new snapshot: it counts what the transactions we waited for committed.
    SELECT c.id, c.max_students, e.enrolled INTO v_course, v_max, v_enrolled
    FROM courses c
    JOIN (SELECT course_id, count(*) AS enrolled
          FROM enrollments
          WHERE status = 'enrolled'
            AND course_id IN (SELECT course_id FROM new_rows WHERE status = 'enrolled')
          GROUP BY course_id) e ON e.course_id = c.id
    WHERE e.enrolled > c.max_students
    LIMIT 1;

    IF FOUND THEN
        RAISE EXCEPTION 'course is full' USING ERRCODE = 'check_violation',
            DETAIL = format('course %s would have %s enrolled students for %s seats', v_course, v_enrolled, v_max);
    END IF;
    RETURN NULL;
END;
$$;

-- PostgreSQL allows a transition table only on a single-event trigger: one per event.
CREATE TRIGGER guard_course_capacity_on_insert
    AFTER INSERT ON enrollments
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION guard_course_capacity();

CREATE TRIGGER guard_course_capacity_on_update
    AFTER UPDATE ON enrollments
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT
    EXECUTE FUNCTION guard_course_capacity();

CREATE FUNCTION enroll_student(p_course_id UUID, p_student_id UUID, p_student_name VARCHAR)
RETURNS UUID
LANGUAGE plpgsql
AS $$
DECLARE
    v_max INTEGER;
    v_current INTEGER;
    v_enrollment_id UUID;
BEGIN
    -- The specification locks FOR UPDATE; NO KEY UPDATE serialises enrollers just the same and
    -- does not block plain foreign key checks of other writers.
    SELECT max_students, current_students INTO v_max, v_current
    FROM courses
    WHERE id = p_course_id AND deleted_at IS NULL
    FOR NO KEY UPDATE;

    IF NOT FOUND THEN
        RAISE EXCEPTION 'course % does not exist', p_course_id USING ERRCODE = 'no_data_found';
    END IF;
    IF v_current >= v_max THEN
        RAISE EXCEPTION 'course is full' USING ERRCODE = 'check_violation',
            DETAIL = format('course %s has %s of %s seats taken', p_course_id, v_current, v_max);
    END IF;

    INSERT INTO enrollments (course_id, student_id, student_name)
    VALUES (p_course_id, p_student_id, p_student_name)
    RETURNING id INTO v_enrollment_id;

    UPDATE courses SET current_students = current_students + 1 WHERE id = p_course_id;
    RETURN v_enrollment_id;
END;
$$;
