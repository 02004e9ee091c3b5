"""`cifarlab user` and `cifarlab token`: accounts and API tokens, written straight to the
database (run them where the server's database is), not through the API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from app.cli.options import DatabaseUrl, DataDir
from app.cli.output import console, fail
from app.core.models import INTEGER_MAX

if TYPE_CHECKING:  # the database's modules load only in the commands that use them
    from sqlalchemy.orm import Session

    from app.core.models import User

commands = typer.Typer()
user_group = typer.Typer(help="Accounts (run on the server: it writes the database directly).")
token_group = typer.Typer(help="API tokens for the CLI and scripts (written to the database).")
commands.add_typer(user_group, name="user")
commands.add_typer(token_group, name="token")

MAX_TOKEN_DAYS = 36_525
"""A century: a longer lifetime overflowed the date (inf, 1e10); --no-expiry is for never."""

PasswordOption = Annotated[
    str | None,
    typer.Option(
        help="Default: asked for, hidden \\[env: CIFARLAB_PASSWORD].", envvar="CIFARLAB_PASSWORD"
    ),
]


def _database(data_dir: Path | None, database_url: str | None, *, create: bool = False) -> str:
    """Point at the database the options name and check it is there; its description."""
    from app.database_location import DatabaseMissing, open_database, point_at

    point_at(data_dir=data_dir, database_url=database_url)
    try:
        return open_database(create=create)
    except DatabaseMissing as exc:
        raise fail(str(exc)) from None


@contextmanager
def _transaction(where: str) -> Iterator[Session]:
    """One transaction on the database the command points at. A refusal (an unknown user or
    token, a name taken) ends the command with its message and that database's description:
    a forgotten --data-dir shows as the default folder's database, not as a missing user."""
    from app.core.db import session_scope

    try:
        with session_scope() as session:
            yield session
    except ValueError as exc:
        raise fail(f"{exc} (database: {where})") from None


def _when(moment: Any) -> str:
    return "" if moment is None else f"{moment:%Y-%m-%d %H:%M}"


@user_group.command("create")
def user_create(
    username: str,
    admin: Annotated[bool, typer.Option(help="May change everyone's experiments.")] = False,
    password: PasswordOption = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    create: Annotated[
        bool, typer.Option(help="Make the database if there is none yet (or migrate it).")
    ] = False,
) -> None:
    """Create an account; once one exists, cifarlab asks everyone to sign in."""
    from app.services import accounts

    where = _database(data_dir, database_url, create=create)
    secret = password or typer.prompt("password", hide_input=True, confirmation_prompt=True)
    with _transaction(where) as session:
        accounts.create_user(session=session, username=username, password=secret,
                             is_admin=admin)  # fmt: skip
    console.print(f"created {'admin ' if admin else ''}user {username} in {where}", highlight=False)


@user_group.command("list")
def user_list(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """List the accounts."""
    from app.services import accounts

    where = _database(data_dir, database_url)
    table = Table("user", "admin", "created", "disabled")
    with _transaction(where) as session:
        for user in accounts.list_users(session=session):
            table.add_row(user.username, "yes" if user.is_admin else "",
                          _when(user.created_at), _when(user.disabled_at))  # fmt: skip
    console.print(table)
    console.print(f"database: {where}", highlight=False)


@user_group.command("password")
def user_password(
    username: str,
    password: PasswordOption = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Set a new password; every browser signed in as USERNAME is signed out."""
    from app.services import accounts

    where = _database(data_dir, database_url)
    secret = password or typer.prompt("new password", hide_input=True, confirmation_prompt=True)
    _change_user(username, where, lambda session, user: accounts.set_password(
        session=session, user=user, password=secret))  # fmt: skip
    console.print(f"new password for {username}, signed out everywhere, in {where}",
                  highlight=False)  # fmt: skip


def _change_user(username: str, where: str, change: Callable[[Session, User], object]) -> None:
    """``change`` on USERNAME's account, in one transaction (``_transaction``)."""
    from app.services import accounts

    with _transaction(where) as session:
        change(session, accounts.require_user(session=session, username=username))


def _set_disabled(username: str, disabled: bool, where: str) -> None:
    from app.services import accounts

    _change_user(username, where, lambda session, user: accounts.set_disabled(
        session=session, user=user, disabled=disabled))  # fmt: skip
    state = "disabled: signed out, tokens refused" if disabled else "enabled"
    console.print(f"user {username} {state}, in {where}", highlight=False)


@user_group.command("disable")
def user_disable(username: str, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Stop USERNAME signing in: their browsers are signed out and their tokens refused."""
    _set_disabled(username, True, _database(data_dir, database_url))


@user_group.command("enable")
def user_enable(username: str, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Let a disabled USERNAME sign in again; their unexpired tokens work again."""
    _set_disabled(username, False, _database(data_dir, database_url))


@token_group.command("create")
def token_create(
    username: str,
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
    expires_in_days: Annotated[
        float | None,
        typer.Option(max=MAX_TOKEN_DAYS, help="Lifetime [default: CIFARLAB_TOKEN_DAYS, 90]."),
    ] = None,
    no_expiry: Annotated[
        bool, typer.Option(help="Never expires (until revoked); for a service's own token.")
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an API token for USERNAME and print it (shown once; keep it secret)."""
    from datetime import timedelta

    from app.core.models import utcnow
    from app.services import accounts

    if no_expiry and expires_in_days is not None:
        raise fail("choose --expires-in-days or --no-expiry, not both")
    if expires_in_days is not None and not expires_in_days > 0:
        raise fail("--expires-in-days: give a number of days above 0")
    where = _database(data_dir, database_url)
    if no_expiry:
        expires = None
    elif expires_in_days is None:
        expires = accounts.default_token_expiry()
    else:
        expires = utcnow() + timedelta(days=expires_in_days)
    with _transaction(where) as session:
        user = accounts.require_user(session=session, username=username)
        token = accounts.create_token(session=session, user=user, name=name,
                                      expires_at=expires)  # fmt: skip
    console.print(token, highlight=False)
    until = "never expires" if expires is None else f"expires {_when(expires)} UTC"
    console.print(f"token {name!r} for {username}, {until}, in {where}", style="dim",
                  highlight=False)  # fmt: skip
    console.print("use it as CIFARLAB_API_TOKEN=... or Authorization: Bearer ...", style="dim")


@token_group.command("list")
def token_list(
    username: Annotated[str | None, typer.Argument(help="Only this user's tokens.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """List API tokens: who, what for, when made, last used and expires (never the token)."""
    from app.services import accounts

    where = _database(data_dir, database_url)
    table = Table("id", "user", "name", "created", "last used", "expires")
    with _transaction(where) as session:
        user = None if username is None else accounts.require_user(
            session=session, username=username)  # fmt: skip
        for row in accounts.list_tokens(session=session, user=user):
            expires = "never" if row.expires_at is None else _when(row.expires_at)
            table.add_row(str(row.id), row.user.username, row.name, _when(row.created_at),
                          _when(row.last_used_at), expires)  # fmt: skip
    console.print(table)
    console.print(f"database: {where}", highlight=False)


@token_group.command("revoke")
def token_revoke(
    token_id: Annotated[
        int, typer.Argument(min=1, max=INTEGER_MAX, help="The id `cifarlab token list` shows.")
    ],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke an API token: it is refused from the next request on."""
    from app.services import accounts

    where = _database(data_dir, database_url)
    with _transaction(where) as session:
        row = accounts.revoke_token(session=session, token_id=token_id)
        label = f"token {token_id} ({row.name!r} of {row.user.username})"
    console.print(f"revoked {label} in {where}", highlight=False)
