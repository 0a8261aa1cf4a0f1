-- transactional: false
DROP INDEX CONCURRENTLY IF EXISTS idx_items_note;
