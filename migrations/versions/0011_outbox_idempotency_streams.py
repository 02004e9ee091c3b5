"""launch outbox, idempotency keys and live-stream leases

Revision ID: 0011
Revises: 0008
Create Date: 2026-11-30 23:00:00.000000

``enqueued_at`` is set once the broker took an experiment's message; a queued experiment
without it is still to be sent (the web's loop sends it). ``enqueue_claimed_at`` is the
short lease one web process takes before sending, so two do not both send. Rows that exist
already were sent (or failed) before this revision, so they count as enqueued.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("enqueue_claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("idempotency_key", sa.String(300), nullable=True))
        batch.add_column(sa.Column("request_hash", sa.String(64), nullable=True))
        batch.create_unique_constraint("uq_experiments_idempotency_key", ["idempotency_key"])
    op.execute("UPDATE experiments SET enqueued_at = created_at")
    op.create_table(
        "live_streams",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("viewer", sa.String(100), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_live_streams_viewer", "live_streams", ["viewer"])


def downgrade() -> None:
    op.drop_index("ix_live_streams_viewer", table_name="live_streams")
    op.drop_table("live_streams")
    with op.batch_alter_table("experiments") as batch:
        batch.drop_constraint("uq_experiments_idempotency_key", type_="unique")
        for name in ("request_hash", "idempotency_key", "enqueue_claimed_at", "enqueued_at"):
            batch.drop_column(name)
