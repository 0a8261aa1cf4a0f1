ALTER TABLE courses DROP CONSTRAINT courses_price_check;
