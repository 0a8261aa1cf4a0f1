"""`dbtool report`: one self-contained HTML page a person looks at, per service its migration
status, key query plans drawn as pictures, index audit, lint findings and (asked for) drift.

collect.py runs the core commands and keeps their JSON documents (the same `*_data` the --json
output prints); page.py turns those documents into HTML; plan_svg.py draws one plan.
"""
