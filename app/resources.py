"""Where the installed package keeps its non-Python files.

The repository keeps ``migrations/``, ``templates/`` and ``static/`` at its top level (the
design card's layout); pyproject.toml installs them as ``app.migrations``, ``app.templates``
and ``app.static``, in a wheel and in an editable install alike. This is the one place that
turns those packages into folders.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def package_folder(name: str) -> Path:
    """The folder of ``app.<name>`` (``migrations``, ``templates`` or ``static``)."""
    folder = files(f"app.{name}")
    if not isinstance(folder, Path):  # e.g. imported from a zip archive
        raise RuntimeError(f"app.{name} must be installed as files, not inside {folder}")
    return folder


MIGRATIONS_DIR = package_folder("migrations")
TEMPLATES_DIR = package_folder("templates")
STATIC_DIR = package_folder("static")
