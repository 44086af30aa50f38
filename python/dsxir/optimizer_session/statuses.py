"""Session status names: the words stores, listings and the command line use.

Each ``SessionStatus`` value of the schema has one name (``"running"``,
``"paused"``, ``"completed"``, ``"failed"``, ``"cancelled"``); this module is
the only place that pairs them.
"""

from __future__ import annotations

from dsxir.optimizer_session.v1.checkpoint_pb2 import (
    SESSION_STATUS_CANCELLED,
    SESSION_STATUS_COMPLETED,
    SESSION_STATUS_FAILED,
    SESSION_STATUS_PAUSED,
    SESSION_STATUS_RUNNING,
)

__all__ = ["STATUSES", "STATUS_NAMES", "STATUS_NUMBERS", "TERMINAL"]

STATUS_NUMBERS: dict[str, int] = {
    "running": SESSION_STATUS_RUNNING,
    "paused": SESSION_STATUS_PAUSED,
    "completed": SESSION_STATUS_COMPLETED,
    "failed": SESSION_STATUS_FAILED,
    "cancelled": SESSION_STATUS_CANCELLED,
}
"""``SessionStatus`` numbers by name."""

STATUS_NAMES: dict[int, str] = {number: name for name, number in STATUS_NUMBERS.items()}
"""Status names by ``SessionStatus`` number (``SESSION_STATUS_UNSPECIFIED`` has none)."""

STATUSES: tuple[str, ...] = tuple(STATUS_NUMBERS)
"""Every status name, in the schema's order."""

TERMINAL: frozenset[int] = frozenset(
    {SESSION_STATUS_COMPLETED, SESSION_STATUS_FAILED, SESSION_STATUS_CANCELLED}
)
"""The statuses a session never leaves."""
