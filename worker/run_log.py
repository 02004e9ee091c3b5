"""While a run lasts, its worker's log lines also go to the experiment's own file
(``app.core.run_log``), which the experiment page tails.

The worker's own loggers (``worker.*``) log at INFO into the file whatever level the console
has: Celery's ``--loglevel`` (WARNING under a quiet `cifarlab up`) still decides what reaches
the console, through a handler that passes on only what the root logger would have let
through. Other libraries' warnings and errors (TensorFlow, Keras) reach the file from the
root logger. A Celery pool process runs one task at a time, so every line is this run's.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from logging.handlers import RotatingFileHandler

from app.core.config import Settings
from app.core.run_log import MAX_BYTES, run_log_path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _ToRoot(logging.Handler):
    """Hands a record to the root logger's handlers, as propagation would."""

    def emit(self, record: logging.LogRecord) -> None:
        logging.getLogger().handle(record)


@contextmanager
def run_log(settings: Settings, experiment_id: int) -> Iterator[None]:
    path = run_log_path(settings, experiment_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    file = RotatingFileHandler(path, maxBytes=MAX_BYTES, backupCount=1, encoding="utf-8")
    file.setLevel(logging.INFO)
    file.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    ours = logging.getLogger("worker")
    console = _ToRoot(root.getEffectiveLevel())
    saved = (ours.level, ours.propagate)
    root.addHandler(file)
    ours.addHandler(file)
    ours.addHandler(console)
    ours.setLevel(logging.INFO)
    ours.propagate = False  # the two handlers above stand in for propagation
    try:
        yield
    finally:
        ours.setLevel(saved[0])
        ours.propagate = saved[1]
        ours.removeHandler(console)
        ours.removeHandler(file)
        root.removeHandler(file)
        file.close()
