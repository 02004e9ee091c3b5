"""Fixtures for tests that run Keras in the test process."""

from __future__ import annotations

import keras
import pytest


@pytest.fixture(autouse=True)
def float32_policy() -> None:
    """Each test starts in float32. A run sets Keras's global precision policy, as a worker
    process does for every task; in the test process it would outlive the test that ran it."""
    keras.mixed_precision.set_global_policy("float32")
