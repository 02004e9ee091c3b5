"""A pool process's temporary files live in a folder of its own, gone when it ends."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from worker.temporary_folder import (
    PREFIX,
    remove_own_temporary_folder,
    use_own_temporary_folder,
)


@pytest.fixture
def shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The machine's temporary folder, as this process sees it; restored afterwards."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    return tmp_path


def ended_process_id() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_the_process_writes_into_its_own_folder_and_removing_it_takes_everything(
    shared: Path,
) -> None:
    own = use_own_temporary_folder()

    assert own.parent == shared and own.name.startswith(f"{PREFIX}{os.getpid()}-")
    assert tempfile.gettempdir() == os.environ["TMPDIR"] == str(own)
    with tempfile.NamedTemporaryFile(suffix=".py", delete=False) as generated:
        generated.write(b"# what autograph leaves behind\n")
    assert Path(generated.name).parent == own

    remove_own_temporary_folder()
    assert not own.exists()
    assert list(shared.iterdir()) == []


def test_folders_of_ended_processes_go_and_those_of_running_ones_stay(shared: Path) -> None:
    ended = shared / f"{PREFIX}{ended_process_id()}-abc"
    running = shared / f"{PREFIX}{os.getppid()}-def"
    not_ours = [shared / f"{PREFIX}notapid", shared / "pymp-xyz"]
    for folder in (ended, running, *not_ours):
        folder.mkdir()
        (folder / "file.py").write_text("")

    own = use_own_temporary_folder()

    assert sorted(shared.iterdir()) == sorted([own, running, *not_ours])


def test_a_folder_that_is_not_this_processs_own_is_never_removed(shared: Path) -> None:
    remove_own_temporary_folder()  # tempfile points at the shared folder itself
    assert shared.is_dir()
    elsewhere = shared / f"{PREFIX}{os.getppid()}-def"
    elsewhere.mkdir()
    tempfile.tempdir = str(elsewhere)

    remove_own_temporary_folder()

    assert elsewhere.is_dir()
