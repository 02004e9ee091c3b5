"""A throwaway PostgreSQL server from the installed binaries, for tests on a real server."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from app.embedded_redis import free_port


@dataclass
class PostgresServer:
    directory: Path
    port: int
    user: str

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres", autocommit=True
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def find_bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_server_user(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root; as root, run it as the postgres user."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def start_postgres(bin_dir: Path) -> tuple[PostgresServer, subprocess.Popen[bytes]]:
    directory = Path(tempfile.mkdtemp(prefix="cifarlab-pg-"))
    user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    data = directory / "data"
    subprocess.run(
        _as_server_user([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", user]),
        check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    process = subprocess.Popen(
        _as_server_user([
            str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(directory),
            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200",
        ]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    server = PostgresServer(directory=directory, port=port, user=user)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            psycopg.connect(f"host=127.0.0.1 port={port} user={user} dbname=postgres").close()
            return server, process
        except psycopg.OperationalError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("PostgreSQL did not start within 30 s")


def stop_postgres(server: PostgresServer, process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=30)
    shutil.rmtree(server.directory, ignore_errors=True)
