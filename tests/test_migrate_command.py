"""`cifarlab migrate` says which database it wrote, and makes the first admin from settings."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.cli import cli
from app.core import config, db
from app.database_location import schema_revisions
from app.migrate import upgrade
from app.services import accounts
from app.services.security import verify_password
from tests.support.servers import clean_environment, free_port


def _password_is(session: Session, username: str, password: str) -> bool:
    user = accounts.get_user(session=session, username=username)
    return user is not None and verify_password(user.password_hash, password)


def test_bootstrap_admin_is_created_once(session: Session, tmp_path: Path) -> None:
    secret = tmp_path / "admin_password"
    secret.write_text("correct horse battery\n")
    admin = accounts.bootstrap_admin(session=session, username="root", password_file=secret)
    assert admin is not None and admin.is_admin
    assert _password_is(session, "root", "correct horse battery")
    secret.write_text("another password\n")
    assert accounts.bootstrap_admin(session=session, username="root", password_file=secret) is None
    assert _password_is(session, "root", "correct horse battery")
    assert [user.username for user in accounts.list_users(session=session)] == ["root"]


def test_bootstrap_admin_leaves_an_install_with_accounts_alone(
    session: Session, tmp_path: Path
) -> None:
    accounts.create_user(session=session, username="alice", password="alice-password",
                         is_admin=False)  # fmt: skip
    missing = tmp_path / "absent"
    assert accounts.bootstrap_admin(session=session, username="root", password_file=missing) is None
    assert [user.username for user in accounts.list_users(session=session)] == ["alice"]


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "cannot read"), ("", "is empty"), ("\n", "is empty"), ("short", "at least 8")],
)
def test_bootstrap_admin_refuses_a_missing_or_empty_password_file(
    session: Session, tmp_path: Path, content: str | None, message: str
) -> None:
    secret = tmp_path / "admin_password"
    if content is not None:
        secret.write_text(content)
    with pytest.raises(ValueError, match=message):
        accounts.bootstrap_admin(session=session, username="root", password_file=secret)
    assert not accounts.any_users(session=session)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """The command sets CIFARLAB_* itself; monkeypatch restores what it touched."""
    monkeypatch.setenv("CIFARLAB_DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("CIFARLAB_DATABASE_URL", "")
    monkeypatch.delenv("CIFARLAB_ADMIN_USER", raising=False)
    monkeypatch.delenv("CIFARLAB_ADMIN_PASSWORD_FILE", raising=False)
    yield
    db.get_engine().dispose()
    config.get_settings.cache_clear()
    db.get_engine.cache_clear()
    db.get_sessionmaker.cache_clear()


def test_migrate_says_which_database_it_created_then_updated(
    clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "admin_password"
    secret.write_text("correct horse battery\n")
    monkeypatch.setenv("CIFARLAB_ADMIN_USER", "root")
    monkeypatch.setenv("CIFARLAB_ADMIN_PASSWORD_FILE", str(secret))
    database = tmp_path / "data" / "cifarlab.db"
    runner = CliRunner()

    first = runner.invoke(cli, ["migrate", "--data-dir", str(tmp_path / "data")])
    assert first.exit_code == 0, first.output
    assert f"created a new cifarlab database: {database}" in first.output
    assert "created admin user root" in first.output
    assert not (tmp_path / "elsewhere").exists()

    again = runner.invoke(cli, ["migrate", "--data-dir", str(tmp_path / "data")])
    assert again.exit_code == 0, again.output
    assert f"cifarlab database is up to date: {database}" in again.output
    assert "created admin" not in again.output
    with db.session_scope() as session:
        assert [user.username for user in accounts.list_users(session=session)] == ["root"]


def test_migrate_fails_when_the_first_admin_has_no_password(
    clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIFARLAB_ADMIN_USER", "root")
    url = f"sqlite:///{tmp_path / 'other.db'}"
    result = CliRunner().invoke(cli, ["migrate", "--database-url", url])
    assert result.exit_code == 2
    assert "CIFARLAB_ADMIN_PASSWORD_FILE" in result.output


@pytest.mark.parametrize("service", [["web", "--port"], ["worker"]])
def test_a_service_refuses_a_database_without_the_schema(
    tmp_path: Path, service: list[str]
) -> None:
    """Started on a database `cifarlab migrate` never made, the web answered 500 ("no such
    table") on every page. Now either service exits 2 before it starts, saying what to run,
    and leaves no empty database behind."""
    data = tmp_path / "data"
    argv = [sys.executable, "-m", "app.cli", *service]
    if service[-1] == "--port":
        argv.append(str(free_port()))
    done = subprocess.run(
        argv, env=clean_environment(CIFARLAB_DATA_DIR=str(data)), capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    output = " ".join(done.stdout.split())  # the console wraps long lines
    assert f"no cifarlab database at {data / 'cifarlab.db'}" in output, output
    assert "run `cifarlab migrate` first, with the same CIFARLAB_DATABASE_URL" in output, output
    assert not (data / "cifarlab.db").exists()


def test_migrate_names_the_schemas_it_upgraded_between_and_alembic_stays_quiet(
    tmp_path: Path,
) -> None:
    """An older database (as a team upgrading cifarlab has): one line saying from which
    schema to which, and none of Alembic's INFO lines, there and on an account command."""
    data = tmp_path / "data"
    data.mkdir()
    url = f"sqlite:///{data / 'cifarlab.db'}"
    upgrade(url, "0013")
    env = clean_environment(CIFARLAB_DATA_DIR=str(data))

    def cifarlab(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "app.cli", *args], env=env,
                              capture_output=True, text=True, timeout=60, check=True)  # fmt: skip

    migrated = cifarlab("migrate")
    head = schema_revisions(url)
    assert head is not None and head != {"0013"}
    assert migrated.stdout == (
        f"upgraded the cifarlab database from schema 0013 to {', '.join(head)}: "
        f"{data / 'cifarlab.db'}\n"
    )
    listed = cifarlab("user", "list")
    for done in (migrated, listed):
        assert "alembic" not in done.stdout + done.stderr, done.stderr
