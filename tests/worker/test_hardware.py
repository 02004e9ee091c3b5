"""Machines without a GPU: TensorFlow's expected cuInit failure is dropped, nothing else."""

from __future__ import annotations

import os

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
