"""Legal histories: which checkpoint may follow which (FORMAT.md §9.1), and forks.

A store commits an update only when the new checkpoint is a **legal
successor** of the stored one. :func:`check_successor` decides; it raises
:class:`~dsxir.errors.IllegalHistory` naming the first broken rule, checked
in this order:

1. ``history.session_id``: the same session id;
2. ``history.terminal``: the stored session has not ended (nothing follows
   ``completed``, ``failed`` or ``cancelled``, not even the same checkpoint);
3. ``history.optimizer``, ``history.trainset_hash``, ``history.created_at``,
   ``history.direction``: those fields unchanged;
4. ``history.transition``: a status change §9 allows (running to running,
   paused, completed, failed or cancelled; paused to paused, running or
   cancelled);
5. ``history.trial_log_shortened``, ``history.trial_log_rewritten``: the
   stored trial log is an unchanged prefix of the new one;
6. ``history.counters``: ``attempts``, ``completed`` and ``errors`` never
   lower.

The trial logs are compared as bytes (both ``Progress`` messages serialized
deterministically; ``trial_log`` is field 1, so its entries come first), at
C speed whatever their length; entries are looked at one by one only to name
the first one that differs.

:func:`fork` copies a session under a new id, the legal way to go on from a
session that has ended.
"""

from __future__ import annotations

import time
from typing import NoReturn

from google.protobuf.timestamp_pb2 import Timestamp

from dsxir.errors import IllegalHistory
from dsxir.optimizer_session.statuses import STATUS_NAMES, TERMINAL
from dsxir.optimizer_session.v1.checkpoint_pb2 import (
    SESSION_STATUS_CANCELLED,
    SESSION_STATUS_COMPLETED,
    SESSION_STATUS_FAILED,
    SESSION_STATUS_PAUSED,
    SESSION_STATUS_RUNNING,
    Checkpoint,
    Progress,
)
from dsxir.optimizer_session.validate import FORMAT_ID, check

__all__ = ["ALLOWED_TRANSITIONS", "check_successor", "fork"]

ALLOWED_TRANSITIONS: frozenset[tuple[int, int]] = frozenset(
    {
        (SESSION_STATUS_RUNNING, SESSION_STATUS_RUNNING),
        (SESSION_STATUS_RUNNING, SESSION_STATUS_PAUSED),
        (SESSION_STATUS_RUNNING, SESSION_STATUS_COMPLETED),
        (SESSION_STATUS_RUNNING, SESSION_STATUS_FAILED),
        (SESSION_STATUS_RUNNING, SESSION_STATUS_CANCELLED),
        (SESSION_STATUS_PAUSED, SESSION_STATUS_PAUSED),
        (SESSION_STATUS_PAUSED, SESSION_STATUS_RUNNING),
        (SESSION_STATUS_PAUSED, SESSION_STATUS_CANCELLED),
    }
)
"""The ``(stored status, new status)`` pairs a commit may make (FORMAT.md §9)."""

_IDENTITY = (
    ("optimizer", "history.optimizer"),
    ("trainset_hash", "history.trainset_hash"),
    ("created_at", "history.created_at"),
    ("direction", "history.direction"),
)
_COUNTERS = ("attempts", "completed", "errors")


def check_successor(stored: Checkpoint, new: Checkpoint, *, appended: bool = False) -> None:
    """Raise ``IllegalHistory`` unless ``new`` may be committed over ``stored`` (§9.1).

    Both are valid checkpoints (a store checks ``new`` first). The cost is a
    serialization of both ``progress`` messages and a byte comparison, plus
    a few field reads; ``IllegalHistory.rule`` names the broken rule and
    ``detail`` what differs. With ``appended``, ``new`` is a delta's checked
    probe (FORMAT.md §13.3), whose trial log holds only entries appended to
    the stored one: the trial-log rules hold by construction and are not
    looked at, so the cost no longer grows with the log.
    """
    session_id = stored.session_id
    if new.session_id != session_id:
        _refuse(session_id, "history.session_id", f"new checkpoint is of {_show(new.session_id)}")
    if stored.status in TERMINAL:
        _refuse(
            session_id,
            "history.terminal",
            f"the session is {_status(stored.status)}; nothing may follow it (fork it instead)",
        )
    for field, rule in _IDENTITY:
        before, after = getattr(stored, field), getattr(new, field)
        if before != after:
            _refuse(session_id, rule, f"{field} changed from {_show(before)} to {_show(after)}")
    if (stored.status, new.status) not in ALLOWED_TRANSITIONS:
        _refuse(
            session_id,
            "history.transition",
            f"{_status(stored.status)} cannot become {_status(new.status)}",
        )
    if not appended:
        _check_trial_log(session_id, stored.progress, new.progress)
    for field in _COUNTERS:
        before, after = getattr(stored.progress, field), getattr(new.progress, field)
        if after < before:
            _refuse(
                session_id, "history.counters", f"progress.{field} went from {before} to {after}"
            )


