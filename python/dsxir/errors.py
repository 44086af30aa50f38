"""Errors of the dsxir checkpoint library.

Every error a caller may want to handle is a :class:`CheckpointError`. Errors
about a caller's data are also :class:`ValueError`, so code that treats bad
input generically still catches them.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

__all__ = [
    "AlreadyTerminal",
    "CheckpointError",
    "Conflict",
    "CorruptStore",
    "IllegalHistory",
    "InvalidCheckpoint",
    "InvalidDelta",
    "InvalidSessionId",
    "InvalidTransition",
    "LeaseHeld",
    "LeaseLost",
    "NotFound",
    "ResumeMismatch",
    "StoreUnavailable",
]


class CheckpointError(Exception):
    """Base class of every error raised by this library."""


class InvalidCheckpoint(CheckpointError, ValueError):
    """A checkpoint (or a value meant for one) breaks a rule of FORMAT.md.

    ``path`` names the offending field, e.g. ``progress.trial_log[3].score``;
    ``detail`` says what is wrong with it. ``rule`` is the id of the broken
    rule of spec/checkpoint-rules-v1.json (FORMAT.md §7.1, e.g. ``float.nan``),
    and the message ends with ``(rule <id>)``; it is ``None`` for a refusal
    that breaks no rule of the format (a credential, FORMAT.md §10, or an
    argument outside what the API accepts, such as a trial status ``"maybe"``).
    """

    def __init__(self, path: str, detail: str, rule: str | None = None) -> None:
        super().__init__(f"{path}: {detail}{_rule_suffix(rule)}")
        self.path = path
        self.detail = detail
        self.rule = rule


class InvalidDelta(CheckpointError, ValueError):
    """A checkpoint delta (FORMAT.md §13) cannot be read or does not fit its base.

    ``path`` names the offending field of the delta (``kept``,
    ``head.progress.trial_log[0].status``, ``<input>``), ``detail`` what is
    wrong, ``rule`` the id of the broken rule: a delta rule of
    spec/delta-rules-v1.json (``delta.base_trials``, …) or a rule of the byte
    grammar (``input.checksum``, ``wire.order``, …); the message ends with
    ``(rule <id>)``. A checkpoint that a delta makes and that breaks a rule
    of FORMAT.md §7 is an :class:`InvalidCheckpoint` instead.
    """

    def __init__(self, path: str, detail: str, rule: str) -> None:
        super().__init__(f"{path}: {detail}{_rule_suffix(rule)}")
        self.path = path
        self.detail = detail
        self.rule = rule


class ResumeMismatch(CheckpointError, ValueError):
    """A checkpoint cannot be used to resume a session.

    ``reason`` is one of ``checkpoint_shape`` (the bytes are not a valid
    checkpoint; ``field`` names the offending field and ``rule`` the id of
    the broken rule, as for :class:`InvalidCheckpoint`), ``optimizer``,
    ``sampler_format``, ``sampler_version``, ``trainset_hash`` or ``direction``
    (the gate of FORMAT.md §8), or ``optimizer_opts``, which the DSPy
    integration adds (its options differ from the session's).
    ``expected`` is what the caller asked for, ``got`` what the checkpoint
    holds; the message says which is which and what to do. ``rule`` is
    ``None`` for the other reasons.
    """

    def __init__(
        self,
        session_id: str | None,
        reason: str,
        expected: Any = None,
        got: Any = None,
        *,
        field: str | None = None,
        detail: str | None = None,
        rule: str | None = None,
    ) -> None:
        self.session_id = session_id
        self.reason = reason
        self.expected = expected
        self.got = got
        self.field = field
        self.detail = detail
        self.rule = rule
        if reason == "checkpoint_shape":
            message = f"checkpoint_shape: {field}: {detail}{_rule_suffix(rule)}"
        else:
            template = _GATE_MESSAGES.get(
                reason, "the checkpoint has {got}; this run expects {exp}."
            )
            message = f'cannot resume session "{session_id}": {reason}: ' + template.format(
                got=_show(got), exp=_show(expected)
            )
        super().__init__(message)


class AlreadyTerminal(CheckpointError):
    """The session has ended (completed, failed or cancelled); it cannot go on."""

    def __init__(self, session_id: str, status: str) -> None:
        super().__init__(f'session "{session_id}" is already terminal: status={status}')
        self.session_id = session_id
        self.status = status


class InvalidTransition(CheckpointError, ValueError):
    """A transition that the session's current (non-terminal) status does not allow."""

    def __init__(self, session_id: str, status: str, action: str) -> None:
        super().__init__(f'session "{session_id}" cannot {action} while {status}')
        self.session_id = session_id
        self.status = status
        self.action = action


class InvalidSessionId(CheckpointError, ValueError):
    """A session id that a store refuses (it could escape or confuse the store)."""


class NotFound(CheckpointError, KeyError):
    """No checkpoint is stored for the session."""

    def __init__(self, session_id: str) -> None:
        super().__init__(session_id)
        self.session_id = session_id

    def __str__(self) -> str:
        return f'no checkpoint stored for session "{self.session_id}"'


class Conflict(CheckpointError):
    """A compare-and-swap commit found another generation than the one expected."""

    def __init__(self, session_id: str, expected: int | None, actual: int | None) -> None:
        super().__init__(
            f'generation conflict for session "{session_id}": '
            f"expected={_show(expected)} stored={_show(actual)}"
        )
        self.session_id = session_id
        self.expected = expected
        self.actual = actual


class CorruptStore(CheckpointError):
    """Stored bytes are torn, truncated or damaged; ``path`` says where.

    ``kind`` names the damage of a store file with the refusal kinds of
    docs/store-file.md (``truncated``, ``body_checksum``, …) when the frame
    check found it, and is ``None`` otherwise.
    """

    def __init__(self, path: str, detail: str, kind: str | None = None) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path
        self.detail = detail
        self.kind = kind


class StoreUnavailable(CheckpointError, ConnectionError):
    """The storage behind a store (a database, a server) cannot be reached now.

    The operation may be retried later. For a commit the outcome is unknown:
    read the session's generation to learn whether it was committed.
    """


class IllegalHistory(CheckpointError, ValueError):
    """A commit that is not a legal successor of the stored generation (FORMAT.md §9.1).

    ``rule`` is the id of the broken rule, one of ``history.session_id``,
    ``history.optimizer``, ``history.trainset_hash``, ``history.created_at``,
    ``history.direction``, ``history.terminal`` (the stored session has
    ended), ``history.transition`` (a status change §9 does not allow),
    ``history.trial_log_shortened``, ``history.trial_log_rewritten`` and
    ``history.counters``; ``detail`` says what differs. Nothing is stored.
    """

    def __init__(self, session_id: str, rule: str, detail: str) -> None:
        super().__init__(f'illegal history for session "{session_id}": {rule}: {detail}')
        self.session_id = session_id
        self.rule = rule
        self.detail = detail


class LeaseHeld(CheckpointError):
    """Another worker holds the session's lease; ``expires_at`` is when it ends (UTC)."""

    def __init__(self, session_id: str, holder: str, expires_at: _dt.datetime) -> None:
        when = expires_at.astimezone(_dt.timezone.utc).isoformat(timespec="milliseconds")
        super().__init__(
            f'session "{session_id}" is held by {holder!r} until {when}; '
            "wait for its lease to end, or stop that worker"
        )
        self.session_id = session_id
        self.holder = holder
        self.expires_at = expires_at


class LeaseLost(CheckpointError):
    """The caller's lease on a session is no longer the session's lease.

    It was released, or it expired and another worker took the session over;
    the caller must stop writing to the session.
    """

    def __init__(self, session_id: str, detail: str = "") -> None:
        text = f'lease on session "{session_id}" lost'
        super().__init__(f"{text}: {detail}" if detail else text)
        self.session_id = session_id
        self.detail = detail


_GATE_MESSAGES = {
    "optimizer": (
        "the checkpoint was written by optimizer {got}; this run is {exp}. "
        "Resume with {got}, or start a new session."
    ),
    "sampler_format": (
        "the checkpoint's sampler is {got}; this run's is {exp}. "
        "Resume with sampler {got}, or start a new session."
    ),
    "sampler_version": (
        "the checkpoint holds sampler state version {got}; this run accepts {exp}. "
        "Accept version {got} if the sampler can read it, or start a new session."
    ),
    "trainset_hash": (
        "the checkpoint was made on the trainset with hash {got}; this run's hash is {exp}. "
        "Pass the same trainset, or start a new session."
    ),
    "direction": (
        "the checkpoint's scores are better when {got}; this run's are better when {exp}. "
        "Resume with direction {got}, or start a new session."
    ),
    "optimizer_opts": (
        "the checkpoint was made with options {got}; this run has {exp}. "
        "Pass the same options, or start a new session."
    ),
}
"""The resume gate's messages: those of FORMAT.md §8 are the same text in every language."""


def _rule_suffix(rule: str | None) -> str:
    return "" if rule is None else f" (rule {rule})"


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple, frozenset, set)):
        return "[" + ",".join(_show(v) for v in sorted(value)) + "]"
    return str(value)
