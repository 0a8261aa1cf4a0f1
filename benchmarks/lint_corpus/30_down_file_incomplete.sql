-- danger: down-incomplete
CREATE TABLE payments (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    amount INTEGER NOT NULL,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE FUNCTION payment_total() RETURNS BIGINT LANGUAGE sql AS $$ SELECT sum(amount) FROM payments $$;