def _check_trial_log(session_id: str, stored: Progress, new: Progress) -> None:
    """Refuse unless ``stored.trial_log`` is an unchanged prefix of ``new.trial_log``."""
    kept, now = len(stored.trial_log), len(new.trial_log)
    if now < kept:
        _refuse(
            session_id,
            "history.trial_log_shortened",
            f"the trial log went from {kept} entries to {now}",
        )
    if kept == 0:
        return
    before = stored.SerializeToString(deterministic=True)
    after = new.SerializeToString(deterministic=True)
    # ``before`` is the log's entries, then ``rest`` (the other known fields),
    # then the unknown fields, if any (a later minor version's). ``rest`` is
    # found from the end, so ``span`` is never short of the entries: it is
    # exact unless the unknown fields hold the bytes of ``rest`` too, and a
    # longer span (also -1, all but the last byte) can only fail the fast
    # comparison, never pass it.
    span = before.rfind(_without_log(stored))
    if after.startswith(memoryview(before)[:span]):
        return  # entries are self-delimiting: equal bytes are equal entries
    old_log, new_log = stored.trial_log, new.trial_log
    for i in range(kept):
        if old_log[i].SerializeToString(deterministic=True) != new_log[i].SerializeToString(
            deterministic=True
        ):
            _refuse(
                session_id,
                "history.trial_log_rewritten",
                f"progress.trial_log[{i}] differs from the stored entry",
            )


def _without_log(progress: Progress) -> bytes:
    """The serialized known fields of ``progress`` other than the trial log."""
    rest = Progress()
    for field, value in progress.ListFields():
        if field.number == Progress.TRIAL_LOG_FIELD_NUMBER:
            continue
        if field.message_type is not None:
            getattr(rest, field.name).CopyFrom(value)
        else:
            setattr(rest, field.name, value)
    return rest.SerializeToString(deterministic=True)


def fork(cp: Checkpoint, new_session_id: str) -> Checkpoint:
    """A copy of ``cp`` under ``new_session_id``, running, that may go on where ``cp`` stopped.

    The copy keeps the trial log, the best trial, the counters, the sampler
    (format and blob), the options and the direction; it is ``running``, has
    no ``terminal_reason``, and its ``created_at`` and ``updated_at`` are
    now. ``cp`` is left as it is. ``TypeError`` for an id that is not a str,
    ``InvalidCheckpoint`` for a copy that is not valid (an empty id).
    """
    if not isinstance(new_session_id, str):
        raise TypeError(f"new_session_id must be a str, not {type(new_session_id).__name__}")
    copy = Checkpoint()
    copy.CopyFrom(cp)
    copy.format = FORMAT_ID
    copy.session_id = new_session_id
    copy.status = SESSION_STATUS_RUNNING
    copy.ClearField("terminal_reason")
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
    for stamp in (copy.created_at, copy.updated_at):
        stamp.seconds = seconds
        stamp.nanos = nanos
    check(copy)
    return copy


def _refuse(session_id: str, rule: str, detail: str) -> NoReturn:
    raise IllegalHistory(session_id, rule, detail)


def _status(number: int) -> str:
    return STATUS_NAMES.get(number, f"status {number}")


def _show(value: object) -> str:
    """A value for a refusal's detail, at most about 80 characters whatever its size."""
    if isinstance(value, bytes):
        text = value.hex()
    elif isinstance(value, Timestamp):
        text = f"{value.seconds}.{value.nanos:09d}s"
    else:
        text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."
