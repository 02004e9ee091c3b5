"""The web server that `cifarlab web` and `cifarlab up` run: uvicorn, in one process per core.

uvicorn's own ``--workers`` share one listening socket, and a burst of new connections goes to
whichever process wakes first: in `cifarlab bench web`, one of two processes several times
took all 20 readers while the other sat idle, and p95 was no better than with one process. Here each
process listens on its own socket (``SO_REUSEPORT``) and the kernel spreads new connections
over them. The port is checked with an ordinary bind first, so a second server started on a
port in use fails as it would with one process, instead of silently sharing its traffic.

Each process of a group asks Linux to send it SIGTERM when the process that started it dies,
even by SIGKILL (a service manager's last resort): a server left behind would keep the port.

uvicorn's own reading of X-Forwarded-* (which trusts 127.0.0.1 by default) is off: the app
believes only CIFARLAB_TRUSTED_PROXIES (app/web/cookies.py).

Run as ``python -m app.web_server --host H --port P --processes N``; ``--parent PID`` makes it
one server process of the group that PID started.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

import uvicorn

from app.supervisor import Supervisor, die_with_parent

APP = "app.web.main:create_app"
BACKLOG = 2048  # uvicorn's default
GRACEFUL_SECONDS = 5
"""How long a stopping server lets requests finish. An open live page's event stream never
finishes by itself: without a bound, stopping waited for every such page to be closed."""


def command(
    host: str, port: int, processes: int = 1, *, parent: int | None = None, log_level: str = "info"
) -> list[str]:
    """The command line of the server (``processes`` of them), or of one process of the group
    that ``parent`` started. ``log_level`` is uvicorn's (``warning`` hides its start-up lines
    and the line per request)."""
    line = [sys.executable, "-m", "app.web_server", "--host", host, "--port", str(port)]
    line += ["--log-level", log_level]
    return line + (["--processes", str(processes)] if parent is None else ["--parent", str(parent)])


def listening_sockets(host: str, port: int, *, reuse_port: bool) -> list[socket.socket]:
    """One per address ``host`` names, as uvicorn binds them (``localhost`` may be both
    127.0.0.1 and ::1)."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, _, _, _, address in dict.fromkeys(found):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # as asyncio binds it: IPv4 gets its own socket
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(address)
            sock.listen(BACKLOG)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def listen_error(host: str, port: int) -> OSError | None:
    """Why no server could listen on ``host:port`` now (``EADDRINUSE``), or None. An ordinary
    bind: a server already there refuses it even while its own processes share the port
    through ``SO_REUSEPORT``."""
    try:
        for sock in listening_sockets(host, port, reuse_port=False):
            sock.close()
    except OSError as exc:
        return exc
    return None


def _serve_one(sockets: list[socket.socket] | None, host: str, port: int, log_level: str) -> None:
    config = uvicorn.Config(
        APP, factory=True, host=host, port=port, timeout_graceful_shutdown=GRACEFUL_SECONDS,
        log_level=log_level,
        proxy_headers=False,
    )  # fmt: skip
    uvicorn.Server(config).run(sockets=sockets)


def serve(host: str, port: int, processes: int, log_level: str = "info") -> int:
    if processes == 1:
        _serve_one(None, host, port, log_level)
        return 0
    if sys.platform != "linux":  # only Linux spreads connections over SO_REUSEPORT sockets
        uvicorn.run(
            APP, factory=True, host=host, port=port, workers=processes,
            timeout_graceful_shutdown=GRACEFUL_SECONDS, log_level=log_level,
            proxy_headers=False,
        )  # fmt: skip
        return 0
    error = listen_error(host, port)
    if error is not None:
        sys.stderr.write(f"cannot listen on {host}:{port}: {error.strerror or error}\n")
        return 1
    supervisor = Supervisor(peers=True)
    try:
        for number in range(1, processes + 1):
            child = command(host, port, parent=os.getpid(), log_level=log_level)
            supervisor.start(f"web {number}/{processes}", child, dict(os.environ))
    except BaseException:
        supervisor.stop()
        raise
    return supervisor.wait()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m app.web_server", description=__doc__)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--parent", type=int)
    parser.add_argument("--log-level", default="info")
    options = parser.parse_args()
    if options.parent is not None:
        die_with_parent(options.parent)
        sockets = listening_sockets(options.host, options.port, reuse_port=True)
        _serve_one(sockets, options.host, options.port, options.log_level)
        return 0
    return serve(options.host, options.port, options.processes, options.log_level)


if __name__ == "__main__":
    sys.exit(main())
