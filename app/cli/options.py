"""Options that several commands take, and the API client made from them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.client import ApiClient
from app.core.config import get_settings

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
DatabaseUrl = Annotated[
    str | None,
    typer.Option(help="SQLAlchemy URL; default: SQLite in the data directory "
                 "\\[env: CIFARLAB_DATABASE_URL]."),
]  # fmt: skip


def api_client(api_url: str | None) -> ApiClient:
    """The server ``--api-url`` names, else CIFARLAB_API_URL's, with CIFARLAB_API_TOKEN."""
    settings = get_settings()
    return ApiClient(api_url or settings.api_url, token=settings.api_token)
