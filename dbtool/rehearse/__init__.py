"""`dbtool rehearse`: what the pending migrations of a service do to a database like production, under
traffic. It owns the writer and reader load derived from the catalog (traffic.py), what a migration
is seen to do while it runs: locks, rewrites, sizes (probe.py), and the rehearsal itself on a
scratch database (run.py). The service's own database is only read, for its applied version.
"""
