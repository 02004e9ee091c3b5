"""The web server `cifarlab web` runs: several processes share the port through their own
sockets, a second server on a busy port is refused, and stopping it stops them all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.embedded_redis import free_port
from app.web_server import command

ESTABLISHED = "01"


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _accepted(port: int) -> dict[str, int]:
    """Established connections on ``port``'s server side, by socket inode."""
    found = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        if local_port == port and fields[3] == ESTABLISHED:
            found[fields[9]] = local_port
    return found


@pytest.fixture
def server(data_dir: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = free_port()
    process = subprocess.Popen(command("127.0.0.1", port, 2), start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/experiments", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("the web server did not answer within 60 s")
    yield process, port
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads Linux's /proc")
def test_connections_spread_over_the_processes(
    server: tuple[subprocess.Popen[bytes], int],
) -> None:
    process, port = server
    children = _children(process.pid)
    assert len(children) == 2
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
    try:
        for client in clients:  # answered, so each connection has been accepted
            client.sendall(b"GET /api/experiments HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.recv(12).startswith(b"HTTP/1.1 200")
        accepted = _accepted(port)
        held = [len(_socket_inodes(child) & set(accepted)) for child in children]
    finally:
        for client in clients:
            client.close()
    # the kernel hashes each connection to one of two sockets: all 20 on one is 1 in 500,000
    assert sum(held) == 20 and min(held) > 0, held


def test_a_second_server_on_the_port_is_refused(
    server: tuple[subprocess.Popen[bytes], int],
) -> None:
    _, port = server
    second = subprocess.run(command("127.0.0.1", port, 2), capture_output=True, timeout=60)
    assert second.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in second.stderr.decode()


def test_stopping_the_server_stops_every_process(
    server: tuple[subprocess.Popen[bytes], int],
) -> None:
    process, _ = server
    children = _children(process.pid)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert not [child for child in children if Path(f"/proc/{child}").exists()]
