"""The rules a checkpoint message must keep (FORMAT.md §1-§4), in the order of §7.

:func:`check` raises :class:`~dsxir.errors.InvalidCheckpoint` naming the first
offending field; ``decode`` turns that into a ``ResumeMismatch`` and
``encode`` raises it as is, so no writer produces bytes a reader refuses.

:func:`checked_bytes` and :func:`check_parsed` (used by ``decode``) are the
fast forms: when the compiled accelerator is in use (see
``dsxir.optimizer_session.accel``) they check bytes in C, the ones just
serialized or the ones just parsed, and run :func:`check` only on a refusal,
for the path and detail of the first failure. :func:`written_bytes` (used by
every writer: ``encode``, and so every store) adds the credential screen of
FORMAT.md §10 (:mod:`~dsxir.optimizer_session.credentials`), in the same C
pass when it can; readers never screen. :func:`sealed_bytes` is what every
writer writes: those bytes checked by the grammar of FORMAT.md §2 (size and
weight included) and sealed with the CRC-32C trailer. With the accelerator,
one C pass (``credentials.seal_screened``) settles all of it when nothing is
wrong and no field is unknown; anything else takes the path above.
"""

from __future__ import annotations

import re
import struct

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from dsxir.errors import InvalidCheckpoint
from dsxir.optimizer_session import accel, credentials, grammar, rules
from dsxir.optimizer_session.term_rules import check_term, check_term_map
from dsxir.optimizer_session.v1.checkpoint_pb2 import (
    DIRECTION_HIGHER,
    DIRECTION_LOWER,
    SESSION_STATUS_CANCELLED,
    SESSION_STATUS_RUNNING,
    TRIAL_STATUS_ERROR,
    TRIAL_STATUS_OK,
    Checkpoint,
    Progress,
)

__all__ = [
    "FORMAT_ID",
    "FORMAT_MAJOR",
    "MAX_CHECKPOINT_BYTES",
    "check",
    "check_extension",
    "check_parsed",
    "checked_bytes",
    "seal_body",
    "sealed_bytes",
    "written_bytes",
]

FORMAT_MAJOR = 1
FORMAT_ID = "dsxir.optimizer_session.checkpoint/v1.1"
"""The identifier this library writes in field 1 of every new checkpoint.

Readers accept every minor of major 1; v1.1 added ``direction`` (field 15).
"""

MAX_CHECKPOINT_BYTES = grammar.MAX_CHECKPOINT_BYTES
"""Readers refuse longer input (trailer included) before anything else; writers do not write it."""

