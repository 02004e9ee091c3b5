"""Which module may import which: routes are leaves (shared helpers live outside
``app/web/routes/``), and services never import the web framework, so the API, the pages
and the CLI call them alike."""

from __future__ import annotations

import ast
from pathlib import Path

import app

APP = Path(app.__file__).parent


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_route_modules_import_no_other_route_module() -> None:
    for path in (APP / "web" / "routes").glob("*.py"):
        routes = {n for n in imported_modules(path) if n.startswith("app.web.routes.")}
        assert not routes, f"{path.name} imports {sorted(routes)}"


def test_services_do_not_import_the_web_framework() -> None:
    for path in (APP / "services").glob("*.py"):
        web = {
            name
            for name in imported_modules(path)
            if name.split(".")[0] in {"fastapi", "starlette"} or name.startswith("app.web")
        }
        assert not web, f"{path.name} imports {sorted(web)}"
