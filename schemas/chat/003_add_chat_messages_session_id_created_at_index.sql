-- transactional: false
-- A session's messages in order come straight from this index, without a sort; it also serves the
-- session_id foreign key.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_chat_messages_session_id_created_at
    ON chat_messages (session_id, created_at);
