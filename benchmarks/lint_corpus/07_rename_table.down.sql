ALTER TABLE registrations RENAME TO enrollments;
