"""What `pip install .` gives a user: the wheel carries the pages, scripts and migrations, and
an install of it, outside the source tree, migrates a database and serves every kind of page.

An editable install (what scripts/test makes) reads the source tree and so cannot show a
file missing from the wheel; this test installs the built wheel into a fresh virtualenv.
The wheel's own dependencies are borrowed from the test environment through a ``.pth`` line
(a plain path: it does not run that environment's editable-install hook, so the source tree
stays out of reach), which keeps the test off the network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from app.embedded_redis import free_port
from tests.support.polling import wait_until

REPOSITORY = Path(__file__).resolve().parent.parent


@dataclass
class Installed:
    wheel: Path
    bin_dir: Path
    site_packages: Path


def _site_packages(environment: Path) -> Path:
    return next(environment.glob("lib/python*/site-packages"))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    build = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(build / "dist"), str(REPOSITORY)],
        check=True, cwd=build,
    )  # fmt: skip
    wheel = next((build / "dist").glob("cifarlab-*.whl"))
    return _install(wheel, build / "venv", _borrowed_site_packages())


def _borrowed_site_packages() -> list[str]:
    return [path for path in sys.path if path.endswith("-packages")]


def _install(wheel: Path, environment: Path, borrowed: list[str]) -> Installed:
    """The wheel in a fresh virtualenv whose dependencies come from the ``borrowed`` folders."""
    venv.create(environment, with_pip=False)
    site_packages = _site_packages(environment)
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site_packages)  # what pip does for a pure-Python wheel
    (site_packages / "borrowed-dependencies.pth").write_text("\n".join(borrowed) + "\n")
    bin_dir = environment / "bin"
    script = bin_dir / "cifarlab"
    script.write_text(f"#!{bin_dir / 'python'}\nfrom app.cli import main\nmain()\n")
    script.chmod(0o755)
    return Installed(wheel=wheel, bin_dir=bin_dir, site_packages=site_packages)


def test_the_wheel_carries_pages_scripts_and_migrations(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as archive:
        names = archive.namelist()
    suffixes = Counter(Path(name).suffix for name in names)
    assert suffixes[".html"] == len(list((REPOSITORY / "templates").rglob("*.html")))
    assert suffixes[".js"] == len(list((REPOSITORY / "static").glob("*.js")))
    assert "app/static/app.css" in names
    assert "app/migrations/script.py.mako" in names
    assert "app/migrations/env.py" in names
    revisions = sorted(p.name for p in (REPOSITORY / "migrations" / "versions").glob("0*.py"))
    assert revisions and all(f"app/migrations/versions/{name}" in names for name in revisions)
    assert "app/templates/compare/summary.html" in names
    # pyproject.toml lists the packages one by one: a new folder of code must be added there.
    code = [
        path.relative_to(REPOSITORY).as_posix()
        for package in ("app", "worker")
        for path in (REPOSITORY / package).rglob("*.py")
    ]
    assert code and [module for module in code if module not in names] == []


def _environment(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CIFARLAB_", "PYTHON"))}
    env["CIFARLAB_DATA_DIR"] = str(data_dir)
    env["CIFARLAB_REDIS_URL"] = f"redis://127.0.0.1:{free_port()}/0"  # nobody there
    return env


def test_the_installed_package_is_not_the_source_tree(installed: Installed, tmp_path: Path) -> None:
    code = "import app.resources as r, json; print(json.dumps([str(r.TEMPLATES_DIR), r.__file__]))"
    out = subprocess.run(
        [str(installed.bin_dir / "python"), "-c", code],
        env=_environment(tmp_path), cwd=tmp_path, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    for path in json.loads(out):
        assert Path(path).is_relative_to(installed.site_packages), path


@pytest.fixture
def served(installed: Installed, tmp_path: Path) -> Iterator[str]:
    """`cifarlab migrate`, then `cifarlab web`, both from the installed wheel."""
    env = _environment(tmp_path / "data")
    cifarlab = str(installed.bin_dir / "cifarlab")
    migrated = subprocess.run(
        [cifarlab, "migrate"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert migrated.returncode == 0, migrated.stderr
    assert (tmp_path / "data" / "cifarlab.db").exists()
    port = free_port()
    log = (tmp_path / "web.log").open("wb")
    process = subprocess.Popen(
        [cifarlab, "web", "--port", str(port), "--processes", "1"],
        env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"

    def answering() -> bool:
        assert process.poll() is None, (tmp_path / "web.log").read_text()
        return httpx.get(f"{base_url}/api/experiments", timeout=2) is not None

    try:
        wait_until(answering, 60, ignoring=(httpx.TransportError,), what="the wheel's web server")
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


REPORT = """              precision    recall  f1-score   support

    airplane       0.90      0.80      0.85       100
  automobile       0.80      0.90      0.85       100

    accuracy                           0.85       200
   macro avg       0.85      0.85      0.85       200
