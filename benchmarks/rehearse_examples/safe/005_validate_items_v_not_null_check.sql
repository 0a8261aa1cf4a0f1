-- VALIDATE scans under SHARE UPDATE EXCLUSIVE: writes go on.
ALTER TABLE items VALIDATE CONSTRAINT items_v_not_null;
