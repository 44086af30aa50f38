"""Opening a store from a URL: one scheme, one backend.

The scheme of a URL (the text before its first ``:``) names the backend that
opens it. Built in:

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

Other backends join in one of two ways, each giving an *opener*: a function
that takes the whole URL and returns a :class:`~dsxir.store.interface.Store`
(or raises ``ValueError`` for a URL it cannot use):

- a package declares an entry point in the group :data:`ENTRY_POINT_GROUP`
  whose name is the scheme and whose object is the opener
  (``[project.entry-points."dsxir_checkpoint.stores"] sqlite =
  "my_pkg.store:open_url"``); it is loaded the first time its scheme is used;
- a program calls :func:`register_scheme`.

A built-in scheme cannot be taken over. A backend's module is imported only
when its scheme is used, so the file and memory stores need neither gRPC
nor psycopg; a scheme whose backend needs a missing extra raises
:class:`MissingExtra` naming the pip command. Anything else (an unknown
scheme, a bare path) is refused with ``ValueError`` naming the URL.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass

from dsxir.store.interface import Store

__all__ = [
    "DEFAULT_STORE_PATH",
    "ENTRY_POINT_GROUP",
    "MissingExtra",
    "Opener",
    "close_store",
    "open_store",
    "register_scheme",
    "schemes",
]

DEFAULT_STORE_PATH = ".dsxir/sessions"
"""The folder of the default file store, relative to the current directory."""

ENTRY_POINT_GROUP = "dsxir_checkpoint.stores"
"""The entry-point group through which installed packages add store backends."""

Opener = Callable[[str], Store]
"""A backend's opener: the whole URL in, a store out (``ValueError`` for a bad URL)."""


class MissingExtra(ImportError):
    """A scheme's backend needs packages that are not installed (a pip extra)."""

    def __init__(self, scheme: str, extra: str, missing: str) -> None:
        super().__init__(
            f"{scheme}: stores need the [{extra}] extra ({missing} is not installed): "
            f"pip install 'dsxir-checkpoint[{extra}]'"
        )
        self.scheme = scheme
        self.extra = extra


@dataclass(frozen=True)
class _Builtin:
    module: str
    extra: str | None


_BUILTIN: dict[str, _Builtin] = {
    "file": _Builtin("dsxir.store.file", None),
    "memory": _Builtin("dsxir.store.memory", None),
    "postgresql": _Builtin("dsxir.store.postgres", "postgres"),
    "postgres": _Builtin("dsxir.store.postgres", "postgres"),
    "grpc": _Builtin("dsxir.store.grpc", "service"),
    "grpcs": _Builtin("dsxir.store.grpc", "service"),
}
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
_lock = threading.Lock()
_registered: dict[str, Opener] = {}


def register_scheme(scheme: str, opener: Opener) -> None:
    """Open URLs of ``scheme`` with ``opener`` from now on, in this process.

    ``scheme`` is lower case (RFC 3986 characters); a built-in scheme is
    refused with ``ValueError``; registering a scheme again replaces its opener.
    """
    if not isinstance(scheme, str) or not _SCHEME.fullmatch(scheme):
        raise ValueError(f"invalid scheme {scheme!r}: lower-case letters, digits, + . -")
    if scheme in _BUILTIN:
        raise ValueError(f"scheme {scheme!r} is built in and cannot be replaced")
    if not callable(opener):
        raise TypeError("opener must be callable")
    with _lock:
        _registered[scheme] = opener


def schemes() -> list[str]:
    """Every scheme :func:`open_store` knows now: built in, registered, from entry points."""
    found = set(_BUILTIN) | set(_registered)
    found.update(entry.name for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    return sorted(found)


def open_store(url: str | None = None) -> Store:
    """The store a URL names (see the module text); the default file store for ``None``."""
    if url is None:
        from dsxir.store.file import FileStore

        return FileStore(DEFAULT_STORE_PATH)
    if not isinstance(url, str):
        raise TypeError(f"store URL must be a str, not {type(url).__name__}")
    scheme, colon, _ = url.partition(":")
    scheme = scheme.lower()
    if not colon or not _SCHEME.fullmatch(scheme):
        raise ValueError(f"store URL {url!r} has no scheme: expected file:PATH, memory:, …")
    return _opener(scheme, url)(url)


def _opener(scheme: str, url: str) -> Opener:
    builtin = _BUILTIN.get(scheme)
    if builtin is not None:
        try:
            module = importlib.import_module(builtin.module)
        except ModuleNotFoundError as exc:
            if builtin.extra is None or (exc.name or "").startswith("dsxir"):
                raise
            raise MissingExtra(scheme, builtin.extra, exc.name or "a dependency") from None
        opener: Opener = module.open_url
        return opener
    with _lock:
        registered = _registered.get(scheme)
    if registered is not None:
        return registered
    for entry in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP, name=scheme):
        loaded: Opener = entry.load()
        return loaded
    known = ", ".join(f"{name}:" for name in schemes())
    raise ValueError(f"unknown store URL {url!r}: no backend for scheme {scheme!r} ({known})")


def close_store(store: Store) -> None:
    """Release what a store holds (connections, threads) when it has a ``close``."""
    close = getattr(store, "close", None)
    if callable(close):
        close()
