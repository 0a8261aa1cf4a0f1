-- A user's chat sessions, most recently active first.
-- param user_id: SELECT user_id FROM chat_sessions ORDER BY id LIMIT 1
-- budget: max_ms=50 no_seq_scan
SELECT id, title, is_active, created_at, updated_at
FROM chat_sessions
WHERE user_id = :user_id
ORDER BY updated_at DESC
LIMIT 20;
