ALTER TABLE enrollments DROP CONSTRAINT enrollments_course_id_fkey;
