"""`dbtool lint`: migrations checked offline on PostgreSQL's own parse tree (pglast).
"""
