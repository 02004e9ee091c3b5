"""The `cifarlab` command: run the services, and launch and inspect experiments.

Each module holds one group of commands (services, experiments, sweeps, bench, accounts);
this one puts them under one command, in the order `cifarlab --help` lists them."""

from __future__ import annotations

import logging

import typer

from app.cli import accounts, bench, experiments, services, sweeps
from app.core.config import restrict_file_modes

cli = typer.Typer(
    help="cifarlab: launch, watch and compare CIFAR-10 experiments.", no_args_is_help=True
)
for group in (services, experiments, sweeps, bench, accounts):
    cli.add_typer(group.commands)


def main() -> None:
    restrict_file_modes()  # inherited by everything `up`, `web` and `worker` start
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per poll drowns the bars
    # Alembic's INFO lines (its SQL dialect, DDL mode, each step) on every account command
    # and migrate are not a user's news: `migrate` says what it did; `up --verbose` shows them.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    cli()
