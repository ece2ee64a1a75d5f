"""The database fixtures of the data-layer tests, for the access and audit tables (SQLite and PostgreSQL)."""

from tests.jobs.conftest import database_url, engine, postgresql_database_url

__all__ = ["database_url", "engine", "postgresql_database_url"]
