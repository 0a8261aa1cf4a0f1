-- danger: rename
ALTER TABLE enrollments RENAME TO registrations;
