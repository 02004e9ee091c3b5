"""The domain's refusals, raised by services and mapped to HTTP in one place
(``app.web.routes.api.install_error_handlers``): services never import FastAPI, so the same
call serves the API, the pages and the CLI, and each says the refusal its own way.

A bad field is ``app.core.schemas.SpecError`` (422, naming the field); the quota and broker
refusals live with the services that raise them (``QuotaExceeded`` 429,
``BrokerUnavailable`` 503).
"""

from __future__ import annotations


class NotFound(LookupError):
    """The thing asked for does not exist, or the caller may not see it (404)."""


class Conflict(Exception):
    """The request is valid but the thing is not in a state that allows it (409): cancel a
    finished run, retry a running one. The message says which state it is in."""
