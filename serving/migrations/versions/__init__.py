"""Alembic revisions; a package only so that they ship inside `serving`."""
