"""PostgresStore.delta_bytes: the sealed bytes of the delta that committed a generation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dsxir.errors import CorruptStore, InvalidSessionId
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session import delta as dl
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.store.postgres import PostgresStore
from dsxir.store.postgres import store as pg_module
from service_fixtures import sql
from store_util import make_cp


@pytest.fixture
def second(pg_url: str) -> Iterator[PostgresStore]:
    """Another client of the same schema."""
    made = PostgresStore.from_url(pg_url)
    yield made
    made.close()


def _next(cp: Checkpoint) -> Checkpoint:
    new = checkpoint.decode(checkpoint.encode(cp))
    checkpoint.record_trial(new, score=0.1 * len(new.progress.trial_log))
    return new


def test_delta_bytes_are_the_deltas_as_written(
    pg_store: PostgresStore, second: PostgresStore
) -> None:
    cp = base = make_cp("s1", trials=2)
    assert pg_store.delta_bytes("s1", 2) is None  # no session
    generation = pg_store.put(cp)
    assert pg_store.delta_bytes("s1", 1) is None  # created by a put
    written: dict[int, bytes] = {}
    for _ in range(3):
        new = _next(cp)
        delta = dl.diff(cp, new, base_generation=generation)
        generation = pg_store.put_delta(delta)
        written[generation] = dl.encode_delta(delta)
        cp = new
    assert sorted(written) == [2, 3, 4]
    for store in (pg_store, second):
        for number, data in written.items():
            assert store.delta_bytes("s1", number) == data
            read = dl.decode_delta(store.delta_bytes("s1", number) or b"")
            assert read.base_generation == number - 1
        replayed = base
        for number in (2, 3, 4):
            replayed = dl.apply(replayed, dl.decode_delta(written[number]))
        assert checkpoint.encode(replayed) == checkpoint.encode(store.get("s1").checkpoint)
        assert store.delta_bytes("s1", 5) is None  # not committed yet
        assert store.delta_bytes("s2", 2) is None  # another session
        for outside in (-1, 0, 1, 1 << 63, 1 << 80):
            assert store.delta_bytes("s1", outside) is None

    # A whole put replaces the snapshot: the rows before it are gone, and its
    # own generation has none.
    checkpoint.pause(cp)
    generation = second.put(cp, expected_generation=generation)
    assert generation == 5
    assert [pg_store.delta_bytes("s1", n) for n in range(2, 6)] == [None] * 4
    checkpoint.resume(cp)
    new = _next(cp)
    delta = dl.diff(cp, new, base_generation=5)
    assert second.put_delta(delta) == 6
    assert pg_store.delta_bytes("s1", 6) == dl.encode_delta(delta)

    pg_store.delete("s1")
    assert pg_store.delta_bytes("s1", 6) is None


def test_a_compaction_leaves_no_delta(
    pg_store: PostgresStore, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg_module, "COMPACT_MIN_BYTES", 400)
    monkeypatch.setattr(pg_module, "COMPACT_SHARE", 10**9)
    cp = make_cp("s1", trials=2)
    generation = pg_store.put(cp)
    compacted = []
    for _ in range(12):
        new = _next(cp)
        delta = dl.diff(cp, new, base_generation=generation)
        generation = pg_store.put_delta(delta)
        cp = new
        rows = sql(
            pg_url,
            f"SELECT count(*) FROM {pg_store.schema}.dsxir_deltas WHERE session_id = 's1'",
        )
        if rows[0][0] == 0:
            compacted.append(generation)
            assert pg_store.delta_bytes("s1", generation) is None
        else:
            assert pg_store.delta_bytes("s1", generation) == dl.encode_delta(delta)
    assert compacted
    assert all(pg_store.delta_bytes("s1", n) is None for n in range(2, compacted[-1] + 1))


def test_a_damaged_row_is_corrupt_store(pg_store: PostgresStore, pg_url: str) -> None:
    cp = make_cp("s1", trials=2)
    pg_store.put(cp)
    new = _next(cp)
    pg_store.put_delta(dl.diff(cp, new, base_generation=1))
    sql(
        pg_url,
        f"UPDATE {pg_store.schema}.dsxir_deltas SET delta = set_byte(delta, 5,"
        " get_byte(delta, 5) # 255) WHERE session_id = 's1' AND generation = 2",
    )
    with pytest.raises(CorruptStore) as info:
        pg_store.delta_bytes("s1", 2)
    assert info.value.path.endswith("dsxir_deltas['s1', 2]") and "CRC32C" in info.value.detail


def test_arguments_are_checked(pg_store: PostgresStore) -> None:
    with pytest.raises(InvalidSessionId):
        pg_store.delta_bytes("", 2)
    for wrong in ("2", 2.0, True):
        with pytest.raises(TypeError):
            pg_store.delta_bytes("s1", wrong)  # type: ignore[arg-type]
