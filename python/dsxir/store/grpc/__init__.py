"""The store on a remote ``CheckpointStoreService`` (``grpc://``, ``grpcs://``).

- :class:`GrpcStore` (:mod:`.client`): the store interface over the service;
  :class:`WatchStream` and :class:`WatchEvent` for ``WatchSession``;
- :mod:`.errors`: the exceptions of failures with no store meaning;
- :mod:`.protocol`, :mod:`.convert`, :mod:`.tokens`, :mod:`.leases`: what
  client and server share (names, page sizes, error reasons, summaries,
  bearer tokens, the checks and messages of leases).

Needs the ``[service]`` extra (gRPC).
"""

from __future__ import annotations

from dsxir.store.grpc.client import GrpcStore, WatchEvent, WatchStream, open_url
from dsxir.store.grpc.errors import (
    InvalidRequest,
    ResourceExhausted,
    ServiceError,
    Unauthenticated,
    Unavailable,
)

__all__ = [
    "GrpcStore",
    "InvalidRequest",
    "ResourceExhausted",
    "ServiceError",
    "Unauthenticated",
    "Unavailable",
    "WatchEvent",
    "WatchStream",
    "open_url",
]
