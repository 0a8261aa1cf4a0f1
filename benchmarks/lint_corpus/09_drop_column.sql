-- danger: drop
ALTER TABLE users DROP COLUMN name;
