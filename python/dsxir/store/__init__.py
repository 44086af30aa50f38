"""Durable stores of optimizer-session checkpoints: every backend, one interface.

- :class:`Store`: the interface (``put`` with compare-and-swap on a
  generation, ``get``, ``list`` of summaries, ``delete``); :mod:`.interface`
  states the exact CAS rule and holds the rules every backend shares
  (:func:`next_generation`, :class:`ListFilter`, :func:`check_session_id`).
- Backends, side by side: :mod:`.file` (:class:`FileStore`, one framed,
  checksummed file per session, see :mod:`.framing`), :mod:`.memory`
  (:class:`MemoryStore`), :mod:`.postgres` (``PostgresStore``, extra
  ``[postgres]``) and :mod:`.grpc` (``GrpcStore``, a client of
  ``dsxir-checkpoint serve``, extra ``[service]``). The networked ones are
  imported only when used.
- :func:`open_store`: a store from a URL through the scheme registry
  (:mod:`.registry`), which other packages join with an entry point or
  :func:`register_scheme`; :func:`close_store` releases a networked store.
"""

from __future__ import annotations

from dsxir.store.file import SUFFIX, FileStore, FolderModeWarning, LockTimeout
from dsxir.store.interface import (
    STATUSES,
    ListFilter,
    Lease,
    Listing,
    OnDamage,
    Store,
    Stored,
    check_expected_generation,
    listing_of,
    next_generation,
)
from dsxir.store.memory import MemoryStore
from dsxir.store.registry import (
    DEFAULT_STORE_PATH,
    ENTRY_POINT_GROUP,
    MissingExtra,
    close_store,
    open_store,
    register_scheme,
)
from dsxir.store.session_ids import MAX_SESSION_ID_BYTES, check_session_id

__all__ = [
    "DEFAULT_STORE_PATH",
    "ENTRY_POINT_GROUP",
    "MAX_SESSION_ID_BYTES",
    "STATUSES",
    "SUFFIX",
    "FileStore",
    "FolderModeWarning",
    "ListFilter",
    "Lease",
    "Listing",
    "LockTimeout",
    "MemoryStore",
    "MissingExtra",
    "OnDamage",
    "Store",
    "Stored",
    "check_expected_generation",
    "check_session_id",
    "close_store",
    "listing_of",
    "next_generation",
    "open_store",
    "register_scheme",
]
