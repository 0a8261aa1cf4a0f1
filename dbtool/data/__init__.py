"""Rows: development seeds, deterministic synthetic data at scale, and soft references across service databases.

seed.py loads rows (bulkload.py takes an empty table the way pg_restore does); synthetic.py lists the
rules of synthetic.toml and makes the rows, rules.py reads each rule into a generator, groups.py holds
a group of rows and the chunks they are made in; references.py checks the soft references.
"""
