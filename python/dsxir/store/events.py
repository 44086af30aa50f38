"""Commit events: how a store tells others about commits, whoever made them.

A :class:`CommitEvent` says that a session was committed (with its new
listing) or deleted. A store that sees every commit, including those made by
other processes, implements :class:`CommitFeed` (the PostgreSQL store does,
with LISTEN/NOTIFY); the service then takes watch events from the store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from dsxir.store.interface import Listing

__all__ = ["CommitEvent", "CommitFeed"]


@dataclass(frozen=True)
class CommitEvent:
    """A commit (``listing`` set) or a delete (``listing`` None) of ``session_id``."""

    session_id: str
    listing: Listing | None


@runtime_checkable
class CommitFeed(Protocol):
    """A store that reports every commit and delete of its sessions, whoever made them."""

    def subscribe_commits(
        self,
        on_event: Callable[[CommitEvent], None],
        on_gap: Callable[[str], None],
    ) -> Callable[[], None]:
        """Call ``on_event`` for each commit, in commit order; return an unsubscribe function.

        ``on_gap(reason)`` is called when events may have been missed (the
        feed lost its connection), before delivery resumes.
        """
        ...
