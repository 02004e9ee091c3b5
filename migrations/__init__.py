"""Alembic migrations; installed as app.migrations so the wheel carries them."""
