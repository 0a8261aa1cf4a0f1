-- danger: drop
DROP TABLE enrollments;
