"""training time and test-time augmentation: the figures time to accuracy is built from

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 09:50:00.000000

``experiments.training_seconds`` is the wall time spent inside epochs, the sum of the epoch
rows' seconds, kept on the experiment so the runs table can sort by it; unlike
finished_at - started_at it leaves out queueing, idle time after a cancel and retry, data
loading and evaluation. Existing runs get it from their epoch rows.

``evaluations.test_time_augmentation`` records how the test set was predicted ("none" or
"flip": the mean of the image's and its mirror's probabilities), because two runs that
differ in it are not measured alike. Existing evaluations predicted each image once.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("training_seconds", sa.Float(), nullable=True))
    op.execute(
        "UPDATE experiments SET training_seconds = (SELECT SUM(epoch_metrics.seconds) "
        "FROM epoch_metrics WHERE epoch_metrics.experiment_id = experiments.id)"
    )
    with op.batch_alter_table("evaluations") as batch:
        batch.add_column(
            sa.Column(
                "test_time_augmentation",
                sa.String(length=16),
                nullable=False,
                server_default="none",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("evaluations") as batch:
        batch.drop_column("test_time_augmentation")
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("training_seconds")
