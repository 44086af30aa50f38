"""Forking a session in a store: the legal way to go on from a session that has ended."""

from __future__ import annotations

from dsxir.optimizer_session.history import fork
from dsxir.store.interface import Store
from dsxir.store.session_ids import check_session_id

__all__ = ["fork_session"]


def fork_session(store: Store, source_id: str, target_id: str) -> int:
    """Create session ``target_id`` from the latest checkpoint of ``source_id``; return 1.

    The new session is :func:`~dsxir.optimizer_session.history.fork` of the
    source: running, with the source's trial log, best trial, counters and
    sampler, created now. The source is left as it is. Raises
    ``InvalidSessionId`` for either id (before anything is read),
    ``NotFound`` when the source does not exist, ``Conflict`` when the
    target does (creating never overwrites), and what the store's ``get``
    and ``put`` raise.
    """
    check_session_id(source_id)
    check_session_id(target_id)
    source = store.get(source_id).checkpoint
    return store.put(fork(source, target_id))
