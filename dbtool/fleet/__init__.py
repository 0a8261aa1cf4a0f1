"""Fleets: one service's migrations applied to many databases on many servers, wave by wave.

`file` reads fleet.toml (waves, ${VAR} expansion, no literal passwords), `discover` turns a wave into
its databases (listed, or answered by a directory query), `waves` runs one action per database in a
bounded thread pool and stops at the first failure unless told to go on, and `actions` holds what
runs per database (migrate, rollback, status, audit, schema check), each reusing the per-database
core so every guarantee of one database holds for each of the fleet's; `commands` puts them together.
"""
