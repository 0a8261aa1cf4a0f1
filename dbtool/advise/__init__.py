"""The index advisor behind `dbtool advise`: per key query, the index its plan needs, proven by the planner.

`candidates.py` derives candidate indexes from the parsed query, `measure.py` prices a plan with a
candidate (hypothetical with hypopg, else built for real in a transaction that is always rolled
back), `advisor.py` keeps the ones that pay and merges those serving several queries, and
`write.py` writes a suggestion as the service's next migration pair.
"""