weighted avg       0.85      0.85      0.85       200
"""


def test_the_installed_package_serves_every_kind_of_page(served: str) -> None:
    with httpx.Client(base_url=served, timeout=30) as client:
        imported = client.post(
            "/api/experiments/import", json={"name": "from a wheel", "report_text": REPORT}
        )
        assert imported.status_code == 201, imported.text
        experiment_id = imported.json()["id"]
        home = client.get("/")
        assert home.status_code == 200 and "from a wheel" in home.text
        page = client.get(f"/experiments/{experiment_id}")
        assert page.status_code == 200 and "from a wheel" in page.text
        assert client.get("/experiments/new").status_code == 200
        css = client.get("/static/app.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        script = client.get("/static/experiment.js")
        assert script.status_code == 200 and "javascript" in script.headers["content-type"]
        plotly = client.get("/static/vendor/plotly.min.js")
        assert plotly.status_code == 200 and len(plotly.content) > 1_000_000
        docs = client.get("/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()


WORKER_EXTRA_MODULES = ("tensorflow", "keras", "sklearn")
"""What `pip install cifarlab` without `[worker]` lacks: the web-only install below hides them."""


@pytest.fixture(scope="module")
def web_only(installed: Installed, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The same wheel, borrowing every dependency except the worker extra's: each borrowed
    site-packages is mirrored as a folder of links that leaves TensorFlow, Keras and
    scikit-learn out, so they are as absent as on a machine that never installed them."""
    root = tmp_path_factory.mktemp("web-only")
    mirrors = []
    for number, borrowed in enumerate(_borrowed_site_packages()):
        mirror = root / f"borrowed-{number}"
        mirror.mkdir()
        for entry in Path(borrowed).iterdir():
            if entry.name.split("-")[0].split(".")[0].lower() not in WORKER_EXTRA_MODULES:
                (mirror / entry.name).symlink_to(entry)
        mirrors.append(str(mirror))
    return _install(installed.wheel, root / "venv", mirrors)


def test_a_worker_without_the_worker_extra_refuses_to_start(
    web_only: Installed, tmp_path: Path
) -> None:
    """It would otherwise take a run off the queue and die importing Keras, the run queued
    for good."""
    hidden = subprocess.run(
        [str(web_only.bin_dir / "python"), "-c", "import keras"],
        env=_environment(tmp_path), cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert "No module named 'keras'" in hidden.stderr
    for command in (["worker"], ["bench", "train"]):
        refused = subprocess.run(
            [str(web_only.bin_dir / "cifarlab"), *command],
            env=_environment(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        said = " ".join((refused.stdout + refused.stderr).split())
        assert refused.returncode == 2, said
        assert "cannot train: tensorflow, keras, scikit-learn are missing" in said
        assert "pip install 'cifarlab[worker]'" in said


def test_up_without_the_worker_extra_serves_the_dashboard_and_says_why_no_worker_runs(
    web_only: Installed, tmp_path: Path
) -> None:
    env = _environment(tmp_path / "data")
    del env["CIFARLAB_REDIS_URL"]  # `up` starts its own
    port = free_port()
    log_path = tmp_path / "up.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(web_only.bin_dir / "cifarlab"), "up", "--port", str(port)],
            env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:

        def running() -> bool:
            assert process.poll() is None, log_path.read_text()
            return "cifarlab is running at" in log_path.read_text()

        wait_until(running, 90, what="`cifarlab up` from the web-only install")
        said = " ".join(log_path.read_text().split())
        assert "no worker started: this install cannot train" in said
        assert "Experiments wait in the queue until a worker connects" in said
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            health = client.get("/api/health").json()
            assert (health["database"], health["broker"], health["workers"]) == ("ok", "ok", [])
            assert client.get("/experiments/new").status_code == 200
        children = psutil.Process(process.pid).children(recursive=True)
        commands = [" ".join(child.cmdline()) for child in children]
        assert any("redis-server" in c for c in commands), commands
        assert not any("celery" in c for c in commands), commands
        assert "Traceback" not in log_path.read_text()
    finally:
        process.terminate()
        process.wait(timeout=30)
