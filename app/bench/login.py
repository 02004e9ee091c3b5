"""`cifarlab bench login`: what sign-in costs everyone else, and what its time gives away.

A real server (as `cifarlab web` runs it) on a scratch SQLite database with one account.
Measured: signed-in API latency alone, then while ``loops`` clients try wrong passwords as
fast as they can (the sign-in limits are raised out of the way); and how long a wrong
password takes for a real user against an unknown one.
"""

from __future__ import annotations

import re
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from app.bench.web import percentile, serve, server_environment
from app.embedded_redis import free_port, start_redis

PASSWORD = "correct horse battery"
UNLIMITED = str(10**9)


@dataclass(frozen=True)
class Options:
    loops: int = 30
    samples: int = 40
    processes: int = 1


def _milliseconds(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(1000 * statistics.median(samples), 1),
        "p95_ms": round(1000 * percentile(samples, 0.95), 1),
    }


def _signed_in_latencies(base_url: str, token: str, samples: int) -> list[float]:
    headers = {"Authorization": f"Bearer {token}"}
    times = []
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as client:
        for _ in range(samples):
            started = time.perf_counter()
            client.get("/api/experiments").raise_for_status()
            times.append(time.perf_counter() - started)
    return times


class _LoginClient:
    """A browser at the sign-in form: the form's CSRF token, then posts."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=60)
        page = self.client.get("/login").text
        match = re.search(r'name="csrf_token" value="([^"]+)"', page)
        if match is None:
            raise RuntimeError("the sign-in page has no CSRF token")
        self.csrf = match.group(1)

    def attempt(self, username: str, password: str) -> int:
        data = {"username": username, "password": password, "csrf_token": self.csrf}
        return self.client.post("/login", data=data).status_code

    def close(self) -> None:
        self.client.close()


def _login_times(base_url: str, username: str, samples: int) -> list[float]:
    browser = _LoginClient(base_url)
    times = []
    try:
        for number in range(samples):
            started = time.perf_counter()
            status = browser.attempt(username, f"wrong password {number}")
            times.append(time.perf_counter() - started)
            if status != 401:
                raise RuntimeError(f"a wrong password got {status}, not 401")
    finally:
        browser.close()
    return times


def _guessing(base_url: str, loops: int, stop: threading.Event) -> list[threading.Thread]:
    def guess() -> None:
        browser = _LoginClient(base_url)
        try:
            while not stop.is_set():
                browser.attempt("alice", "wrong password")
        finally:
            browser.close()

    threads = [threading.Thread(target=guess, daemon=True) for _ in range(loops)]
    for thread in threads:
        thread.start()
    return threads


def run(options: Options) -> dict[str, Any]:
    from sqlalchemy.orm import Session

    from app.core.db import make_engine
    from app.migrate import upgrade
    from app.services import accounts

    with tempfile.TemporaryDirectory(prefix="cifarlab-bench-login-") as scratch:
        directory = Path(scratch)
        url = f"sqlite:///{directory / 'bench.db'}"
        upgrade(url)
        engine = make_engine(url)
        with Session(engine) as session:
            user = accounts.create_user(session=session, username="alice", password=PASSWORD,
                                        is_admin=True)  # fmt: skip
            token = accounts.create_token(session=session, user=user, name="bench",
                                          expires_at=None)  # fmt: skip
            session.commit()
        engine.dispose()
        redis_port = free_port()
        redis = start_redis(directory, redis_port)
        environment = server_environment(directory, url, f"redis://127.0.0.1:{redis_port}/0")
        environment.update(CIFARLAB_LOGIN_ATTEMPTS_PER_ACCOUNT=UNLIMITED,
                           CIFARLAB_LOGIN_ATTEMPTS_PER_ADDRESS=UNLIMITED)  # fmt: skip
        try:
            with serve(environment, options.processes, directory / "server.log") as served:
                base = served.base_url
                _login_times(base, "alice", 2)  # warm up: the first hash, imports, the pool
                known = _login_times(base, "alice", options.samples)
                unknown = _login_times(base, "nobody", options.samples)
                idle = _signed_in_latencies(base, token, options.samples)
                stop = threading.Event()
                threads = _guessing(base, options.loops, stop)
                try:
                    busy = _signed_in_latencies(base, token, options.samples)
                finally:
                    stop.set()
                    for thread in threads:
                        thread.join(timeout=60)
        finally:
            redis.terminate()
            redis.wait(timeout=10)
    return {
        "loops": options.loops,
        "processes": options.processes,
        "signed_in_alone": _milliseconds(idle),
        "signed_in_while_guessing": _milliseconds(busy),
        "wrong_password_real_user": _milliseconds(known),
        "wrong_password_unknown_user": _milliseconds(unknown),
    }
