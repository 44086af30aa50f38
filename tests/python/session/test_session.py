"""The session runner in one process: opening, the gate, commits, rollback, heartbeat, signals."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dsxir.errors import (
    AlreadyTerminal,
    Conflict,
    InvalidCheckpoint,
    LeaseHeld,
    LeaseLost,
    ResumeMismatch,
    StoreUnavailable,
)
from dsxir.optimizer_session import checkpoint
from dsxir.session import Interrupted, Session, default_holder, open_session
from dsxir.store import FileStore, MemoryStore, Store, close_store

TRAINSET = [{"q": "2+2?", "a": "4"}, {"q": "3+3?", "a": "6"}]


@pytest.fixture(params=["memory", "file", "postgres", "grpc-memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A new store of each backend that keeps leases, and a client of the service."""
    if request.param == "memory":
        yield MemoryStore()
    elif request.param == "file":
        yield FileStore(tmp_path / "store")
    elif request.param == "postgres":
        yield request.getfixturevalue("pg_store")
    else:
        yield request.getfixturevalue("grpc_over_memory")


@pytest.fixture
def local(tmp_path: Path) -> Store:
    """A file store, for the tests that need one backend only."""
    return FileStore(tmp_path / "store")


def opened(store: Store | str, session_id: str = "s1", **kw: Any) -> Session:
    args: dict[str, Any] = {
        "optimizer": "test.Search",
        "sampler_format": ("test.Sampler", 1),
        "trainset": TRAINSET,
        "handle_signals": False,
        **kw,
    }
    return open_session(store, session_id, **args)


