"""experiments list order index

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 00:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_experiments_created_at_id", "experiments", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_experiments_created_at_id", table_name="experiments")
