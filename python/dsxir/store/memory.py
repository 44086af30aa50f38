"""An in-process store with the semantics of the file store, for tests and embedding.

It keeps each session's canonical bytes, generation and summary, and each
session's lease, in dicts guarded by one lock, so the CAS rule and the lease
rules of :mod:`.interface` hold across threads. Leases run on the local clock.
It refuses the same session ids and invalid checkpoints as the file store, and
``get`` decodes the stored bytes afresh, so callers never share a message
with the store. Nothing survives the process.
"""

from __future__ import annotations

import builtins
import datetime as _dt
import threading

from dsxir.errors import LeaseHeld, NotFound
from dsxir.optimizer_session import checkpoint, grammar
from dsxir.optimizer_session.history import check_successor
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.store import leases
from dsxir.store.interface import (
    Lease,
    ListFilter,
    Listing,
    OnDamage,
    Stored,
    check_expected_generation,
    check_page,
    listing_of,
    next_generation,
)
from dsxir.store.session_ids import check_session_id

__all__ = ["MemoryStore", "open_url"]


class MemoryStore:
    """Sessions in memory; see :mod:`.interface` for the contract."""

    def __init__(self) -> None:
        """An empty store."""
        self._lock = threading.Lock()
        self._sessions: dict[str, tuple[int, bytes, Listing]] = {}
        self._leases: dict[str, tuple[str, str, int]] = {}  # holder, token, expiry (us)

    def __repr__(self) -> str:
        return f"MemoryStore({len(self._sessions)} sessions)"

    def put(self, cp: Checkpoint, *, expected_generation: int | None = None) -> int:
        """Commit ``cp`` under the CAS rule; return the new generation.

        Raises ``InvalidSessionId``, ``InvalidCheckpoint``, ``Conflict`` or
        ``IllegalHistory`` exactly as the file store does.
        """
        session_id = check_session_id(cp.session_id)
        expected = check_expected_generation(expected_generation)
        body = checkpoint.encode(cp)
        with self._lock:
            held = self._sessions.get(session_id)
            generation = next_generation(session_id, None if held is None else held[0], expected)
            if held is not None:
                # checked when put: the sealed bytes' body parses as it is
                check_successor(Checkpoint.FromString(grammar.trusted_body(held[1])), cp)
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
        on_damage: OnDamage | None = None,
    ) -> builtins.list[Listing]:
        """Summaries of the matching sessions, by session id (nothing here is ever damaged)."""
        return self.list_page(status=status, optimizer=optimizer, updated_since=updated_since)

    def delete(self, session_id: str) -> None:
        """Forget a session and its lease; nothing happens when there is none."""
        check_session_id(session_id)
        with self._lock:
            self._sessions.pop(session_id, None)
            self._leases.pop(session_id, None)

    def acquire_lease(self, session_id: str, holder: str, *, ttl: float) -> Lease:
        """Hold ``session_id`` for ``ttl`` seconds, or ``LeaseHeld`` (see :mod:`.interface`)."""
        check_session_id(session_id)
        holder = leases.check_holder(holder)
        length = leases.ttl_us(leases.check_ttl(ttl))
        with self._lock:
            now = leases.now_us()
            held = self._leases.get(session_id)
            if held is not None and leases.holds(held[2], now):
                raise LeaseHeld(session_id, held[0], leases.datetime_of_us(held[2]))
            token = leases.new_token()
            self._leases[session_id] = (holder, token, now + length)
        return Lease(session_id, holder, token, leases.datetime_of_us(now + length))

    def renew_lease(self, lease: Lease, *, ttl: float) -> Lease:
        """Extend a held lease to now + ``ttl`` seconds, or ``LeaseLost``."""
        lease = leases.check_lease(lease)
        length = leases.ttl_us(leases.check_ttl(ttl))
        with self._lock:
            held = self._leases.get(lease.session_id)
            if held is None or not leases.same_token(held[1], lease.token):
                raise leases.lost(lease, None if held is None else held[0])
            expires = leases.now_us() + length
            self._leases[lease.session_id] = (held[0], held[1], expires)
        return Lease(lease.session_id, held[0], held[1], leases.datetime_of_us(expires))

    def release_lease(self, lease: Lease) -> None:
        """Give a lease up; nothing happens when it is no longer the session's."""
        lease = leases.check_lease(lease)
        with self._lock:
            held = self._leases.get(lease.session_id)
            if held is not None and leases.same_token(held[1], lease.token):
                del self._leases[lease.session_id]

    def get_lease(self, session_id: str) -> Lease | None:
        """The session's lease (expired or not) without its token, or ``None``."""
        check_session_id(session_id)
        with self._lock:
            held = self._leases.get(session_id)
        if held is None:
            return None
        return Lease(session_id, held[0], "", leases.datetime_of_us(held[2]))

    def list_page(
        self,
        *,
        status: str | None = None,
        optimizer: str | None = None,
        updated_since: _dt.datetime | None = None,
        after: str | None = None,
        limit: int | None = None,
        on_damage: OnDamage | None = None,
    ) -> builtins.list[Listing]:
        """Like ``list``, only ids that sort after ``after`` (UTF-8 bytes), at most ``limit``."""
        where = ListFilter.of(status, optimizer, updated_since)
        after, limit = check_page(after, limit)
        with self._lock:
            listings = [
                held[2]
                for session_id, held in self._sessions.items()
                if after is None or session_id > after
            ]
        chosen = where.select(listings)
        return chosen if limit is None else chosen[:limit]


_named_lock = threading.Lock()
_named: dict[str, MemoryStore] = {}


def open_url(url: str) -> MemoryStore:
    """The store of a ``memory:`` URL: a new one, or for ``memory:NAME`` the one of that name.

    A named store is the same object on every call with that name in this
    process.
    """
    name = url[len("memory:") :]
    if not name:
        return MemoryStore()
    with _named_lock:
        return _named.setdefault(name, MemoryStore())
