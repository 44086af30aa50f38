"""What ``ls`` and ``show`` tell of a session's lease, and when a session is ``stale``.

A worker holds the lease of the session it runs and renews it while it
lives (docs/stores.md). A session stored as ``running`` whose lease has
expired lost its worker: the command line shows it as **stale**, with the
holder and when the lease expired. A running session without any lease (a
writer that takes none) stays ``running``. Expiry is judged on this
machine's clock against the end the store gives.

The holder is stored text, written by any worker: it is shown like every
stored string (plain text, control characters escaped by the caller).
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from dsxir.errors import CheckpointError
from dsxir.store import Lease, Store

__all__ = ["is_stale", "lease_json", "lease_text", "read_lease", "shown_status", "utc_text"]


def read_lease(store: Store, session_id: str) -> Lease | None:
    """The session's lease; None when it has none or the store keeps none (or cannot say)."""
    get_lease = getattr(store, "get_lease", None)
    if not callable(get_lease):
        return None
    try:
        found = get_lease(session_id)
    except (CheckpointError, OSError, NotImplementedError):
        return None  # a server without leases: nothing to show, the status stands
    return found if isinstance(found, Lease) else None


def is_stale(status: str, lease: Lease | None, now: _dt.datetime) -> bool:
    """Whether a session of ``status`` with ``lease`` has lost its worker."""
    return status == "running" and lease is not None and lease.expired(now)


def shown_status(status: str, lease: Lease | None, now: _dt.datetime) -> str:
    """``stale`` for a running session whose lease expired, else ``status``."""
    return "stale" if is_stale(status, lease, now) else status


def utc_text(when: _dt.datetime) -> str:
    """An aware datetime in UTC, to the second: ``2026-01-02T03:04:05Z``."""
    return when.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def lease_text(lease: Lease, now: _dt.datetime) -> str:
    """``held by "h" until T``, or ``of "h" expired at T`` once it has ended."""
    if lease.expired(now):
        return f'of "{lease.holder}" expired at {utc_text(lease.expires_at)}'
    return f'held by "{lease.holder}" until {utc_text(lease.expires_at)}'


def lease_json(lease: Lease | None, now: _dt.datetime) -> dict[str, Any] | None:
    """The ``lease`` member of ``--json`` output (never a token)."""
    if lease is None:
        return None
    return {
        "holder": lease.holder,
        "expires_at": lease.expires_at.astimezone(_dt.timezone.utc)
        .isoformat(timespec="microseconds")
        .replace("+00:00", "Z"),
        "expired": lease.expired(now),
    }
