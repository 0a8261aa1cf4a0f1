"""Rows: development seeds, deterministic synthetic data at scale, and soft references across service databases.
"""
