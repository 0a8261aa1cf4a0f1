-- transactional: false
DROP INDEX CONCURRENTLY IF EXISTS idx_chat_messages_session_id_created_at;
