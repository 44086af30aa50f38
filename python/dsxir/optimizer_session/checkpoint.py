"""The checkpoint of an optimizer session: build, encode, decode, gate, transition.

A checkpoint is the generated protobuf message
:class:`dsxir.optimizer_session.v1.checkpoint_pb2.Checkpoint`; its state lives
in the message, and the transitions here mutate it in place, at a cost that
does not grow with the trial log. FORMAT.md is the normative description of
the bytes and of every rule enforced here.

- :func:`encode` writes the canonical bytes and refuses (``InvalidCheckpoint``,
  a ``ValueError`` naming the field) any checkpoint :func:`decode` would refuse.
- Every writer (:func:`new`, the transitions, :func:`encode`, :func:`from_json`)
  refuses credentials (FORMAT.md §10, :mod:`~dsxir.optimizer_session.credentials`)
  unless asked to redact them with ``redact_secrets=True``; :func:`decode`
  does not screen.
- :func:`decode` takes any bytes and returns a valid checkpoint or raises
  ``ResumeMismatch(reason="checkpoint_shape")`` naming the field; nothing else.
- :func:`check_resume` is the gate a resuming optimizer passes first.
- A session's ``direction`` (``"higher"``, the default, or ``"lower"``) says
  which scores are better; :func:`record_trial` tracks the best by it.
"""

from __future__ import annotations

import hashlib
import numbers
import struct
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, Literal

from google.protobuf import json_format

from dsxir.errors import (
    AlreadyTerminal,
    InvalidCheckpoint,
    InvalidTransition,
    ResumeMismatch,
)
from dsxir.optimizer_session import grammar, rules
from dsxir.optimizer_session.atom import Atom
from dsxir.optimizer_session.credentials import (
    screen_option,
    screen_term_bytes,
    screen_text,
)
from dsxir.optimizer_session.statuses import STATUS_NAMES, TERMINAL
from dsxir.optimizer_session.terms import (
    framed_term_bytes,
    from_term,
    map_body,
    term_bytes,
    to_term,
)
from dsxir.optimizer_session.v1.checkpoint_pb2 import (
    DIRECTION_HIGHER,
    DIRECTION_LOWER,
    SESSION_STATUS_CANCELLED,
    SESSION_STATUS_COMPLETED,
    SESSION_STATUS_FAILED,
    SESSION_STATUS_PAUSED,
    SESSION_STATUS_RUNNING,
    TRIAL_STATUS_ERROR,
    TRIAL_STATUS_OK,
    Checkpoint,
)
from dsxir.optimizer_session.validate import (
    FORMAT_ID,
    MAX_CHECKPOINT_BYTES,
    check,
    check_parsed,
    seal_body,
    sealed_bytes,
)

__all__ = [
    "DIRECTIONS",
    "FORMAT_ID",
    "MAX_CHECKPOINT_BYTES",
    "Atom",
    "Checkpoint",
    "Direction",
    "cancel",
    "canonicalize",
    "check_resume",
    "complete",
    "decode",
    "direction_name",
    "encode",
    "fail",
    "from_json",
    "from_term",
    "hash_trainset",
    "new",
    "pause",
    "record_trial",
    "resume",
    "status_name",
    "to_json",
    "to_term",
]

_TRAINSET_DOMAIN = b"dsxir.trainset.v1\n"
_pack_u64 = struct.Struct(">Q").pack

Direction = Literal["higher", "lower"]
"""Which scores a session prefers: ``"higher"`` (the default) or ``"lower"``."""

DIRECTIONS: dict[str, int] = {"higher": DIRECTION_HIGHER, "lower": DIRECTION_LOWER}
"""``Direction`` numbers of the schema by name."""


def status_name(cp: Checkpoint) -> str:
    """The session's status as a word: running, paused, completed, failed or cancelled."""
    return STATUS_NAMES.get(cp.status, "unspecified")


def direction_name(cp: Checkpoint) -> Direction:
    """``"lower"`` when lower scores are better, ``"higher"`` otherwise (also for v1.0).

    Raises ``InvalidCheckpoint`` (path ``direction``) for a number the
    format does not define, which no decoded checkpoint holds.
    """
    if cp.direction == DIRECTION_HIGHER:
        return "higher"
    if cp.direction == DIRECTION_LOWER:
        return "lower"
    raise InvalidCheckpoint("direction", f"unknown direction {cp.direction}", rules.DIRECTION_KNOWN)


