"""Each experiment's own log: the worker writes the lines of its run to a file beside the
run's checkpoints (``worker/run_log.py``), and the experiment page shows its tail.

The file is capped: the worker rotates it at ``MAX_BYTES`` and keeps one older file, so a run
never holds more than twice that on disk however long it trains or however often it is
retried. Reading the tail reads at most the file's last ``TAIL_BYTES``.
"""

from __future__ import annotations

from pathlib import Path

from app.core.config import Settings

MAX_BYTES = 1 << 20
"""Where the worker starts a new file (the old one kept as ``run.log.1``)."""
TAIL_LINES = 100
TAIL_BYTES = 64 * 1024
"""The most of the file's end the tail reads: 100 lines of a few hundred characters each."""


def run_log_path(settings: Settings, experiment_id: int) -> Path:
    return settings.experiment_dir(experiment_id) / "run.log"


def tail(path: Path, lines: int = TAIL_LINES, max_bytes: int = TAIL_BYTES) -> list[str]:
    """The file's last ``lines`` lines (fewer when its last ``max_bytes`` hold fewer); none
    when there is no file yet. A line cut by the byte window is left out, and bytes that are
    not UTF-8 are replaced, never an error."""
    try:
        with path.open("rb") as file:
            size = file.seek(0, 2)
            start = max(size - max_bytes, 0)
            file.seek(start)
            data = file.read()
    except FileNotFoundError:
        return []
    text = data.decode("utf-8", errors="replace").splitlines()
    if start > 0 and text:
        text = text[1:]  # the first line began before the window
    return text[-lines:] if lines > 0 else []
