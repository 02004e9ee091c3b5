"""`cifarlab bench train --to-accuracy`: a preset through the worker's own code and the plain
Keras script, each stopped at the first epoch that reaches the target, in scratch folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.core.config import get_settings


def test_each_contender_stops_at_the_target_and_the_users_folder_stays_untouched(
    data_dir: Path, tiny_cifar10: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIFARLAB_CIFAR10_PATH", str(tiny_cifar10))
    monkeypatch.setenv("CIFARLAB_DATA_DIR", str(data_dir))  # the command moves both away
    monkeypatch.setenv("CIFARLAB_DATABASE_URL", f"sqlite:///{data_dir / 'cifarlab.db'}")
    get_settings.cache_clear()
    result = CliRunner().invoke(
        cli, ["bench", "train", "--to-accuracy", "0.3", "--presets", "quick-custom-cnn"]
    )
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    races = {race["contender"]: race for race in figures["races"]}
    assert set(races) == {"quick-custom-cnn", "plain keras (study recipe)"}
    for race in races.values():
        assert race["reached_epoch"] is not None, race
        assert race["best_val_accuracy"] >= 0.3
        assert 0 < race["training_seconds"] <= race["seconds"]
    # The plain script stops at the epoch that reached it; the preset's cancel lands within
    # the epoch after at the latest (the watcher polls the database).
    plain = races["plain keras (study recipe)"]
    assert plain["epochs_run"] == plain["reached_epoch"]
    preset = races["quick-custom-cnn"]
    assert preset["reached_epoch"] <= preset["epochs_run"] <= preset["reached_epoch"] + 1
    assert not (data_dir / "artifacts").exists()  # no model or checkpoint in the user's folder
    assert (data_dir / "datasets").is_dir()  # while the decoded cache is shared