def _stamp_now(cp: Checkpoint, *fields: str) -> None:
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
    for name in fields:
        stamp = cp.progress.started_at if name == "started_at" else getattr(cp, name)
        stamp.seconds = seconds
        stamp.nanos = nanos


# --- building -------------------------------------------------------------------


def new(
    *,
    session_id: str,
    optimizer: str,
    trainset_hash: bytes,
    sampler_blob: bytes,
    sampler_format: tuple[str, int],
    optimizer_opts: Mapping[str, Any] | Iterable[tuple[str, Any]] = (),
    program_module: str | None = None,
    direction: Direction = "higher",
    redact_secrets: bool = False,
) -> Checkpoint:
    """Build the first checkpoint of a new session: running, empty progress, stamped now.

    ``direction`` says which scores are better: ``"higher"`` (written as the
    absent field 15, as in v1.0) or ``"lower"``; anything else is refused,
    a non-str with ``TypeError``, another str with ``InvalidCheckpoint``
    (path ``direction``). The checkpoint carries format identifier
    :data:`FORMAT_ID`.

    ``optimizer_opts`` is a mapping or a sequence of ``(key, value)`` pairs
    (order kept, keys may repeat). Credentials in the options (FORMAT.md §10:
    a key that names one, a secret-shaped text anywhere) are refused with
    ``InvalidCheckpoint`` naming the path unless ``redact_secrets`` is true,
    which stores ``[redacted]`` in their place. Refuses (``InvalidCheckpoint``) an empty session id
    or optimizer, a hash that is not 32 bytes and a sampler version below 1;
    ``TypeError`` for arguments of the wrong type.
    """
    _require(isinstance(session_id, str), "session_id must be a str", session_id)
    _require(isinstance(optimizer, str), "optimizer must be a str", optimizer)
    _require(isinstance(trainset_hash, bytes), "trainset_hash must be bytes", trainset_hash)
    _require(
        isinstance(sampler_blob, (bytes, bytearray)), "sampler_blob must be bytes", sampler_blob
    )
    _require(
        isinstance(sampler_format, tuple) and len(sampler_format) == 2,
        "sampler_format must be a (module, version) pair",
        sampler_format,
    )
    module, version = sampler_format
    _require(isinstance(module, str), "sampler_format module must be a str", module)
    _require(
        isinstance(version, numbers.Integral) and not isinstance(version, bool),
        "sampler_format version must be an int",
        version,
    )
    version = int(version)
    if not 1 <= version <= 0xFFFFFFFF:
        raise InvalidCheckpoint(
            "sampler_format.version",
            "must be in [1, 2^32)",
            rules.SAMPLER_FORMAT_VERSION_MIN if version < 1 else None,
        )
    _require(
        program_module is None or isinstance(program_module, str),
        "program_module must be a str or None",
        program_module,
    )
    _require(isinstance(direction, str), "direction must be 'higher' or 'lower'", direction)
    if direction not in DIRECTIONS:
        raise InvalidCheckpoint("direction", f"must be 'higher' or 'lower', got {direction[:80]!r}")

    cp = Checkpoint(
        format=FORMAT_ID,
        session_id=session_id,
        optimizer=optimizer,
        trainset_hash=trainset_hash,
        sampler_blob=bytes(sampler_blob),
        status=SESSION_STATUS_RUNNING,
    )
    if direction == "lower":
        cp.direction = DIRECTION_LOWER
    cp.sampler_format.module = module
    cp.sampler_format.version = version
    if program_module is not None:
        cp.program_module = program_module
    pairs = optimizer_opts.items() if isinstance(optimizer_opts, Mapping) else optimizer_opts
    for i, pair in enumerate(pairs):
        _require(
            isinstance(pair, tuple) and len(pair) == 2,
            f"optimizer_opts[{i}] must be a (key, value) pair",
            pair,
        )
        key, value = pair
        _require(isinstance(key, str), f"optimizer_opts[{i}] key must be a str", key)
        raw = term_bytes(value, root=f"optimizer_opts[{i}].value")
        raw = screen_option(i, key, raw, redact=redact_secrets, value=value)
        cp.optimizer_opts.add(key=key).value.MergeFromString(raw)
    cp.progress.SetInParent()
    _stamp_now(cp, "created_at", "updated_at", "started_at")
    check(cp)
    return cp


