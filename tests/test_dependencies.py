"""What a fresh machine installs is what CI tested: every distribution the code imports is
declared in pyproject.toml, in the part of it that installs where the code runs, and
constraints.txt pins every distribution the declared requirements bring in."""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
# Where code runs decides what it may import: the web image installs the base and postgres
# only; the worker adds its extra; tests and migrations run where everything is installed.
ALLOWED_EXTRAS = {
    "app": ("postgres",),
    "worker": ("worker", "postgres"),
    "migrations": ("postgres",),
    "tests": tuple(PROJECT["optional-dependencies"]),
}


def declared(extras: Iterable[str]) -> set[str]:
    lines = list(PROJECT["dependencies"])
    for extra in extras:
        lines += PROJECT["optional-dependencies"][extra]
    return {canonicalize_name(Requirement(line).name) for line in lines}


def imported_distributions(folder: Path) -> dict[str, str]:
    """Each third-party distribution imported under ``folder``, with one file importing it."""
    owners = metadata.packages_distributions()
    found: dict[str, str] = {}
    for path in sorted(folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in {"app", "worker", "tests"}:
                    continue
                for distribution in owners.get(top, [top]):
                    found.setdefault(canonicalize_name(distribution), str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize("folder", sorted(ALLOWED_EXTRAS))
def test_every_imported_distribution_is_declared_where_the_code_runs(folder: str) -> None:
    allowed = declared(ALLOWED_EXTRAS[folder])
    undeclared = {
        name: where for name, where in imported_distributions(ROOT / folder).items()
        if name not in allowed
    }  # fmt: skip
    assert not undeclared, f"imported but not declared for {folder}/: {undeclared}"


def pins() -> dict[str, str]:
    text = (ROOT / "constraints.txt").read_text()
    lines = [line.split("#")[0].strip() for line in text.splitlines()]
    requirements = [Requirement(line) for line in lines if line]
    return {canonicalize_name(r.name): str(r.specifier) for r in requirements}


def requirement_closure() -> set[str]:
    """Every distribution the base and all extras bring in, as installed here."""
    environment = default_environment()
    todo = [Requirement(line) for line in PROJECT["dependencies"]]
    for extra in PROJECT["optional-dependencies"]:
        todo += [Requirement(line) for line in PROJECT["optional-dependencies"][extra]]
    seen: set[str] = set()
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        if name in seen:
            continue
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an extra not installed here (gpu)
        seen.add(name)
        for line in distribution.requires or []:
            child = Requirement(line)
            wanted = [{**environment, "extra": extra} for extra in requirement.extras or {""}]
            if child.marker is None or any(child.marker.evaluate(env) for env in wanted):
                todo.append(child)
    return seen


def test_constraints_pin_every_installed_requirement_to_its_installed_version() -> None:
    """CI installs with ``-c constraints.txt``: a requirement missing here would float to
    whatever PyPI has that day, and a stale pin would test something else than what ships."""
    pinned = pins()
    wrong = {}
    for name in sorted(requirement_closure()):
        version = metadata.version(name)
        if pinned.get(name) != f"=={version}":
            wrong[name] = (pinned.get(name), version)
    assert not wrong, f"constraints.txt disagrees with the tested environment: {wrong}"


def test_tensorflow_and_keras_are_bounded_to_the_majors_tested() -> None:
    worker = {
        Requirement(line).name: Requirement(line)
        for line in PROJECT["optional-dependencies"]["worker"]
    }
    for name in ("tensorflow", "keras"):
        installed = metadata.version(name)
        specifier = worker[name].specifier
        assert specifier.contains(installed)
        next_major = f"{int(installed.split('.')[0]) + 1}.0"
        assert not specifier.contains(next_major), f"{name} {specifier} admits {next_major}"
