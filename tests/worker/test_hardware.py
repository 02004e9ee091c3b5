"""Machines without a GPU: TensorFlow's expected cuInit failure is dropped, nothing else."""

from __future__ import annotations

import os
import threading

import pytest

from worker import hardware

CUINIT = b"E0000 cuda_platform.cc:52] failed call to cuInit: INTERNAL: UNKNOWN ERROR (303)\n"
OTHER = b"E0000 some_op.cc:1] a real error\n"


@pytest.mark.parametrize("driver", [False, True])
def test_cuinit_failure_is_dropped_only_without_a_driver(
    driver: bool, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(hardware, "cuda_driver_present", lambda: driver)
    with hardware.without_cuinit_noise():
        os.write(2, CUINIT + OTHER)
    err = capfd.readouterr().err
    assert "a real error" in err
    assert ("failed call to cuInit" in err) is driver


EARLY = (
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    b"I0000 00:00:1796169125.544237   14934 port.cc:153] oneDNN custom operations are on.\n"
    b"W0000 00:00:1796169125.545529   14934 some.cc:1] a warning\n"
    b"E0000 00:00:1796169125.545529   14934 some.cc:2] an error\n"
    b"Traceback (most recent call last):\n"
)


@pytest.mark.parametrize(
    ("level", "shown"),
    [("0", [0, 1, 2, 3, 4]), ("1", [0, 2, 3, 4]), ("2", [3, 4]), ("3", [4])],
)
def test_early_tensorflow_logs_honour_its_log_level(
    level: str, shown: list[int], monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Printed before absl's logging is set up, they ignore TF_CPP_MIN_LOG_LEVEL themselves:
    importing TensorFlow in every fresh pool process put them in `cifarlab up`'s terminal."""
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", level)
    with hardware.without_early_tensorflow_logs():
        os.write(2, EARLY)
    err = capfd.readouterr().err.splitlines(keepends=True)
    lines = EARLY.decode().splitlines(keepends=True)
    assert err == [lines[i] for i in shown]


def test_overlapping_filters_in_two_threads_leave_stderr_whole(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A pool process's early import filters stderr in a thread while its task may filter it
    too. Had the second block begun inside the first and ended after it, stderr would have
    stayed on the first's file, and every later line of the process been lost."""
    monkeypatch.setattr(hardware, "cuda_driver_present", lambda: False)
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with hardware.without_early_tensorflow_logs():
            first_in.set()
            second_in.wait(timeout=1)  # the interleaving that lost stderr, if it can happen
        first_out.set()

    def second() -> None:
        first_in.wait(timeout=5)
        with hardware.without_cuinit_noise():
            second_in.set()
            first_out.wait(timeout=5)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    os.write(2, b"a line after both\n")
    assert "a line after both" in capfd.readouterr().err
