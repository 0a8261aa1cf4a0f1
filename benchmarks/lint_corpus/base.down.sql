DROP TABLE enrollments;
DROP TABLE courses;
DROP TABLE users;
