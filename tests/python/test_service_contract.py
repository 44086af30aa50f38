"""The store contract suite (tests/python/test_store_contract.py) on the networked stores.

Every contract test that takes the ``store`` fixture runs here again against
PostgreSQL directly and against the gRPC client over a memory, a file and a
PostgreSQL backend: the same CAS rule, errors, listings and filters.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_store_contract

from dsxir.optimizer_session.postgres import PostgresStore
from dsxir.optimizer_session.service import GrpcStore
from dsxir.optimizer_session.store import Store, close_store
from service_fixtures import backend, serve_in_thread

_CONTRACT = {
    name: function
    for name, function in vars(test_store_contract).items()
    if name.startswith("test_")
    and callable(function)
    and "store" in inspect.signature(function).parameters
}
globals().update(_CONTRACT)


@pytest.fixture(params=["postgres", "grpc-memory", "grpc-file", "grpc-postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    kind: str = request.param
    if kind == "postgres":
        direct = backend("postgres", tmp_path)
        yield direct
        close_store(direct)
        return
    server = serve_in_thread(backend(kind.removeprefix("grpc-"), tmp_path))
    client = GrpcStore(server.address, timeout=30)
    yield client
    client.close()
    server.stop(1)


def test_the_suite_is_here() -> None:
    # The contract has its CAS, listing and filter tests; none was lost on import.
    assert len(_CONTRACT) >= 15
    assert "test_threads_racing_on_one_generation_commit_once" in _CONTRACT


def test_networked_stores_implement_the_protocol(tmp_path: Path) -> None:
    direct = backend("postgres", tmp_path)
    assert isinstance(direct, PostgresStore) and isinstance(direct, Store)
    server = serve_in_thread(direct)
    client = GrpcStore(server.address)
    assert isinstance(client, Store)
    client.close()
    server.stop(1)
