ALTER TABLE users DROP COLUMN country_code;
