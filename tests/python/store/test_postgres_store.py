"""The PostgreSQL store: migrations, damaged rows, wide counters, unreachable databases."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import psycopg
import pytest

from dsxir.errors import CorruptStore, InvalidCheckpoint, StoreUnavailable
from dsxir.optimizer_session import checkpoint
from dsxir.store import MemoryStore
from dsxir.store.framing import crc32c
from dsxir.store.postgres import LATEST_VERSION, PostgresStore, SchemaTooNew
from dsxir.store.postgres.listener import parse_payload
from dsxir.store.summary import encode_summary
from pg_cluster import LocalCluster
from service_fixtures import new_schema, shared_cluster, sql
from store_util import make_cp


def test_the_schema_is_created_once_and_versioned() -> None:
    schema = new_schema()
    url = shared_cluster().url(schema=schema)
    stores = [PostgresStore.from_url(url) for _ in range(4)]
    errors: list[BaseException] = []

    def first_use(store: PostgresStore) -> None:
        try:
            store.list()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first_use, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    rows = sql(url, f"SELECT version, name FROM {schema}.dsxir_schema_migrations ORDER BY 1")
    assert [row[0] for row in rows] == list(range(1, LATEST_VERSION + 1))
    stores[0].put(make_cp())
    assert stores[3].get("s1").generation == 1
    for store in stores:
        store.close()


def test_a_newer_schema_is_refused() -> None:
    schema = new_schema()
    url = shared_cluster().url(schema=schema)
    PostgresStore.from_url(url).list()
    sql(url, f"INSERT INTO {schema}.dsxir_schema_migrations (version, name) VALUES (99, 'x')")
    store = PostgresStore.from_url(url)
    with pytest.raises(SchemaTooNew, match="version 99"):
        store.list()
    store.close()


def test_damaged_rows_are_reported_never_decoded(
    pg_store: PostgresStore,
    pg_url: str,
) -> None:
    pg_store.put(make_cp("flip", trials=4))
    pg_store.put(make_cp("valid-crc", trials=1))
    table = f"{pg_store.schema}.dsxir_checkpoints"
    # A flipped byte inside the trial log: the CRC32C no longer matches.
    sql(
        pg_url,
        f"UPDATE {table} SET body = set_byte(body, length(body) - 3,"
        f" get_byte(body, length(body) - 3) # 255) WHERE session_id = 'flip'",
    )
    with pytest.raises(CorruptStore) as flipped:
        pg_store.get("flip")
    assert "flip" in flipped.value.path and "CRC32C" in flipped.value.detail
    # Bytes that are not a valid checkpoint, with a matching CRC.
    garbage = b"\x0a\x03abc"
    sql(
        pg_url,
        f"UPDATE {table} SET body = '\\x{garbage.hex()}'::bytea, crc32c = {crc32c(garbage)}"
        " WHERE session_id = 'valid-crc'",
    )
    with pytest.raises(CorruptStore, match="invalid"):
        pg_store.get("valid-crc")
    # Listing reads the summary columns only: it still works.
    assert [(i.session_id, i.trials) for i in pg_store.list()] == [("flip", 4), ("valid-crc", 1)]


def test_wide_counters_and_score_bits_survive(pg_store: PostgresStore) -> None:
    cp = make_cp("wide")
    checkpoint.record_trial(cp, score=-0.0)
    cp.progress.attempts = 2**64 - 1
    pg_store.put(cp)
    (listed,) = pg_store.list()
    assert listed.attempts == 2**64 - 1 and listed.best_score == 0.0
    assert str(listed.best_score) == "-0.0"
    assert checkpoint.encode(pg_store.get("wide").checkpoint) == checkpoint.encode(cp)


def test_an_unreachable_database_is_store_unavailable() -> None:
    cluster = shared_cluster()
    closed_port = cluster.port + 1 if cluster.port < 65535 else cluster.port - 1
    store = PostgresStore.from_url(
        f"postgresql://dsxir@127.0.0.1:{closed_port}/postgres?pool_timeout=1&connect_timeout=1"
    )
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        store.put(make_cp())
    with pytest.raises(StoreUnavailable):
        store.get("s1")
    assert time.monotonic() - started < 20
    assert isinstance(StoreUnavailable("x"), ConnectionError)
    store.close()


def test_notification_payloads() -> None:
    cp = make_cp("n1", trials=2)
    event = parse_payload(f"c 7 {encode_summary(cp).decode()}", lambda _: None)
    assert event is not None and event.session_id == "n1"
    assert event.listing is not None and (event.listing.generation, event.listing.trials) == (7, 2)
    deleted = parse_payload("d n1", lambda _: None)
    assert deleted is not None and (deleted.session_id, deleted.listing) == ("n1", None)
    looked_up: list[str] = []

    def lookup(session_id: str) -> None:
        looked_up.append(session_id)

    assert parse_payload("C 3 n1", lookup) is None and looked_up == ["n1"]
    for junk in ("", "x", "c", "c x {}", "c 1 not-json", "q 1 a"):
        assert parse_payload(junk, lambda _: None) is None


def test_clusters_of_dead_processes_are_reaped() -> None:
    orphan = LocalCluster()
    orphan.start()
    dead = subprocess.Popen(["true"])  # a process id that no longer runs
    dead.wait()
    Path(orphan.folder, "owner.pid").write_text(str(dead.pid))
    mine = shared_cluster()  # a cluster of a living process: never touched
    assert LocalCluster.reap_orphans(orphan.bin_dir) >= 1
    assert not os.path.exists(orphan.folder)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(orphan.url().replace("?", ""), connect_timeout=2)
    assert os.path.exists(mine.folder)
    assert sql(mine.url(), "SELECT 1") == [(1,)]


def test_a_nul_that_text_cannot_hold_is_refused_clearly(pg_store: PostgresStore) -> None:
    # PostgreSQL text holds no NUL: refused before any statement, never a raw DataError.
    with pytest.raises(InvalidCheckpoint) as refused:
        pg_store.put(make_cp("n1", optimizer="demo\x00Opt"))
    assert refused.value.path == "optimizer" and "NUL" in refused.value.detail
    assert pg_store.list() == []
    pg_store.put(make_cp("n1"))
    with pytest.raises(InvalidCheckpoint, match="optimizer"):
        pg_store.put(make_cp("n1", optimizer="\x00"), expected_generation=1)
    assert pg_store.get("n1").generation == 1
    for call in (
        lambda: pg_store.list(optimizer="test\x00Opt"),
        lambda: pg_store.list_page(optimizer="\x00", limit=5),
    ):
        with pytest.raises(ValueError, match="optimizer filter") as info:
            call()
        assert not isinstance(info.value, psycopg.Error)
    with pytest.raises(ValueError, match="optimizer filter"):
        pg_store.list(optimizer="lone\ud800")
    with pytest.raises(ValueError, match="after"):
        pg_store.list_page(after="lone\ud800")


def test_a_page_after_an_id_holding_nul_is_exact(pg_store: PostgresStore) -> None:
    for session_id in ("a", "ab", "ab c", "b"):
        pg_store.put(make_cp(session_id))
    # No id holds NUL, so "after 'ab\0z'" is "after 'ab'" (memory agrees, by bytes).
    assert [i.session_id for i in pg_store.list_page(after="ab\x00z")] == ["ab c", "b"]
    assert [i.session_id for i in pg_store.list_page(after="\x00")] == ["a", "ab", "ab c", "b"]
    memory = MemoryStore()
    for session_id in ("a", "ab", "ab c", "b"):
        memory.put(make_cp(session_id))
    assert [i.session_id for i in memory.list_page(after="ab\x00z")] == ["ab c", "b"]
    with pytest.raises(ValueError, match="limit"):
        pg_store.list_page(limit=-1)
    with pytest.raises(TypeError, match="limit"):
        pg_store.list_page(limit="5")  # type: ignore[arg-type]
    assert pg_store.list_page(limit=0) == []
