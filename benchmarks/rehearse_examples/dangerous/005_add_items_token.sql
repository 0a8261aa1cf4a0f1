-- A volatile default rewrites the table and its indexes under ACCESS EXCLUSIVE.
ALTER TABLE items ADD COLUMN token uuid DEFAULT gen_random_uuid();
