"""How numbers, times and differences read on the pages: Jinja filters, and the cells the
compare page's per-class table formats in Python (hundreds of them per page)."""

from __future__ import annotations

from datetime import UTC, datetime

from app.core.models import IMPORTED_MODEL, utcnow
from app.core.zoo import MODELS


def format_datetime(value: datetime | None) -> str:
    """SQLite hands back naive datetimes; every stored time is UTC, so say so."""
    if value is None:
        return "—"
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def format_ago(value: datetime | None) -> str:
    """How long ago, for "last seen": the workers page refreshes every few seconds."""
    if value is None:
        return "—"
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return f"{format_duration(max((utcnow() - aware).total_seconds(), 0.0))} ago"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def format_percent(value: float | None, given: int | None = None) -> str:
    """Two decimals for a measured accuracy; for an imported one, ``given`` is the decimals
    its report printed (0.82 gives "82%", not "82.00%", a precision it never had)."""
    if value is None:
        return "—"
    decimals = 2 if given is None else max(given - 2, 0)
    return f"{value * 100:.{decimals}f}%"


def format_number(value: float | int | None, digits: int = 3) -> str:
    if value is None:
        return ""
    return f"{value:,}" if isinstance(value, int) else f"{value:.{digits}f}"


def format_compact(value: int | None) -> str:
    """Parameter counts in a list column: 550.6k, 23.6M (the exact count is in its title)."""
    if value is None:
        return "—"
    for limit, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.1f}{suffix}"
    return str(value)


def format_mean_last(pair: tuple[float, float] | None, digits: int, unit: str = "") -> str:
    """The mean over epochs and the last epoch's value: the first epoch pays for tracing,
    so the last one says what the run does now. Mirrored in experiment.js."""
    if pair is None:
        return "—"
    mean, last = (f"{value:,.{digits}f}{unit}" for value in pair)
    return f"{mean} mean · {last} last"


def format_signed(value: float | None, digits: int = 3) -> str:
    """A difference with its sign (a true minus sign), so +0.012 and −0.020 read as deltas."""
    if value is None:
        return ""
    text = f"{abs(value):.{digits}f}"
    if float(text) == 0:
        return f"±{text}"
    return f"+{text}" if value > 0 else f"−{text}"


def format_p_value(value: float) -> str:
    """Two significant figures, and a floor: a p-value of 1e-40 says no more than < 0.0001."""
    return "< 0.0001" if value < 0.0001 else f"{value:.2g}"


def model_title(model: str) -> str:
    if model == IMPORTED_MODEL:
        return "Imported report"
    return MODELS[model].title if model in MODELS else model
