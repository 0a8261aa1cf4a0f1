-- Plain build: writes wait for the whole build (SHARE lock).
CREATE INDEX idx_items_note ON items (note);
