"""Migrations build the schema the models describe, and tear it down again."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Connection, create_engine, inspect, select, text
from sqlalchemy.orm import Session, undefer

from app.core.models import IMPORTED_MODEL, Base, Evaluation, Experiment, Status
from app.migrate import downgrade, upgrade


def test_upgrade_head_then_downgrade_base_on_empty_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    upgrade(url)
    engine = create_engine(url)
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    for name, table in Base.metadata.tables.items():
        columns = {column["name"] for column in inspect(engine).get_columns(name)}
        assert columns == set(table.columns.keys()), name
    downgrade(url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()


def test_upgrade_and_downgrade_on_postgresql(postgres_server) -> None:
    url = postgres_server.create_database("migrations")
    upgrade(url)
    engine = create_engine(url)
    assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    downgrade(url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()


def test_upgrading_keeps_every_row(tmp_path: Path) -> None:
    """Table rebuilds on SQLite must not cascade: experiments keep their epochs and results."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, revision="0001")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.exec_driver_sql(
            "INSERT INTO experiments (id, name, model, spec, tags, status, created_at, "
            "current_epoch, epoch_progress, total_epochs) VALUES (1, 'old', 'custom_cnn', '{}', "
            "'[]', 'succeeded', '2026-01-01 00:00:00', 2, 1.0, 2)"
        )
        for epoch in (1, 2):
            connection.exec_driver_sql(
                "INSERT INTO epoch_metrics (experiment_id, epoch, phase) "
                f"VALUES (1, {epoch}, 'train')"
            )
        connection.exec_driver_sql(
            "INSERT INTO evaluations (experiment_id, accuracy, classes, confusion_matrix, report, "
            "test_size, created_at) VALUES (1, 0.5, '[]', '[]', '{}', 10, '2026-01-01 00:00:00')"
        )
    engine.dispose()
    upgrade(url)
    with create_engine(url).connect() as connection:
        counts = [
            connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()
            for table in ("experiments", "epoch_metrics", "evaluations")
        ]
        foreign_keys = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
    assert counts == [1, 2, 1]
    assert foreign_keys == []


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_server").create_database("packing"))
    return f"sqlite:///{tmp_path / 'packing.db'}"


def test_per_image_results_survive_packing_and_unpacking(database_url: str) -> None:
    """0008 turns JSON lists into packed bytes and back without changing a value."""
    labels, predictions, confidences = [3, 8, 0, 9], [3, 1, 0, 9], [0.9712, 0.5, 1.0, 0.25]
    upgrade(database_url, revision="0007")
    engine = create_engine(database_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO experiments (id, name, model, spec, tags, status, created_at, "
                "current_epoch, epoch_progress, total_epochs, notes, attempts) VALUES (1, 'old', "
                "'custom_cnn', '{}', '[]', 'succeeded', '2026-01-01 00:00:00', 1, 1.0, 1, '', 1)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO evaluations (experiment_id, accuracy, classes, report, test_size, "
                "created_at, labels, predictions, confidences) VALUES (1, 0.75, '[]', '{}', 4, "
                "'2026-01-01 00:00:00', :labels, :predictions, :confidences)"
            ),
            {"labels": json.dumps(labels), "predictions": json.dumps(predictions),
             "confidences": json.dumps(confidences)},
        )  # fmt: skip
    engine.dispose()
    upgrade(database_url)
    with Session(create_engine(database_url)) as session:
        evaluation = session.scalars(select(Evaluation).options(undefer("*"))).one()
        assert evaluation.labels is not None and evaluation.labels.dtype == np.uint8
        assert evaluation.labels.tolist() == labels
        assert evaluation.predictions is not None and evaluation.predictions.tolist() == predictions
        assert evaluation.confidences is not None
        assert np.allclose(evaluation.confidences, confidences)
    downgrade(database_url, revision="0007")
    with create_engine(database_url).connect() as connection:
        row = connection.execute(
            text("SELECT labels, predictions, confidences FROM evaluations")
        ).one()
    stored = [json.loads(v) if isinstance(v, str) else v for v in row]
    assert stored[0] == labels and stored[1] == predictions
    assert np.allclose(stored[2], confidences)


@pytest.fixture(params=["sqlite", "postgresql"])
def statuses_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_server").create_database("statuses"))
    return f"sqlite:///{tmp_path / 'statuses.db'}"


