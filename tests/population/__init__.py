"""Population monitoring tests: SQL rules on DuckDB, PostgreSQL and Spark against core."""
