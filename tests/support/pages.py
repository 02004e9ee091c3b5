"""Reading the app's HTML as a browser would, and posting its forms with their CSRF token."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

import httpx
from fastapi.testclient import TestClient

from tests.support.factories import CLASSES

XSS = "<script>alert(1)</script>"


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    disabled: bool = False  # inside a disabled fieldset: not submitted
    text: str = ""
    within: frozenset[str] = frozenset()  # the ids of the elements it is inside


class ElementCollector(HTMLParser):
    """Every start tag with its attributes and the text directly inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[Element] = []
        self._open: list[Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        disabled = any(e.tag == "fieldset" and "disabled" in e.attrs for e in self._open)
        within = frozenset(e.attrs["id"] for e in self._open if "id" in e.attrs)
        element = Element(tag, {key: value or "" for key, value in attrs}, disabled, within=within)
        self.elements.append(element)
        if tag not in {"input", "meta", "link", "br", "img"}:
            self._open.append(element)

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1].tag == tag:
            self._open.pop()

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1].text += data


def elements(html: str) -> list[Element]:
    collector = ElementCollector()
    collector.feed(html)
    return collector.elements


def inputs(html: str) -> dict[str, dict[str, str]]:
    """The inputs and selects the browser would submit, by name."""
    return {
        e.attrs["name"]: e.attrs
        for e in elements(html)
        if e.tag in ("input", "select") and "name" in e.attrs and not e.disabled
    }


def field_errors(html: str) -> dict[str, str]:
    return {
        e.attrs["data-field"]: e.text.strip()
        for e in elements(html)
        if "field-error" in e.attrs.get("class", "").split()
    }


def by_id(html: str, element_id: str) -> Element:
    return next(e for e in elements(html) if e.attrs.get("id") == element_id)


def described_input(html: str, error_field: str) -> Element:
    """The input a screen reader reads the error about ``error_field`` with: the one that says
    ``aria-invalid="true"`` and names the error's message in its ``aria-describedby``."""
    page = elements(html)
    message = next(e for e in page if e.attrs.get("data-field") == error_field)
    described = [
        e for e in page if message.attrs["id"] in e.attrs.get("aria-describedby", "").split()
    ]
    assert [e.tag for e in described] in (["input"], ["select"], ["textarea"]), described
    assert described[0].attrs.get("aria-invalid") == "true"
    return described[0]


def description(html: str, element: Element) -> str:
    """What ``aria-describedby`` has a screen reader read after the element's name."""
    refs = element.attrs["aria-describedby"].split()
    return " ".join(by_id(html, ref).text.strip() for ref in refs)


def error_summary(html: str) -> tuple[Element, list[str]]:
    """The refused form's summary, and where its links lead (``#`` and an input's id)."""
    page = elements(html)
    summary = next(e for e in page if e.attrs.get("id") == "error-summary")
    links = [e.attrs["href"] for e in page if e.tag == "a" and "error-summary" in e.within]
    return summary, links


def csrf_token(client: TestClient) -> str:
    """The session's CSRF token, as every page embeds it for its forms and scripts."""
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', client.get("/workers").text)
    assert match, "no CSRF token on the page"
    return match.group(1)


def post_form(
    client: TestClient,
    url: str,
    data: dict[str, str] | None = None,
    *,
    follow_redirects: bool = True,
) -> httpx.Response:
    """A form post as a page sends it: with the session's CSRF token."""
    data = {**(data or {}), "csrf_token": csrf_token(client)}
    return client.post(url, data=data, follow_redirects=follow_redirects)


def form(**overrides: str) -> dict[str, str]:
    values = {
        "name": "form run",
        "model": "custom_cnn",
        "tags": "baseline, small ",
        "hp.epochs": "3",
        "hp.batch_size": "64",
        "hp.learning_rate": "0.002",
        "hp.train_size": "",
        "hp.test_size": "500",
        "hp.seed": "",
    }
    values.update(overrides)
    return values


def report_text(predictions: list[int], labels: list[int] | None = None) -> str:
    """A classification report as scikit-learn prints it, to paste into the import form;
    ``labels`` default to 40 images of each of the ten classes."""
    from sklearn.metrics import classification_report

    labels = labels if labels is not None else [i % 10 for i in range(400)]
    return classification_report(labels, predictions, target_names=CLASSES, zero_division=0)