def test_status_is_the_enum_in_python_and_the_same_text_in_the_database(
    statuses_url: str,
) -> None:
    """Rows written as text before Experiment.status was typed read back as ``Status``, and
    new rows store the same text: no migration, no database enum type."""
    upgrade(statuses_url)
    engine = create_engine(statuses_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO experiments (id, name, model, spec, tags, status, created_at, "
                "current_epoch, epoch_progress, total_epochs, notes, attempts) VALUES (1, 'study', "
                "'imported', '{}', '[]', 'imported', '2026-01-01 00:00:00', 0, 0.0, 0, '', 0)"
            )
        )
    with Session(engine) as session:
        old = session.get_one(Experiment, 1)
        assert old.status is Status.imported and old.model == IMPORTED_MODEL
        session.add(Experiment(id=2, name="new", model="custom_cnn", spec={}))
        session.commit()
        assert session.get_one(Experiment, 2).status is Status.queued
        queued = select(Experiment.id).where(Experiment.status == "queued")
        assert session.scalars(queued).all() == [2]
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT status FROM experiments ORDER BY id")).scalars()
        assert stored.all() == ["imported", "queued"]
    engine.dispose()


NEW_ROWS = {
    "sweeps": "INSERT INTO sweeps (name, model, spec, created_at) "
    "VALUES ('sweep', 'custom_cnn', '{}', '2026-01-01 00:00:00')",
    "experiments": "INSERT INTO experiments (name, model, spec, tags, status, created_at, "
    "current_epoch, epoch_progress, total_epochs, notes, attempts) VALUES ('run', 'custom_cnn', "
    "'{}', '[]', 'succeeded', '2026-01-01 00:00:00', 2, 1.0, 2, '', 1)",
    "api_tokens": "INSERT INTO api_tokens (user_id, name, token_hash, created_at) "
    "VALUES (1, 'cli', lower(hex(randomblob(32))), '2026-01-01 00:00:00')",
}
"""One new row for each table 0015 rebuilds, its id left to SQLite."""


def table_sql(connection: Connection, table: str) -> str:
    return str(
        connection.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).scalar_one()
    )


def test_upgrading_sqlite_numbers_new_rows_above_every_id_kept(tmp_path: Path) -> None:
    """0015 rebuilds experiments, sweeps and API tokens with AUTOINCREMENT: every row, epoch
    and evaluation stays, with the indexes and foreign keys, and a deleted newest row's id is
    not given out again. Downgrading rebuilds them as they were."""
    url = f"sqlite:///{tmp_path / 'ids.db'}"
    upgrade(url, revision="0014_run_telemetry")
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "INSERT INTO users (id, username, password_hash, is_admin, created_at) "
            "VALUES (1, 'ada', 'hash', 1, '2026-01-01 00:00:00')"
        )
        for statement in NEW_ROWS.values():
            connection.exec_driver_sql(statement)
            connection.exec_driver_sql(statement)
        connection.exec_driver_sql("UPDATE experiments SET sweep_id = 2, owner_id = 1")
        for epoch in (1, 2):
            connection.exec_driver_sql(
                "INSERT INTO epoch_metrics (experiment_id, epoch, phase) "
                f"VALUES (2, {epoch}, 'train')"
            )
        connection.exec_driver_sql(
            "INSERT INTO evaluations (experiment_id, accuracy, classes, report, test_size, "
            "created_at) VALUES (2, 0.5, '[]', '{}', 10, '2026-01-01 00:00:00')"
        )
        indexes = inspect(connection).get_indexes("experiments")
    engine.dispose()

    upgrade(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")  # deletes below cascade
        counts = [
            connection.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()
            for table in (*NEW_ROWS, "epoch_metrics", "evaluations")
        ]
        assert counts == [2, 2, 2, 2, 1]
        assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        assert inspect(connection).get_indexes("experiments") == indexes
        for table, statement in NEW_ROWS.items():
            assert "AUTOINCREMENT" in table_sql(connection, table)
            connection.exec_driver_sql(f"DELETE FROM {table} WHERE id = 2")
            assert connection.exec_driver_sql(statement).lastrowid == 3, table
    engine.dispose()

    downgrade(url, revision="0014_run_telemetry")
    with engine.connect() as connection:
        for table in NEW_ROWS:
            assert "AUTOINCREMENT" not in table_sql(connection, table)
            assert connection.exec_driver_sql(
                f"SELECT id FROM {table} ORDER BY id"
            ).scalars().all() == [1, 3]
        assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    engine.dispose()
