"""Opening a store from a URL.

=====================  ==================================================
URL                    store
=====================  ==================================================
(none)                 the embedded default: ``FileStore(".dsxir/sessions")``,
                       relative to the current directory
``file:PATH``          ``FileStore(PATH)``; PATH may be relative or absolute
``file:///ABS/PATH``   ``FileStore("/ABS/PATH")`` (the RFC 8089 form; a host
                       other than empty or ``localhost`` is refused)
``memory:``            a new, empty ``MemoryStore``
``memory:NAME``        the ``MemoryStore`` called NAME in this process (the
                       same object on every call with that NAME)
``postgresql://…``     a ``PostgresStore`` (also ``postgres://``; needs the
                       ``[postgres]`` extra)
``grpc://HOST:PORT``   a ``GrpcStore`` talking to ``dsxir-checkpoint serve``
                       (``grpcs://`` for TLS; needs the ``[service]`` extra)
=====================  ==================================================

Anything else (another scheme, a bare path, ``file:`` with no path) is
refused with ``ValueError`` naming the URL. Percent-escapes are decoded in
``file://`` URLs only. The networked stores are imported only when their
URL is used, so the file and memory stores need neither gRPC nor psycopg.
"""

from __future__ import annotations

import threading
import urllib.parse

from dsxir.optimizer_session.store.file import FileStore
from dsxir.optimizer_session.store.interface import Store
from dsxir.optimizer_session.store.memory import MemoryStore

__all__ = ["DEFAULT_STORE_PATH", "close_store", "open_store"]

DEFAULT_STORE_PATH = ".dsxir/sessions"
"""The folder of the default file store, relative to the current directory."""

_named_lock = threading.Lock()
_named: dict[str, MemoryStore] = {}


def open_store(url: str | None = None) -> Store:
    """The store a URL names (see the module text); the default file store for ``None``."""
    if url is None:
        return FileStore(DEFAULT_STORE_PATH)
    if not isinstance(url, str):
        raise TypeError(f"store URL must be a str, not {type(url).__name__}")
    if url.startswith("file://"):
        parsed = urllib.parse.urlsplit(url)
        if parsed.netloc not in ("", "localhost") or not parsed.path or parsed.query:
            raise ValueError(f"unsupported file URL {url!r}: use file:///absolute/path")
        return FileStore(urllib.parse.unquote(parsed.path))
    if url.startswith("file:"):
        path = url[len("file:") :]
        if not path:
            raise ValueError(f"store URL {url!r} has no path: use file:PATH")
        return FileStore(path)
    if url.startswith("memory:"):
        name = url[len("memory:") :]
        if not name:
            return MemoryStore()
        with _named_lock:
            return _named.setdefault(name, MemoryStore())
    if url.startswith(("postgresql://", "postgres://")):
        from dsxir.optimizer_session.postgres import PostgresStore

        return PostgresStore.from_url(url)
    if url.startswith(("grpc://", "grpcs://")):
        from dsxir.optimizer_session.service.client import GrpcStore

        return GrpcStore.from_url(url)
    raise ValueError(
        f"unknown store URL {url!r}: expected file:PATH, memory:, postgresql://… or grpc://…"
    )


def close_store(store: Store) -> None:
    """Release what a store holds (connections, threads) when it has a ``close``."""
    close = getattr(store, "close", None)
    if callable(close):
        close()
