DROP TABLE chat_sessions;
