"""A person comparing two learning rates over three seeds each in a browser: the compare
page's seed-group view draws each group's mean curve with its band, switches the band to the
95% CI in place, and says in words whether the difference is larger than the seed noise.

The runs are written with the test factories (no training), then the web app is served by
uvicorn in its own process, as production runs it, and driven by Debian's Chromium.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.orm import Session

from app.core.models import Experiment
from tests.support.factories import make_evaluated
from tests.support.polling import wait_for

pytestmark = pytest.mark.e2e

LABELS = [i % 10 for i in range(100)]


def seeds_of(session: Session, learning_rate: float, wrong: list[int]) -> list[Experiment]:
    """One run per seed 0, 1, 2: seed s wrong on its first ``wrong[s]`` test images."""
    return [
        make_evaluated(
            session,
            [(label + 1) % 10 if i < count else label for i, label in enumerate(LABELS)],
            LABELS,
            seed=seed,
            learning_rate=learning_rate,
            epochs=[
                {"val_accuracy": 0.5, "val_loss": 1.0},
                {"val_accuracy": 1 - count / 100, "val_loss": count / 100},
            ],
        )  # fmt: skip
        for seed, count in enumerate(wrong)
    ]


def test_two_groups_of_three_seeds_draw_bands_and_a_verdict(
    session: Session, served: str, page: Page
) -> None:
    slow = seeds_of(session, 0.001, [30, 32, 28])
    fast = seeds_of(session, 0.003, [10, 12, 8])
    ids = ",".join(str(e.id) for e in [*slow, *fast])
    # The slow group is the baseline (by default it would be the most accurate run's).
    page.goto(f"{served}/compare?ids={ids}&baseline={slow[0].id}")
    page.locator("#view-switch [data-view='groups']").click()
    page.wait_for_url("**group=seed**")
    expect(page.locator("#group-summary tbody tr")).to_have_count(2)
    expect(page.locator("#warnings")).to_have_count(0)  # 3 seeds each: nothing to warn of

    card = page.locator(f"#verdicts [data-pair='{slow[0].id}-{fast[0].id}']")
    expect(card).to_have_attribute("data-verdict", "larger")
    expect(card.locator("[data-text]")).to_contain_text("mean test accuracy is 20.0 points higher")
    expect(card.locator("[data-text]")).to_contain_text("larger than the seed-to-seed noise")

    shown_bands = (
        "document.getElementById('group-accuracy-chart').data"
        ".filter(t => t.meta.kind === 'band' && t.visible === true)"
        ".map(t => t.meta.group + ':' + t.meta.band).sort().join(',')"
    )
    wait_for(page, f"{shown_bands} === '{slow[0].id}:std,{fast[0].id}:std'")
    band_paths = "#group-accuracy-chart .scatterlayer .trace .js-fill"
    expect(page.locator(band_paths)).to_have_count(2)  # one filled band per group, drawn
    means = page.evaluate(
        "document.getElementById('group-accuracy-chart').data"
        ".filter(t => t.meta.kind === 'mean').map(t => [t.meta.group, t.line.color, t.y])"
    )
    assert [(group, round(y[-1], 6)) for group, _, y in means] == [
        (slow[0].id, 0.7),
        (fast[0].id, 0.9),
    ]
    assert len({color for _, color, _ in means}) == 2

    page.locator("#band-mode input[value='ci']").check()
    wait_for(page, f"{shown_bands} === '{slow[0].id}:ci,{fast[0].id}:ci'")
    expect(page.locator(band_paths)).to_have_count(2)
