"""Start child processes and stop every one of them on Ctrl-C, SIGTERM, or when one dies."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from types import FrameType

logger = logging.getLogger(__name__)


class Supervisor:
    """Each child gets its own process group, so stopping it also stops what it forked
    (Celery's pool processes) and a terminal's Ctrl-C reaches only this supervisor.

    ``peers``: the children do the same job (web processes, one worker per GPU) and stop all
    at once, so stopping takes as long as the slowest, not the sum of them."""

    def __init__(self, stop_timeout_seconds: float = 10.0, *, peers: bool = False) -> None:
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.stop_timeout_seconds = stop_timeout_seconds
        self.peers = peers
        self._stopping = False
        # Installed before any child starts, so a signal during start-up is not lost.
        signal.signal(signal.SIGINT, self._request_stop)
        signal.signal(signal.SIGTERM, self._request_stop)

    def _request_stop(self, signum: int, _frame: FrameType | None) -> None:
        logger.info("received %s, stopping", signal.Signals(signum).name)
        self._stopping = True

    def adopt(self, name: str, process: subprocess.Popen[bytes]) -> None:
        self.children.append((name, process))

    def start(self, name: str, argv: Sequence[str], env: dict[str, str]) -> None:
        process = subprocess.Popen(list(argv), env=env, start_new_session=True)
        logger.info("started %s (pid %s)", name, process.pid)
        self.adopt(name, process)

    def wait(self) -> int:
        """Block until a signal arrives or a child exits; then stop them all."""
        exit_code = 0
        while not self._stopping:
            for name, process in self.children:
                if process.poll() is not None:
                    logger.error(
                        "%s exited with code %s; stopping the rest", name, process.returncode
                    )
                    exit_code = 1
                    self._stopping = True
            time.sleep(0.2)
        self.stop()
        return exit_code

    def stop(self) -> None:
        """Stop children in reverse start order (the web first, the broker last), or peers
        all at once."""
        if self.peers:
            self._stop_together(list(reversed(self.children)))
        else:
            for child in reversed(self.children):
                self._stop_together([child])

    def _stop_together(self, children: Sequence[tuple[str, subprocess.Popen[bytes]]]) -> None:
        for _, process in children:
            self._signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_seconds
        for name, process in children:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning(
                    "%s did not stop in %s s; killing it", name, self.stop_timeout_seconds
                )
            self._signal_group(process, signal.SIGKILL)
            process.wait()
            logger.info("stopped %s", name)

    @staticmethod
    def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            pass
