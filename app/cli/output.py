"""What every command prints with: one console, its tables, and the error line that ends a
command."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import typer
from rich.console import Console
from rich.table import Column, Table
from rich.text import Text

from app.client import ApiError

# soft_wrap: a line longer than the terminal is left for the terminal to wrap, so a printed
# path or token stays one string to copy, and piped output never gets line breaks inside it.
# Tables still fit the width. No markup and no emoji codes: what is printed (a run's name, an
# error) is shown as written; a name holding "[/]" was read as a closing tag and every list
# that showed it ended in a traceback. Colour comes from ``labelled``'s styles instead.
console = Console(soft_wrap=True, markup=False, emoji=False)


def labelled(label: str, style: str, message: str) -> Text:
    """``error: ...`` with the label in ``style``, the message as written."""
    return Text.assemble((label, style), " ", message)


def listing(*headers: str, folding: Sequence[str] = ("name",), **options: Any) -> Table:
    """A table whose ids, models, statuses, figures and times stay whole on an 80-column
    terminal: only the ``folding`` columns (names, free text) wrap, folding long words.
    Left to Rich, every column shrank alike: "succee…", "custom_c…", "2026-12-02T17:0…"."""
    return Table(
        *(Column(h, overflow="fold") if h in folding else Column(h, no_wrap=True) for h in headers),
        **options,
    )


def minute(moment: str) -> str:
    """A time as the API gives it (``2026-12-02T17:08:19.8Z``), to the minute."""
    return moment[:16].replace("T", " ")


def fail(message: str) -> typer.Exit:
    """Prints the message and ends the command with exit code 2."""
    console.print(labelled("error:", "red", message), highlight=False)
    return typer.Exit(code=2)


@contextmanager
def following(what: str, show: str, cancel: str) -> Iterator[None]:
    """Around a `--follow` loop: an API error ends the command with its message, and Ctrl-C
    stops the following, not the run on the worker, and says so and how to look again or
    stop it (exit 130, a shell's code for an interrupt)."""
    try:
        yield
    except ApiError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        console.print(
            f"stopped following; {what} goes on: `{show}` shows it, `{cancel}` stops it",
            highlight=False,
        )
        raise typer.Exit(code=130) from None
