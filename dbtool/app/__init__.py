"""Application-side code the specification asks for, used by the services rather than by dbtool's commands:
the course enrollment transaction (and the chat context cache).
"""
