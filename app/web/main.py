"""create_app(): the FastAPI application with its routers, templates and static files."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from app.core.config import get_settings
from app.resources import STATIC_DIR
from app.services.reaper import Reaper
from app.web import deps
from app.web.auth import CrossSiteWriteGuard
from app.web.cookies import SessionCookie
from app.web.input_guard import InputGuard
from app.web.limits import BodySizeLimit
from app.web.routes import (
    analysis,
    api,
    auth_pages,
    compare_pages,
    docs_page,
    events,
    experiment_pages,
    launch_pages,
    list_page,
    static_files,
    sweep_pages,
    sweeps_api,
    workers_page,
)
from app.web.routes.docs_page import DOCS_URL, OAUTH2_REDIRECT_URL, REDOC_URL
from app.web.security_headers import SecurityHeaders
from app.web.single_values import single_valued_query
from app.web.templating import install_page_errors

ROUTERS = (
    api.public_router,
    api.router,
    sweeps_api.router,
    analysis.router,
    events.router,
    auth_pages.router,
    docs_page.router,
    static_files.router,
    list_page.router,
    launch_pages.router,  # /experiments/new and /experiments/import ...
    experiment_pages.router,  # ... before /experiments/{experiment_id}
    workers_page.router,
    compare_pages.router,
    sweep_pages.router,
)


@asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    """The web process watches for experiments whose worker died (see app/services/reaper.py).

    What was loaded at start-up (SQLAlchemy, Pydantic, FastAPI, NumPy: millions of objects)
    is moved out of the garbage collector's sight: a full collection walking all of it
    stalled a request now and then, which made p95 latency twice p50 (docs/benchmarks.md).
    """
    gc.collect()
    gc.freeze()
    reaper = Reaper(get_settings())
    reaper.start()
    yield
    reaper.stop()


def create_app() -> FastAPI:
    # Swagger UI and ReDoc from the installed package: the docs page works offline. The
    # Swagger UI page is our own (app/web/routes/docs_page.py), with a way back to the app.
    app = FastAPIOffline(
        title="cifarlab",
        description="Launch, watch and compare CIFAR-10 deep-learning experiments.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=REDOC_URL,
        dependencies=[Depends(single_valued_query)],
    )
    settings = get_settings()
    deps.install(app)
    app.add_middleware(
        SessionCookie,
        secret_key=settings.session_secret(),
        max_age=int(settings.session_days * 24 * 3600),
        policy=settings.cookie_secure,
    )
    app.add_middleware(InputGuard)
    app.add_middleware(CrossSiteWriteGuard)
    app.add_middleware(BodySizeLimit)
    docs_pages = frozenset({DOCS_URL, REDOC_URL, OAUTH2_REDIRECT_URL})
    app.add_middleware(SecurityHeaders, hashed_paths=docs_pages)
    if settings.trusted_proxies.strip():  # outermost: the rest sees the client and scheme
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    api.install_error_handlers(app, routes=[route for r in ROUTERS for route in r.routes])
    install_page_errors(app)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
