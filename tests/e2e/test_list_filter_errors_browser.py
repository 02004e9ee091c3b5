"""The list's column filter given a value it cannot read, in Chromium: the rows stay, an alert
by the filters names the parameter with the API's reason, and the typed value is still in its
box, to correct. It used to show every row, say nothing, and empty the box."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from tests.support.factories import make_experiment

pytestmark = pytest.mark.e2e


def test_a_bad_column_filter_value_is_named_and_kept_to_correct(
    page: Page, served: str, session: Session
) -> None:
    for number, learning_rate in enumerate((0.001, 0.01)):
        make_experiment(session, learning_rate=learning_rate).name = f"run {number}"
    session.commit()
    api = httpx.get(f"{served}/api/experiments", params={"hp.learning_rate": "abc"})
    assert api.status_code == 422
    reason = api.json()["detail"]  # "hp.learning_rate: expected a number, got 'abc'"

    page.goto(served)
    page.locator("#column-filter-name").select_option(label="learning rate")
    page.locator("#column-filter-operator").select_option(label="=")
    page.locator("#column-filter-value").fill("abc")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"hp\.learning_rate=abc"))

    expect(page.locator("a.row-link")).to_have_count(2)  # still usable: nothing filtered out
    alert = page.get_by_role("alert").filter(has_text="left out")
    expect(alert).to_be_visible()
    expect(alert.locator("li")).to_have_text([reason])
    expect(page.locator("#column-filter-value")).to_have_value("abc")
    expect(page.locator("#column-filter-name")).to_have_value("hp.learning_rate")

    page.locator("#column-filter-value").fill("0.01")  # corrected, it filters
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r"hp\.learning_rate=0\.01"))
    expect(page.locator("a.row-link")).to_have_text(["run 1"])
    expect(page.locator("#filter-errors")).to_have_count(0)
    expect(page.locator("#column-filter-value")).to_have_value("")

    for query in ("best_val_accuracy.min=abc", "status=bogus"):
        page.goto(f"{served}/?{query}")
        param = query.partition("=")[0]
        expect(page.locator("a.row-link")).to_have_count(2)
        expect(page.get_by_role("alert").locator(f"li[data-param='{param}']")).to_have_text(
            httpx.get(f"{served}/api/experiments?{query}").json()["detail"]
        )
