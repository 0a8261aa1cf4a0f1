-- danger: char-padding
ALTER TABLE users ADD COLUMN country_code CHAR(2);
