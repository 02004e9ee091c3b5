"""The original study's four classification reports (scikit-learn's text, 10,000 test images
each), kept in tests/fixtures/seed_reports so that a clean clone tests against them."""

from __future__ import annotations

from pathlib import Path

SEED_REPORTS = Path(__file__).resolve().parents[1] / "fixtures" / "seed_reports"


def seed_report(name: str) -> str:
    """The report's text; ``name`` as "custom-cnn" or "custom-cnn.txt"."""
    return (SEED_REPORTS / (name if name.endswith(".txt") else f"{name}.txt")).read_text()
