"""Options that several commands take, and the API client made from them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import httpx
import typer

from app.cli.output import fail
from app.client import ApiClient
from app.core.config import get_settings
from app.core.models import INTEGER_MAX

ApiUrl = Annotated[
    str | None, typer.Option(help="cifarlab server to talk to \\[env: CIFARLAB_API_URL].")
]
ModelOption = Annotated[
    str | None, typer.Option(help="Model to train (see `cifarlab models`); default custom_cnn.")
]
PresetOption = Annotated[
    str | None, typer.Option(help="Start from a ready spec (see `cifarlab presets`).")
]
DataDir = Annotated[
    Path | None,
    typer.Option(help="The data directory `cifarlab up` uses \\[env: CIFARLAB_DATA_DIR]."),
]
ExperimentId = Annotated[int, typer.Argument(min=1, max=INTEGER_MAX, show_default=False)]
"""An experiment's id, checked as the API checks it: `show -- -1` got the router's 404 and
was told to point --api-url elsewhere."""
SweepId = ExperimentId
"""A sweep's id, checked the same way."""

DatabaseUrl = Annotated[
    str | None,
    typer.Option(help="SQLAlchemy URL; default: SQLite in the data directory "
                 "\\[env: CIFARLAB_DATABASE_URL]."),
]  # fmt: skip


def api_client(api_url: str | None) -> ApiClient:
    """The server ``--api-url`` names, else CIFARLAB_API_URL's, with CIFARLAB_API_TOKEN. A
    token is trimmed of the spaces and line ends a copy picks up; one that still holds
    characters a token never has, and an address that is no URL, end the command saying so
    (they failed as "cannot reach" with the token printed, or as a traceback)."""
    settings = get_settings()
    token = (settings.api_token or "").strip() or None
    if token is not None and not (token.isascii() and token.isprintable()):
        raise fail(
            "CIFARLAB_API_TOKEN holds characters a token never has (spaces, control or "
            "non-ASCII characters); copy it again from `cifarlab token create`"
        )
    address = api_url or settings.api_url
    try:
        return ApiClient(address, token=token)
    except httpx.InvalidURL as exc:
        raise fail(f"--api-url / CIFARLAB_API_URL {address!r} is not a URL: {exc}") from None
