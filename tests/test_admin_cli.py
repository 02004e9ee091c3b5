"""`cifarlab user` and `cifarlab token`: they say which database they wrote, refuse a missing
one, and manage passwords, disabled users and token lifetimes (issues 11 and 12)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app.cli import cli
from app.core import db
from app.core.db import session_scope
from app.services import accounts
from tests.support.clients import PASSWORD, bearer, make_client, signed_in
from tests.support.settings import clear_caches

runner = CliRunner()


def run(*args: str, password: str = PASSWORD, columns: int = 200) -> tuple[int, str]:
    """The command's exit code and output on a terminal ``columns`` wide (tables fit it)."""
    env = {"CIFARLAB_PASSWORD": password, "COLUMNS": str(columns)}
    result = runner.invoke(cli, list(args), env=env)
    return result.exit_code, result.output


def test_user_create_refuses_a_database_that_is_not_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's `cifarlab user create alice --admin`, run without the server's data
    directory, made a new empty database elsewhere and reported success."""
    monkeypatch.setenv("CIFARLAB_DATA_DIR", str(tmp_path / "home"))
    monkeypatch.delenv("CIFARLAB_DATABASE_URL", raising=False)
    code, output = run("user", "create", "alice", "--admin")
    missing = (tmp_path / "home" / "cifarlab.db").resolve()
    assert code == 2
    assert f"no cifarlab database at {missing}; pass --data-dir" in output
    assert not missing.exists()
    code, output = run("token", "list", "--data-dir", str(tmp_path / "other"))
    assert code == 2 and "no cifarlab database at" in output
    assert not (tmp_path / "other").exists()
    code, output = run("user", "create", "alice", "--admin", "--create",
                       "--data-dir", str(tmp_path / "home"))  # fmt: skip
    assert code == 0 and f"created admin user alice in {missing}" in output
    assert missing.is_file()
    db.get_engine().dispose()
    clear_caches()


def test_user_create_writes_to_the_data_dir_it_is_given(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = data_dir.resolve()
    monkeypatch.setenv("CIFARLAB_DATA_DIR", str(tmp_path / "elsewhere"))  # as in a new shell
    code, output = run("user", "create", "alice", "--admin", "--data-dir", str(server))
    assert code == 0, output
    assert f"created admin user alice in {server / 'cifarlab.db'}" in output
    with session_scope() as session:  # the command pointed the settings at --data-dir
        assert accounts.get_user(session=session, username="alice").is_admin
    assert not (tmp_path / "elsewhere").exists()
    assert make_client().get("/api/experiments").status_code == 401  # closed now


def test_token_create_list_and_revoke(session: Session, data_dir: Path) -> None:
    where = str(data_dir.resolve() / "cifarlab.db")
    assert run("user", "create", "alice")[0] == 0
    code, output = run("token", "create", "alice", "--name", "laptop")
    assert code == 0 and where in output and "expires" in output
    token = re.search(r"cl_[\w-]+", output).group(0)
    code, output = run("token", "create", "alice", "--name", "service", "--no-expiry")
    assert code == 0 and "never expires" in output
    code, output = run("token", "create", "alice", "--expires-in-days", "0")
    assert code == 2
    code, output = run("token", "list")
    assert code == 0 and "laptop" in output and "service" in output and "never" in output
    assert "cl_" not in output and where in output  # never the secret
    token_id = re.search(r"(\d+)\W+alice\W+laptop", output).group(1)
    assert bearer(token).get("/api/experiments").status_code == 200
    code, output = run("token", "revoke", token_id)
    assert code == 0 and f"revoked token {token_id} ('laptop' of alice) in {where}" in output
    assert bearer(token).get("/api/experiments").status_code == 401
    code, output = run("token", "revoke", token_id)
    assert code == 2 and f"(database: {where})" in output  # a refusal names where it looked
    assert "laptop" not in run("token", "list", "alice")[1]


def test_password_change_and_disable_from_the_command_line(
    session: Session, data_dir: Path
) -> None:
    assert run("user", "create", "alice")[0] == 0
    token = re.search(r"cl_[\w-]+", run("token", "create", "alice")[1]).group(0)
    browser = signed_in()
    code, output = run("user", "password", "alice", password="another long password")
    assert code == 0 and "signed out everywhere" in output
    assert browser.get("/api/experiments").status_code == 401
    assert bearer(token).get("/api/experiments").status_code == 200  # tokens are separate
    code, output = run("user", "disable", "alice")
    assert code == 0 and "tokens refused" in output
    assert bearer(token).get("/api/experiments").status_code == 401
    assert "alice" in run("user", "list")[1]
    assert run("user", "enable", "alice")[0] == 0
    assert bearer(token).get("/api/experiments").status_code == 200
    code, output = run("user", "disable", "nobody")
    where = str(data_dir.resolve() / "cifarlab.db")
    assert code == 2 and "no user 'nobody'" in output and f"(database: {where})" in output
    code, output = run("token", "create", "nobody")
    assert code == 2 and f"(database: {where})" in output


def test_paths_and_tokens_print_whole_on_a_narrow_terminal(data_dir: Path) -> None:
    """Rich wrapped printed lines at the terminal's width, so the database path came out as
    ``.../ci`` and ``farlab.db`` on two lines: a user copying it, or a script reading it,
    got a path that does not exist. Lines are now left whole for the terminal to wrap."""
    where = str(data_dir.resolve() / "cifarlab.db")
    assert len(where) > 40
    code, output = run("user", "create", "alice", columns=40)
    assert code == 0 and f"created user alice in {where}\n" in output
    code, output = run("token", "create", "alice", "--name", "laptop", columns=40)
    assert code == 0 and where in output
    token = re.search(r"^cl_[\w-]+$", output, re.MULTILINE)
    assert token is not None and bearer(token.group(0)).get("/api/experiments").status_code == 200


def test_bad_values_for_the_admin_commands_are_named_not_tracebacks(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each of these ended in a traceback (exit 1): an overflowing date or id, a URL that is
    none, a folder that cannot hold the database, an over-long token name (PostgreSQL's
    column is 100 characters), a port past 65535 (it wrapped round to another)."""
    assert run("user", "create", "alice")[0] == 0
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for args, words in [
        (("token", "create", "alice", "--expires-in-days", "inf"), "less than or equal to 36525"),
        (("token", "revoke", "99999999999999999999"), "less than or equal to 2147483647"),
        (("token", "create", "alice", "--name", "x" * 101), "--name: give 1 to 100 printable"),
        (("token", "create", "alice", "--name", " "), "--name: give 1 to 100 printable"),
        (("user", "list", "--database-url", "notaurl"), "'notaurl' is not a database URL"),
        (("migrate", "--database-url", "notaurl"), "'notaurl' is not a database URL"),
        (("migrate", "--data-dir", str(a_file)), "cannot make the database at"),
        (("user", "list", "--database-url", "postgresql+nosuch://u@h/d"), "cifarlab[postgres]"),
        (("web", "--port", "70000"), "less than or equal to 65535"),
        (("up", "--redis-port", "-1"), "greater than or equal to 0"),
    ]:
        # The commands point the process's settings at their options, as `cifarlab up` does.
        monkeypatch.setenv("CIFARLAB_DATA_DIR", str(data_dir))
        monkeypatch.delenv("CIFARLAB_DATABASE_URL", raising=False)
        clear_caches()
        code, output = run(*args)
        assert code == 2 and words in " ".join(output.replace("│", " ").split()), (args, output)
    monkeypatch.setenv("CIFARLAB_DATA_DIR", str(data_dir))
    monkeypatch.delenv("CIFARLAB_DATABASE_URL", raising=False)
    clear_caches()
