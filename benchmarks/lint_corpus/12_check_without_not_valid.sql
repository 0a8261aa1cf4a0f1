-- danger: constraint-validation-scan
ALTER TABLE courses ADD CONSTRAINT courses_price_check CHECK (price >= 0);
