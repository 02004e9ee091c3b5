"""The experiments list's filters, parsed once for GET /api/experiments and the ``/`` page.

The API takes them as typed query parameters and refuses a bad one with 422 naming it; the
page, whose URLs people edit by hand, drops a bad one and shows the rest (``lenient``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from app.core import crud
from app.core.models import Status
from app.web.auth import Principal

SortKey = enum.StrEnum("SortKey", {key: key for key in crud.SORTABLE})  # type: ignore[misc]
DEFAULT_SORT = SortKey("created_at")


class ExperimentFilters(BaseModel):
    """What to list and in which order; pagination stays with each caller (the API's
    limit and offset, the page's page number)."""

    status: Status | None = None
    model: str | None = None
    tag: str | None = None
    owner: str | None = Field(default=None, description="A username, or `me`")
    q: str | None = Field(default=None, max_length=200, description="Text in name or notes")
    sort: SortKey = Field(default=DEFAULT_SORT, description="Column to sort by")
    order: Literal["asc", "desc"] = "desc"

    @classmethod
    def lenient(cls, params: Mapping[str, str]) -> ExperimentFilters:
        """The filters a hand-edited URL names, leaving out any that do not parse (an unknown
        sort column sorts by the default). The page's form sends every field, empty ones as
        ``""``: those filter nothing. The API states no such rule, so it refuses ``status=``."""
        given = {name: params[name].strip() for name in cls.model_fields if name in params}
        data = {name: value for name, value in given.items() if value}
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            bad = {error["loc"][0] for error in exc.errors() if error["loc"]}
            return cls.model_validate({k: v for k, v in data.items() if k not in bad})

    @property
    def filtered(self) -> bool:
        return any((self.status, self.model, self.tag, self.q, self.owner))

    def owner_name(self, principal: Principal) -> str | None:
        """``me`` is whoever is signed in; with nobody signed in it filters nothing."""
        if self.owner == "me":
            return principal.user.username if principal.user else None
        return self.owner

    def query(self, principal: Principal) -> dict[str, Any]:
        """Keyword arguments for ``crud.list_experiments``."""
        return {
            "status": self.status, "model": self.model, "tag": self.tag, "q": self.q,
            "owner": self.owner_name(principal), "sort": str(self.sort),
            "descending": self.order == "desc",
        }  # fmt: skip

    def as_strings(self) -> dict[str, str]:
        """For the page's links and inputs: each filter as text, ``""`` when unset."""
        return {name: "" if value is None else str(value) for name, value in self}
