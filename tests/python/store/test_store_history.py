"""Legal histories (FORMAT.md §9.1): every store refuses an update that is not a successor.

The contract part runs on every backend of conftest.py; the rules themselves
(:func:`dsxir.optimizer_session.history.check_successor`, :func:`fork`) are
checked directly too.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import pytest

from dsxir.errors import Conflict, IllegalHistory, InvalidSessionId, NotFound
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session.history import check_successor, fork
from dsxir.optimizer_session.v1.checkpoint_pb2 import (
    DIRECTION_LOWER,
    SESSION_STATUS_COMPLETED,
    SESSION_STATUS_FAILED,
    SESSION_STATUS_RUNNING,
    Checkpoint,
)
from dsxir.store import Store, fork_session
from store_util import make_cp

Change = Callable[[Checkpoint], None]


def _copy(cp: Checkpoint) -> Checkpoint:
    return checkpoint.decode(checkpoint.encode(cp))


def _stored(store: Store, trials: int = 3) -> tuple[Checkpoint, int]:
    cp = make_cp(trials=trials)
    return cp, store.put(cp)


def _refused(store: Store, new: Checkpoint, generation: int, rule: str) -> IllegalHistory:
    before = store.get("s1")
    with pytest.raises(IllegalHistory) as info:
        store.put(new, expected_generation=generation)
    assert info.value.rule == rule
    assert info.value.session_id == "s1"
    assert rule in str(info.value)
    after = store.get("s1")  # nothing was stored
    assert after.generation == before.generation
    assert checkpoint.encode(after.checkpoint) == checkpoint.encode(before.checkpoint)
    return info.value


# --- allowed histories --------------------------------------------------------------


def _record(cp: Checkpoint) -> None:
    checkpoint.record_trial(cp, score=0.9)


def _pause(cp: Checkpoint) -> None:
    checkpoint.pause(cp)


def _complete(cp: Checkpoint) -> None:
    checkpoint.complete(cp, "done")


def _fail(cp: Checkpoint) -> None:
    checkpoint.fail(cp)


def _cancel(cp: Checkpoint) -> None:
    checkpoint.cancel(cp)


def _same(cp: Checkpoint) -> None:
    pass


def _new_blob(cp: Checkpoint) -> None:
    cp.sampler_blob = b"another sampler state"
    cp.updated_at.FromSeconds(cp.updated_at.seconds + 60)


def _attempt(cp: Checkpoint) -> None:
    cp.progress.attempts += 1


@pytest.mark.parametrize(
    "change",
    [_record, _pause, _complete, _fail, _cancel, _same, _new_blob, _attempt],
    ids=lambda change: change.__name__.strip("_"),
)
def test_a_running_session_may_go_on_as_section_9_allows(store: Store, change: Change) -> None:
    cp, generation = _stored(store)
    change(cp)
    assert store.put(cp, expected_generation=generation) == generation + 1
    assert checkpoint.encode(store.get("s1").checkpoint) == checkpoint.encode(cp)


@pytest.mark.parametrize(
    "change", [_same, checkpoint.resume, _cancel], ids=["paused", "resume", "cancel"]
)
def test_a_paused_session_may_stay_resume_or_be_cancelled(store: Store, change: Change) -> None:
    cp = make_cp(trials=2)
    checkpoint.pause(cp)
    generation = store.put(cp)
    change(cp)
    assert store.put(cp, expected_generation=generation) == generation + 1


def test_a_long_history_of_commits_is_legal(store: Store) -> None:
    cp, generation = _stored(store, trials=0)
    for i in range(5):
        checkpoint.record_trial(cp, score=i / 10)
        generation = store.put(cp, expected_generation=generation)
    checkpoint.pause(cp)
    generation = store.put(cp, expected_generation=generation)
    checkpoint.resume(cp)
    generation = store.put(cp, expected_generation=generation)
    checkpoint.complete(cp)
    assert store.put(cp, expected_generation=generation) == 9


# --- refused histories --------------------------------------------------------------


@pytest.mark.parametrize(
    "end", [_complete, _fail, _cancel], ids=["completed", "failed", "cancelled"]
)
def test_nothing_follows_a_terminal_status(store: Store, end: Change) -> None:
    cp, generation = _stored(store)
    end(cp)
    generation = store.put(cp, expected_generation=generation)
    _refused(store, cp, generation, "history.terminal")  # not even the same checkpoint
    again = _copy(cp)
    again.status = SESSION_STATUS_RUNNING
    again.ClearField("terminal_reason")
    detail = _refused(store, again, generation, "history.terminal").detail
    assert "fork" in detail


def test_a_paused_session_cannot_complete_or_fail(store: Store) -> None:
    cp = make_cp(trials=1)
    checkpoint.pause(cp)
    generation = store.put(cp)
    for status in (SESSION_STATUS_COMPLETED, SESSION_STATUS_FAILED):
        ended = _copy(cp)
        ended.status = status  # type: ignore[assignment]
        detail = _refused(store, ended, generation, "history.transition").detail
        assert "paused cannot become" in detail


def test_a_shortened_trial_log_is_refused(store: Store) -> None:
    cp, generation = _stored(store, trials=3)
    shortened = _copy(cp)
    del shortened.progress.trial_log[2]
    shortened.progress.completed = 2
    shortened.progress.best_score = 0.1
    shortened.progress.best_trial_idx = 1
    detail = _refused(store, shortened, generation, "history.trial_log_shortened").detail
    assert "from 3 entries to 2" in detail


def test_a_rewritten_entry_is_refused_and_named(store: Store) -> None:
    cp, generation = _stored(store, trials=3)
    rewritten = _copy(cp)
    rewritten.progress.trial_log[1].candidate_id = "another"
    checkpoint.record_trial(rewritten, score=0.5)  # longer, but not an extension
    detail = _refused(store, rewritten, generation, "history.trial_log_rewritten").detail
    assert "progress.trial_log[1]" in detail


def _optimizer(cp: Checkpoint) -> None:
    cp.optimizer = "other.Opt"


def _trainset(cp: Checkpoint) -> None:
    cp.trainset_hash = bytes(32)


def _created(cp: Checkpoint) -> None:
    cp.created_at.FromSeconds(cp.created_at.seconds - 1)


def _direction(cp: Checkpoint) -> None:
    cp.direction = DIRECTION_LOWER


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        (_optimizer, "history.optimizer"),
        (_trainset, "history.trainset_hash"),
        (_created, "history.created_at"),
        (_direction, "history.direction"),
    ],
    ids=["optimizer", "trainset_hash", "created_at", "direction"],
)
def test_the_session_identity_never_changes(store: Store, change: Change, rule: str) -> None:
    cp, generation = _stored(store, trials=0)
    changed = _copy(cp)
    change(changed)
    _refused(store, changed, generation, rule)


def test_a_new_session_under_the_same_id_is_refused(store: Store) -> None:
    _, generation = _stored(store, trials=0)
    time.sleep(0.002)
    _refused(store, make_cp(trials=1), generation, "history.created_at")


def test_counters_never_go_down(store: Store) -> None:
    cp = make_cp(trials=2)
    cp.progress.attempts += 3
    generation = store.put(cp)
    lower = _copy(cp)
    lower.progress.attempts -= 1
    detail = _refused(store, lower, generation, "history.counters").detail
    assert "progress.attempts went from 5 to 4" in detail


def test_the_generation_check_comes_first(store: Store) -> None:
    cp, generation = _stored(store)
    checkpoint.complete(cp)
    store.put(cp, expected_generation=generation)
    with pytest.raises(Conflict):
        store.put(cp, expected_generation=generation)  # stale and illegal: Conflict
    with pytest.raises(Conflict):
        store.put(make_cp("s2"), expected_generation=1)  # nothing stored: Conflict


def test_a_create_after_a_delete_starts_a_new_history(store: Store) -> None:
    cp, generation = _stored(store)
    checkpoint.complete(cp)
    store.put(cp, expected_generation=generation)
    store.delete("s1")
    assert store.put(make_cp(trials=0)) == 1


# --- fork ---------------------------------------------------------------------------


def test_fork_session_goes_on_from_an_ended_session(store: Store) -> None:
    cp, generation = _stored(store, trials=3)
    checkpoint.fail(cp, "out of budget")
    store.put(cp, expected_generation=generation)
    assert fork_session(store, "s1", "s1-again") == 1
    forked = store.get("s1-again").checkpoint
    source = store.get("s1").checkpoint
    assert checkpoint.status_name(forked) == "running"
    assert not forked.HasField("terminal_reason")
    assert forked.progress.trial_log == source.progress.trial_log
    assert (forked.progress.best_score, forked.progress.best_trial_idx) == (0.2, 2)
    assert forked.sampler_blob == source.sampler_blob
    assert forked.created_at.ToNanoseconds() >= source.updated_at.ToNanoseconds()
    checkpoint.record_trial(forked, score=0.4)
    assert store.put(forked, expected_generation=1) == 2
    assert checkpoint.status_name(store.get("s1").checkpoint) == "failed"


def test_fork_session_never_overwrites_and_needs_a_source(store: Store) -> None:
    _stored(store)
    store.put(make_cp("taken"))
    with pytest.raises(Conflict):
        fork_session(store, "s1", "taken")
    with pytest.raises(NotFound):
        fork_session(store, "nobody", "new")
    with pytest.raises(InvalidSessionId):
        fork_session(store, "s1", ".hidden")
    with pytest.raises(NotFound):
        store.get("new")


# --- the rules themselves -----------------------------------------------------------


def test_check_successor_refuses_another_session() -> None:
    with pytest.raises(IllegalHistory) as info:
        check_successor(make_cp("a"), make_cp("b"))
    assert info.value.rule == "history.session_id"


def test_fork_copies_and_leaves_the_source_alone() -> None:
    cp = make_cp(trials=2, blob=b"state")
    checkpoint.cancel(cp, "stop")
    before = checkpoint.encode(cp)
    copy = fork(cp, "b")
    assert checkpoint.encode(cp) == before
    assert (copy.session_id, copy.status, copy.sampler_blob) == (
        "b",
        SESSION_STATUS_RUNNING,
        b"state",
    )
    assert copy.created_at == copy.updated_at
    assert copy.progress == cp.progress
    checkpoint.decode(checkpoint.encode(copy))  # a valid checkpoint
    with pytest.raises(TypeError):
        fork(cp, 5)  # type: ignore[arg-type]


def test_a_refusal_shows_at_most_80_characters_of_a_value() -> None:
    stored = make_cp()
    new = _copy(stored)
    new.optimizer = "x" * 100_000
    with pytest.raises(IllegalHistory) as info:
        check_successor(stored, new)
    assert info.value.rule == "history.optimizer"
    assert len(info.value.detail) < 200 and info.value.detail.endswith("...")


def test_the_first_of_several_broken_rules_is_reported() -> None:
    stored = make_cp(trials=3)
    new = make_cp(trials=1, optimizer="x.Opt")
    with pytest.raises(IllegalHistory) as info:
        check_successor(stored, new)
    assert info.value.rule == "history.optimizer"


def test_unknown_fields_in_progress_do_not_defeat_the_check() -> None:
    # An unknown field of a newer minor version in the stored progress comes
    # after the known fields; the check still finds where the log ends.
    stored = make_cp(trials=3)
    stored.progress.MergeFromString(b"\xf8\x01\x07")  # field 31, varint 7
    new = _copy(stored)
    checkpoint.record_trial(new, score=0.5)
    check_successor(stored, new)
    new.progress.trial_log[2].candidate_id = "x"
    with pytest.raises(IllegalHistory, match=r"trial_log\[2\]"):
        check_successor(stored, new)


def _python_calls(run: Callable[[], object]) -> int:
    """How many Python-level calls ``run`` makes (calls into C are not counted)."""
    calls = 0

    def count(frame: object, event: str, arg: object) -> None:
        nonlocal calls
        if event == "call":
            calls += 1

    sys.setprofile(count)
    try:
        run()
    finally:
        sys.setprofile(None)
    return calls


def test_checking_a_long_log_costs_no_python_per_entry() -> None:
    # check_successor compares serialized bytes: the Python work is the same
    # for 20,000 stored entries as for 20; the entries are compared in C.
    def calls(trials: int) -> int:
        stored = make_cp(trials=trials)
        new = _copy(stored)
        checkpoint.record_trial(new, score=1.0)
        return _python_calls(lambda: check_successor(stored, new))

    assert calls(20_000) == calls(20)
