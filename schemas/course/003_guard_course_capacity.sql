-- Overbooking is impossible at the database level (spec section 8): the enrolled count can never
-- pass the capacity, and enroll_student() is the specification's enrollment transaction in one
-- call, locking the course row so that concurrent enrollments queue instead of overbooking.
ALTER TABLE courses ADD CONSTRAINT courses_capacity_check CHECK (current_students <= max_students);

CREATE FUNCTION enroll_student(p_course_id UUID, p_student_id UUID, p_student_name VARCHAR)
RETURNS UUID
LANGUAGE plpgsql
AS $$
DECLARE
    v_max INTEGER;
    v_current INTEGER;
    v_enrollment_id UUID;
BEGIN
    SELECT max_students, current_students INTO v_max, v_current
    FROM courses
    WHERE id = p_course_id AND deleted_at IS NULL
    FOR UPDATE;

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
