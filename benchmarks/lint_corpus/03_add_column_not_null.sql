-- danger: not-null-column
ALTER TABLE users ADD COLUMN phone TEXT NOT NULL;
