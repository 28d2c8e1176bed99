"""Alembic migrations for the inspection database, applied at startup by `serving.records.database.Database.migrate`."""
