"""Looking at a live database: the index audit, EXPLAIN ANALYZE of key queries, and explain
baselines that catch a plan changing shape or slowing down.
"""
