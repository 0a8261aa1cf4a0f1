-- transactional: false
-- The spec's partial index for live courses (section 4), with id after created_at so that the
-- course list reads its pages in order from the index, and keyset pagination on (created_at, id)
-- is one index range scan. Soft-deleted courses stay out of it.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_courses_live_created_at_id ON courses (created_at, id)
    WHERE deleted_at IS NULL;
