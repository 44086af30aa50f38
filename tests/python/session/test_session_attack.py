"""The session runner attacked: stacked sessions and signals, failing stores, bad ttls."""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dsxir.errors import StoreUnavailable
from dsxir.optimizer_session import checkpoint
from dsxir.session import MIN_LEASE_TTL, Interrupted, Session, open_session
from dsxir.store import FileStore, Store

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def opened(store: Store, session_id: str = "s1", **kw: Any) -> Session:
    args: dict[str, Any] = {
        "optimizer": "test.Search",
        "sampler_format": ("test.Sampler", 1),
        "trainset": [1, 2],
        "handle_signals": True,
        **kw,
    }
    return open_session(store, session_id, **args)


class Wrapped:
    """A store whose method ``name`` runs ``around(method, *args, **kw)`` while armed.

    ``"put"`` stands for both ways of committing, ``put`` and ``put_delta``.
    """

    def __init__(self, store: Store, name: str, around: Callable[..., Any]) -> None:
        self.store, self.name, self.around, self.armed = store, name, around, False

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.store, name)
        names = ("put", "put_delta") if self.name == "put" else (self.name,)
        if name not in names or not self.armed:
            return method

        def wrapped(*args: Any, **kw: Any) -> Any:
            self.armed = False
            return self.around(method, *args, **kw)

        return wrapped


def signal_after_write(method: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """The write is done, then SIGINT arrives before ``put`` returns."""
    generation = method(*args, **kw)
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)  # the signal is handled here, inside the commit
    return generation


def signal_then_fail(method: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """SIGTERM arrives during ``put``, which then fails without writing."""
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.05)
    raise StoreUnavailable("database unreachable")


def handlers() -> dict[int, Any]:
    return {signum: signal.getsignal(signum) for signum in SIGNALS}


def test_a_second_session_does_not_cut_the_first_ones_commit(tmp_path: Path) -> None:
    before = handlers()
    store = FileStore(tmp_path / "store")
    first_store = Wrapped(store, "put", signal_after_write)
    first = opened(first_store)  # type: ignore[arg-type]
    second = opened(store, "s2")  # installs after the first one
    first_store.armed = True
    with pytest.raises(Interrupted):
        first.record_trial(score=0.5)
    stored = store.get("s1")  # the commit was whole, and the session knows it
    assert checkpoint.encode(first.checkpoint) == checkpoint.encode(stored.checkpoint)
    assert (first.trials, first.generation) == (1, stored.generation)
    first.close()  # closed first, out of order: the second one stays guarded
    assert handlers() != before
    with pytest.raises(Interrupted), second:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    assert checkpoint.status_name(store.get("s1").checkpoint) == "paused"
    assert checkpoint.status_name(store.get("s2").checkpoint) == "paused"
    assert handlers() == before  # the handlers found before the first session, not a guard's


def test_a_signal_during_a_failing_pause_is_raised_after_the_cleanup(tmp_path: Path) -> None:
    before = handlers()
    store = FileStore(tmp_path / "store")
    wrapped = Wrapped(store, "put", signal_then_fail)
    session = opened(wrapped)  # type: ignore[arg-type]
    session.record_trial(score=0.1)
    committed = checkpoint.encode(session.checkpoint)
    wrapped.armed = True
    with pytest.raises(Interrupted) as stopped:
        session.close()
    assert stopped.value.signum == signal.SIGTERM
    assert isinstance(stopped.value.__context__, StoreUnavailable)
    assert checkpoint.encode(session.checkpoint) == committed
    assert store.get_lease("s1") is None and handlers() == before
    assert not [t for t in threading.enumerate() if t.name.startswith("dsxir-lease")]
    # nothing is left held back: the next session's signal is raised at once
    with pytest.raises(Interrupted), opened(store) as again:
        assert again.resumed
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    assert handlers() == before


@pytest.mark.parametrize(
    ("ttl", "error"),
    [
        (0, ValueError),
        (-1, ValueError),
        (1e-9, ValueError),
        (MIN_LEASE_TTL / 2, ValueError),
        (-math.inf, ValueError),
        (math.nan, ValueError),
        (math.inf, ValueError),
        (1e300, ValueError),
        (True, TypeError),
        ("30", TypeError),
        (None, TypeError),
    ],
)
def test_hostile_lease_ttls_are_refused_before_anything_is_stored(
    tmp_path: Path, ttl: Any, error: type[Exception]
) -> None:
    before = handlers()
    store = FileStore(tmp_path / "store")
    with pytest.raises(error):
        opened(store, lease_ttl=ttl)
    assert store.get_lease("s1") is None and store.list() == []
    assert not [t for t in threading.enumerate() if t.name.startswith("dsxir-lease")]
    assert handlers() == before


def test_the_shortest_lease_ttl_is_taken(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    with opened(store, lease_ttl=MIN_LEASE_TTL, handle_signals=False) as session:
        session.record_trial(score=0.2)
    assert len(store.get("s1").checkpoint.progress.trial_log) == 1


@pytest.mark.parametrize("name", ["acquire_lease", "get", "put"])
@pytest.mark.parametrize("stored", [False, True])
def test_a_store_failing_while_opening_leaves_nothing_behind(
    tmp_path: Path, name: str, stored: bool
) -> None:
    before = handlers()
    store = FileStore(tmp_path / "store")
    if stored:
        opened(store).pause()
    generation = store.get("s1").generation if stored else None

    def fail(method: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        raise StoreUnavailable(f"{name} failed")

    wrapped = Wrapped(store, name, fail)
    wrapped.armed = True
    with pytest.raises(StoreUnavailable):
        opened(wrapped)  # type: ignore[arg-type]
    assert store.get_lease("s1") is None and handlers() == before
    assert not [t for t in threading.enumerate() if t.name.startswith("dsxir-lease")]
    assert (store.get("s1").generation if stored else store.list()) == (
        generation if stored else []
    )


SECRET = "sk-" + "a1B2" * 6


@pytest.mark.parametrize(
    "bad",
    [
        {"score": math.nan},
        {"score": 0.5, "stats": {"note": f"key {SECRET}"}},
        {"score": None, "status": "error", "error": ValueError(f"token {SECRET}")},
        {"score": 0.9, "best_program_artifact": {"prompt": SECRET}},
        {"score": 0.9, "best_program_artifact": {"x": object()}},
        {"score": 0.1, "sampler_blob": "not bytes"},
        {"score": 0.1, "duration_ms": -1},
        {"score": 0.1, "candidate_id": 7},
        {"score": 0.1, "status": "pruned"},
    ],
)
def test_a_refused_trial_commits_nothing_and_changes_nothing(tmp_path: Path, bad: Any) -> None:
    store = FileStore(tmp_path / "store")
    with opened(store, handle_signals=False) as session:
        session.record_trial(score=0.3, sampler_blob=b"one", best_program_artifact={"p": 1})
        committed, generation = checkpoint.encode(session.checkpoint), session.generation
        with pytest.raises((TypeError, ValueError)) as refused:  # each in its own way
            session.record_trial(**bad)
        assert SECRET not in str(refused.value)
        assert checkpoint.encode(session.checkpoint) == committed
        assert session.generation == generation == store.get("s1").generation
        assert session.record_trial(score=0.4) == 1  # the session goes on
