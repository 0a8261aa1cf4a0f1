-- transactional: false
-- Concurrent build: writes go on.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_items_note ON items (note);
