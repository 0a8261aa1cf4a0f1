-- The valid CHECK proves it: SET NOT NULL skips the scan.
ALTER TABLE items ALTER COLUMN v SET NOT NULL;
ALTER TABLE items DROP CONSTRAINT items_v_not_null;
