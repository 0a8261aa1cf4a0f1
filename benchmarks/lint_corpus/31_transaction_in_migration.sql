-- danger: transaction-control
BEGIN;
ALTER TABLE users ADD COLUMN bio TEXT;
COMMIT;
