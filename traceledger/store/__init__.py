"""PostgreSQL: the connection pool, the embedded server, numbered migrations and
advisory-lock leadership (one registry of lock ids)."""
