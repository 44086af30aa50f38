"""Kill-9 durability: a writer committing in a loop is killed at random moments.

After every kill, a read returns a complete checkpoint of a committed
generation: never a torn one, never one older than the last acknowledged
commit, and at most the one commit that was in flight. The writer commits
whole checkpoints (``put``), deltas (``put_delta``, records appended to the
file, docs/store-file.md §9), or deltas with a compaction every second
commit, so that kills land while a record is appended and while a snapshot
replaces the file. The normal suite runs 120 rounds of each; ``make soak``
sets ``DSXIR_KILL9_ROUNDS=1000``.
"""

from __future__ import annotations

import os
import random
import select
import signal
import struct
import time
from pathlib import Path

import pytest

from dsxir.errors import NotFound
from dsxir.optimizer_session import delta as dl
from dsxir.store import FileStore, file
from store_util import check_generation_cp, generation_cp

ROUNDS = int(os.environ.get("DSXIR_KILL9_ROUNDS", "120"))
SESSION = "kill9"
_ACK = struct.Struct(">Q")


def _writer(path: Path, ack_fd: int, mode: str) -> None:
    """The child: commit generation after generation, acknowledging each one."""
    if mode == "compaction":  # a new snapshot whenever the records pass one record
        file.COMPACT_SHARE, file.COMPACT_MIN_BYTES = 1 << 40, 600
    store = FileStore(path)
    try:
        generation: int | None = store.get(SESSION).generation
    except NotFound:
        generation = None
    while True:
        cp = generation_cp(SESSION, (generation or 0) + 1)
        if mode == "put" or generation is None:
            generation = store.put(cp, expected_generation=generation)
        else:
            before = generation_cp(SESSION, generation)
            generation = store.put_delta(dl.diff(before, cp, base_generation=generation))
        os.write(ack_fd, _ACK.pack(generation))


def _acknowledged(read_fd: int) -> list[int]:
    data = b""
    while select.select([read_fd], [], [], 0)[0]:
        chunk = os.read(read_fd, 65536)
        if not chunk:
            break
        data += chunk
    usable = len(data) - len(data) % _ACK.size
    return [_ACK.unpack_from(data, i)[0] for i in range(0, usable, _ACK.size)]


def _kill_window(path: Path) -> float:
    """How long to let a writer run before the kill: at least 25 ms, and long
    enough for several commits on this machine and in this mode (the
    pure-Python reader and writer are many times slower than the accelerated
    ones), so that a busy machine does not starve the writers."""
    store = FileStore(path)
    generation: int | None = None
    times = []
    for n in range(1, 6):  # a checkpoint as large as the late rounds commit
        started = time.perf_counter()
        cp = generation_cp(SESSION, 2 * ROUNDS + n)
        generation = store.put(cp, expected_generation=generation)
        store.get(SESSION)
        times.append(time.perf_counter() - started)
    return max(0.025, 8 * sorted(times)[2])


@pytest.mark.parametrize("mode", ["put", "put_delta", "compaction"])
def test_every_read_after_a_kill_is_a_committed_generation(tmp_path: Path, mode: str) -> None:
    window = _kill_window(tmp_path / "calibrate")
    rng = random.Random(0x5EED)
    store_path = tmp_path / "store"
    last_seen = 0
    temp_left = 0
    started = time.monotonic()
    for round_no in range(ROUNDS):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child never returns
            try:
                os.close(read_fd)
                _writer(store_path, write_fd, mode)
            finally:
                os._exit(0)
        os.close(write_fd)
        time.sleep(rng.uniform(0.0, window))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        acks = _acknowledged(read_fd)
        os.close(read_fd)
        if (store_path / f".tmp.{SESSION}").exists():
            temp_left += 1

        store = FileStore(store_path)  # opening cleans the killed writer's temporary file
        assert not (store_path / f".tmp.{SESSION}").exists()
        try:
            stored = store.get(SESSION)
        except NotFound:
            assert not acks and last_seen == 0, f"round {round_no}: acknowledged commit lost"
            continue
        newest_ack = max(acks, default=last_seen)
        assert acks == list(range(last_seen + 1, newest_ack + 1)) or not acks
        assert newest_ack <= stored.generation <= newest_ack + 1, (
            f"round {round_no}: stored generation {stored.generation}, acknowledged {newest_ack}"
        )
        check_generation_cp(stored.checkpoint, stored.generation)
        [listing] = store.list()
        assert listing.generation == stored.generation
        last_seen = stored.generation

    assert last_seen > ROUNDS  # the writers made progress in most rounds
    size = (store_path / f"{SESSION}.dsxckpt").stat().st_size
    print(
        f"{mode}: {ROUNDS} kills in {time.monotonic() - started:.1f}s: {last_seen} generations "
        f"committed, {temp_left} kills left a temporary file behind; file {size} bytes"
    )
    if mode == "compaction":
        assert temp_left > 0  # some kills did land in the middle of a compaction
