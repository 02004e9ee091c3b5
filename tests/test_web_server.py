"""The web server `cifarlab web` runs: several processes share the port through their own
sockets, a second server on a busy port is refused, and stopping it, even by SIGKILL, leaves
none of them running."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from app.bench.web import Served, serve
from app.core.models import Status
from app.web_server import GRACEFUL_SECONDS, command
from tests.support.factories import make_experiment
from tests.support.polling import wait_until
from tests.support.processes import alive, descendants

pytestmark = pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc")
ESTABLISHED = "01"


def _socket_inodes(pid: int) -> set[str]:
    links = (os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir() if fd.is_symlink())
    return {link[len("socket:[") : -1] for link in links if link.startswith("socket:[")}


def _accepted(port: int) -> set[str]:
    """Socket inodes of the established connections on ``port``'s server side."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == ESTABLISHED:
            found.add(fields[9])
    return found


@pytest.fixture
def server(data_dir: Path, redis_server: str, tmp_path: Path) -> Iterator[Served]:
    """Two processes, started and waited for as `cifarlab bench web` does."""
    environment = dict(os.environ, CIFARLAB_REDIS_URL=redis_server)
    with serve(environment, 2, tmp_path / "web.log") as served:
        yield served


def test_connections_spread_over_the_processes(server: Served) -> None:
    processes = descendants(server.pid)
    assert len(processes) == 2
    clients = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(20)]
    try:
        for client in clients:  # answered, so each connection has been accepted
            client.sendall(b"GET /api/experiments HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert client.recv(12).startswith(b"HTTP/1.1 200")
        accepted = _accepted(server.port)
        held = [len(_socket_inodes(pid) & accepted) for pid in processes]
    finally:
        for client in clients:
            client.close()
    # the kernel hashes each connection to one of two sockets: all 20 on one is 1 in 500,000
    assert sum(held) == 20 and min(held) > 0, held


def test_a_second_server_on_the_port_is_refused(server: Served) -> None:
    second = subprocess.run(command("127.0.0.1", server.port, 2), capture_output=True, timeout=60)
    assert second.returncode == 1
    assert f"cannot listen on 127.0.0.1:{server.port}" in second.stderr.decode()


@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGTERM, 0), (signal.SIGKILL, -9)])
def test_stopping_the_server_stops_every_process(
    server: Served, signum: signal.Signals, exit_code: int
) -> None:
    """Killed outright, the server cannot stop its processes: each one ends itself."""
    processes = descendants(server.pid)
    os.kill(server.pid, signum)
    _, status = os.waitpid(server.pid, 0)
    assert os.waitstatus_to_exitcode(status) == exit_code
    wait_until(lambda: not any(alive(pid) for pid in processes), 15, interval=0.1,
               what="every process ended")  # fmt: skip
    assert [pid for pid in processes if alive(pid)] == []


def test_an_open_live_page_does_not_hold_a_stopping_server(
    server: Served, session: Session
) -> None:
    """A running experiment's event stream never ends by itself."""
    experiment = make_experiment(session)
    experiment.status = Status.running
    session.commit()
    stream = socket.create_connection(("127.0.0.1", server.port))
    request = f"GET /experiments/{experiment.id}/events HTTP/1.1\r\nHost: localhost\r\n\r\n"
    stream.sendall(request.encode())
    assert stream.recv(12).startswith(b"HTTP/1.1 200")
    try:
        os.kill(server.pid, signal.SIGTERM)
        wait_until(
            lambda: os.waitpid(server.pid, os.WNOHANG) != (0, 0),
            GRACEFUL_SECONDS + 3,  # the launcher kills at 10 s
            interval=0.1,
            what="the server stopped without waiting for the event stream",
        )
        assert not alive(server.pid), "the server still waits for the event stream"
    finally:
        stream.close()