def _require(condition: bool, message: str, value: object) -> None:
    """``TypeError`` naming what is accepted (``message``) and the type received."""
    if not condition:
        kind = type(value)
        name = (
            kind.__name__
            if kind.__module__ == "builtins"
            else f"{kind.__module__}.{kind.__qualname__}"
        )
        raise TypeError(f"{message}, not {name}")


# --- bytes ----------------------------------------------------------------------


def encode(cp: Checkpoint, *, redact_secrets: bool = False) -> bytes:
    """The canonical bytes of ``cp`` (FORMAT.md §2): its body, then the CRC-32C trailer.

    Refuses (``InvalidCheckpoint`` naming the field and the rule) a
    checkpoint that :func:`decode` would refuse, so no invalid bytes are ever
    written; that includes bytes over the size limit (``input.too_large``,
    the trailer counted) or the weight limit (``input.weight``), both at
    ``<input>``, so no store ever acknowledges a checkpoint it could not read
    back. Refuses as well a checkpoint holding a credential (FORMAT.md §10),
    however it was built; with ``redact_secrets`` the bytes written have
    ``[redacted]`` in place of each one, and ``cp`` itself is left as it is.
    """
    return sealed_bytes(cp, redact=redact_secrets)


def decode(
    data: bytes | bytearray | memoryview, *, meanwhile: Callable[[], None] | None = None
) -> Checkpoint:
    """Read checkpoint bytes, trusting nothing about them.

    Returns a checkpoint that keeps every rule of FORMAT.md, or raises
    ``ResumeMismatch(reason="checkpoint_shape")`` whose ``field`` names the
    offending field or message (``<input>`` for the size, the trailer, the
    checksum and the weight) and whose ``rule`` is the id of the broken rule
    (``input.too_large``, ``input.checksum``, ``wire.order``, … FORMAT.md
    §7.1). Only the canonical bytes of §2 are accepted: bytes in another
    protobuf encoding go through :func:`canonicalize` first. Unknown fields
    of a newer minor version are kept and written back by :func:`encode`.
    The size limit counts the real length in bytes of any buffer given.

    ``meanwhile``, when given, is other work of the caller's done while the
    bytes are checked (a second thread checks a large input in C, see
    ``grammar.read_checkpoint``); the caller keeps its outcome, and looks at
    it only when ``decode`` returns.
    """
    raw = _input_bytes(data, "decode")
    try:
        body, valid = grammar.read_checkpoint(raw, meanwhile=meanwhile)
    except grammar.GrammarError as exc:
        raise _shape(None, exc.path, exc.detail, exc.rule) from None
    cp = _parsed(body)
    return cp if valid else _validated(cp, canonical=True)


def canonicalize(data: bytes | bytearray | memoryview, *, redact_secrets: bool = False) -> bytes:
    """Rewrite a checkpoint received in another protobuf encoding as canonical bytes (§2.6).

    A rewrite, never done by :func:`decode`: ``data`` is parsed by the
    protobuf runtime, which accepts any encoding of a Checkpoint (fields out
    of order, defaults written, padded varints), with or without the
    trailer of FORMAT.md §2.1: when the last 9 bytes start with the trailer
    tag they are the trailer, and its CRC-32C must match the bytes before it
    (else ``input.checksum``). The message is then checked like
    :func:`decode` checks (the same ``ResumeMismatch`` naming the field and
    rule; bytes the runtime cannot parse are refused at ``<input>`` with no
    rule id, FORMAT.md §7.1 having none for them) and written as
    :func:`encode` writes (refusing a credential with ``InvalidCheckpoint``
    unless ``redact_secrets``). Unknown fields are kept where the runtime
    keeps them, after the known fields. The result equals ``data`` exactly
    when ``data`` was canonical.
    """
    raw = _input_bytes(data, "canonicalize")
    size = len(raw)
    body = raw
    if size >= grammar.TRAILER_SIZE and raw[size - 9 : size - 4] == grammar.TRAILER_TAG:
        body = raw[: size - 9]
        if grammar.seal(body) != raw:
            raise _shape(
                None, "<input>", "the checksum does not match the bytes", rules.INPUT_CHECKSUM
            )
    cp = Checkpoint()
    try:
        cp.ParseFromString(body)
    except Exception as exc:  # any parse failure of untrusted bytes is a refusal
        raise _shape(None, "<input>", f"not a protobuf checkpoint ({exc})", None) from None
    _validated(cp)
    return encode(cp, redact_secrets=redact_secrets)


