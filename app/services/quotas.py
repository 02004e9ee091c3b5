"""Per-user limits: experiments queued or running, and live pages open. Both are counted in
the database, so they hold over every web process; a refusal is answered 429 naming the
setting that sets the limit.

The count and the insert are two statements, so launches racing each other may pass the
limit by the few that were in flight at once; the limit bounds a flood, not an exact figure.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from app.core import crud
from app.core.config import get_settings
from app.core.models import LiveStream, utcnow

ACTIVE_RETRY_AFTER_SECONDS = 60
STREAM_RETRY_AFTER_SECONDS = 30
STREAM_LEASE_SECONDS = 60.0
"""An open stream renews its row more often than this; a dead process's rows run out."""


class QuotaExceeded(Exception):
    """A per-user limit refused the request; ``retry_after_seconds`` goes in Retry-After."""

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


def check_active_experiments(session: Session, owner_id: int | None) -> None:
    """Before one more experiment of ``owner_id`` is queued (a launch or a retry)."""
    limit = get_settings().max_active_experiments_per_user
    if not limit:
        return
    active = crud.active_experiments(session=session, owner_id=owner_id)
    if active >= limit:
        raise QuotaExceeded(
            f"{active} experiments are queued or running for this user, the most one user "
            f"may have (CIFARLAB_MAX_ACTIVE_EXPERIMENTS_PER_USER={limit}); wait for one to "
            "finish or cancel one, then launch again",
            ACTIVE_RETRY_AFTER_SECONDS,
        )


def open_stream(session: Session, viewer: str) -> str:
    """Count ``viewer``'s open streams and record one more; returns its id (close it with
    ``close_stream``, renew it with ``renew_stream``)."""
    now = utcnow()
    session.execute(delete(LiveStream).where(LiveStream.expires_at < now))
    limit = get_settings().max_live_streams_per_user
    if limit:
        count = session.scalar(
            select(func.count()).select_from(LiveStream).where(LiveStream.viewer == viewer)
        )
        if int(count or 0) >= limit:
            session.commit()
            raise QuotaExceeded(
                f"{count} live pages are open for this user, the most one user may have "
                f"(CIFARLAB_MAX_LIVE_STREAMS_PER_USER={limit}); close one and reload",
                STREAM_RETRY_AFTER_SECONDS,
            )
    stream_id = uuid.uuid4().hex
    expires_at = now + timedelta(seconds=STREAM_LEASE_SECONDS)
    session.add(LiveStream(id=stream_id, viewer=viewer, expires_at=expires_at))
    session.commit()
    return stream_id


def renew_stream(session: Session, stream_id: str) -> None:
    expires_at = utcnow() + timedelta(seconds=STREAM_LEASE_SECONDS)
    session.execute(
        update(LiveStream).where(LiveStream.id == stream_id).values(expires_at=expires_at)
    )
    session.commit()


def close_stream(session: Session, stream_id: str) -> None:
    session.execute(delete(LiveStream).where(LiveStream.id == stream_id))
    session.commit()
