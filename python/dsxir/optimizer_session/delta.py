"""Checkpoint deltas (FORMAT.md §13): what one commit adds to the checkpoint before it.

A delta holds the new checkpoint's ``head`` (every field but the trial
entries its base already has and the fields it keeps from the base),
``base_trials`` (the base's trial count), ``base_generation`` (the store
generation of the base) and ``kept``, a bit set of the fields whose value is
the base's. :func:`apply` turns a base and a delta into the new checkpoint,
byte for byte the same in every language.

- :func:`encode_delta` / :func:`decode_delta`: sealed canonical bytes, read
  and written like a checkpoint's (§2), then the rules of §13.1; refusals
  are :class:`~dsxir.errors.InvalidDelta` with the rule id and path.
- :func:`apply`: the rules of §13.2, then every rule of §7 on the result
  (an :class:`~dsxir.errors.InvalidCheckpoint`, paths of the result).
- :func:`diff`: the delta a writer writes for ``new`` over ``base``.
- :class:`Baseline`: what a writer remembers of its last commit to build
  the next delta without keeping a copy of the whole checkpoint.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

from dsxir.errors import InvalidCheckpoint, InvalidDelta
from dsxir.optimizer_session import grammar, rules
from dsxir.optimizer_session.credentials import screened_bytes
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint, CheckpointDelta, Progress
from dsxir.optimizer_session.validate import (
    MAX_CHECKPOINT_BYTES,
    check_extension,
    sealed_bytes,
)

__all__ = [
    "DELTA_BASE_GENERATION",
    "DELTA_BASE_TRIALS",
    "DELTA_FORMAT",
    "DELTA_FORMAT_ID",
    "DELTA_HEAD",
    "DELTA_KEPT",
    "DELTA_KEPT_IN_HEAD",
    "DELTA_RULES",
    "DELTA_SESSION",
    "KEPT_MASK",
    "Baseline",
    "apply",
    "apply_in_place",
    "checked_probe",
    "decode_delta",
    "diff",
    "encode_delta",
    "merge",
    "merge_many",
]

DELTA_FORMAT_ID = "dsxir.optimizer_session.delta/v1.0"
"""The delta format identifier this library writes."""
KEPT_MASK = 0xFCF8
"""The fields a delta may keep from its base: 3-7 and 10-15, as bits."""

DELTA_FORMAT = "delta.format"
DELTA_BASE_GENERATION = "delta.base_generation"
DELTA_HEAD = "delta.head"
DELTA_KEPT = "delta.kept"
DELTA_KEPT_IN_HEAD = "delta.kept_in_head"
DELTA_SESSION = "delta.session"
DELTA_BASE_TRIALS = "delta.base_trials"
DELTA_RULES = (
    DELTA_FORMAT,
    DELTA_BASE_GENERATION,
    DELTA_HEAD,
    DELTA_KEPT,
    DELTA_KEPT_IN_HEAD,
    DELTA_SESSION,
    DELTA_BASE_TRIALS,
)
"""The ids of spec/delta-rules-v1.json, in its order."""

_FORMAT_RE = re.compile(r"dsxir\.optimizer_session\.delta/v1\.(0|[1-9][0-9]*)")
_FIELDS = Checkpoint.DESCRIPTOR.fields_by_number
_PROGRESS = Checkpoint.PROGRESS_FIELD_NUMBER
_TRIAL_LOG = Progress.TRIAL_LOG_FIELD_NUMBER
_KEEPABLE = tuple(_FIELDS[n] for n in sorted(_FIELDS) if KEPT_MASK >> n & 1)
_EMPTY = Checkpoint()


# --- bytes -------------------------------------------------------------------------------------


def decode_delta(data: bytes | bytearray | memoryview) -> CheckpointDelta:
    """Read delta bytes, trusting nothing: §2 with ``CheckpointDelta`` on top, then §13.1.

    Raises :class:`InvalidDelta` naming the first broken rule and its path.
    The head is not checked on its own (:func:`apply` checks what it makes).
    """
    raw = _input_bytes(data)
    try:
        body = grammar.read(raw, delta=True)
    except grammar.GrammarError as exc:
        raise InvalidDelta(exc.path, exc.detail, exc.rule) from None
    delta = CheckpointDelta()
    try:
        delta.ParseFromString(body)
    except Exception as exc:  # pragma: no cover - the grammar admits only what upb parses
        raise InvalidDelta(
            "<input>", f"the protobuf runtime refused bytes the grammar accepts ({exc})", ""
        ) from None
    _check_fields(delta)
    return delta


def encode_delta(delta: CheckpointDelta) -> bytes:
    """The sealed canonical bytes of ``delta``; refuses what :func:`decode_delta` refuses.

    The grammar and the limits first (:class:`InvalidDelta`), then §13.1,
    then the credential screen of FORMAT.md §10 over the head
    (:class:`~dsxir.errors.InvalidCheckpoint` with a ``head.`` path and no
    rule id), as a checkpoint writer screens what it writes.
    """
    if not isinstance(delta, CheckpointDelta):
        raise TypeError(f"encode_delta takes a CheckpointDelta, not {type(delta).__name__}")
    body = delta.SerializeToString(deterministic=True)
    try:
        sealed = grammar.sealed(body, delta=True)
    except grammar.GrammarError as exc:
        raise InvalidDelta(exc.path, exc.detail, exc.rule) from None
    _check_fields(delta)
    head = delta.head
    try:
        screened_bytes(head, head.SerializeToString(deterministic=True), redact=False, head=True)
    except InvalidCheckpoint as exc:
        raise InvalidCheckpoint(f"head.{exc.path}", exc.detail, exc.rule) from None
    return sealed


def _input_bytes(data: bytes | bytearray | memoryview) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"decode_delta takes bytes, not {type(data).__name__}")
    size = data.nbytes if isinstance(data, memoryview) else len(data)
    if size > MAX_CHECKPOINT_BYTES:
        raise InvalidDelta(
            "<input>",
            f"{size} bytes, over the limit of {MAX_CHECKPOINT_BYTES}",
            rules.INPUT_TOO_LARGE,
        )
    return data if type(data) is bytes else bytes(data)


def _check_fields(delta: CheckpointDelta) -> None:
    """The rules of §13.1 after the grammar, in their order."""
    if _FORMAT_RE.fullmatch(delta.format) is None:
        raise InvalidDelta(
            "format", f"not a v1 delta format identifier: {delta.format[:80]!r}", DELTA_FORMAT
        )
    if delta.base_generation == 0:
        raise InvalidDelta("base_generation", "must be at least 1", DELTA_BASE_GENERATION)
    if not delta.HasField("head"):
        raise InvalidDelta("head", "is required", DELTA_HEAD)
    kept = delta.kept
    if kept & ~KEPT_MASK:
        raise InvalidDelta(
            "kept",
            f"bits {kept & ~KEPT_MASK:#x} are outside the fields a delta may keep",
            DELTA_KEPT,
        )
    if kept:
        for field, _ in delta.head.ListFields():  # in number order: the first one is named
            if kept >> field.number & 1:
                raise InvalidDelta(
                    f"head.{field.name}",
                    "is kept from the base, so the head must not hold it",
                    DELTA_KEPT_IN_HEAD,
                )


def _bits(kept: int) -> Iterator[int]:
    for field in _KEEPABLE:
        if kept >> field.number & 1:
            yield field.number


# --- applying ----------------------------------------------------------------------------------


def apply(base: Checkpoint, delta: CheckpointDelta) -> Checkpoint:
    """The checkpoint ``delta`` makes from the valid checkpoint ``base`` (§13.2); ``base`` is kept.

    ``delta`` is one :func:`decode_delta` accepts. Raises
    :class:`InvalidDelta` (``delta.session``, ``delta.base_trials``) when
    it is not ``base``'s, and :class:`~dsxir.errors.InvalidCheckpoint` when
    the result breaks a rule of FORMAT.md §7 (the result's paths) or a
    writer's limit. Copies ``base`` (at C speed); :func:`apply_in_place`
    does not.
    """
    result = _rebuilt(base, _probe(base, delta))
    sealed_bytes(result)
    return result


def apply_in_place(base: Checkpoint, delta: CheckpointDelta) -> None:
    """:func:`apply`, changing ``base`` into the result, in time that grows with ``delta`` only.

    The same refusals as :func:`apply`, raised before ``base`` is changed.
    The result is checked against §7 entry by entry for the appended trials
    only, the base being valid (a store's committed state), and its fields
    kept from the base are not checked again; the byte limits of a writer
    are not checked (a store checks the bytes it writes).
    """
    merge(base, checked_probe(base, delta), delta.kept)


def checked_probe(base: Checkpoint, delta: CheckpointDelta) -> Checkpoint:
    """The new checkpoint's fields but the base's trial entries, checked (§13.2).

    Raises what :func:`apply` raises; ``base`` is not changed. A store
    checks the history rules on it (FORMAT.md §13.3), then passes it to :func:`merge`.
    """
    probe = _probe(base, delta)
    check_extension(probe, base.progress, skip=_kept_names(delta.kept))
    return probe


def merge(base: Checkpoint, head: Checkpoint, kept: int) -> None:
    """Change ``base`` into the checkpoint that ``head`` and ``kept`` make from it (no check).

    ``head`` is a delta's head (or :func:`checked_probe`'s probe): the
    fields whose bit is set in ``kept`` stay ``base``'s, every other field
    becomes ``head``'s (absent when it is), and ``head``'s trial entries
    are appended; a head without progress leaves none. The work grows with
    ``head``, except when ``base`` or ``head`` holds unknown fields of its
    own: then the result is built anew.
    """
    if _has_unknown(base) or _has_unknown(head):
        base.CopyFrom(_rebuilt(base, _filled(base, head, kept)))
        return
    if head.HasField("progress"):
        base.progress.trial_log.extend(head.progress.trial_log)
        for field in Progress.DESCRIPTOR.fields:
            if field.number != _TRIAL_LOG:
                _copy(head.progress, base.progress, field)
    else:
        base.ClearField("progress")
    for field in Checkpoint.DESCRIPTOR.fields:
        if field.number != _PROGRESS and not kept >> field.number & 1:
            _copy(head, base, field)


def merge_many(base: Checkpoint, deltas: Iterable[CheckpointDelta], *, earlier: int = 0) -> bool:
    """:func:`merge` of each of ``deltas`` in turn after §13.2 steps 1-2, each field copied once.

    For readers that apply many deltas and check the checkpoint they end
    with (docs/store-file.md §9): raises :class:`InvalidDelta` for another
    session or trial count, and nothing else; the result is not checked.

    ``base`` holds the latest trial entries of its session, ``earlier``
    entries coming before them. The deltas' trial
    entries are appended one delta at a time (each delta's trial count is
    checked against the entries before it); every other field is
    copied once at the end, from the last delta that did not keep it, so
    the work grows with the heads and not with their number times the
    fields. While ``base`` or a head holds unknown fields of its own, the
    head is merged by :func:`merge`.
    Returns ``False`` when a head without progress dropped the entries
    before it, the ``earlier`` ones included.
    """
    kept_earlier = True
    pending: list[tuple[int, Checkpoint]] = []
    unknown = _has_unknown(base)
    for delta in deltas:
        head = delta.head
        _check_base(base, delta, earlier + len(base.progress.trial_log))
        if unknown or _has_unknown(head):
            _settle(base, pending)
            merge(base, head, delta.kept)
            unknown = _has_unknown(base)
        else:
            if head.HasField("progress"):
                base.progress.trial_log.extend(head.progress.trial_log)
            else:
                base.ClearField("progress")
            _gather(pending, delta.kept, head)
        if not base.HasField("progress"):
            earlier = 0
            kept_earlier = False
    _settle(base, pending)
    return kept_earlier


def _gather(pending: list[tuple[int, Checkpoint]], kept: int, head: Checkpoint) -> None:
    """Add a head to the ones :func:`merge_many` has yet to settle, dropping those it replaces.

    The head before it is dropped when every keepable field it changed
    this one changes too: the list stays as short as the kinds of ``kept``.
    """
    changed = KEPT_MASK & ~kept
    while pending and (KEPT_MASK & ~pending[-1][0]) & ~changed == 0:
        pending.pop()
    pending.append((kept, head))


def _settle(base: Checkpoint, pending: list[tuple[int, Checkpoint]]) -> None:
    """The fields of ``base`` after the heads :func:`merge_many` gathered (the last is the latest).

    Every field a delta cannot keep comes from the last head, every
    keepable one from the last head that did not keep it; ``pending`` is
    emptied.
    """
    if not pending:
        return
    latest: dict[int, Checkpoint] = {}
    missing = KEPT_MASK
    for kept, head in reversed(pending):
        for number in _bits(missing & ~kept):
            latest[number] = head
        missing &= kept
        if not missing:
            break
    last = pending[-1][1]
    pending.clear()
    if last.HasField("progress"):
        for field in Progress.DESCRIPTOR.fields:
            if field.number != _TRIAL_LOG:
                _copy(last.progress, base.progress, field)
    for field in Checkpoint.DESCRIPTOR.fields:
        number = field.number
        if number == _PROGRESS:
            continue
        if not KEPT_MASK >> number & 1:
            _copy(last, base, field)
        elif number in latest:
            _copy(latest[number], base, field)


def _probe(base: Checkpoint, delta: CheckpointDelta) -> Checkpoint:
    """The head with the kept fields filled from ``base``, after the checks of §13.2."""
    _check_base(base, delta, len(base.progress.trial_log))
    return _filled(base, delta.head, delta.kept)


def _check_base(base: Checkpoint, delta: CheckpointDelta, trials: int) -> None:
    """§13.2 steps 1-2: the delta's session and trial count are the base's."""
    head = delta.head
    if head.session_id != base.session_id:
        raise InvalidDelta(
            "head.session_id",
            f"is {head.session_id[:80]!r}, not the base's {base.session_id[:80]!r}",
            DELTA_SESSION,
        )
    if delta.base_trials != trials:
        raise InvalidDelta(
            "base_trials",
            f"is {delta.base_trials}, but the base has {trials} trials",
            DELTA_BASE_TRIALS,
        )


def _filled(base: Checkpoint, head: Checkpoint, kept: int) -> Checkpoint:
    """A copy of ``head`` with the fields whose bit is set in ``kept`` taken from ``base``."""
    probe = Checkpoint()
    probe.CopyFrom(head)
    for number in _bits(kept):
        _copy(base, probe, _FIELDS[number])
    return probe


def _rebuilt(base: Checkpoint, probe: Checkpoint) -> Checkpoint:
    """``probe`` with the base's trial entries before its own (a new message)."""
    if not probe.HasField("progress"):
        return probe
    appended = Progress()
    appended.trial_log.extend(probe.progress.trial_log)
    log = probe.progress.trial_log
    del log[:]
    log.extend(base.progress.trial_log)
    log.extend(appended.trial_log)
    return probe


def _copy(source: Message, target: Message, field: FieldDescriptor) -> None:
    """Make ``target``'s ``field`` what ``source``'s is (absent when it is)."""
    name = field.name
    target.ClearField(name)
    if field.is_repeated:
        getattr(target, name).extend(getattr(source, name))
    elif field.message_type is not None:
        if source.HasField(name):
            getattr(target, name).CopyFrom(getattr(source, name))
    elif not field.has_presence or source.HasField(name):
        setattr(target, name, getattr(source, name))


def _has_unknown(cp: Checkpoint) -> bool:
    """Whether ``cp`` or its progress holds unknown fields at their own level."""
    return len(UnknownFieldSet(cp)) > 0 or (
        cp.HasField("progress") and len(UnknownFieldSet(cp.progress)) > 0
    )


def _kept_names(kept: int) -> frozenset[str]:
    return frozenset(_FIELDS[number].name for number in _bits(kept))


# --- writing -----------------------------------------------------------------------------------


def diff(base: Checkpoint, new: Checkpoint, *, base_generation: int) -> CheckpointDelta:
    """The delta of ``new`` over ``base``, committed as ``base_generation``.

    ``new``'s trial log must extend ``base``'s (not checked: a store checks
    what the delta makes against the stored checkpoint, §13.3). Every field
    ``new`` holds with the same bytes as ``base`` is kept (§13.2).
    """
    return Baseline.of(base).delta(new, base_generation=base_generation)


class Baseline:
    """What a writer remembers of its last committed checkpoint to write the next delta.

    The trial count and the bytes of each field a delta may keep (small:
    options, artifact, sampler blob…), not the trial log.
    """

    __slots__ = ("_fields", "trials")

    def __init__(self, trials: int, fields: dict[int, bytes]) -> None:
        self.trials = trials
        self._fields = fields

    @classmethod
    def of(cls, cp: Checkpoint) -> Baseline:
        """The baseline of a committed checkpoint."""
        return cls(len(cp.progress.trial_log), _fingerprints(cp))

    def __eq__(self, other: object) -> bool:
        """The same trial count and the same bytes of every keepable field."""
        if not isinstance(other, Baseline):
            return NotImplemented
        return self.trials == other.trials and self._fields == other._fields

    def delta(self, new: Checkpoint, *, base_generation: int) -> CheckpointDelta:
        """The delta that makes ``new`` from the checkpoint this baseline was taken of."""
        return self.step(new, base_generation=base_generation)[0]

    def step(self, new: Checkpoint, *, base_generation: int) -> tuple[CheckpointDelta, Baseline]:
        """:meth:`delta`, and the baseline of ``new`` (equal to ``Baseline.of(new)``).

        A writer keeps the second once the delta is committed, so that each
        checkpoint's fields are fingerprinted once.
        """
        if isinstance(base_generation, bool) or not isinstance(base_generation, int):
            raise TypeError("base_generation must be an int")
        if base_generation < 1:
            raise ValueError(f"base_generation must be >= 1, got {base_generation}")
        trials = len(new.progress.trial_log)
        if trials < self.trials:
            raise ValueError(
                f"the new checkpoint has {trials} trials, fewer than its base's {self.trials}"
            )
        delta = CheckpointDelta(
            format=DELTA_FORMAT_ID, base_generation=base_generation, base_trials=self.trials
        )
        fingerprints = _fingerprints(new)
        for number, value in fingerprints.items():
            if self._fields.get(number) == value:
                delta.kept |= 1 << number
        head = delta.head
        if _has_unknown(new):
            head.CopyFrom(new)
            del head.progress.trial_log[: self.trials]
            for number in _bits(delta.kept):
                _copy(_EMPTY, head, _FIELDS[number])  # clear it
            return delta, Baseline(trials, fingerprints)
        for field, _ in new.ListFields():
            if field.number == _PROGRESS:
                for inner, _ in new.progress.ListFields():
                    if inner.number != _TRIAL_LOG:
                        _copy(new.progress, head.progress, inner)
                head.progress.SetInParent()
                head.progress.trial_log.extend(new.progress.trial_log[self.trials :])
            elif not delta.kept >> field.number & 1:
                _copy(new, head, field)
        return delta, Baseline(trials, fingerprints)


def _fingerprints(cp: Checkpoint) -> dict[int, bytes]:
    """The bytes of every keepable field ``cp`` holds, by number."""
    found: dict[int, bytes] = {}
    for field, value in cp.ListFields():
        number = field.number
        if not KEPT_MASK >> number & 1:
            continue
        if field.is_repeated:
            found[number] = b"".join(
                len(part).to_bytes(4, "little") + part
                for part in (item.SerializeToString(deterministic=True) for item in value)
            )
        elif field.message_type is not None:
            found[number] = value.SerializeToString(deterministic=True)
        elif isinstance(value, bytes):
            found[number] = value
        elif isinstance(value, str):
            found[number] = value.encode("utf-8", "surrogatepass")
        else:
            found[number] = str(value).encode("ascii")
    return found
