"""`cifarlab sweep` against `cifarlab up` (real Redis, worker and web): a tiny sweep of one
learning rate x 2 seeds, followed to the end, then read back with `cifarlab sweeps`. (How a
grid and seeds multiply into trials is tests/test_sweeps_api.py's; here each trial is a real
run, so two.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import httpx
import pytest

from tests.support.servers import Stack

pytestmark = pytest.mark.e2e


def run_cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CIFARLAB_API_URL": stack.base_url, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip


def test_cli_sweep_follows_every_trial_to_the_end_and_reads_it_back(stack: Stack) -> None:
    tiny = ["--set", "epochs=1", "--set", "train_size=100", "--set", "test_size=50",
            "--set", "batch_size=32", "--set", "filters=8"]  # fmt: skip
    refused = run_cli(stack, "sweep", *tiny, "--grid", "learning_rate=1e-3,-1")
    assert refused.returncode != 0
    assert "grid.learning_rate[1]" in refused.stdout, refused.stdout + refused.stderr

    result = run_cli(
        stack, "sweep", *tiny, "--grid", "learning_rate=3e-3", "--seeds", "2",
        "--max-parallel", "2", "--name", "cli sweep", "--follow",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r"launched sweep (\d+): 2 trials: (\S+)", result.stdout)
    assert found, result.stdout
    sweep_id = int(found.group(1))
    assert found.group(2) == f"{stack.base_url}/sweeps/{sweep_id}"
    assert "2/2 finished: 2 succeeded" in result.stdout
    assert "best: trial" in result.stdout

    sweep = httpx.get(f"{stack.base_url}/api/sweeps/{sweep_id}", timeout=10).json()
    assert [t["status"] for t in sweep["trials"]] == ["succeeded"] * 2
    assert sorted((t["point"]["learning_rate"], t["point"]["seed"]) for t in sweep["trials"]) == [
        (0.003, 0), (0.003, 1)
    ]  # fmt: skip
    ids = re.search(r"trial ids: ([\d ]+)", result.stdout)
    assert ids and [int(i) for i in ids.group(1).split()] == [t["id"] for t in sweep["trials"]]

    listed = run_cli(stack, "sweeps")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "cli sweep" in listed.stdout and "2 succeeded" in listed.stdout
    shown = run_cli(stack, "sweeps", "show", str(sweep_id))
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert shown.stdout.count("succeeded") >= 2 and "learning_rate" in shown.stdout
    retried = run_cli(stack, "sweeps", "retry", str(sweep_id))
    assert retried.returncode != 0 and "409" in retried.stdout
