"""An in-process store with the semantics of the file store, for tests and embedding.

It keeps each session's canonical bytes, generation and summary in a dict
guarded by a lock, so the CAS rule of :mod:`.interface` holds across threads.
It refuses the same session ids and invalid checkpoints as the file store, and
``get`` decodes the stored bytes afresh, so callers never share a message
with the store. Nothing survives the process.
"""

from __future__ import annotations

import datetime as _dt
import threading

from dsxir.errors import Conflict, NotFound
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session.store.interface import (
    Listing,
    Stored,
    check_expected_generation,
    check_list_filters,
    listing_of,
    select,
)
from dsxir.optimizer_session.store.session_ids import check_session_id
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint

__all__ = ["MemoryStore"]


class MemoryStore:
    """Sessions in memory; see :mod:`.interface` for the contract."""

    def __init__(self) -> None:
        """An empty store."""
        self._lock = threading.Lock()
        self._sessions: dict[str, tuple[int, bytes, Listing]] = {}

    def __repr__(self) -> str:
        return f"MemoryStore({len(self._sessions)} sessions)"

    def put(self, cp: Checkpoint, *, expected_generation: int | None = None) -> int:
        """Commit ``cp`` under the CAS rule; return the new generation.

        Raises ``InvalidSessionId``, ``InvalidCheckpoint`` or ``Conflict``
        exactly as the file store does.
        """
        session_id = check_session_id(cp.session_id)
        expected = check_expected_generation(expected_generation)
        body = checkpoint.encode(cp)
        with self._lock:
            held = self._sessions.get(session_id)
            current = None if held is None else held[0]
            if expected is None:
                if current is not None:
                    raise Conflict(session_id, None, current)
                generation = 1
            elif current != expected:
                raise Conflict(session_id, expected, current)
            else:
                generation = expected + 1
            self._sessions[session_id] = (generation, body, listing_of(cp, generation))
        return generation

    def get(self, session_id: str) -> Stored:
        """The latest committed checkpoint, decoded afresh; ``NotFound`` when there is none."""
        check_session_id(session_id)
        with self._lock:
            held = self._sessions.get(session_id)
        if held is None:
            raise NotFound(session_id)
        generation, body, _ = held
        return Stored(checkpoint.decode(body), generation)

    def list(
        self,
        *,
        status: str | None = None,
        optimizer: str | None = None,
        updated_since: _dt.datetime | None = None,
    ) -> list[Listing]:
        """Summaries of the matching sessions, by session id."""
        check_list_filters(status, optimizer, updated_since)
        with self._lock:
            listings = [held[2] for held in self._sessions.values()]
        return select(listings, status=status, optimizer=optimizer, updated_since=updated_since)

    def delete(self, session_id: str) -> None:
        """Forget a session; nothing happens when there is none."""
        check_session_id(session_id)
        with self._lock:
            self._sessions.pop(session_id, None)
