"""The module map holds: the contracts in pyproject.toml's ``[tool.importlinter]`` (web over
services over core, services free of the web framework, route modules independent of each
other, the worker on the core alone, TensorFlow only in the worker) are kept.
test_web_imports.py checks the same promise at run time, in a live process."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """import-linter on the tree at ``root``, which comes first on the path."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=root, capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(root)},
    )  # fmt: skip


def test_every_import_contract_is_kept() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_core_module_importing_the_web_breaks_a_contract(tmp_path: Path) -> None:
    """The rules are live: the same contracts fail a tree where the core reaches into the
    web, so a passing run above means something."""
    for package in ("app", "worker"):
        shutil.copytree(ROOT / package, tmp_path / package)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    memory = tmp_path / "app" / "core" / "memory.py"
    memory.write_text(memory.read_text() + "\nfrom app.web import charts  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "app.core.memory -> app.web.charts" in result.stdout, result.stdout
