"""Alembic revisions, one file each; installed as app.migrations.versions."""
