"""A pool process's own temporary folder, removed as the process ends.

TensorFlow's autograph writes the code it generates for each traced function to a temporary
file and deletes it at interpreter exit, with ``atexit``. A pool process ends with
``os._exit``, which skips ``atexit``, so each run left its files in the machine's temporary
folder for good (three for a tiny CNN's run), run after run. In a folder of its own,
everything a pool process leaves goes when it ends (Celery's ``worker_process_shutdown``). A
process killed outright cannot remove its folder: the next pool process to start, of any
worker on this machine, removes the folders of processes that are gone.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

PREFIX = "cifarlab-pool-"


def use_own_temporary_folder() -> Path:
    """Make a folder for this process and point ``tempfile`` (and child processes, through
    TMPDIR) at it; folders of processes no longer running are removed first."""
    shared = Path(tempfile.gettempdir())
    for folder in shared.glob(f"{PREFIX}*"):
        owner = folder_owner(folder)
        if owner is not None and not _running(owner):
            shutil.rmtree(folder, ignore_errors=True)
    own = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=shared))
    tempfile.tempdir = os.environ["TMPDIR"] = str(own)
    return own


def remove_own_temporary_folder() -> None:
    """Remove this process's folder, made by ``use_own_temporary_folder``, and all in it."""
    own = Path(tempfile.gettempdir())
    if own.name.startswith(f"{PREFIX}{os.getpid()}-"):
        shutil.rmtree(own, ignore_errors=True)


def folder_owner(folder: Path) -> int | None:
    """The process id in a pool process's folder name, ``cifarlab-pool-<pid>-<random>``;
    None for any other name."""
    if not folder.name.startswith(PREFIX):
        return None
    pid = folder.name.removeprefix(PREFIX).split("-", 1)[0]
    return int(pid) if pid.isdigit() and int(pid) > 0 else None


def _running(pid: int) -> bool:
    """Whether a process with this id exists (one this process may not signal counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        pass
    return True
