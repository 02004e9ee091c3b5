"""ids never reused: SQLite numbers experiments, sweeps and API tokens with AUTOINCREMENT

Revision ID: 0015_ids_never_reused
Revises: 0014_run_telemetry
Create Date: 2026-12-02 10:30:00.000000

Without AUTOINCREMENT SQLite gives a new row max(id)+1, so deleting the newest experiment
handed its id to the next run: bookmarks, /compare links, exported CSVs and the CLI's
history then pointed at another run, and the deleted run's folder, removed after the
DELETE commits, could take the new run's checkpoints with it. A revoked token's id went to
the next token, so a second ``cifarlab token revoke`` from an old listing revoked someone
else's. PostgreSQL's sequences never reuse an id; this makes SQLite agree.

SQLite can only add AUTOINCREMENT by rebuilding a table; the copy sets ``sqlite_sequence``
to the largest id copied, so new ids start above every existing row (an id deleted before
this upgrade may still be given out once). On PostgreSQL there is nothing to do.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015_ids_never_reused"
down_revision: str | None = "0014_run_telemetry"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("sweeps", "experiments", "api_tokens")


def rebuild(autoincrement: bool) -> None:
    """Copy each table into a new one with (or without) AUTOINCREMENT; Alembic's batch mode
    carries the columns, indexes and foreign keys over, and migrations/env.py has turned
    foreign keys off so that dropping the old table cascades nothing."""
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    rebuild(autoincrement=True)


def downgrade() -> None:
    rebuild(autoincrement=False)
