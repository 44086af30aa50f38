"""The checkpoint store as a gRPC service: ``CheckpointStoreService`` over any store.

- :mod:`.server`: :class:`CheckpointServer` and :func:`serve` (health
  checking, reflection, bearer-token auth, TLS, graceful shutdown);
- :mod:`.servicer`: the handlers, over any :class:`~dsxir.store.Store`;
- :mod:`.failures`: store errors as gRPC statuses;
- :mod:`.auth`: the bearer-token interceptor;
- :mod:`.limits`: calls at once, the memory budget of requests, watch slots;
- :mod:`.watch`: commit events fanned out to ``WatchSession`` streams;
- :mod:`.defaults`: the defaults and limits of ``dsxir-checkpoint serve``.

The client is a store like the others: :class:`dsxir.store.grpc.GrpcStore`.
docs/service.md describes running and using the service, docs/security.md
its limits.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dsxir.service.server import CheckpointServer, ServerConfig, TlsFiles, serve

__all__ = ["CheckpointServer", "ServerConfig", "TlsFiles", "serve"]


def __getattr__(name: str) -> Any:
    """Load the server on first use, so ``.defaults`` (read by the CLI) needs no gRPC."""
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.server"), name)
    globals()[name] = value
    return value
