DROP FUNCTION enroll_student(UUID, UUID, VARCHAR);
ALTER TABLE courses DROP CONSTRAINT courses_capacity_check;
