-- A chat session's conversation, oldest message first, as the chat window shows it.
-- param session_id: SELECT session_id FROM chat_messages ORDER BY id LIMIT 1
-- budget: max_ms=50 no_seq_scan
SELECT id, role, content, tokens_used, created_at
FROM chat_messages
WHERE session_id = :session_id
ORDER BY created_at
LIMIT 100;
