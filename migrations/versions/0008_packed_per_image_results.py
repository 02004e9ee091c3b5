"""per-image results as packed arrays

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 03:00:00.000000

Labels, predictions and confidences move from JSON lists to raw little-endian bytes (see
``app.models.PackedArray``); every stored evaluation is converted, both ways.
"""

import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As app.models.PER_IMAGE_DTYPES was when this revision was written.
DTYPES = {"labels": "u1", "predictions": "u1", "confidences": "<f4"}


def _pack(value: Any, dtype: str) -> bytes | None:
    if value is None:
        return None
    values = json.loads(value) if isinstance(value, str) else value
    return np.asarray(values).astype(dtype).tobytes()


def _unpack(value: Any, dtype: str) -> list[Any] | None:
    if value is None:
        return None
    return np.frombuffer(bytes(value), dtype=dtype).tolist()


def _convert(new_type: sa.types.TypeEngine[Any], convert: Callable[[Any, str], Any]) -> None:
    """Adds the columns under a temporary name, fills them row by row, then swaps them in."""
    with op.batch_alter_table("evaluations") as batch:
        for name in DTYPES:
            batch.add_column(sa.Column(f"{name}_converted", new_type, nullable=True))
    connection = op.get_bind()
    rows = connection.execute(
        sa.text("SELECT experiment_id, labels, predictions, confidences FROM evaluations "
                "WHERE labels IS NOT NULL OR predictions IS NOT NULL")
    ).all()  # fmt: skip
    table = sa.table(
        "evaluations",
        sa.column("experiment_id", sa.Integer),
        *(sa.column(f"{name}_converted", new_type) for name in DTYPES),
    )
    for experiment_id, *values in rows:
        converted = {
            f"{name}_converted": convert(value, dtype)
            for (name, dtype), value in zip(DTYPES.items(), values, strict=True)
        }
        connection.execute(
            table.update().where(table.c.experiment_id == experiment_id).values(**converted)
        )
    with op.batch_alter_table("evaluations") as batch:
        for name in DTYPES:
            batch.drop_column(name)
            batch.alter_column(f"{name}_converted", new_column_name=name)


def upgrade() -> None:
    _convert(sa.LargeBinary(), _pack)


def downgrade() -> None:
    _convert(sa.JSON(), _unpack)
