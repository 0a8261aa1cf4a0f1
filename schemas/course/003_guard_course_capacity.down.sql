DROP FUNCTION enroll_student(UUID, UUID, VARCHAR);
DROP TRIGGER guard_course_capacity_on_update ON enrollments;
DROP TRIGGER guard_course_capacity_on_insert ON enrollments;
DROP FUNCTION guard_course_capacity();
ALTER TABLE courses DROP CONSTRAINT courses_capacity_check;
