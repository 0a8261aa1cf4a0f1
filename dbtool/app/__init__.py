"""Application-side code the specification asks for, to be imported by the services themselves.

These are libraries, not dbtool commands: chat_context.ChatContextCache is the chat service's
Redis context cache in front of chat_db.
"""
