"""The Swagger UI page at /docs, from fastapi-offline's bundled files (no CDN), with a bar on
top that leads back to the app: Swagger UI alone has no way out but the browser's back."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
OFFLINE_STATIC_URL = "/static-offline-docs"
"""Where ``FastAPIOffline`` mounts Swagger UI's and ReDoc's files."""

BACK_BAR = (
    '<nav class="cifarlab-docs-bar" aria-label="cifarlab" style="display:flex;gap:16px;'
    "align-items:center;flex-wrap:wrap;padding:10px 20px;background:#0f172a;"
    'font:14px system-ui,sans-serif">'
    '<a id="back-to-app" href="{root}/" style="color:#fff;font-weight:600;'
    'text-decoration:none">← Back to cifarlab</a>'
    '<a href="{root}/experiments/new" style="color:#cbd5e1">New experiment</a>'
    '<a href="{root}{redoc}" style="color:#cbd5e1">ReDoc</a>'
    "</nav>"
)

router = APIRouter(include_in_schema=False)


@router.get(DOCS_URL)
def swagger_ui(request: Request) -> HTMLResponse:
    """fastapi-offline's page plus the bar: styled inline, as the page has no stylesheet of
    ours (the security policy allows inline styles, and only Swagger's own inline script)."""
    root = request.scope.get("root_path", "")
    page = get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - Swagger UI",
        oauth2_redirect_url=OAUTH2_REDIRECT_URL,
        swagger_js_url=f"{root}{OFFLINE_STATIC_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{OFFLINE_STATIC_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}/static/favicon.svg",
        swagger_ui_parameters=request.app.swagger_ui_parameters,
    )
    html = bytes(page.body).decode()
    bar = BACK_BAR.format(root=root, redoc=REDOC_URL)
    html = html.replace("<html>", '<html lang="en">', 1)  # screen readers pick the voice by it
    return HTMLResponse(html.replace("<body>", f"<body>\n{bar}", 1))


@router.get(OAUTH2_REDIRECT_URL)
def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()
