-- danger: column-type-change
ALTER TABLE courses ALTER COLUMN price TYPE BIGINT;
