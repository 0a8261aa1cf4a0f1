DROP TRIGGER count_live_courses_on_truncate ON courses;
DROP TRIGGER count_live_courses_on_soft_delete ON courses;
DROP TRIGGER count_live_courses_on_delete ON courses;
DROP TRIGGER count_live_courses_on_insert ON courses;
DROP FUNCTION count_live_courses();
DROP TABLE course_counts;
