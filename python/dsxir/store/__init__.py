"""Durable stores of optimizer-session checkpoints: every backend, one interface.

- :class:`Store`: the interface (``put`` with compare-and-swap on a
  generation and a legal-history check, ``get``, ``list`` of summaries,
  ``delete``, and leases); :mod:`.interface` states the exact rules and
  holds those every backend shares (:func:`next_generation`,
  :class:`ListFilter`, :func:`check_session_id`; :mod:`.leases` for leases).
- :func:`fork_session`: a new session from another's latest checkpoint.
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
from dsxir.store.fork import fork_session
from dsxir.store.interface import (
    STATUSES,
    Lease,
    ListFilter,
    Listing,
    OnDamage,
    Store,
    Stored,
    check_expected_generation,
    listing_of,
    next_generation,
)
from dsxir.store.leases import MAX_HOLDER_BYTES, MAX_LEASE_TTL
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
    "MAX_HOLDER_BYTES",
    "MAX_LEASE_TTL",
    "MAX_SESSION_ID_BYTES",
    "STATUSES",
    "SUFFIX",
    "FileStore",
    "FolderModeWarning",
    "Lease",
    "ListFilter",
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
    "fork_session",
    "listing_of",
    "next_generation",
    "open_store",
    "register_scheme",
]
