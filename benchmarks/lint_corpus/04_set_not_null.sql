-- danger: not-null-column
ALTER TABLE users ALTER COLUMN name SET NOT NULL;