class Recording:
    """A store that records the names of the methods called on it, then calls them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.calls.append(name)
        return getattr(self.store, name)


def test_a_new_session_is_created_recorded_and_completed(store: Store) -> None:
    with opened(store, sampler_blob=b"s0") as session:
        assert (session.created, session.resumed, session.trials) == (True, False, 0)
        assert session.generation == store.get("s1").generation == 1
        assert session.lease.holder == default_holder() == f"{os.uname().nodename}:{os.getpid()}"
        assert session.sampler_blob == b"s0" and session.direction == "higher"
        assert session.best_score is None and session.best_trial_idx is None
        assert session.record_trial(score=0.5, sampler_blob=b"s1") == 0
        assert session.record_trial(score=None, status="error", error=ValueError("x")) == 1
        assert session.record_trial(score=0.7, stats={"tokens": 3}) == 2
        assert (session.trials, session.best_score, session.best_trial_idx) == (3, 0.7, 2)
        assert session.sampler_blob == b"s1"
        session.complete({"why": "budget"})
    stored = store.get("s1")
    assert stored.generation == session.generation == 5
    assert stored.checkpoint == session.checkpoint
    assert checkpoint.status_name(stored.checkpoint) == "completed"
    assert store.get_lease("s1") is None


def test_the_lease_is_taken_before_anything_is_read(local: Store) -> None:
    holder = opened(local, holder="first:1")
    recording = Recording(local)
    try:
        with pytest.raises(LeaseHeld) as refused:
            opened(recording)  # type: ignore[arg-type]
        assert recording.calls == ["acquire_lease"]
        assert refused.value.holder == "first:1"
        assert refused.value.expires_at == holder.lease.expires_at
    finally:
        holder.close()


def test_a_paused_session_is_resumed_and_that_is_committed(store: Store) -> None:
    with opened(store) as session:
        session.record_trial(score=1.0, sampler_blob=b"after-0")
    assert checkpoint.status_name(store.get("s1").checkpoint) == "paused"
    with opened(store, sampler_blob=b"ignored") as again:
        assert (again.created, again.resumed, again.trials) == (False, True, 1)
        assert again.generation == store.get("s1").generation == 4  # create, trial, pause, resume
        assert again.status == "running" and again.sampler_blob == b"after-0"
        assert again.record_trial(score=0.5) == 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"optimizer": "test.Other"}, "optimizer"),
        ({"sampler_format": ("test.Other", 1)}, "sampler_format"),
        ({"sampler_format": ("test.Sampler", 2)}, "sampler_version"),
        ({"trainset": TRAINSET[:1]}, "trainset_hash"),
        ({"direction": "lower"}, "direction"),
    ],
)
def test_resume_gate_refusals_release_the_lease(
    store: Store, change: dict[str, Any], reason: str
) -> None:
    opened(store).close()
    generation = store.get("s1").generation
    with pytest.raises(ResumeMismatch) as refused:
        opened(store, **change)
    assert refused.value.reason == reason
    assert store.get_lease("s1") is None
    assert store.get("s1").generation == generation  # nothing committed
    opened(store).close()  # the session is free for a matching worker


def test_the_direction_refusal_says_what_to_do(local: Store) -> None:
    opened(local, direction="lower").close()
    with pytest.raises(ResumeMismatch) as refused:
        opened(local)
    assert str(refused.value) == (
        'cannot resume session "s1": direction: the checkpoint\'s scores are better when '
        "lower; this run's are better when higher. Resume with direction lower, or start "
        "a new session."
    )


def test_a_lower_direction_session_keeps_the_lowest_score_best(local: Store) -> None:
    with opened(local, direction="lower") as session:
        for score in (0.5, 0.2, 0.9, 0.2):
            session.record_trial(score=score)
        assert (session.direction, session.best_score, session.best_trial_idx) == ("lower", 0.2, 1)


def test_other_sampler_versions_are_accepted_when_asked(local: Store) -> None:
    opened(local).close()
    with opened(
        local, sampler_format=("test.Sampler", 2), accept_sampler_versions={1, 2}
    ) as session:
        assert session.checkpoint.sampler_format.version == 1


def test_an_ended_session_is_refused_and_the_lease_released(store: Store) -> None:
    opened(store).cancel("stop")
    with pytest.raises(AlreadyTerminal):
        opened(store)
    assert store.get_lease("s1") is None


def test_a_failure_while_opening_releases_the_lease(local: Store) -> None:
    with pytest.raises(TypeError):
        opened(local, trainset=[object()])
    assert local.get_lease("s1") is None
    with pytest.raises(InvalidCheckpoint):
        opened(local, optimizer_opts={"api_key": "sk-abcdefabcdefabcdefabcdef"})
    assert local.get_lease("s1") is None
    with pytest.raises(Conflict):  # not a runner's session: it was created meanwhile
        opened(Racing(local))  # type: ignore[arg-type]
    assert local.get_lease("s1") is None


class Racing(Recording):
    """A store in which another writer creates the session right after the first read."""

    def __getattr__(self, name: str) -> Any:
        method = super().__getattr__(name)
        if name != "get" or "s1" in {item.session_id for item in self.store.list()}:
            return method

        def get(session_id: str) -> Any:
            try:
                return method(session_id)
            finally:
                self.store.put(
                    checkpoint.new(
                        session_id="s1",
                        optimizer="x",
                        trainset_hash=bytes(32),
                        sampler_blob=b"",
                        sampler_format=("m", 1),
                    )
                )

        return get


def test_bad_arguments_are_refused_before_the_lease(local: Store) -> None:
    with pytest.raises(TypeError, match="exactly one of trainset and trainset_hash"):
        opened(local, trainset_hash=bytes(32))
    with pytest.raises(ValueError, match="direction"):
        opened(local, direction="up")
    with pytest.raises(ValueError):
        opened(local, lease_ttl=0)
    assert local.get_lease("s1") is None
    with pytest.raises(Exception):  # noqa: B017 - any refusal of the store's
        local.get("s1")


def test_record_trial_rolls_back_on_conflict(store: Store) -> None:
    session = opened(store)
    session.record_trial(score=0.3, sampler_blob=b"one", best_program_artifact={"p": 1})
    committed = session.checkpoint.SerializeToString()
    generation = session.generation
    other = store.get("s1").checkpoint  # another writer commits meanwhile
    checkpoint.record_trial(other, score=0.1)
    store.put(other, expected_generation=generation)
    with pytest.raises(Conflict):
        session.record_trial(score=0.9, sampler_blob=b"two", best_program_artifact={"p": 2})
    assert session.checkpoint.SerializeToString() == committed
    assert (session.trials, session.generation, session.best_score) == (1, generation, 0.3)
    assert session.sampler_blob == b"one"
    with pytest.raises(InvalidCheckpoint):  # refused input: nothing changes either
        session.record_trial(score=float("nan"))
    assert session.checkpoint.SerializeToString() == committed
    with pytest.raises(Conflict):  # the pause of close() meets the same conflict
        session.close()
    assert store.get_lease("s1") is None
    assert len(store.get("s1").checkpoint.progress.trial_log) == 2


def test_an_exception_in_the_block_commits_a_pause_and_propagates(local: Store) -> None:
    with pytest.raises(RuntimeError, match="boom"), opened(local) as session:
        session.record_trial(score=0.1)
        raise RuntimeError("boom")
    stored = local.get("s1")
    assert checkpoint.status_name(stored.checkpoint) == "paused"
    assert len(stored.checkpoint.progress.trial_log) == 1
    assert local.get_lease("s1") is None


def test_a_closed_session_commits_nothing_more(local: Store) -> None:
    session = opened(local)
    session.pause()
    generation = local.get("s1").generation
    session.close()  # idempotent
    with pytest.raises(LeaseLost, match="closed"):
        session.record_trial(score=0.2)
    with pytest.raises(LeaseLost):
        session.complete()
    assert local.get("s1").generation == generation == session.generation


def test_the_heartbeat_renews_the_lease(store: Store) -> None:
    with opened(store, lease_ttl=1.0) as session:
        first = session.lease.expires_at
        time.sleep(2.0)  # two ttls: the lease would have ended without renewals
        held = store.get_lease("s1")
        assert held is not None and not held.expired()
        assert session.lease.expires_at > first
        session.record_trial(score=0.4)


def test_a_lost_lease_stops_the_next_commit(local: Store) -> None:
    session = opened(local, lease_ttl=0.3)
    session.record_trial(score=0.4)
    local.release_lease(session.lease)  # as if another worker had taken it over
    taker = opened(local, holder="taker:2")
    deadline = time.monotonic() + 5
    while session._heartbeat.lost is None and time.monotonic() < deadline:
        time.sleep(0.02)
    generation = local.get("s1").generation
    with pytest.raises(LeaseLost):
        session.record_trial(score=0.5)
    assert session.trials == 1
    session.close()  # commits nothing: the lease is not its own
    assert local.get("s1").generation == generation
    assert taker.lease.holder == local.get_lease("s1").holder == "taker:2"  # type: ignore[union-attr]
    taker.close()


class Flaky(Recording):
    """A store whose first renewals fail as if the database were unreachable."""

    def __init__(self, store: Store, failures: int) -> None:
        super().__init__(store)
        self.failures = failures

    def __getattr__(self, name: str) -> Any:
        method = super().__getattr__(name)
        if name != "renew_lease":
            return method

        def renew(*args: Any, **kw: Any) -> Any:
            if self.failures:
                self.failures -= 1
                raise StoreUnavailable("database unreachable")
            return method(*args, **kw)

        return renew


def test_a_transient_renewal_failure_is_retried_at_the_next_beat(local: Store) -> None:
    flaky = Flaky(local, failures=1)
    with opened(flaky, lease_ttl=0.9) as session:  # type: ignore[arg-type]
        time.sleep(1.5)
        assert flaky.failures == 0 and flaky.calls.count("renew_lease") >= 2
        assert session._heartbeat.lost is None
        held = local.get_lease("s1")
        assert held is not None and not held.expired()
        session.record_trial(score=0.1)


def test_a_store_url_is_opened_and_closed_with_the_session(tmp_path: Path) -> None:
    with opened(f"file:{tmp_path / 'store'}") as session:
        session.record_trial(score=0.2)
    assert len(FileStore(tmp_path / "store").get("s1").checkpoint.progress.trial_log) == 1


def test_signals_raise_interrupted_and_the_handlers_come_back(local: Store) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with pytest.raises(Interrupted) as stopped, opened(local, handle_signals=True) as session:
        assert signal.getsignal(signal.SIGTERM) != before[signal.SIGTERM]
        session.record_trial(score=0.2)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the signal arrives first
    assert stopped.value.signum == signal.SIGTERM
    assert {s: signal.getsignal(s) for s in before} == before
    assert checkpoint.status_name(local.get("s1").checkpoint) == "paused"


class Signalling(Recording):
    """A store that sends this process SIGINT in the middle of its next commit once armed."""

    armed = False

    def __getattr__(self, name: str) -> Any:
        method = super().__getattr__(name)
        if name not in ("put", "put_delta") or not self.armed:  # a commit
            return method

        def put(*args: Any, **kw: Any) -> Any:
            self.armed = False
            os.kill(os.getpid(), signal.SIGINT)
            return method(*args, **kw)

        return put


def test_a_signal_during_a_commit_waits_for_the_commit(local: Store) -> None:
    signalling = Signalling(local)
    with pytest.raises(Interrupted) as stopped, opened(signalling, handle_signals=True) as session:  # type: ignore[arg-type]
        signalling.armed = True
        session.record_trial(score=0.7)
        pytest.fail("record_trial returned")
    assert stopped.value.signum == signal.SIGINT
    stored = local.get("s1")  # the trial was committed, then the pause
    assert checkpoint.status_name(stored.checkpoint) == "paused"
    assert len(stored.checkpoint.progress.trial_log) == 1
    assert stored.generation == session.generation == 3


def test_signals_are_left_alone_outside_the_main_thread(local: Store) -> None:
    before = signal.getsignal(signal.SIGTERM)
    seen: list[Any] = []

    def work() -> None:
        with opened(local, handle_signals=True) as session:
            seen.append(signal.getsignal(signal.SIGTERM))
            session.record_trial(score=0.3)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(30)
    assert seen == [before]
    assert len(local.get("s1").checkpoint.progress.trial_log) == 1
    close_store(local)


class Failing(Recording):
    """A store whose commits fail, as if the database were unreachable, while ``failing``."""

    failing = False

    def __getattr__(self, name: str) -> Any:
        method = super().__getattr__(name)
        if name not in ("put", "put_delta") or not self.failing:  # a commit
            return method

        def put(*args: Any, **kw: Any) -> Any:
            raise StoreUnavailable("database unreachable")

        return put


@pytest.mark.parametrize("best_before", [False, True])
def test_every_failed_transition_leaves_the_committed_bytes(
    local: Store, best_before: bool
) -> None:
    failing = Failing(local)
    session = opened(failing)  # type: ignore[arg-type]
    session.record_trial(score=None, status="error", error={"m": "x"}, sampler_blob=b"b0")
    if best_before:
        session.record_trial(score=0.5, best_program_artifact={"p": 0}, candidate_id="c1")
    committed = session.checkpoint.SerializeToString()
    failing.failing = True
    attempts = [
        lambda: session.record_trial(
            score=0.9, sampler_blob=b"b1", best_program_artifact={"p": 1}, stats={"k": 1}
        ),
        lambda: session.record_trial(score=None, status="error", error=KeyError("k")),
        lambda: session.complete({"why": "done"}),
        lambda: session.fail("broken"),
        lambda: session.cancel(["stop"]),
        session.pause,
    ]
    for attempt in attempts:
        with pytest.raises(StoreUnavailable):
            attempt()
        assert session.checkpoint.SerializeToString() == committed
    failing.failing = False
    assert session.record_trial(score=0.7) == session.trials - 1
    assert local.get("s1").checkpoint == session.checkpoint
    session.close()
