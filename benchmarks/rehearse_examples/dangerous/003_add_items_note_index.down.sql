DROP INDEX idx_items_note;
