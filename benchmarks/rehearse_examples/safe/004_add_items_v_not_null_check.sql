-- NOT VALID: only new rows are checked, no scan.
ALTER TABLE items ADD CONSTRAINT items_v_not_null CHECK (v IS NOT NULL) NOT VALID;
