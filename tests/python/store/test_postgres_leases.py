"""PostgreSQL leases and legal histories: two connections, the database clock, the migration."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

import pytest

from dsxir.errors import IllegalHistory, LeaseHeld, LeaseLost
from dsxir.optimizer_session import checkpoint
from dsxir.store.postgres import LATEST_VERSION, PostgresStore
from service_fixtures import new_schema, shared_cluster, sql
from store_util import make_cp


@pytest.fixture
def two() -> Iterator[tuple[PostgresStore, PostgresStore, str]]:
    """Two stores (two connection pools, as two machines would have) on one schema."""
    url = shared_cluster().url(schema=new_schema())
    a, b = PostgresStore.from_url(url), PostgresStore.from_url(url)
    yield a, b, url
    a.close()
    b.close()


def test_a_lease_taken_on_one_connection_is_held_on_the_other(
    two: tuple[PostgresStore, PostgresStore, str],
) -> None:
    a, b, _ = two
    lease = a.acquire_lease("s1", "machine-a", ttl=30)
    with pytest.raises(LeaseHeld) as info:
        b.acquire_lease("s1", "machine-b", ttl=30)
    assert info.value.holder == "machine-a"
    assert info.value.expires_at == lease.expires_at
    renewed = b.renew_lease(lease, ttl=60)  # the token is what counts, not the connection
    assert renewed.expires_at > lease.expires_at
    b.release_lease(lease)
    assert a.get_lease("s1") is None
    assert b.acquire_lease("s1", "machine-b", ttl=30).holder == "machine-b"


def test_leases_run_on_the_database_clock(two: tuple[PostgresStore, PostgresStore, str]) -> None:
    a, b, url = two
    lease = a.acquire_lease("s1", "machine-a", ttl=3600)
    row = sql(url, "SELECT now()")
    database_now = row[0][0]
    assert isinstance(database_now, dt.datetime)
    offset = lease.expires_at - database_now
    assert dt.timedelta(minutes=59) < offset <= dt.timedelta(hours=1)
    # The lease ends when the database's clock says so, whatever the clients' clocks say.
    sql(url, f"UPDATE {a.schema}.dsxir_leases SET expires_at = now() - interval '1 second'")
    taken = b.acquire_lease("s1", "machine-b", ttl=30)
    with pytest.raises(LeaseLost, match="machine-b"):
        a.renew_lease(lease, ttl=30)
    assert a.get_lease("s1") is not None
    assert taken.holder == "machine-b"


def test_connections_racing_for_an_expired_lease_one_wins(
    two: tuple[PostgresStore, PostgresStore, str],
) -> None:
    a, b, url = two
    a.acquire_lease("s1", "old", ttl=30)
    sql(url, f"UPDATE {a.schema}.dsxir_leases SET expires_at = now() - interval '1 second'")
    barrier = threading.Barrier(8)
    winners: list[str] = []
    refused: list[str] = []

    def race(i: int) -> None:
        store = (a, b)[i % 2]
        barrier.wait(30)
        try:
            winners.append(store.acquire_lease("s1", f"w{i}", ttl=30).holder)
        except LeaseHeld as exc:
            refused.append(exc.holder)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(winners) == 1 and len(refused) == 7
    assert set(refused) == set(winners)


def test_an_update_checks_the_history_under_the_row_lock(
    two: tuple[PostgresStore, PostgresStore, str],
) -> None:
    a, b, _ = two
    cp = make_cp(trials=2)
    a.put(cp)
    checkpoint.complete(cp)
    assert b.put(cp, expected_generation=1) == 2
    with pytest.raises(IllegalHistory, match=r"history\.terminal"):
        a.put(cp, expected_generation=2)
    assert a.get("s1").generation == 2


def test_a_version_1_schema_gains_the_leases_table(
    two: tuple[PostgresStore, PostgresStore, str],
) -> None:
    a, _, url = two
    a.put(make_cp())
    # Back to the schema of version 1: no leases table, no delta rows (version 3).
    sql(url, f"DROP TABLE {a.schema}.dsxir_leases, {a.schema}.dsxir_deltas")
    sql(
        url,
        f"ALTER TABLE {a.schema}.dsxir_checkpoints DROP COLUMN delta_count,"
        " DROP COLUMN delta_bytes",
    )
    sql(url, f"DELETE FROM {a.schema}.dsxir_schema_migrations WHERE version >= 2")
    upgraded = PostgresStore.from_url(url)
    try:
        assert upgraded.acquire_lease("s1", "h", ttl=30).holder == "h"
        versions = sql(url, f"SELECT version FROM {a.schema}.dsxir_schema_migrations ORDER BY 1")
        assert [row[0] for row in versions] == list(range(1, LATEST_VERSION + 1))
        assert LATEST_VERSION == 3
        assert upgraded.get("s1").generation == 1
    finally:
        upgraded.close()
