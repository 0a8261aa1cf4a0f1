"""Least privilege per service database: the owner, application and read-only roles.

`names` says what the roles are called (schemas/<service>/dbtool.toml may set a prefix), `plan`
reads the catalog and computes the statements that bring roles, ownership and grants to the
desired state (nothing when they are there), `drift` reports what breaks least privilege,
`commands` applies a plan and runs migrations as the owner, `denied` turns a refused privilege
into one line naming the privilege, the object and the GRANT.
"""
