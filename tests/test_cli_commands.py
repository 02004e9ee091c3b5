"""The CLI's reading and cancelling commands against a real server (uvicorn on this test's
database): what a person sees in the terminal and the exit code a script checks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.cli import cli
from tests.support.factories import finished_experiment
from tests.support.seed_reports import seed_report
from tests.support.servers import serve_app

runner = CliRunner()


def run(*args: str, columns: int = 200) -> tuple[int, str]:
    result = runner.invoke(cli, list(args), env={"COLUMNS": str(columns)})
    return result.exit_code, result.output


@pytest.fixture
def served(data_dir: Path) -> Iterator[str]:
    with serve_app(data_dir) as base_url:
        yield base_url


def test_show_prints_a_runs_hyperparameters_as_a_table_and_an_import_without_them(
    session: Session, served: str
) -> None:
    trained = finished_experiment(session)
    code, output = run("show", str(trained.id), "--api-url", served)
    assert code == 0, output
    assert "hyperparameter" in output and "learning_rate" in output and "0.001" in output
    assert "┃ epoch" in output

    imported = httpx.post(
        f"{served}/api/experiments/import",
        json={"name": "study cnn", "report_text": seed_report("custom-cnn")},
        timeout=10,
    ).json()
    code, output = run("show", str(imported["id"]), "--api-url", served)
    assert code == 0, output  # was KeyError: 'hyperparameters', exit 1
    assert "none (an imported report)" in output and "imported" in output


def test_cancel_of_a_finished_run_cancels_nothing_and_exits_non_zero(
    session: Session, served: str
) -> None:
    trained = finished_experiment(session)
    code, output = run("cancel", str(trained.id), "--api-url", served)
    assert code == 2  # as every refusal of the CLI
    assert f"experiment {trained.id} is succeeded: nothing was cancelled" in output
    assert httpx.get(f"{served}/api/experiments/{trained.id}").json()["status"] == "succeeded"


def test_presets_print_their_ids_whole_at_80_columns() -> None:
    code, output = run("presets", columns=80)
    assert code == 0
    for preset in ("study-efficientnetb2-fine-tuned", "quick-transfer-two-phase",
                   "beyond-efficientnetb2-augmented"):  # fmt: skip
        assert f"│ {preset}" in output, output


def test_help_shows_the_environment_variable_each_option_reads() -> None:
    """Rich read ``[env: ...]`` as a markup tag and dropped it: "server to talk to ."."""
    assert "[env: CIFARLAB_API_URL]" in run("show", "--help", columns=120)[1]
    assert "[env: CIFARLAB_DATA_DIR]" in run("up", "--help", columns=120)[1]
