"""How the web server serves load: one process per core by default (up to four), each working
on at most CIFARLAB_REQUEST_CONCURRENCY requests at once (the rest wait their turn before
they open a database session), with start-up objects kept out of the garbage collector's
full collections."""

from __future__ import annotations

import gc
from pathlib import Path
from types import SimpleNamespace

import anyio
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from app.core import config
from app.web.deps import get_session, install
from tests.support.clients import make_client


def _admitted_order(holds: list[float]) -> list[str]:
    app = FastAPI()
    install(app)
    request = SimpleNamespace(app=app)
    events: list[str] = []

    async def use(name: str, hold: float) -> None:
        sessions = get_session(request)  # type: ignore[arg-type]
        await sessions.__anext__()
        events.append(f"{name} in")
        await anyio.sleep(hold)
        events.append(f"{name} out")
        await sessions.aclose()

    async def main() -> None:
        async with anyio.create_task_group() as group:
            for index, hold in enumerate(holds):
                group.start_soon(use, "abc"[index], hold)
                await anyio.sleep(0.02)  # arrive in order

    anyio.run(main)
    return events


def test_a_request_beyond_the_limit_waits_for_one_to_finish(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIFARLAB_REQUEST_CONCURRENCY", "1")
    config.get_settings.cache_clear()
    assert _admitted_order([0.2, 0.0]) == ["a in", "a out", "b in", "b out"]


def test_within_the_limit_requests_overlap(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIFARLAB_REQUEST_CONCURRENCY", "2")
    config.get_settings.cache_clear()
    events = _admitted_order([0.2, 0.2, 0.0])
    assert events[:2] == ["a in", "b in"]  # both at once
    assert events.index("c in") > events.index("a out")  # the third waited for a turn


def test_start_up_objects_are_frozen_out_of_collections(data_dir: Path) -> None:
    gc.unfreeze()
    try:
        with make_client() as client:
            assert client.get("/api/health").status_code == 200
            assert gc.get_freeze_count() > 100_000  # the imported libraries' objects
    finally:
        gc.unfreeze()


@pytest.mark.parametrize(
    ("cores", "setting", "expected"), [(1, None, 1), (2, None, 2), (16, None, 4), (16, "8", 8)]
)
def test_web_processes_default_to_one_per_core_up_to_four(
    monkeypatch: pytest.MonkeyPatch, cores: int, setting: str | None, expected: int
) -> None:
    monkeypatch.setattr(config, "available_cores", lambda: cores)
    if setting is not None:
        monkeypatch.setenv("CIFARLAB_WEB_PROCESSES", setting)
    assert config.Settings().web_process_count == expected


def test_zero_web_processes_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIFARLAB_WEB_PROCESSES", "0")
    with pytest.raises(ValidationError, match="web_processes"):
        config.Settings()
