"""dbtool: schema-first SQL migrations, checks and reports for PostgreSQL."""
