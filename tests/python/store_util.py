"""Checkpoints for the store, CLI and demo tests."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.session import Session, open_session

TRAINSET_HASH = hashlib.sha256(b"store tests").digest()


def make_cp(
    session_id: str = "s1",
    *,
    trials: int = 0,
    optimizer: str = "test.Opt",
    blob: bytes = b"blob",
    **kw: Any,
) -> Checkpoint:
    """A running checkpoint with ``trials`` ok trials scored 0.0, 0.1, ..."""
    cp = checkpoint.new(
        session_id=session_id,
        optimizer=optimizer,
        trainset_hash=TRAINSET_HASH,
        sampler_blob=blob,
        sampler_format=("test.Sampler", 1),
        **kw,
    )
    for i in range(trials):
        checkpoint.record_trial(cp, score=i / 10, candidate_id=f"c{i}", stats={"i": i})
    return cp


def sealed_message(cp: Checkpoint) -> Checkpoint:
    """``cp`` as a generated stub sends it: its sealed bytes (FORMAT.md §2), the
    trailer kept by the runtime as an unknown field and written back last."""
    message = Checkpoint.FromString(checkpoint.encode(cp))
    assert message.SerializeToString(deterministic=True) == checkpoint.encode(cp)
    return message


def generation_blob(generation: int) -> bytes:
    """A sampler blob that names its generation, of a size that varies with it (8 B - 32 KiB)."""
    return generation.to_bytes(8, "big") * ((generation * 7919) % 4096 + 1)


def generation_cp(session_id: str, generation: int) -> Checkpoint:
    """The checkpoint the kill-9 writer commits as ``generation``: its content names it.

    Each generation is a legal successor of the one before (FORMAT.md §9.1):
    the same creation time, and a trial log of ``generation // 4`` entries
    that only grows.
    """
    cp = make_cp(session_id, optimizer="kill9", blob=generation_blob(generation))
    for stamp in (cp.created_at, cp.updated_at, cp.progress.started_at):
        stamp.FromSeconds(1_700_000_000)
    for i in range(generation // 4):
        checkpoint.record_trial(cp, score=i / 10)
    return cp


def check_generation_cp(cp: Checkpoint, generation: int) -> None:
    """Assert that ``cp`` is exactly what the writer committed as ``generation``."""
    assert cp.sampler_blob == generation_blob(generation)
    assert [e.score for e in cp.progress.trial_log] == [i / 10 for i in range(generation // 4)]


def tree(root: Path) -> set[str]:
    """Every path under ``root`` (relative), files and folders."""
    found = set()
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            found.add(os.path.relpath(os.path.join(folder, name), root))
    return found


def append_empty_records(path: str, cp: Checkpoint, count: int) -> None:
    """Append ``count`` records to the store file at ``path`` (generation 1 holding ``cp``).

    Each record commits the next generation with a delta that adds nothing,
    its checksums valid: a file of many tiny records, as a forger writes it.
    """
    from dsxir.optimizer_session import delta as dl
    from dsxir.optimizer_session.grammar import sealed
    from dsxir.store import records
    from dsxir.store.summary import encode_summary

    delta = dl.diff(cp, cp, base_generation=1)
    summary = encode_summary(cp)
    parts = []
    for generation in range(1, count + 1):
        delta.base_generation = generation
        body = sealed(delta.SerializeToString(deterministic=True), delta=True)
        parts.append(records.record(generation + 1, summary, body))
    with open(path, "ab") as handle:
        handle.write(b"".join(parts))


def one_more(cp: Checkpoint, trials: int = 1, **change: Any) -> Checkpoint:
    """A copy of ``cp`` with ``trials`` more ok trials (scored by their index / 10)."""
    new = checkpoint.decode(checkpoint.encode(cp))
    for _ in range(trials):
        checkpoint.record_trial(new, score=0.1 * len(new.progress.trial_log), **change)
    return new


def counting_statements(monkeypatch: Any) -> list[object]:
    """The statements every psycopg connection executes from now on (``Connection.execute``)."""
    import psycopg

    executed: list[object] = []
    execute = psycopg.Connection.execute

    def counted(self: psycopg.Connection[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        executed.append(query)
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "execute", counted)
    return executed


def counting_checks(monkeypatch: Any) -> list[object]:
    """The checks run in a second thread from now on (``grammar._alongside`` calls)."""
    from dsxir.optimizer_session import grammar

    started: list[object] = []
    alongside = grammar._alongside

    def counted(*args: Any) -> Any:
        started.append(args)
        return alongside(*args)

    monkeypatch.setattr(grammar, "_alongside", counted)
    return started


def session_on(store: Any, session_id: str = "s1") -> Session:
    """``open_session`` of ``session_id`` on ``store`` as the store tests open one.

    Signals are left alone (``handle_signals=False``).
    """
    return open_session(
        store,
        session_id,
        optimizer="opt.O",
        sampler_format=("opt.S", 1),
        trainset_hash=TRAINSET_HASH,
        handle_signals=False,
    )