_FORMAT_RE = re.compile(r"dsxir\.optimizer_session\.checkpoint/v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
_MIN_SECONDS = -62_135_596_800
_MAX_SECONDS = 253_402_300_799


def check(cp: Checkpoint) -> None:
    """Refuse a checkpoint that breaks a rule of FORMAT.md, naming the field."""
    _check_all(cp, None, frozenset())


def check_extension(
    probe: Checkpoint, before: Progress, *, skip: frozenset[str] = frozenset()
) -> None:
    """:func:`check` of the checkpoint that ``probe`` makes after ``before``'s trial entries.

    ``before`` is the progress of a valid checkpoint and ``probe`` holds
    only the entries appended to its trial log (FORMAT.md §13.2). Raises
    what :func:`check` raises on ``probe`` with ``before``'s entries put
    first (the same rule, path and detail), walking the appended entries
    only; the fields named in ``skip``, taken unchanged from that valid
    checkpoint, are not walked again.
    """
    _check_all(probe, before, skip)


def _check_all(cp: Checkpoint, before: Progress | None, skip: frozenset[str]) -> None:
    _check_format(cp.format)
    if not cp.session_id:
        raise InvalidCheckpoint("session_id", "must not be empty", rules.SESSION_ID_REQUIRED)
    if not cp.optimizer:
        raise InvalidCheckpoint("optimizer", "must not be empty", rules.OPTIMIZER_REQUIRED)
    for i, option in enumerate(() if "optimizer_opts" in skip else cp.optimizer_opts):
        if not option.key:
            raise InvalidCheckpoint(
                f"optimizer_opts[{i}].key", "must not be empty", rules.OPTIMIZER_OPTS_KEY_REQUIRED
            )
        if not option.HasField("value"):
            raise InvalidCheckpoint(
                f"optimizer_opts[{i}].value", "is required", rules.OPTIMIZER_OPTS_VALUE_REQUIRED
            )
        check_term(option.value, f"optimizer_opts[{i}].value")
    if cp.HasField("program_module") and not cp.program_module:
        raise InvalidCheckpoint(
            "program_module", "must not be empty when present", rules.PROGRAM_MODULE_NOT_EMPTY
        )
    if len(cp.trainset_hash) != 32:
        raise InvalidCheckpoint(
            "trainset_hash",
            f"must be 32 bytes (SHA-256), got {len(cp.trainset_hash)}",
            rules.TRAINSET_HASH_LENGTH,
        )
    _check_timestamp(cp, "created_at")
    _check_timestamp(cp, "updated_at")
    _check_progress(cp, before)
    if cp.HasField("best_program_artifact") and "best_program_artifact" not in skip:
        check_term_map(cp.best_program_artifact, "best_program_artifact")
    if not cp.HasField("sampler_format"):
        raise InvalidCheckpoint("sampler_format", "is required", rules.SAMPLER_FORMAT_REQUIRED)
    if not cp.sampler_format.module:
        raise InvalidCheckpoint(
            "sampler_format.module", "must not be empty", rules.SAMPLER_FORMAT_MODULE_REQUIRED
        )
    if cp.sampler_format.version < 1:
        raise InvalidCheckpoint(
            "sampler_format.version", "must be at least 1", rules.SAMPLER_FORMAT_VERSION_MIN
        )
    if not SESSION_STATUS_RUNNING <= cp.status <= SESSION_STATUS_CANCELLED:
        raise InvalidCheckpoint(
            "status", f"unknown or unspecified status {cp.status}", rules.STATUS_KNOWN
        )
    if cp.HasField("terminal_reason") and "terminal_reason" not in skip:
        check_term(cp.terminal_reason, "terminal_reason")
    if not DIRECTION_HIGHER <= cp.direction <= DIRECTION_LOWER:
        raise InvalidCheckpoint(
            "direction", f"unknown direction {cp.direction}", rules.DIRECTION_KNOWN
        )


def checked_bytes(cp: Checkpoint) -> bytes:
    """:func:`check` ``cp``, then return its canonical bytes, serializing it once.

    With the accelerator, the bytes are checked in C and the Python check,
    the reference, runs only when C refuses: it raises with the path and
    detail of the first failure (tests/python/test_accel.py holds the two to
    the same verdicts).
    """
    fast_check = accel.check_canonical
    if fast_check is None:
        check(cp)
        return cp.SerializeToString(deterministic=True)
    data = cp.SerializeToString(deterministic=True)
    if not fast_check(data):
        check(cp)
    return data


def written_bytes(cp: Checkpoint, *, redact: bool = False, in_place: bool = False) -> bytes:
    """What a writer writes for ``cp``: :func:`checked_bytes`, screened for credentials.

    Refuses (``InvalidCheckpoint`` naming the field) what :func:`check`
    refuses, then a credential (FORMAT.md §10) unless ``redact``, which
    returns the bytes of ``cp`` with every credential redacted (``cp`` is
    changed only ``in_place``). With the accelerator one C pass over the
    serialized bytes settles both when nothing is wrong.
    """
    return _screened(cp, None, redact, in_place)


def _screened(cp: Checkpoint, data: bytes | None, redact: bool, in_place: bool) -> bytes:
    """:func:`written_bytes`, given ``cp``'s serialization when it was already made."""
    fast = credentials.check_screened
    if fast is None:
        if data is None:
            data = checked_bytes(cp)
        else:
            check(cp)
    else:
        if data is None:
            data = cp.SerializeToString(deterministic=True)
        if fast(data):
            return data
        check(cp)
    return credentials.screened_bytes(cp, data, redact=redact, in_place=in_place)


def sealed_bytes(cp: Checkpoint, *, redact: bool = False, in_place: bool = False) -> bytes:
    """The checkpoint bytes every writer writes for ``cp`` (FORMAT.md §2.5).

    Refuses what a reader would refuse, in a reader's order (FORMAT.md §7):
    the serialization goes through :func:`seal_body` (the size, the grammar,
    the weight) first, then :func:`written_bytes` (the rules of §1-§4 and
    the credential screen); redacted bytes are sealed in turn. With the
    accelerator, bytes that pass ``credentials.seal_screened`` (every rule
    and the screen, no unknown field, so the grammar holds by the runtime's
    serialization, the Term depth, the size and the weight) are sealed at
    once; the steps above run on whatever it declines.
    """
    data = cp.SerializeToString(deterministic=True)
    fast = credentials.seal_screened
    if fast is not None:
        done = fast(data)
        if done is not None:
            return done
    sealed = seal_body(data)
    written = _screened(cp, data, redact, in_place)
    return sealed if written is data or written == data else seal_body(written)


def seal_body(body: bytes) -> bytes:
    """A serialized body checked by the grammar (size, scan, weight) and sealed with its trailer.

    Refuses (``InvalidCheckpoint`` with the rule and path a reader would
    give) what a reader would refuse in the sealed bytes.
    """
    try:
        return grammar.sealed(body)
    except grammar.GrammarError as exc:
        raise InvalidCheckpoint(exc.path, exc.detail, exc.rule) from None


def check_parsed(cp: Checkpoint, data: bytes | None = None) -> None:
    """:func:`check` ``cp``, which was just parsed from ``data`` when given.

    With the accelerator, ``data`` itself is checked first (no serialization),
    which settles the common case of canonical input. When C refuses it, the
    Python check runs on ``cp`` directly: the grammar already holds ``data``
    to be the canonical serialization of ``cp`` (plus its unknown fields), so
    serializing ``cp`` again would only hold a second copy of the input in
    memory. Without ``data`` this is :func:`checked_bytes`; without the
    accelerator, :func:`check`.
    """
    fast_check = accel.check_canonical
    if fast_check is None:
        check(cp)
    elif data is None:
        checked_bytes(cp)
    elif not fast_check(data):
        check(cp)


def _check_format(format_id: str) -> None:
    if not format_id:
        raise InvalidCheckpoint(
            "format", "missing format identifier: not a dsxir checkpoint", rules.FORMAT_REQUIRED
        )
    match = _FORMAT_RE.fullmatch(format_id)
    if match is None:
        raise InvalidCheckpoint(
            "format", f"wrong format identifier {format_id[:80]!r}", rules.FORMAT_SHAPE
        )
    if int(match.group(1)) != FORMAT_MAJOR:
        raise InvalidCheckpoint(
            "format",
            f"unsupported major version {match.group(1)} (this reader reads 1)",
            rules.FORMAT_MAJOR,
        )


def _check_timestamp(message: Message, name: str, prefix: str = "") -> None:
    if not message.HasField(name):
        raise InvalidCheckpoint(prefix + name, "is required", rules.TIMESTAMP_REQUIRED)
    stamp: Timestamp = getattr(message, name)
    if not 0 <= stamp.nanos < 1_000_000_000:
        raise InvalidCheckpoint(
            prefix + name + ".nanos", "must be in [0, 1e9)", rules.TIMESTAMP_NANOS
        )
    if not _MIN_SECONDS <= stamp.seconds <= _MAX_SECONDS:
        raise InvalidCheckpoint(
            prefix + name + ".seconds", "outside 0001-01-01..9999-12-31", rules.TIMESTAMP_SECONDS
        )


def _check_progress(cp: Checkpoint, before: Progress | None) -> None:
    if not cp.HasField("progress"):
        raise InvalidCheckpoint("progress", "is required", rules.PROGRESS_REQUIRED)
    progress = cp.progress
    start = ok = error = 0
    if before is not None:  # a valid progress: its counters count its entries
        start, ok, error = len(before.trial_log), before.completed, before.errors
    ok_entries, error_entries = _check_trials(progress, start)
    _check_timestamp(progress, "started_at", "progress.")
    _check_best(progress, before)
    ok += ok_entries
    error += error_entries
    if progress.completed != ok:
        raise InvalidCheckpoint(
            "progress.completed",
            f"is {progress.completed}, but {ok} trials are ok",
            rules.COUNTERS_COMPLETED,
        )
    if progress.errors != error:
        raise InvalidCheckpoint(
            "progress.errors",
            f"is {progress.errors}, but {error} trials are errors",
            rules.COUNTERS_ERRORS,
        )
    if progress.attempts < ok + error:
        raise InvalidCheckpoint(
            "progress.attempts",
            f"is {progress.attempts}, less than completed + errors",
            rules.COUNTERS_ATTEMPTS,
        )


def _check_trials(progress: Progress, start: int) -> tuple[int, int]:
    """The ok and error entries of ``progress``'s trial log, numbered from ``start``, checked.

    With the accelerator, the entries are checked in C on their bytes; the
    Python walk below, the reference, runs when C refuses one, to name it.
    """
    fast = accel.check_trials
    if fast is not None and progress.trial_log:
        counted = fast(progress.SerializeToString(deterministic=True), start)
        if counted is not None:
            return counted[1], counted[2]
    ok = error = 0
    for i, entry in enumerate(progress.trial_log, start):
        if entry.trial_idx != i:
            raise InvalidCheckpoint(
                f"progress.trial_log[{i}].trial_idx",
                f"is {entry.trial_idx}, must be {i}",
                rules.TRIAL_TRIAL_IDX,
            )
        if entry.HasField("score") and entry.score != entry.score:
            raise InvalidCheckpoint(
                f"progress.trial_log[{i}].score", "NaN is not allowed", rules.FLOAT_NAN
            )
        status = entry.status
        if status == TRIAL_STATUS_OK:
            ok += 1
        elif status == TRIAL_STATUS_ERROR:
            error += 1
        else:
            raise InvalidCheckpoint(
                f"progress.trial_log[{i}].status",
                f"unknown or unspecified status {status}",
                rules.TRIAL_STATUS,
            )
        if entry.HasField("stats"):
            check_term_map(entry.stats, f"progress.trial_log[{i}].stats")
        if entry.HasField("error"):
            check_term_map(entry.error, f"progress.trial_log[{i}].error")
    return ok, error


def _check_best(progress: Progress, before: Progress | None) -> None:
    has_score = progress.HasField("best_score")
    has_idx = progress.HasField("best_trial_idx")
    if has_score and progress.best_score != progress.best_score:
        raise InvalidCheckpoint("progress.best_score", "NaN is not allowed", rules.FLOAT_NAN)
    if has_score != has_idx:
        raise InvalidCheckpoint(
            "progress.best_score" if has_idx else "progress.best_trial_idx",
            "best_score and best_trial_idx must be set together",
            rules.BEST_PAIR,
        )
    if not has_idx:
        return
    idx = progress.best_trial_idx
    log = progress.trial_log
    earlier = () if before is None else before.trial_log
    start = len(earlier)
    if idx >= start + len(log):
        raise InvalidCheckpoint(
            "progress.best_trial_idx", f"{idx} is past the trial log", rules.BEST_TRIAL_IDX_RANGE
        )
    best = log[idx - start] if idx >= start else earlier[idx]
    if best.status != TRIAL_STATUS_OK or not best.HasField("score"):
        raise InvalidCheckpoint(
            "progress.best_trial_idx",
            f"trial {idx} is not an ok trial with a score",
            rules.BEST_TRIAL_IDX_TRIAL,
        )
    if _bits(best.score) != _bits(progress.best_score):  # -0.0 is not 0.0
        raise InvalidCheckpoint(
            "progress.best_trial_idx",
            f"trial {idx} scored {best.score!r}, not best_score {progress.best_score!r}",
            rules.BEST_SCORE,
        )


def _bits(value: float) -> bytes:
    return struct.pack("<d", value)
