"""schema.sql: dumping a schema, comparing two, scratch databases to build one on, and `dbtool verify`'s round trip.
"""
