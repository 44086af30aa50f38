"""Commit events: how a store tells others about commits, whoever made them.

A :class:`CommitEvent` says that a session was committed (with its new
listing) or deleted. A store that sees every commit, including those made by
other processes, implements :class:`CommitFeed` (the PostgreSQL store does,
with LISTEN/NOTIFY); the service then takes watch events from the store.
Such events carry no state: a watcher that needs the checkpoint reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from dsxir.store.interface import Listing

__all__ = ["CommitEvent", "CommitFeed"]


@dataclass(frozen=True)
class CommitEvent:
    """A commit (``listing`` set) or a delete (``listing`` None) of ``session_id``.

    A commit may also carry the state it made, as sealed bytes: ``delta``,
    the bytes of the delta it committed (FORMAT.md §13, base generation
    ``listing.generation - 1``), or ``checkpoint``, the bytes of the whole
    checkpoint committed (FORMAT.md §2). At most one of the two is set.
    """

    session_id: str
    listing: Listing | None
    delta: bytes | None = None
    checkpoint: bytes | None = None

    @property
    def state_size(self) -> int:
        """The bytes of state the event holds."""
        return len(self.delta or b"") + len(self.checkpoint or b"")

    def without_state(self) -> CommitEvent:
        """The event without its state (itself when it holds none)."""
        if self.delta is None and self.checkpoint is None:
            return self
        return CommitEvent(self.session_id, self.listing)


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
