"""Fixtures shared by the Python suite.

``store`` runs a test against every store backend listed in
:data:`STORE_BACKENDS`: the built-in ones, the service's client over three of
them, and the toy backend of CONTRIBUTING.md's recipe. A new backend joins
the whole contract suite (tests/python/store/test_store_contract.py) by
adding one line here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dsxir.store import FileStore, MemoryStore, Store, close_store

_Backend = Callable[[Path, list[Any]], Store]


def _postgres(tmp_path: Path, cleanups: list[Any]) -> Store:
    from service_fixtures import backend

    return backend("postgres", tmp_path)


def _served(kind: str) -> _Backend:
    """A client of an in-process server over a new store of ``kind``."""

    def make(tmp_path: Path, cleanups: list[Any]) -> Store:
        from dsxir.store.grpc import GrpcStore
        from service_fixtures import backend, serve_in_thread

        server = serve_in_thread(backend(kind, tmp_path))
        cleanups.append(lambda: server.stop(1))
        return GrpcStore(server.address, timeout=30)

    return make


def _toy(tmp_path: Path, cleanups: list[Any]) -> Store:
    import toy_store

    return toy_store.open_url(f"toy-sqlite:{tmp_path / 'toy.sqlite'}")


STORE_BACKENDS: dict[str, _Backend] = {
    "file": lambda tmp_path, _: FileStore(tmp_path / "store"),
    "memory": lambda tmp_path, _: MemoryStore(),
    "postgres": _postgres,
    "grpc-memory": _served("memory"),
    "grpc-file": _served("file"),
    "grpc-postgres": _served("postgres"),
    "toy-sqlite": _toy,
}
"""Every backend the contract suite runs on, by fixture id."""


@pytest.fixture(params=list(STORE_BACKENDS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A new, empty store of each backend."""
    cleanups: list[Any] = []
    made = STORE_BACKENDS[request.param](tmp_path, cleanups)
    yield made
    close_store(made)
    for cleanup in cleanups:
        cleanup()


@pytest.fixture
def pg_url() -> str:
    """A ``postgresql://`` URL of a fresh schema of the test run's PostgreSQL cluster."""
    from service_fixtures import pg_url_of_new_schema

    return pg_url_of_new_schema()


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[Store]:
    """A PostgreSQL store in a fresh schema."""
    from dsxir.store.postgres import PostgresStore

    made = PostgresStore.from_url(pg_url)
    yield made
    made.close()


@pytest.fixture
def pg_other(pg_url: str) -> Iterator[Store]:
    """Another client of ``pg_store``'s schema (it remembers nothing the first committed)."""
    from dsxir.store.postgres import PostgresStore

    made = PostgresStore.from_url(pg_url)
    yield made
    made.close()


@pytest.fixture
def grpc_over_memory(tmp_path: Path) -> Iterator[Store]:
    """A client of an in-process server over a memory store."""
    cleanups: list[Any] = []
    client = _served("memory")(tmp_path, cleanups)
    yield client
    close_store(client)
    for cleanup in cleanups:
        cleanup()
