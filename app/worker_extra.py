"""Whether this install can train: `pip install cifarlab` gives the dashboard alone, and the
`worker` extra adds TensorFlow and the rest of what a worker imports. Without them a worker
would start, take a run off the queue and die importing Keras, leaving the run queued for
good; so `cifarlab worker` and the benchmarks refuse to start, and `cifarlab up` runs the
dashboard without a worker, each saying how to install what is missing.

Looked up with ``find_spec``, which finds a package without importing it: the check costs
milliseconds and loads no TensorFlow into the process that asks."""

from __future__ import annotations

import importlib.util

TRAINING_PACKAGES = {
    "tensorflow": "tensorflow",
    "keras": "keras",
    "sklearn": "scikit-learn",
    "psutil": "psutil",
}
"""Module a worker cannot run without -> the distribution of the `worker` extra that provides
it. (The extra's nvidia-ml-py is not here: without it a worker reads no GPU figures, and
trains all the same.)"""


def cannot_train_reason() -> str | None:
    """Why this install cannot train, naming the missing packages and the fix; None if it can."""
    missing = [
        package
        for module, package in TRAINING_PACKAGES.items()
        if importlib.util.find_spec(module) is None
    ]
    if not missing:
        return None
    return (
        f"this install cannot train: {', '.join(missing)} "
        f"{'is' if len(missing) == 1 else 'are'} missing. Install the worker extra "
        "(`pip install 'cifarlab[worker]'`) here, or run workers on a machine that has it"
    )
