"""The server's defaults, importable without gRPC (the command line reads them)."""

from __future__ import annotations

__all__ = ["DEFAULT_LISTEN", "DEFAULT_MAX_MESSAGE_BYTES", "MAX_MESSAGE_LIMIT"]

DEFAULT_LISTEN = "127.0.0.1:50051"
"""Loopback only: other hosts reach the server only when asked for."""
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""The default limit on a request or response; over it, RESOURCE_EXHAUSTED."""
MAX_MESSAGE_LIMIT = 256 * 1024 * 1024 + 64 * 1024
"""The highest limit accepted: the largest checkpoint (256 MiB) plus room for the envelope."""
