"""CIFAR-10's classes: every run is trained and judged on these ten, in the dataset's label
order. The worker decodes and names them; the web bounds confusion-matrix indices by them."""

from __future__ import annotations

CLASS_NAMES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CLASS_COUNT = len(CLASS_NAMES)
