"""A small HTTP client for the REST API, used by the CLI."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx


class ApiError(RuntimeError):
    """The server refused or could not be reached; the message says what to do."""


def _non_finite(value: Any, path: str = "") -> str | None:
    """Where ``value`` holds NaN or Infinity (a YAML ``.nan``, ``--set lr=NaN``): JSON has
    neither, so the request cannot carry it."""
    if isinstance(value, float) and not math.isfinite(value):
        return path or "body"
    if isinstance(value, dict):
        items = ((f"{path}.{key}" if path else str(key), item) for key, item in value.items())
    elif isinstance(value, list):
        items = ((f"{path}[{index}]", item) for index, item in enumerate(value))
    else:
        return None
    return next((found for where, item in items if (found := _non_finite(item, where))), None)


def json_body(body: Any) -> bytes:
    """``body`` as JSON, or an ``ApiError`` naming what JSON cannot carry (a date a YAML file
    read unquoted, a circular reference, NaN); httpx raised these as tracebacks."""
    try:
        text = json.dumps(body)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ApiError(f"cannot send this as JSON: {exc}") from None
    if where := _non_finite(body):
        raise ApiError(f"{where}: NaN and Infinity are not numbers JSON carries; give a finite one")
    return text.encode()


class ApiClient:
    def __init__(
        self, base_url: str, token: str | None = None, timeout_seconds: float = 30.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_seconds, headers=headers)

    def _request(self, method: str, path: str, *, json: Any = None, **kwargs: Any) -> Any:
        if json is not None:
            kwargs["content"] = json_body(json)
            kwargs["headers"] = {"content-type": "application/json", **kwargs.get("headers", {})}
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiError(
                f"cannot reach cifarlab at {self.base_url} ({exc}); start it with `cifarlab up` "
                "or point --api-url / CIFARLAB_API_URL at a running server"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        detail = body.get("detail") if isinstance(body, dict) else None
        not_ours = body is None or (response.is_error and not isinstance(detail, str))
        # "Not Found" alone is the router's 404 for a path it lacks; cifarlab's name the missing
        if not_ours or detail == "Not Found":
            raise ApiError(
                f"{response.status_code} from {response.url}: not an answer of cifarlab's API. "
                "Point --api-url / CIFARLAB_API_URL at the address `cifarlab up` prints (a "
                "server of this version)"
            )
        if response.is_error:
            raise ApiError(f"{response.status_code}: {detail}")
        return body

    def launch(self, spec: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", "/api/experiments", json=spec)  # type: ignore[no-any-return]

    def experiment(self, experiment_id: int) -> dict[str, Any]:
        return self._request("GET", f"/api/experiments/{experiment_id}")  # type: ignore[no-any-return]

    def metrics(self, experiment_id: int) -> list[dict[str, Any]]:
        return self._request("GET", f"/api/experiments/{experiment_id}/metrics")["epochs"]  # type: ignore[no-any-return]

    def evaluation(self, experiment_id: int) -> dict[str, Any]:
        return self._request("GET", f"/api/experiments/{experiment_id}/evaluation")  # type: ignore[no-any-return]

    def compare(self, experiment_ids: list[int], baseline: int | None = None) -> dict[str, Any]:
        """What the compare page shows, as GET /api/compare answers it."""
        params: dict[str, Any] = {"ids": ",".join(str(i) for i in experiment_ids)}
        if baseline is not None:
            params["baseline"] = baseline
        return self._request("GET", "/api/compare", params=params)  # type: ignore[no-any-return]

    def import_report(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", "/api/experiments/import", json=body)  # type: ignore[no-any-return]

    def experiments(self, **filters: Any) -> dict[str, Any]:
        """A filter given as a list is sent repeated (``status=a&status=b``): any of them."""
        params = {key: value for key, value in filters.items() if value is not None}
        return self._request("GET", "/api/experiments", params=params)  # type: ignore[no-any-return]

    def cancel(self, experiment_id: int) -> dict[str, Any]:
        return self._request("POST", f"/api/experiments/{experiment_id}/cancel")  # type: ignore[no-any-return]

    def retry(self, experiment_id: int) -> dict[str, Any]:
        return self._request("POST", f"/api/experiments/{experiment_id}/retry")  # type: ignore[no-any-return]

    def workers(self) -> list[dict[str, Any]]:
        return self._request("GET", "/api/workers")  # type: ignore[no-any-return]

    def launch_sweep(self, sweep: Any) -> dict[str, Any]:
        return self._request("POST", "/api/sweeps", json=sweep)  # type: ignore[no-any-return]

    def sweeps(self, **params: Any) -> dict[str, Any]:
        return self._request("GET", "/api/sweeps", params=params)  # type: ignore[no-any-return]

    def sweep(self, sweep_id: int) -> dict[str, Any]:
        return self._request("GET", f"/api/sweeps/{sweep_id}")  # type: ignore[no-any-return]

    def cancel_sweep(self, sweep_id: int) -> dict[str, Any]:
        return self._request("POST", f"/api/sweeps/{sweep_id}/cancel")  # type: ignore[no-any-return]

    def retry_sweep(self, sweep_id: int) -> dict[str, Any]:
        return self._request("POST", f"/api/sweeps/{sweep_id}/retry")  # type: ignore[no-any-return]
