"""Alembic migrations for the inspection database, applied at startup by `serving.storage.Database.migrate`."""
