"""Looking at a live database: the index audit and EXPLAIN ANALYZE of key queries.
"""
