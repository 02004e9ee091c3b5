"""Settings: the only place that reads the environment (prefix ``CIFARLAB_``)."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

MAX_DEFAULT_WEB_PROCESSES = 4


def available_cores() -> int:
    """The cores this process may run on (a container's CPU set), not the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def restrict_file_modes() -> None:
    """Files this process creates are its user's alone (0600, directories 0700): the data
    directory holds the database, the broker's password, and checkpoints and test sets that
    workers and the web load, so another local user must not read or replace them."""
    os.umask(0o077)


def make_private_dir(path: Path) -> None:
    """Create ``path`` (0700) or tighten it: a directory only its owner can enter keeps the
    files inside private, including ones an older version wrote with wider modes."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)


class Settings(BaseSettings):
    """Every process (web, worker, CLI) is configured from the same variables."""

    model_config = SettingsConfigDict(env_prefix="CIFARLAB_", extra="ignore")

    data_dir: Path = Field(
        default=Path.home() / ".cifarlab",
        description="Database, Redis files, cached datasets and trained models live here.",
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite in data_dir."
    )
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="Celery broker.")
    cifar10_path: Path | None = Field(
        default=None,
        description="cifar-10-python.tar.gz, cifar-10-batches-py/, an image folder or its tar.gz.",
    )
    weights_dir: Path | None = Field(
        default=None, description="Pre-trained weight files for machines without internet."
    )
    api_url: str = Field(default="http://127.0.0.1:8000", description="Where the CLI client talks.")
    api_token: str | None = Field(default=None, description="The CLI client's API token.")
    queue: str = Field(default="cifarlab", description="Celery queue that training tasks use.")
    visibility_timeout_seconds: int = Field(
        default=7 * 24 * 3600,
        description="Longer than the longest run, or Redis redelivers a running task.",
    )
    auth: Literal["auto", "disabled"] = Field(
        default="auto",
        description="auto: sign-in is required once any account exists; disabled: never.",
    )
    admin_user: str | None = Field(
        default=None,
        description="`cifarlab migrate` creates this admin account when no account exists yet "
        "(a container's first start), with the password read from admin_password_file.",
    )
    admin_password_file: Path | None = Field(
        default=None,
        description="A file holding the first admin's password (a Docker secret), so the "
        "password is never in the environment or the compose file.",
    )
    secret_key: str | None = Field(
        default=None,
        description="Signs session cookies; default: a random key kept in the data directory. "
        "Set the same value on every web process.",
    )
    session_days: float = Field(
        default=14, gt=0, description="A browser sign-in lasts this long; logout ends it sooner."
    )
    token_days: float = Field(
        default=90,
        gt=0,
        description="Default lifetime of a new API token (`cifarlab token create "
        "--expires-in-days` or `--no-expiry` choose otherwise).",
    )
    cookie_secure: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="Mark the session cookie Secure (sent over HTTPS only). auto: when the "
        "request came over HTTPS, directly or, from a trusted proxy, per X-Forwarded-Proto.",
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated addresses or networks of reverse proxies whose "
        "X-Forwarded-Proto and X-Forwarded-For are believed; default: none.",
    )
    login_attempts_per_account: int = Field(
        default=10, ge=1, description="Wrong passwords for one account per login window."
    )
    login_attempts_per_address: int = Field(
        default=50, ge=1, description="Wrong passwords from one client address per login window."
    )
    login_window_seconds: int = Field(
        default=900, ge=1, description="The window over which wrong passwords are counted."
    )
    password_hash_concurrency: int = Field(
        default=1,
        ge=1,
        description="Password checks (Argon2: tens of MB and a few hundred ms each) one web "
        "process runs at once, apart from the request slots, so sign-ins never delay others.",
    )
    web_processes: int | None = Field(
        default=None,
        ge=1,
        description="Web server processes of `cifarlab up` and `cifarlab web`; default: one "
        f"per CPU core, at most {MAX_DEFAULT_WEB_PROCESSES}. A process runs Python on one "
        "core at a time, and pages are mostly Python.",
    )
    request_concurrency: int = Field(
        default=2,
        ge=1,
        description="Requests one web process works on at once; later ones wait their turn. "
        "Python threads share one interpreter lock, so 20 at once each take longer than "
        "their turn in line would.",
    )
    heartbeat_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often a running experiment says it is alive."
    )
    heartbeat_timeout_seconds: float = Field(
        default=90.0, gt=0, description="Silence after which a running experiment's worker is lost."
    )
    max_attempts: int = Field(
        default=2, ge=1, description="Runs of one experiment before a lost worker marks it failed."
    )
    broker_timeout_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How long the web waits on Redis for one call; a stalled broker answers "
        "503 (launches stay stored and are sent when it is back) instead of hanging pages.",
    )
    outbox_interval_seconds: float = Field(
        default=2.0, gt=0, description="How often the web sends launches the broker missed."
    )
    max_active_experiments_per_user: int = Field(
        default=20,
        ge=0,
        description="Experiments one user may have queued or running at once; 0: no limit.",
    )
    max_live_streams_per_user: int = Field(
        default=10,
        ge=0,
        description="Live pages (event streams) one user may have open at once, over all web "
        "processes; 0: no limit.",
    )

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'cifarlab.db'}"

    @property
    def web_process_count(self) -> int:
        if self.web_processes is not None:
            return self.web_processes
        return min(available_cores(), MAX_DEFAULT_WEB_PROCESSES)

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"

    def experiment_dir(self, experiment_id: int) -> Path:
        """Files are found by experiment id only, never by a path a client supplies."""
        return self.artifacts_dir / f"experiment-{int(experiment_id)}"

    def model_path(self, experiment_id: int) -> Path:
        return self.experiment_dir(experiment_id) / "model.keras"

    def test_images_path(self, fingerprint: str) -> Path:
        if not fingerprint.isalnum():
            raise ValueError(f"not a test-set fingerprint: {fingerprint!r}")
        return self.artifacts_dir / "test-sets" / f"{fingerprint}.npy"

    def session_secret(self) -> str:
        """The configured key, or one made once and kept (0600) in the data directory."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if not path.exists():
            make_private_dir(self.data_dir)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another process made it first
                return path.read_text().strip()
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_urlsafe(48))
        return path.read_text().strip()

    @property
    def dataset_cache_dir(self) -> Path:
        return self.data_dir / "datasets"


@lru_cache
def get_settings() -> Settings:
    return Settings()
