"""Population monitoring: the monitoring rules over every patient at once.

The rules are SQL files written once in DuckDB's dialect (``sql/``), parameterised from the
knowledge base and transpiled with sqlglot for PostgreSQL and Spark (``plan``). They read the
normalised tables of ``tables`` (made from cases by ``convert``, or synthetic cohorts by
``generate``) and produce one worklist: a row per patient and finding code (``worklist``).
Engines: DuckDB over Parquet (embedded default), PostgreSQL, PySpark (``engines``).
"""
