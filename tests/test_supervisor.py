"""The supervisor's restart policy, and what it does with a child that died: kill what the
child left in its group, say why it died, start it again after the backoff."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.interruptions import describe_exit
from app.supervisor import STOP_SIGNALS, Backoff, Supervisor
from tests.support.polling import wait_until
from tests.support.processes import alive


@pytest.fixture
def restore_signals() -> Iterator[None]:
    """The supervisor takes SIGINT, SIGTERM and SIGHUP; pytest gets them back afterwards."""
    saved = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def test_backoff_doubles_up_to_its_cap_and_starts_over_after_a_healthy_spell() -> None:
    backoff = Backoff(initial_seconds=1, maximum_seconds=5, healthy_seconds=60)
    assert [backoff.next_delay(ran_seconds=2) for _ in range(5)] == [1, 2, 4, 5, 5]
    assert backoff.next_delay(ran_seconds=60) == 1  # ran a minute: the count starts again
    assert backoff.next_delay(ran_seconds=59) == 2


def test_exit_codes_and_signals_read_as_words() -> None:
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(3) == "exited with code 3"
    assert describe_exit(-200) == "killed by signal 200"


def test_dead_child_is_restarted_after_its_group_is_killed(
    tmp_path: Path, restore_signals: None
) -> None:
    """The child leaves a grandchild in its group (as a SIGKILLed Celery main leaves its pool
    process), then dies; the grandchild is killed before ``on_death`` runs, and the child is
    started again, each time."""
    pids = tmp_path / "pids"
    script = (
        "import subprocess, sys, time\n"
        "orphan = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pids)!r}, 'a').write(f'{{orphan.pid}}\\n')\n"
        "sys.exit(3)\n"
    )
    deaths: list[tuple[int, bool]] = []

    def on_death(returncode: int) -> None:
        orphan = int(pids.read_text().split()[-1])
        deaths.append((returncode, alive(orphan)))
        if len(deaths) == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # enough: stop

    supervisor = Supervisor(stop_timeout_seconds=5)
    supervisor.start(
        "flaky", [sys.executable, "-c", script], dict(os.environ),
        backoff=Backoff(initial_seconds=0.1), on_death=on_death,
    )  # fmt: skip
    assert supervisor.wait() == 0  # stopped by the signal, not by a death
    assert deaths == [(3, False), (3, False)]
    assert len(pids.read_text().split()) == 2  # started twice: once, then one restart


def test_child_without_backoff_still_stops_everything(restore_signals: None) -> None:
    supervisor = Supervisor(stop_timeout_seconds=5)
    supervisor.start("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], {})
    supervisor.start("quitter", [sys.executable, "-c", "raise SystemExit(1)"], {})
    assert supervisor.wait() == 1
    assert all(child.process.poll() is not None for child in supervisor.children)


SUPERVISING = """
import os, sys
from app.supervisor import Supervisor
supervisor = Supervisor()
for name in ("one", "two"):
    supervisor.start(name, [sys.executable, "-c", "import time; time.sleep(60)"], dict(os.environ))
print(*(child.process.pid for child in supervisor.children), flush=True)
sys.exit(supervisor.wait())
"""


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGKILL])
def test_a_closed_terminal_or_a_killed_supervisor_leaves_no_child_running(
    signum: signal.Signals,
) -> None:
    """SIGHUP (the terminal `cifarlab up` ran in was closed) stops the children as SIGTERM
    does; SIGKILL, which the supervisor cannot catch, takes them along through Linux's
    parent-death signal. Either used to leave the worker training and the web holding its
    port, with no parent."""
    supervising = subprocess.Popen([sys.executable, "-c", SUPERVISING], stdout=subprocess.PIPE,
                                   text=True)  # fmt: skip
    assert supervising.stdout is not None
    children = [int(pid) for pid in supervising.stdout.readline().split()]
    assert len(children) == 2 and all(alive(pid) for pid in children)
    supervising.send_signal(signum)
    assert supervising.wait(timeout=30) == (0 if signum == signal.SIGHUP else -signal.SIGKILL)
    wait_until(lambda: not any(alive(pid) for pid in children), 10, what="no child running")


def test_default_worker_names_are_unique_per_process() -> None:
    """Two `cifarlab worker`s on one host used to both be cifarlab@host, sharing one row."""
    line = "from app.cli.services import default_worker_name; print(default_worker_name())"
    names = {
        subprocess.run([sys.executable, "-c", line], capture_output=True, text=True,
                       check=True).stdout.strip()
        for _ in range(2)
    }  # fmt: skip
    assert len(names) == 2
    assert all(re.fullmatch(rf"cifarlab-\d+@{re.escape(socket.gethostname())}", n) for n in names)
