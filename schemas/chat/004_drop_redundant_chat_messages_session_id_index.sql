-- transactional: false
-- idx_chat_messages_session_id_created_at leads with session_id: it serves the foreign key and every
-- lookup by session, so the single-column index is redundant.
-- dbtool: ignore drop-in-up redundant with idx_chat_messages_session_id_created_at, restored by the down file
DROP INDEX CONCURRENTLY IF EXISTS idx_chat_messages_session_id;
