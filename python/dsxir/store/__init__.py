"""Durable stores of optimizer-session checkpoints.

- :class:`Store`: the interface (``put`` with compare-and-swap on a
  generation, ``get``, ``list`` of summaries, ``delete``); :mod:`.interface`
  states the exact CAS rule.
- :class:`FileStore`: one framed, checksummed file per session, committed
  with temp file + ``fsync`` + rename + folder ``fsync`` under a per-session
  ``fcntl`` lock (:mod:`.file`, :mod:`.framing`).
- :class:`MemoryStore`: the same semantics in memory.
- :func:`open_store`: ``file:PATH``, ``memory:``, ``postgresql://…``,
  ``grpc://HOST:PORT``, or the default file store in ``.dsxir/sessions``;
  :func:`close_store` releases a networked store's connections.
- :func:`check_session_id`: the session ids every store refuses.
"""

from __future__ import annotations

from dsxir.optimizer_session.store.file import SUFFIX, FileStore
from dsxir.optimizer_session.store.interface import STATUSES, Listing, Store, Stored
from dsxir.optimizer_session.store.memory import MemoryStore
from dsxir.optimizer_session.store.session_ids import MAX_SESSION_ID_BYTES, check_session_id
from dsxir.optimizer_session.store.urls import DEFAULT_STORE_PATH, close_store, open_store

__all__ = [
    "DEFAULT_STORE_PATH",
    "MAX_SESSION_ID_BYTES",
    "STATUSES",
    "SUFFIX",
    "FileStore",
    "Listing",
    "MemoryStore",
    "Store",
    "Stored",
    "check_session_id",
    "close_store",
    "open_store",
]