def _input_bytes(data: bytes | bytearray | memoryview, name: str) -> bytes:
    """``data`` as bytes, refused over the size limit by its real length in bytes."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"{name} takes bytes, not {type(data).__name__}")
    size = data.nbytes if isinstance(data, memoryview) else len(data)
    if size > MAX_CHECKPOINT_BYTES:
        raise _shape(None, "<input>", _too_long(size), rules.INPUT_TOO_LARGE)
    raw = data if type(data) is bytes else bytes(data)
    if len(raw) != size:  # pragma: no cover - a buffer whose bytes differ from its nbytes
        raise TypeError(f"{name} takes a contiguous buffer")
    return raw


def _parsed(body: bytes | memoryview) -> Checkpoint:
    """The message of a body the grammar accepted; the runtime cannot refuse it."""
    cp = Checkpoint()
    try:
        cp.ParseFromString(body)  # type: ignore[arg-type]  # the runtime reads any buffer
    except Exception as exc:  # pragma: no cover - the grammar admits only what upb parses
        raise _shape(
            None, "<input>", f"the protobuf runtime refused bytes the grammar accepts ({exc})", None
        ) from None
    return cp


def _validated(cp: Checkpoint, *, canonical: bool = False) -> Checkpoint:
    """``cp`` when it keeps every rule, else ``ResumeMismatch`` naming the field.

    With ``canonical`` (``cp`` was parsed from bytes the grammar accepted,
    whose C check refused or did not run) the Python check runs on ``cp``
    directly; otherwise :func:`~.validate.check_parsed` decides.
    """
    try:
        if canonical:
            check(cp)
        else:
            check_parsed(cp)
    except InvalidCheckpoint as exc:
        raise _shape(cp.session_id or None, exc.path, exc.detail, exc.rule) from None
    return cp


def _too_long(size: int) -> str:
    return f"{size} bytes, over the limit of {MAX_CHECKPOINT_BYTES}"


def _shape(session_id: str | None, field: str, detail: str, rule: str | None) -> ResumeMismatch:
    return ResumeMismatch(session_id, "checkpoint_shape", field=field, detail=detail, rule=rule)


def to_json(cp: Checkpoint, *, indent: int | None = 2) -> str:
    """The proto3 JSON form of a valid checkpoint (for people and tools, not hashing).

    Refuses (``InvalidCheckpoint``) what :func:`encode` would refuse, but
    for the credential screen.
    """
    seal_body(cp.SerializeToString(deterministic=True))
    check(cp)
    return json_format.MessageToJson(cp, indent=indent)


def from_json(text: str | bytes, *, redact_secrets: bool = False) -> Checkpoint:
    """Read the proto3 JSON form, with the same validation as :func:`decode`.

    JSON is written by people and tools, so this is a writer too: a
    credential (FORMAT.md §10) is refused with ``InvalidCheckpoint`` naming
    the field, or replaced by ``[redacted]`` with ``redact_secrets``.
    """
    if len(text) > MAX_CHECKPOINT_BYTES:
        raise _shape(None, "<input>", _too_long(len(text)), rules.INPUT_TOO_LARGE)
    cp = Checkpoint()
    try:
        json_format.Parse(text, cp)
    except Exception as exc:  # any parse failure of untrusted text is a refusal
        raise _shape(None, "<input>", f"not a JSON checkpoint ({exc})", None) from None
    _validated(cp)
    sealed_bytes(cp, redact=redact_secrets, in_place=True)
    return cp


# --- trainset -------------------------------------------------------------------


def hash_trainset(trainset: Iterable[Any]) -> bytes:
    """SHA-256 fingerprint of an ordered trainset (FORMAT.md §6), 32 bytes.

    Each example is hashed as its canonical Term bytes, length-framed, after a
    domain separator and the example count: map insertion order does not
    matter; any change of value, type (``1``/``1.0``/``True``/``"1"``) or
    example order does. Mappings, objects with ``toDict()`` or ``items()`` and
    dataclass instances hash as maps. Raises ``TypeError`` naming the path
    (``trainset[3]['meta']``) for a value with no Term form.
    """
    examples = trainset if type(trainset) is list else list(trainset)
    digest = hashlib.sha256(_TRAINSET_DOMAIN)
    digest.update(_pack_u64(len(examples)))
    digest.update(framed_term_bytes(examples, root="trainset"))
    return digest.digest()


# --- the resume gate ------------------------------------------------------------


def check_resume(
    cp: Checkpoint,
    *,
    optimizer: str,
    sampler_format: tuple[str, int | Collection[int]],
    trainset: Iterable[Any] | None = None,
    trainset_hash: bytes | None = None,
    direction: Direction | None = None,
) -> None:
    """Refuse to resume a session that cannot safely go on (FORMAT.md §8).

    ``sampler_format`` is ``(module, version)`` where ``version`` may be a
    collection of accepted versions. Raises ``AlreadyTerminal`` for a
    completed, failed or cancelled session, then ``ResumeMismatch`` with
    reason ``optimizer``, ``sampler_format``, ``sampler_version``,
    ``trainset_hash`` or ``direction``. The trainset is checked only when
    ``trainset`` or ``trainset_hash`` is given (not both), the direction
    only when ``direction`` is given.
    """
    if trainset is not None and trainset_hash is not None:
        raise TypeError("give trainset or trainset_hash, not both")
    sid = cp.session_id
    if cp.status in TERMINAL:
        raise AlreadyTerminal(sid, status_name(cp))
    if cp.optimizer != optimizer:
        raise ResumeMismatch(sid, "optimizer", optimizer, cp.optimizer)
    module, accepted = sampler_format
    if cp.sampler_format.module != module:
        raise ResumeMismatch(sid, "sampler_format", module, cp.sampler_format.module)
    versions = {accepted} if isinstance(accepted, int) else set(accepted)
    if cp.sampler_format.version not in versions:
        expected = accepted if isinstance(accepted, int) else sorted(versions)
        raise ResumeMismatch(sid, "sampler_version", expected, cp.sampler_format.version)
    if trainset is not None:
        trainset_hash = hash_trainset(trainset)
    if trainset_hash is not None and trainset_hash != cp.trainset_hash:
        raise ResumeMismatch(sid, "trainset_hash", trainset_hash, cp.trainset_hash)
    if direction is not None and direction != direction_name(cp):
        raise ResumeMismatch(sid, "direction", direction, direction_name(cp))


# --- transitions ----------------------------------------------------------------


def _require_status(cp: Checkpoint, action: str, *allowed: int) -> None:
    if cp.status in TERMINAL:
        raise AlreadyTerminal(cp.session_id, status_name(cp))
    if cp.status not in allowed:
        raise InvalidTransition(cp.session_id, status_name(cp), action)


def record_trial(
    cp: Checkpoint,
    *,
    score: float | None,
    status: Literal["ok", "error"] = "ok",
    candidate_id: str | None = None,
    stats: Mapping[str, Any] | None = None,
    duration_ms: int = 0,
    error: Mapping[str, Any] | BaseException | None = None,
    error_class: str | None = None,
    sampler_blob: bytes | None = None,
    best_program_artifact: Mapping[str, Any] | None = None,
    redact_secrets: bool = False,
) -> int:
    """Append the next finished trial to a running session; return its index.

    Counts the attempt and the ok or error outcome; the trial becomes best
    only when it is ok, has a score, and that score is strictly better than
    the best so far: greater when the session's direction is higher, less
    when it is lower. Of equal scores the first stays best; -0.0 and 0.0
    are equal here (neither replaces the other), while the best score
    keeps the bits of the trial that set it. ``error`` may be an exception, stored
    as ``{"class", "message"}`` with ``error_class`` defaulting to its type.
    ``sampler_blob`` and ``best_program_artifact``, when given, replace the
    stored ones. Credentials (FORMAT.md §10) in ``candidate_id``, ``stats``,
    ``error`` (an exception's text included) and ``best_program_artifact``
    are refused naming the path (``error['message']``), or replaced by
    ``[redacted]`` with ``redact_secrets``. Everything is checked before
    anything changes: NaN scores, credentials and stats/errors with no Term
    form are refused and leave ``cp`` as it was.
    """
    _require_status(cp, "record a trial", SESSION_STATUS_RUNNING)
    if status not in ("ok", "error"):
        raise InvalidCheckpoint("status", f"must be 'ok' or 'error', got {status!r}")
    if score is not None:
        _require(
            isinstance(score, numbers.Real) and not isinstance(score, bool),
            "score must be a real number (int, float or a numpy scalar) or None",
            score,
        )
        score = float(score)
        if score != score:
            raise InvalidCheckpoint("score", "NaN is not allowed", rules.FLOAT_NAN)
    _require(
        isinstance(duration_ms, numbers.Integral) and not isinstance(duration_ms, bool),
        "duration_ms must be an int (or a numpy integer)",
        duration_ms,
    )
    duration_ms = int(duration_ms)
    if not 0 <= duration_ms < 1 << 64:
        raise InvalidCheckpoint("duration_ms", f"must be in [0, 2^64), got {duration_ms}")
    if isinstance(error, BaseException):
        error_class = error_class or type(error).__qualname__
        error = {"class": type(error).__qualname__, "message": str(error)}
    if candidate_id is not None:
        _require(isinstance(candidate_id, str), "candidate_id must be a str or None", candidate_id)
        candidate_id = screen_text(candidate_id, path="candidate_id", redact=redact_secrets)
    stats_body = _map_screened(stats, "stats", redact_secrets)
    error_body = _map_screened(error, "error", redact_secrets)
    artifact_body = _map_screened(best_program_artifact, "best_program_artifact", redact_secrets)

    progress = cp.progress
    idx = len(progress.trial_log)
    ok = status == "ok"
    entry = progress.trial_log.add(
        trial_idx=idx, status=TRIAL_STATUS_OK if ok else TRIAL_STATUS_ERROR, duration_ms=duration_ms
    )
    if candidate_id is not None:
        entry.candidate_id = candidate_id
    if score is not None:
        entry.score = score
    if stats_body is not None:
        entry.stats.MergeFromString(stats_body)
    if error_body is not None:
        entry.error.MergeFromString(error_body)
    if error_class is not None:
        entry.error_class = error_class
    progress.attempts += 1
    if ok:
        progress.completed += 1
        if score is not None and (
            not progress.HasField("best_score")
            or (
                score < progress.best_score
                if cp.direction == DIRECTION_LOWER
                else score > progress.best_score
            )
        ):
            progress.best_score = score
            progress.best_trial_idx = idx
    else:
        progress.errors += 1
    if sampler_blob is not None:
        cp.sampler_blob = bytes(sampler_blob)
    if artifact_body is not None:
        cp.best_program_artifact.Clear()
        cp.best_program_artifact.MergeFromString(artifact_body)
    _stamp_now(cp, "updated_at")
    return idx


def _map_screened(value: Any, root: str, redact: bool) -> bytes | None:
    if value is None:
        return None
    raw = map_body(value, root=root)
    return screen_term_bytes(raw, root=root, redact=redact, is_map=True, value=value)


def pause(cp: Checkpoint) -> None:
    """running → paused."""
    _require_status(cp, "pause", SESSION_STATUS_RUNNING)
    _move(cp, SESSION_STATUS_PAUSED, None)


def resume(cp: Checkpoint) -> None:
    """paused → running."""
    _require_status(cp, "resume", SESSION_STATUS_PAUSED)
    _move(cp, SESSION_STATUS_RUNNING, None)


def cancel(cp: Checkpoint, reason: Any = None, *, redact_secrets: bool = False) -> None:
    """running or paused → cancelled, with an optional reason (any Term value).

    A credential in the reason (FORMAT.md §10) is refused naming ``reason…``,
    or replaced by ``[redacted]`` with ``redact_secrets``; so for
    :func:`complete` and :func:`fail`.
    """
    _require_status(cp, "cancel", SESSION_STATUS_RUNNING, SESSION_STATUS_PAUSED)
    _move(cp, SESSION_STATUS_CANCELLED, reason, redact_secrets)


def complete(cp: Checkpoint, reason: Any = None, *, redact_secrets: bool = False) -> None:
    """running → completed, with an optional reason (any Term value)."""
    _require_status(cp, "complete", SESSION_STATUS_RUNNING)
    _move(cp, SESSION_STATUS_COMPLETED, reason, redact_secrets)


def fail(cp: Checkpoint, reason: Any = None, *, redact_secrets: bool = False) -> None:
    """running → failed, with an optional reason (any Term value)."""
    _require_status(cp, "fail", SESSION_STATUS_RUNNING)
    _move(cp, SESSION_STATUS_FAILED, reason, redact_secrets)


def _move(cp: Checkpoint, status: int, reason: Any, redact: bool = False) -> None:
    reason_bytes = (
        None
        if reason is None
        else screen_term_bytes(
            term_bytes(reason, root="reason"), root="reason", redact=redact, value=reason
        )
    )
    cp.status = status  # type: ignore[assignment]
    cp.ClearField("terminal_reason")
    if reason_bytes is not None:
        cp.terminal_reason.MergeFromString(reason_bytes)
    _stamp_now(cp, "updated_at")
