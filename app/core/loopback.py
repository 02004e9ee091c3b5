"""Which host names mean this machine only: what an open cifarlab (no accounts) may listen on
and answer to."""

from __future__ import annotations

import ipaddress


def is_loopback(hostname: str) -> bool:
    """``localhost``, a name under ``.localhost`` (which browsers resolve to loopback and
    nobody can register), or a loopback address (127.0.0.0/8, ::1)."""
    if hostname == "localhost" or hostname.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False
