"""Field-level differences between two checkpoints, with the trial log summarized.

Every field that is set in either checkpoint is compared by its path
(``progress.best_score``, ``optimizer_opts[1].value``, ``sampler_format.version``);
a Term, TermMap or Timestamp is one value. Floats compare by their bits, so
``-0.0`` differs from ``0.0``. The trial log is compared entry by entry and
summarized: how many entries each side has, how long the common prefix is,
which entries differ, and the field differences of the first few.

Values are compared exactly (a Term by its canonical bytes, bytes and
strings in full) and shown shortened; when two different values shorten to
the same text, each is followed by the start of its SHA-256 so the
difference shows.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from dsxir.cli.views import render_term, timestamp_text
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.optimizer_session.v1.term_pb2 import Term, TermMap

__all__ = ["Difference", "Leaf", "TrialLogDiff", "diff_checkpoints", "flatten"]

_DETAILED_TRIALS = 5
_ABSENT = "(absent)"


@dataclass(frozen=True)
class Difference:
    """One field that differs: its path and its value on each side (as text)."""

    path: str
    a: str
    b: str


@dataclass
class TrialLogDiff:
    """The trial logs compared."""

    a_entries: int
    b_entries: int
    common_prefix: int
    differing: list[int] = field(default_factory=list)
    details: dict[int, list[Difference]] = field(default_factory=dict)

    @property
    def identical(self) -> bool:
        """Whether both logs hold the same entries."""
        return self.a_entries == self.b_entries and not self.differing


@dataclass(frozen=True)
class Leaf:
    """One flattened value: what is compared (exact) and what is shown (text)."""

    exact: bytes
    text: str


def _exact(descriptor: FieldDescriptor, value: Any) -> bytes:
    if descriptor.type == FieldDescriptor.TYPE_DOUBLE:
        return struct.pack(">d", value)
    if descriptor.type == FieldDescriptor.TYPE_BYTES:
        return bytes(value)
    if descriptor.type == FieldDescriptor.TYPE_STRING:
        return str(value).encode("utf-8", "surrogatepass")
    return repr(value).encode("ascii", "backslashreplace")


def _value_text(descriptor: FieldDescriptor, value: Any) -> str:
    if descriptor.type == FieldDescriptor.TYPE_ENUM and descriptor.enum_type is not None:
        enum_value = descriptor.enum_type.values_by_number.get(value)
        return enum_value.name if enum_value is not None else str(value)
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


def _message_leaf(message: Message) -> Leaf | None:
    if isinstance(message, (Term, TermMap)):
        return Leaf(message.SerializeToString(deterministic=True), render_term(message, limit=200))
    if isinstance(message, Timestamp):
        return Leaf(message.SerializeToString(deterministic=True), timestamp_text(message))
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
                out.update(inner if inner else {item_path: Leaf(b"{}", "{}")})
        elif _is_repeated(descriptor):
            for i, item in enumerate(value):
                out[f"{path}[{i}]"] = Leaf(_exact(descriptor, item), _value_text(descriptor, item))
        else:
            out[path] = Leaf(_exact(descriptor, value), _value_text(descriptor, value))
    return out


def _is_repeated(descriptor: FieldDescriptor) -> bool:
    return bool(descriptor.is_repeated)


def _differences(a: dict[str, Leaf], b: dict[str, Leaf]) -> list[Difference]:
    out: list[Difference] = []
    for path in sorted(set(a) | set(b), key=_path_key):
        left, right = a.get(path), b.get(path)
        if left is not None and right is not None and left.exact == right.exact:
            continue
        left_text = _ABSENT if left is None else left.text
        right_text = _ABSENT if right is None else right.text
        if left is not None and right is not None and left_text == right_text:
            left_text, right_text = _with_digest(left), _with_digest(right)
        out.append(Difference(path, left_text, right_text))
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


def diff_checkpoints(a: Checkpoint, b: Checkpoint) -> tuple[list[Difference], TrialLogDiff]:
    """The field differences outside the trial log, and the trial log comparison."""
    skip = frozenset({"progress.trial_log"})
    fields = _differences(flatten(a, skip=skip), flatten(b, skip=skip))
    log_a, log_b = a.progress.trial_log, b.progress.trial_log
    shared = min(len(log_a), len(log_b))
    differing = [i for i in range(shared) if _entry_bytes(log_a[i]) != _entry_bytes(log_b[i])]
    log = TrialLogDiff(
        a_entries=len(log_a),
        b_entries=len(log_b),
        common_prefix=differing[0] if differing else shared,
        differing=differing,
    )
    for i in differing[:_DETAILED_TRIALS]:
        log.details[i] = _differences(flatten(log_a[i]), flatten(log_b[i]))
    return fields, log
