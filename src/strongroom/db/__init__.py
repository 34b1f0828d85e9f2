"""Engine factory (SQLite / PostgreSQL), tables and the Alembic migrations shipped in the wheel."""
