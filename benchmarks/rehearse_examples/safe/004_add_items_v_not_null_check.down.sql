ALTER TABLE items DROP CONSTRAINT items_v_not_null;
