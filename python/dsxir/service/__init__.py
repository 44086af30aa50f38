"""The checkpoint store as a gRPC service: ``CheckpointStoreService``.

- :mod:`.server`: :class:`CheckpointServer` and :func:`serve` (health
  checking, reflection, bearer-token auth, TLS, graceful shutdown);
- :mod:`.servicer`: the handlers, over any store;
- :mod:`.client`: :class:`GrpcStore`, a store with the file store's
  semantics on a remote server (``grpc://HOST:PORT``);
- :mod:`.errors`: status codes to and from store exceptions;
- :mod:`.watch`: commit events for ``WatchSession``;
- :mod:`.cli`: the ``serve`` command; :mod:`.defaults`: its defaults.

docs/service.md describes running and using the service.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dsxir.optimizer_session.service.client import GrpcStore, WatchEvent, WatchStream
    from dsxir.optimizer_session.service.errors import (
        InvalidRequest,
        ResourceExhausted,
        ServiceError,
        StoreUnavailable,
        Unauthenticated,
        Unavailable,
    )
    from dsxir.optimizer_session.service.server import (
        CheckpointServer,
        ServerConfig,
        TlsFiles,
        serve,
    )

__all__ = [
    "CheckpointServer",
    "GrpcStore",
    "InvalidRequest",
    "ResourceExhausted",
    "ServerConfig",
    "ServiceError",
    "StoreUnavailable",
    "TlsFiles",
    "Unauthenticated",
    "Unavailable",
    "WatchEvent",
    "WatchStream",
    "serve",
]

_HOMES = {
    "GrpcStore": "client",
    "WatchEvent": "client",
    "WatchStream": "client",
    "InvalidRequest": "errors",
    "ResourceExhausted": "errors",
    "ServiceError": "errors",
    "StoreUnavailable": "errors",
    "Unauthenticated": "errors",
    "Unavailable": "errors",
    "CheckpointServer": "server",
    "ServerConfig": "server",
    "TlsFiles": "server",
    "serve": "server",
}


def __getattr__(name: str) -> Any:
    """Load the exported names on first use, so ``.cli`` and ``.defaults`` need no gRPC."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
