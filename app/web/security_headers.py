"""Security headers on every response: a Content-Security-Policy that runs only cifarlab's
own script files, no framing, and no full URLs leaked to other sites in Referer.

Pages keep their scripts in static/*.js and their data in ``<script type="application/json">``
blocks, which browsers never execute, so ``script-src 'self'`` holds. Styles need
``'unsafe-inline'``: plotly.js styles every chart through ``style`` attributes and a
``<style>`` element it injects, and no hash or nonce can cover attributes. The Swagger UI
and ReDoc pages (from fastapi-offline) start with one inline script each; their policy
allows exactly that script by its SHA-256, computed from the page as it is sent.
"""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data: blob:",
    "font-src": "'self' data:",
    "connect-src": "'self'",
    "worker-src": "'self' blob:",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
HEADERS = {
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}
_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def content_security_policy(
    script_hashes: list[str] | None = None, *, allow_eval: bool = False
) -> str:
    """``allow_eval`` only for a page drawing WebGL charts (``WEBGL_CHARTS_POLICY``)."""
    policy = dict(POLICY)
    if script_hashes:
        policy["script-src"] += "".join(f" 'sha256-{digest}'" for digest in script_hashes)
    if allow_eval:
        policy["script-src"] += " 'unsafe-eval'"
    return "; ".join(f"{name} {value}" for name, value in policy.items())


WEBGL_CHARTS_POLICY = content_security_policy(allow_eval=True)
"""For the sweep page's parallel coordinates: plotly.js draws them with WebGL through regl,
which compiles its draw calls with ``new Function``; without ``'unsafe-eval'`` the chart shows
"WebGL is not supported". Scripts still come only from this server (no inline script), and
the page's scripts pass no user text to an eval. A route sets it on its own response; the
middleware keeps a policy already set."""


def inline_script_hashes(html: bytes) -> list[str]:
    """Only for pages this app renders itself (the docs), never for user content."""
    return [
        base64.b64encode(hashlib.sha256(script).digest()).decode()
        for script in _INLINE_SCRIPT.findall(html)
    ]


def _add_headers(message: Message, policy: str) -> None:
    headers = MutableHeaders(scope=message)
    headers.setdefault("Content-Security-Policy", policy)
    for name, value in HEADERS.items():
        headers.setdefault(name, value)


class SecurityHeaders:
    """A plain ASGI middleware; it holds back the body only on ``hashed_paths``, the small
    docs pages whose inline scripts its policy must name."""

    def __init__(self, app: ASGIApp, hashed_paths: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.hashed_paths = hashed_paths
        self.policy = content_security_policy()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] in self.hashed_paths:
            await self._hashed(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                _add_headers(message, self.policy)
            await send(message)

        await self.app(scope, receive, with_headers)

    async def _hashed(self, scope: Scope, receive: Receive, send: Send) -> None:
        messages: list[Message] = []

        async def held(message: Message) -> None:
            messages.append(message)

        await self.app(scope, receive, held)
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
        policy = content_security_policy(inline_script_hashes(body))
        for message in messages:
            if message["type"] == "http.response.start":
                _add_headers(message, policy)
            await send(message)
