"""Application-side code the specification asks for, to be imported by the services themselves.

These are libraries, not dbtool commands: `enrollment` is the course service's enrollment
transaction, and `chat_context.ChatContextCache` the chat service's Redis context cache in front of
chat_db.
"""
