"""Redis, schema-first: what this package owns.

- keyspace: each service's declared keys (schemas/<service>/redis.toml), loaded and validated.
- locate: where a service's Redis comes from (--redis-url, <SERVICE>_REDIS_URL, REDIS_URL,
  REDIS_HOST/REDIS_PORT, then an embedded redis-server under .dbtool/redis/ in dev and test).
- client: the connection, with the specification's retry and backoff.
- audit: `dbtool redis audit`, a SCAN of the keyspace against the declarations.
- seeding: `dbtool seed` filling the chat context cache from chat_db.

Nothing here imports redis-py at module level except client and audit, so the CLI stays light.
"""
