"""create_app(): the FastAPI application with its routers, templates and static files."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.middleware.sessions import SessionMiddleware

from app.auth import UNSAFE_METHODS, same_origin
from app.config import get_settings
from app.limits import BodySizeLimit
from app.reaper import Reaper
from app.routes import analysis, api, auth_pages, events, pages

STATIC_DIR = Path(__file__).resolve().parent / "static"


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    """The web process watches for experiments whose worker died (see app/reaper.py)."""
    reaper = Reaper(get_settings())
    reaper.start()
    yield
    reaper.stop()


async def refuse_cross_site_writes(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    if request.method in UNSAFE_METHODS and not same_origin(request):
        return JSONResponse(
            {"detail": "cross-site request refused: send it from cifarlab's own pages"},
            status_code=403,
        )
    return await call_next(request)


def create_app() -> FastAPI:
    # Swagger UI and ReDoc from the installed package: the docs page works offline.
    app = FastAPIOffline(
        title="cifarlab",
        description="Launch, watch and compare CIFAR-10 deep-learning experiments.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=get_settings().session_secret(),
        session_cookie="cifarlab_session",
        same_site="lax",
        max_age=14 * 24 * 3600,
    )
    app.middleware("http")(refuse_cross_site_writes)
    app.add_middleware(BodySizeLimit)
    api.install_error_handlers(app)
    app.include_router(api.public_router)
    app.include_router(api.router)
    app.include_router(analysis.router)
    app.include_router(events.router)
    app.include_router(auth_pages.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
