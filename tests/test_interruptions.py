"""Runs whose process is known dead: requeued at once with the reason in words, or failed
after the last attempt; a run that moved on, or that another worker holds, is left alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.core import crud
from app.core.config import get_settings
from app.core.interruptions import requeue_dead_worker
from app.core.memory import MemoryFigures, read_memory
from app.core.models import Experiment, Status
from app.core.queue import enqueue_training, restore_unacknowledged
from tests.support.factories import make_experiment
from worker.tasks import settle_lost_child

GIB = 2**30
MEMORY = MemoryFigures(
    process_rss_bytes=6 * GIB, process_peak_bytes=7 * GIB, used_bytes=int(7.9 * GIB),
    total_bytes=8 * GIB, scope="cgroup",
)  # fmt: skip


def running(session: Session, *, worker: str, attempts: int) -> int:
    experiment = make_experiment(session)
    crud.claim_experiment(
        session=session, experiment_id=experiment.id, worker_host="vm (pid 7)", device="CPU",
        worker_name=worker,
    )  # fmt: skip
    session.execute(
        update(Experiment)
        .where(Experiment.id == experiment.id)
        .values(attempts=attempts, memory=MEMORY.as_json())
    )
    session.commit()
    return experiment.id


def stored(session: Session, experiment_id: int) -> Experiment:
    session.expire_all()
    experiment = crud.get_experiment(session=session, experiment_id=experiment_id)
    assert experiment is not None
    return experiment


@pytest.mark.both_databases
def test_sigkilled_worker_runs_requeue_then_fail_with_memory_figures(
    session: Session, broker: redis.Redis
) -> None:
    settings = get_settings()
    first = running(session, worker="w1@vm", attempts=1)
    last = running(session, worker="w1@vm", attempts=settings.max_attempts)
    elsewhere = running(session, worker="w2@vm", attempts=1)
    outcomes = requeue_dead_worker(settings, worker_name="w1@vm", returncode=-signal.SIGKILL)
    assert outcomes == {first: "requeued", last: "failed"}
    requeued = stored(session, first)
    assert requeued.status == Status.queued and requeued.error is None
    assert requeued.interruption == (
        "Attempt 1: the worker was killed (SIGKILL), most likely out of memory: 7.9 GiB of "
        "8.0 GiB in use (the container) at the last heartbeat, 6.0 GiB of it the training "
        "process (peak 7.0 GiB)."
    )
    failed = stored(session, last)
    assert failed.status == Status.failed and failed.finished_at is not None
    assert failed.error.startswith("The worker was killed (SIGKILL), most likely out of memory")
    assert f"(attempt {settings.max_attempts} of {settings.max_attempts})" in failed.error
    assert stored(session, elsewhere).status == Status.running
    assert requeue_dead_worker(settings, worker_name="w1@vm", returncode=-9) == {}


CONSUMER = """
import sys, time
from app.core.queue import get_celery
with get_celery().connection_for_read() as connection:
    queue = connection.SimpleQueue(sys.argv[1])
    queue.get(timeout=30)  # taken, never acknowledged
    print("taken", flush=True)
    time.sleep(60)
"""


def test_a_killed_consumers_messages_go_back_to_the_queue(
    broker: redis.Redis, data_dir: Path
) -> None:
    """A SIGKILLed worker's message sits in Redis's unacked set for the 7-day visibility
    timeout; `cifarlab up` puts it back at once, since its dead worker was the only consumer."""
    queue = get_settings().queue
    enqueue_training(41)
    consumer = subprocess.Popen(
        [sys.executable, "-c", CONSUMER, queue], stdout=subprocess.PIPE, env=dict(os.environ)
    )
    assert consumer.stdout is not None and consumer.stdout.readline() == b"taken\n"
    consumer.kill()
    consumer.wait()
    assert broker.llen(queue) == 0 and broker.hlen("unacked") == 1
    restore_unacknowledged()
    assert broker.llen(queue) == 1 and broker.hlen("unacked") == 0
    assert json.loads(broker.lindex(queue, 0))["headers"]["argsrepr"] == "[41]"


@pytest.mark.both_databases
def test_lost_pool_process_requeues_its_run_in_the_main_process(
    session: Session, broker: redis.Redis
) -> None:
    mine = running(session, worker="w1@vm", attempts=1)
    theirs = running(session, worker="w2@vm", attempts=1)
    lost = "Worker exited prematurely: signal 9 (SIGKILL) Job: 0."
    settle_lost_child(mine, "w1@vm", lost)
    settle_lost_child(theirs, "w1@vm", lost)  # w2 runs it: not this worker's to settle
    requeued = stored(session, mine)
    assert requeued.status == Status.queued
    assert requeued.interruption.startswith(
        "Attempt 1: the worker's training process was killed (SIGKILL), most likely out of "
        "memory: 7.9 GiB of 8.0 GiB"
    )
    assert broker.llen(get_settings().queue) == 0  # Celery requeues the message itself
    assert stored(session, theirs).status == Status.running
    settle_lost_child(mine, "w1@vm", "Worker exited prematurely: exitcode 1 Job: 0.")
    assert stored(session, mine).status == Status.queued  # not running: nothing to do


def test_memory_figures_come_from_proc_and_the_cgroup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "status").write_text("Name:\tpython\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n")
    (proc / "meminfo").write_text("MemTotal:  8192 kB\nMemFree: 1 kB\nMemAvailable:  2048 kB\n")
    usage, limit = tmp_path / "memory.current", tmp_path / "memory.max"
    usage.write_text("3000\n")
    limit.write_text("max\n")
    monkeypatch.setattr("app.core.memory.CGROUP_FILES", ((usage, limit),))
    assert read_memory(proc) == MemoryFigures(1024 * 1024, 2048 * 1024, 6144 * 1024, 8192 * 1024,
                                              "machine")  # fmt: skip
    limit.write_text("4000\n")
    assert read_memory(proc) == MemoryFigures(1024 * 1024, 2048 * 1024, 3000, 4000, "cgroup")
