"""Start child processes, restart those that may die alone, and stop every one of them on
Ctrl-C, SIGTERM, SIGHUP (the terminal closed), or when a child that may not die alone dies.
Killed itself (SIGKILL, where it can do nothing), it takes its children with it on Linux."""

from __future__ import annotations

import ctypes
import functools
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from app.core.interruptions import describe_exit

logger = logging.getLogger(__name__)
GROUP_GONE_SECONDS = 10.0  # how long a killed process group may take to disappear
PR_SET_PDEATHSIG = 1  # linux/prctl.h
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


# Looked up once, here: between fork and exec (``start_child``) the child only calls it, and
# loads nothing, as a process that forked while another thread held a lock must not.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def die_with_parent(parent: int) -> None:
    """Ask Linux to send this process SIGTERM when its parent dies, even by SIGKILL: a child
    of a killed supervisor would run on as an orphan, holding its port or training. Exits at
    once if ``parent`` is already gone. Linux only; elsewhere it does nothing."""
    if _PRCTL is None:
        return
    if _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # it died before the request took effect
        sys.exit(0)


def start_child(argv: Sequence[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """A child in its own process group (stopping it stops what it forks; a terminal's Ctrl-C
    reaches only its supervisor) that dies with this process."""
    return subprocess.Popen(
        list(argv), env=env, start_new_session=True,
        preexec_fn=functools.partial(die_with_parent, os.getpid()),
    )  # fmt: skip


@dataclass
class Backoff:
    """Seconds to wait before restarting a child that died: ``initial_seconds``, doubled for
    each death in a row up to ``maximum_seconds``, so a child that dies at once does not spin.
    A child that ran ``healthy_seconds`` before dying starts the count again: a worker the
    OOM killer takes once an hour comes back in a second, not in a minute."""

    initial_seconds: float = 1.0
    maximum_seconds: float = 60.0
    healthy_seconds: float = 60.0
    deaths_in_a_row: int = 0

    def next_delay(self, ran_seconds: float) -> float:
        if ran_seconds >= self.healthy_seconds:
            self.deaths_in_a_row = 0
        delay = min(self.maximum_seconds, self.initial_seconds * 2**self.deaths_in_a_row)
        self.deaths_in_a_row += 1
        return delay


@dataclass
class Child:
    """``backoff`` None: its death stops everything. ``on_death`` runs with its return code
    once its whole process group is gone, before it is started again."""

    name: str
    launch: Callable[[], subprocess.Popen[bytes]]
    process: subprocess.Popen[bytes]
    backoff: Backoff | None = None
    on_death: Callable[[int], None] | None = None
    started_at: float = field(default_factory=time.monotonic)
    restart_at: float | None = None


class Supervisor:
    """Each child gets its own process group, so stopping it also stops what it forked
    (Celery's pool processes) and a terminal's Ctrl-C reaches only this supervisor.

    ``peers``: the children do the same job (web processes, one worker per GPU) and stop all
    at once, so stopping takes as long as the slowest, not the sum of them."""

    def __init__(self, stop_timeout_seconds: float = 10.0, *, peers: bool = False) -> None:
        self.children: list[Child] = []
        self.stop_timeout_seconds = stop_timeout_seconds
        self.peers = peers
        self._stopping = False
        # Installed before any child starts, so a signal during start-up is not lost.
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._request_stop)

    def _request_stop(self, signum: int, _frame: FrameType | None) -> None:
        logger.info("received %s, stopping", signal.Signals(signum).name)
        self._stopping = True

    def supervise(
        self,
        name: str,
        launch: Callable[[], subprocess.Popen[bytes]],
        *,
        backoff: Backoff | None = None,
        on_death: Callable[[int], None] | None = None,
    ) -> None:
        """Launch a child now; with ``backoff``, launch it again whenever it dies."""
        process = launch()
        logger.info("started %s (pid %s)", name, process.pid)
        self.children.append(Child(name, launch, process, backoff, on_death))

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: dict[str, str],
        *,
        backoff: Backoff | None = None,
        on_death: Callable[[int], None] | None = None,
    ) -> None:
        self.supervise(name, lambda: start_child(argv, env), backoff=backoff, on_death=on_death)

    def wait(self) -> int:
        """Block until a signal arrives or a child that may not die alone exits, restarting
        the others as they die; then stop them all."""
        exit_code = 0
        while not self._stopping:
            for child in self.children:
                if child.restart_at is not None:
                    if time.monotonic() >= child.restart_at:
                        self._restart(child)
                elif child.process.poll() is not None:
                    if child.backoff is None:
                        logger.error(
                            "%s %s; stopping the rest", child.name,
                            describe_exit(child.process.returncode),
                        )  # fmt: skip
                        exit_code = 1
                        self._stopping = True
                    else:
                        self._bury(child)
            time.sleep(0.2)
        self.stop()
        return exit_code

    def _bury(self, child: Child) -> None:
        """Kill what the dead child left in its group (a pool process must not train on as an
        orphan), run its ``on_death``, and set the time of its restart."""
        assert child.backoff is not None
        returncode = child.process.returncode
        ran_seconds = time.monotonic() - child.started_at
        logger.error(
            "%s (pid %s) %s after %.0f s", child.name, child.process.pid,
            describe_exit(returncode), ran_seconds,
        )  # fmt: skip
        self._signal_group(child.process, signal.SIGKILL)
        if not _group_gone(child.process.pid, GROUP_GONE_SECONDS):
            logger.error("%s: processes of its group outlived %s s", child.name, GROUP_GONE_SECONDS)
        if child.on_death is not None:
            try:
                child.on_death(returncode)
            except Exception:  # a database hiccup must not take the supervisor down
                logger.exception("%s: handling its death failed", child.name)
        delay = child.backoff.next_delay(ran_seconds)
        logger.info("restarting %s in %.0f s", child.name, delay)
        child.restart_at = time.monotonic() + delay

    def _restart(self, child: Child) -> None:
        assert child.backoff is not None
        try:
            child.process = child.launch()
        except Exception:  # e.g. redis-server not answering in time: try again later
            delay = child.backoff.next_delay(0.0)
            logger.exception("%s did not start; trying again in %.0f s", child.name, delay)
            child.restart_at = time.monotonic() + delay
            return
        child.started_at = time.monotonic()
        child.restart_at = None
        logger.info("restarted %s (pid %s)", child.name, child.process.pid)

    def stop(self) -> None:
        """Stop children in reverse start order (the web first, the broker last), or peers
        all at once."""
        if self.peers:
            self._stop_together(list(reversed(self.children)))
        else:
            for child in reversed(self.children):
                self._stop_together([child])

    def _stop_together(self, children: Sequence[Child]) -> None:
        for child in children:
            self._signal_group(child.process, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_seconds
        for child in children:
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning(
                    "%s did not stop in %s s; killing it", child.name, self.stop_timeout_seconds
                )
            self._signal_group(child.process, signal.SIGKILL)
            child.process.wait()
            logger.info("stopped %s", child.name)

    @staticmethod
    def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
        try:
            os.killpg(process.pid, signum)
        except ProcessLookupError:
            pass


def _group_gone(group: int, timeout_seconds: float) -> bool:
    """Whether every process of the group has ended. Orphans are init's to reap, and an init
    that never reaps leaves zombies, so a zombie counts as ended: it runs no more code."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if not any(state != "Z" for state in _group_states(group)):
            return True
        time.sleep(0.05)
    return False


def _group_states(group: int) -> list[str]:
    """The state letter (R, S, D, Z, ...) of each process in the group, from /proc."""
    states = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended while we looked
            continue
        if int(fields[2]) == group:
            states.append(fields[0])
    return states
