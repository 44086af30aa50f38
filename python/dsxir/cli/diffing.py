"""Field-level differences between two checkpoints, with the trial log summarized.

Every field that is set in either checkpoint is compared by its path
(``progress.best_score``, ``optimizer_opts[1].value``, ``sampler_format.version``);
a Term, TermMap or Timestamp is one value. Floats compare by their bits, so
``-0.0`` differs from ``0.0``. The trial log is compared entry by entry and
summarized: how many entries each side has, how long the common prefix is,
which entries differ, and the field differences of the first few (of all of
them when asked).

Values are compared exactly (a Term by its canonical bytes, bytes and
strings in full) and shown shortened; when two different values shorten to
the same text, each is followed by the start of its SHA-256 so the
difference shows. Each value also has its plain JSON form (``--json``).

Fields can be left out of the comparison (:class:`Ignore`): a pattern is a
field path whose indices may be ``[]`` (any entry) or left out (``trial_log``
means every entry); it ignores the field and everything inside it.
:func:`time_fields` lists every timestamp and duration of the schema.
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from dsxir.cli.views import json_float, render_term, term_json, timestamp_text
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.optimizer_session.v1.term_pb2 import Term, TermMap

__all__ = [
    "DETAILED_TRIALS",
    "Difference",
    "Ignore",
    "Leaf",
    "TrialLogDiff",
    "diff_checkpoints",
    "flatten",
    "time_fields",
]

DETAILED_TRIALS = 5
"""How many differing trial-log entries are detailed unless all are asked for."""

_ABSENT = "(absent)"
_LOG_PATH = "progress.trial_log"
_MISSING: Any = object()
_SEGMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d*)\])?")
_LEAF_MESSAGES = (Term.DESCRIPTOR.full_name, TermMap.DESCRIPTOR.full_name)
_TIMESTAMP = Timestamp.DESCRIPTOR.full_name


@dataclass(frozen=True)
class Difference:
    """One field that differs: its path, its value on each side as text and as plain JSON.

    ``a_plain`` / ``b_plain`` are a private marker when the field is absent
    on that side (:meth:`json` then leaves that side out).
    """

    path: str
    a: str
    b: str
    a_plain: Any = None
    b_plain: Any = None

    def json(self) -> dict[str, Any]:
        """``{"path", "a", "b"}``, a side left out when the field is absent there."""
        out: dict[str, Any] = {"path": self.path}
        if self.a_plain is not _MISSING:
            out["a"] = self.a_plain
        if self.b_plain is not _MISSING:
            out["b"] = self.b_plain
        return out


@dataclass
class TrialLogDiff:
    """The trial logs compared."""

    a_entries: int
    b_entries: int
    common_prefix: int
    differing: list[int] = field(default_factory=list)
    details: dict[int, list[Difference]] = field(default_factory=dict)
    ignored: bool = False

    @property
    def identical(self) -> bool:
        """Whether both logs hold the same entries (always, when the log is ignored)."""
        return self.ignored or (self.a_entries == self.b_entries and not self.differing)

    @property
    def left_out(self) -> int:
        """How many differing entries are not detailed."""
        return len(self.differing) - len(self.details)


class Leaf:
    """One flattened value: what is compared (``exact``), and, worked out only when
    asked (for differing values), what is shown (``text``) and its plain JSON (``plain``)."""

    __slots__ = ("_descriptor", "_value", "exact")

    def __init__(self, exact: bytes, descriptor: FieldDescriptor | None, value: Any) -> None:
        self.exact = exact
        self._descriptor = descriptor
        self._value = value

    @property
    def text(self) -> str:
        """The value shortened for people."""
        value = self._value
        if self._descriptor is not None:
            return _value_text(self._descriptor, value)
        if isinstance(value, (Term, TermMap)):
            return render_term(value, limit=200)
        if isinstance(value, Timestamp):
            return timestamp_text(value)
        return "{}"

    @property
    def plain(self) -> Any:
        """The exact value as plain JSON."""
        value = self._value
        if self._descriptor is not None:
            return _value_plain(self._descriptor, value)
        if isinstance(value, (Term, TermMap)):
            return term_json(value)
        if isinstance(value, Timestamp):
            return timestamp_text(value)
        return {}


# --- ignoring fields ---------------------------------------------------------------------


Segment = tuple[str, int | None]
"""One step of a field path: a field name and an index (``None``: any or none)."""


def _parse(path: str) -> list[Segment] | None:
    out: list[Segment] = []
    for piece in path.split("."):
        match = _SEGMENT.fullmatch(piece)
        if match is None:
            return None
        index = match.group(2)
        out.append((match.group(1), int(index) if index else None))
    return out


@dataclass(frozen=True)
class Ignore:
    """Field paths left out of a comparison (see the module text)."""

    texts: tuple[str, ...] = ()
    patterns: tuple[tuple[Segment, ...], ...] = ()

    @classmethod
    def of(cls, texts: Iterable[str]) -> Ignore:
        """Parse patterns, checked against the schema; ``ValueError`` names a bad one."""
        kept: list[str] = []
        patterns: list[tuple[Segment, ...]] = []
        for text in texts:
            pattern = _check_pattern(text.strip())
            if text.strip() not in kept:
                kept.append(text.strip())
                patterns.append(pattern)
        return cls(tuple(kept), tuple(patterns))

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def matches(self, path: str) -> bool:
        """Whether ``path`` (a concrete path such as ``progress.trial_log[3].score``) is ignored."""
        if not self.patterns:
            return False
        segments = _parse(path)
        if segments is None:
            return False
        return any(_covers(pattern, segments) for pattern in self.patterns)


def _covers(pattern: tuple[Segment, ...], path: list[Segment]) -> bool:
    if len(pattern) > len(path):
        return False
    return all(
        p_name == name and (p_index is None or p_index == index)
        for (p_name, p_index), (name, index) in zip(pattern, path, strict=False)
    )


def _check_pattern(text: str) -> tuple[Segment, ...]:
    segments = _parse(text) if text else None
    if segments is None:
        raise ValueError(
            f"{text!r} is not a field path (e.g. updated_at, progress.trial_log[].duration_ms)"
        )
    descriptor: Descriptor | None = Checkpoint.DESCRIPTOR
    where = "a checkpoint"
    for i, (name, index) in enumerate(segments):
        if descriptor is None:
            before = ".".join(text.split(".")[:i])
            raise ValueError(f"{text!r}: {before} is one value; it has no fields inside")
        found = descriptor.fields_by_name.get(name)
        if found is None:
            known = ", ".join(f.name for f in descriptor.fields)
            raise ValueError(f"{text!r}: {where} has no field {name!r} (fields: {known})")
        if index is not None and not found.is_repeated:
            raise ValueError(f"{text!r}: {name} is not a list; it takes no [index]")
        message = found.message_type
        if message is None or message.full_name in (*_LEAF_MESSAGES, _TIMESTAMP):
            descriptor = None
        else:
            descriptor = message
        where = f"{message.name if message is not None else name}"
    return tuple(segments)


def time_fields() -> tuple[str, ...]:
    """Every timestamp and duration of the checkpoint schema, as ignore patterns."""
    found: list[str] = []

    def walk(descriptor: Descriptor, prefix: str) -> None:
        for item in descriptor.fields:
            path = prefix + item.name + ("[]" if item.is_repeated else "")
            message = item.message_type
            is_time = message is not None and message.full_name == _TIMESTAMP
            if is_time or item.name.endswith("_ms"):
                found.append(path)
            elif message is not None and message.full_name not in _LEAF_MESSAGES:
                walk(message, path + ".")

    walk(Checkpoint.DESCRIPTOR, "")
    return tuple(found)


# --- flattening ---------------------------------------------------------------------------


def _exact(descriptor: FieldDescriptor, value: Any) -> bytes:
    if descriptor.type == FieldDescriptor.TYPE_DOUBLE:
        return struct.pack(">d", value)
    if descriptor.type == FieldDescriptor.TYPE_BYTES:
        return bytes(value)
    if descriptor.type == FieldDescriptor.TYPE_STRING:
        return str(value).encode("utf-8", "surrogatepass")
    return repr(value).encode("ascii", "backslashreplace")


def _enum_name(descriptor: FieldDescriptor, value: Any) -> str:
    if descriptor.enum_type is not None:
        enum_value = descriptor.enum_type.values_by_number.get(value)
        if enum_value is not None:
            return str(enum_value.name)
    return str(value)


def _value_text(descriptor: FieldDescriptor, value: Any) -> str:
    if descriptor.type == FieldDescriptor.TYPE_ENUM:
        return _enum_name(descriptor, value)
    if descriptor.type == FieldDescriptor.TYPE_DOUBLE:
        return f"{value!r} (0x{struct.pack('>d', value).hex()})"
    if descriptor.type == FieldDescriptor.TYPE_BYTES:
        data: bytes = value
        shown = data.hex() if len(data) <= 32 else data[:32].hex() + "…"
        return f"{shown} ({len(data)} bytes)"
    if descriptor.type == FieldDescriptor.TYPE_STRING:
        text = repr(value)
        return text if len(text) <= 200 else text[:199] + "…"
    return str(value)


def _value_plain(descriptor: FieldDescriptor, value: Any) -> Any:
    if descriptor.type == FieldDescriptor.TYPE_ENUM:
        return _enum_name(descriptor, value)
    if descriptor.type == FieldDescriptor.TYPE_DOUBLE:
        return json_float(value)
    if descriptor.type == FieldDescriptor.TYPE_BYTES:
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    return value


def _leaf(descriptor: FieldDescriptor, value: Any) -> Leaf:
    return Leaf(_exact(descriptor, value), descriptor, value)


def _message_leaf(message: Message) -> Leaf | None:
    if isinstance(message, (Term, TermMap, Timestamp)):
        return Leaf(message.SerializeToString(deterministic=True), None, message)
    return None


def flatten(
    message: Message, prefix: str = "", skip: frozenset[str] = frozenset()
) -> dict[str, Leaf]:
    """Every set field of ``message`` as ``path -> Leaf`` (Terms and timestamps as one value)."""
    out: dict[str, Leaf] = {}
    for descriptor, value in message.ListFields():
        path = prefix + descriptor.name
        if path in skip:
            continue
        if descriptor.type == FieldDescriptor.TYPE_MESSAGE:
            items = list(value) if _is_repeated(descriptor) else [value]
            for i, item in enumerate(items):
                item_path = f"{path}[{i}]" if _is_repeated(descriptor) else path
                leaf = _message_leaf(item)
                if leaf is not None:
                    out[item_path] = leaf
                    continue
                inner = flatten(item, item_path + ".", skip)
                out.update(inner if inner else {item_path: Leaf(b"{}", None, None)})
        elif _is_repeated(descriptor):
            for i, item in enumerate(value):
                out[f"{path}[{i}]"] = _leaf(descriptor, item)
        else:
            out[path] = _leaf(descriptor, value)
    return out


def _is_repeated(descriptor: FieldDescriptor) -> bool:
    return bool(descriptor.is_repeated)


def _differences(
    a: dict[str, Leaf], b: dict[str, Leaf], ignore: Ignore, prefix: str = ""
) -> list[Difference]:
    out: list[Difference] = []
    for path in sorted(set(a) | set(b), key=_path_key):
        left, right = a.get(path), b.get(path)
        if left is not None and right is not None and left.exact == right.exact:
            continue
        if ignore and ignore.matches(prefix + path):
            continue
        left_text = _ABSENT if left is None else left.text
        right_text = _ABSENT if right is None else right.text
        if left is not None and right is not None and left_text == right_text:
            left_text, right_text = _with_digest(left), _with_digest(right)
        out.append(
            Difference(
                path,
                left_text,
                right_text,
                _MISSING if left is None else left.plain,
                _MISSING if right is None else right.plain,
            )
        )
    return out


def _with_digest(leaf: Leaf) -> str:
    return f"{leaf.text} [sha256 {hashlib.sha256(leaf.exact).hexdigest()[:12]}]"


def _path_key(path: str) -> list[Any]:
    parts: list[Any] = []
    for piece in path.replace("]", "").replace("[", ".").split("."):
        parts.append((0, int(piece), "") if piece.isdigit() else (1, 0, piece))
    return parts


def _entry_bytes(entry: Message) -> bytes:
    # Both sides are valid, so their maps are sorted and these bytes are canonical;
    # comparing bytes (not values) keeps -0.0 apart from 0.0.
    return entry.SerializeToString(deterministic=True)


@dataclass(frozen=True)
class _EntryRules:
    """What the ignore patterns leave out of trial-log entries, by field name.

    Entry fields are never repeated and hold no message other than a TermMap,
    so every pattern inside the log names a whole entry or one of its fields.
    """

    whole: frozenset[int]
    every: frozenset[str]
    some: dict[int, frozenset[str]]

    @classmethod
    def of(cls, ignore: Ignore) -> _EntryRules:
        whole: set[int] = set()
        every: set[str] = set()
        some: dict[int, set[str]] = {}
        for pattern in ignore.patterns:
            if len(pattern) < 2 or pattern[0] != ("progress", None):
                continue
            name, index = pattern[1]
            if name != "trial_log":
                continue
            if len(pattern) == 2:
                if index is not None:
                    whole.add(index)
            elif index is None:
                every.add(pattern[2][0])
            else:
                some.setdefault(index, set()).add(pattern[2][0])
        return cls(frozenset(whole), frozenset(every), {k: frozenset(v) for k, v in some.items()})

    def same(self, i: int, a: Message, b: Message) -> bool:
        """Whether entries ``a`` and ``b`` (at index ``i``, of different bytes) agree
        on every field that is not ignored."""
        if i in self.whole:
            return True
        names = self.every | self.some.get(i, frozenset())
        if not names:
            return False
        left, right = type(a)(), type(b)()
        left.CopyFrom(a)
        right.CopyFrom(b)
        for name in names:
            left.ClearField(name)
            right.ClearField(name)
        return _entry_bytes(left) == _entry_bytes(right)


def diff_checkpoints(
    a: Checkpoint,
    b: Checkpoint,
    *,
    ignore: Ignore | None = None,
    detailed: int | None = DETAILED_TRIALS,
) -> tuple[list[Difference], TrialLogDiff]:
    """The field differences outside the trial log, and the trial log comparison.

    Paths ``ignore`` covers are left out. The field differences of the first
    ``detailed`` differing log entries are kept (of all of them for ``None``).
    """
    ignore = ignore or Ignore()
    skip = frozenset({_LOG_PATH})
    fields = _differences(flatten(a, skip=skip), flatten(b, skip=skip), ignore)
    log_a, log_b = a.progress.trial_log, b.progress.trial_log
    log = TrialLogDiff(a_entries=len(log_a), b_entries=len(log_b), common_prefix=0)
    if ignore.matches(_LOG_PATH):
        log.ignored = True
        log.common_prefix = min(len(log_a), len(log_b))
        return fields, log
    shared = min(len(log_a), len(log_b))
    rules = _EntryRules.of(ignore)
    for i in range(shared):
        left, right = log_a[i], log_b[i]
        if _entry_bytes(left) == _entry_bytes(right) or rules.same(i, left, right):
            continue
        log.differing.append(i)
        if detailed is None or len(log.details) < detailed:
            log.details[i] = _differences(
                flatten(left), flatten(right), ignore, prefix=f"{_LOG_PATH}[{i}]."
            )
    log.common_prefix = log.differing[0] if log.differing else shared
    return fields, log
