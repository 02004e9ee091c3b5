"""Pages and the compare API write JSON through one serializer: valid JSON for browsers."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from app.web.json_text import JsonText, dumps
from app.web.templating import templates


def test_non_finite_numbers_become_null_and_keys_become_strings() -> None:
    text = dumps({"loss": [1.5, float("nan"), float("inf")], "by_id": {7: "a"}})
    assert json.loads(text) == {"loss": [1.5, None, None], "by_id": {"7": "a"}}


def test_response_carries_the_same_text() -> None:
    response = JsonText({"when": datetime(2026, 1, 2, tzinfo=UTC), "x": float("-inf")})
    assert response.media_type == "application/json"
    assert json.loads(response.body) == {"when": "2026-01-02T00:00:00Z", "x": None}


def test_pages_embed_json_that_cannot_close_their_script_tag() -> None:
    template = templates.env.from_string("{{ value | tojson }}")
    html = template.render(value={"name": "</script><b>", "lr": float("nan")})
    assert "</script>" not in html and "<b>" not in html
    assert json.loads(html) == {"name": "</script><b>", "lr": None}
