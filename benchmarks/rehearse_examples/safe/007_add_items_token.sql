-- No default: a catalog change only.
ALTER TABLE items ADD COLUMN token uuid;
