"""The byte grammar of a checkpoint (FORMAT.md §2): trailer, strict scan, weight.

This module is the reference reading of §2 in plain Python. :func:`check`
takes the whole input (body and trailer) and raises :class:`GrammarError`
naming the first broken rule (its id from :mod:`rules`) and the path §2.3
prescribes, or returns the body (the bytes before the trailer), which a
protobuf runtime then parses without surprise. :func:`seal` appends the
trailer to a body. The field table comes from the generated descriptors, so a
field added to the schema is scanned without an edit here; the weights and the
Term depth are the only hand-written constants.

The library reads and writes through :func:`read` (a reader's §7 step 1; for
a checkpoint, :func:`read_checkpoint`) and :func:`sealed` (a writer's §2.5
check and trailer). When the compiled
accelerator is in use (:mod:`~dsxir.optimizer_session.accel`) they run the
same scan and CRC-32C in C, from the same field table (handed to C on
import), with the same rule ids, paths and details; :func:`check` stays the
plain-Python reference (tests/python/format/test_grammar.py holds the two to
identical answers).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from dsxir.optimizer_session import accel, rules
from dsxir.optimizer_session.term_rules import MAX_TERM_DEPTH
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint, CheckpointDelta

__all__ = [
    "MAX_CHECKPOINT_BYTES",
    "TRAILER_SIZE",
    "TRAILER_TAG",
    "GrammarError",
    "check",
    "crc32c",
    "read",
    "read_checkpoint",
    "seal",
    "sealed",
    "trusted_body",
    "weight_limit",
]

MAX_CHECKPOINT_BYTES = 268_435_456
"""The largest input a reader accepts, trailer included (§3.6)."""
TRAILER_TAG = b"\xfd\xff\xff\xff\x0f"
"""Field 536,870,911, wire type I32: the first 5 bytes of the trailer (§2.1)."""
TRAILER_SIZE = 9
_TRAILER_NUMBER = 536_870_911
_TERM = "dsxir.optimizer_session.v1.Term"
_TERM_CONTAINERS = frozenset(
    {
        "dsxir.optimizer_session.v1.TermList",
        "dsxir.optimizer_session.v1.TermMap",
        "dsxir.optimizer_session.v1.TermMapEntry",
    }
)
_WEIGHTS = {
    "dsxir.optimizer_session.v1.TrialLogEntry": 104,
    "dsxir.optimizer_session.v1.TermNull": 8,
}
_MESSAGE_WEIGHT = 48
_WEIGHT_FACTOR = 7
_WEIGHT_BASE = 50_331_648

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5

# Value kinds of known fields.
_K_BOOL, _K_UINT32, _K_INT32, _K_INT64, _K_FIXED, _K_STRING, _K_BYTES, _K_MESSAGE = range(8)
_T = FieldDescriptor
_KINDS = {
    _T.TYPE_BOOL: (_K_BOOL, _VARINT),
    _T.TYPE_UINT32: (_K_UINT32, _VARINT),
    _T.TYPE_INT32: (_K_INT32, _VARINT),
    _T.TYPE_ENUM: (_K_INT32, _VARINT),
    _T.TYPE_UINT64: (_K_INT64, _VARINT),
    _T.TYPE_INT64: (_K_INT64, _VARINT),
    _T.TYPE_SINT64: (_K_INT64, _VARINT),
    _T.TYPE_DOUBLE: (_K_FIXED, _I64),
    _T.TYPE_STRING: (_K_STRING, _LEN),
    _T.TYPE_BYTES: (_K_BYTES, _LEN),
    _T.TYPE_MESSAGE: (_K_MESSAGE, _LEN),
}


class GrammarError(Exception):
    """The input breaks the grammar: ``rule`` (an id of §7.1) at ``path``."""

    def __init__(self, rule: str, path: str, detail: str) -> None:
        super().__init__(f"{path}: {detail} (rule {rule})")
        self.rule = rule
        self.path = path
        self.detail = detail


@dataclass(frozen=True)
class _Field:
    name: str
    kind: int
    wire_type: int
    presence: bool
    repeated: bool
    message: _Message | None


@dataclass
class _Message:
    full_name: str
    fields: dict[int, _Field]
    weight: int


def _table(descriptor: Descriptor, seen: dict[str, _Message]) -> _Message:
    known = seen.get(descriptor.full_name)
    if known is not None:
        return known
    message = _Message(
        descriptor.full_name, {}, _WEIGHTS.get(descriptor.full_name, _MESSAGE_WEIGHT)
    )
    seen[descriptor.full_name] = message
    for field in descriptor.fields:
        kind, wire_type = _KINDS[field.type]
        child = _table(field.message_type, seen) if field.message_type is not None else None
        repeated = field.is_repeated
        message.fields[field.number] = _Field(
            field.name,
            kind,
            wire_type,
            field.has_presence,
            repeated,
            child,
        )
    return message


_TABLES: dict[str, _Message] = {}
_ROOT = _table(Checkpoint.DESCRIPTOR, _TABLES)
_DELTA_ROOT = _table(CheckpointDelta.DESCRIPTOR, _TABLES)
_DELTA_INDEX = len(_TABLES) - 1  # the flat table lists the delta root last (§13)


def _crc_table() -> tuple[int, ...]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc32c(data: bytes | memoryview) -> int:
    """The CRC-32C (Castagnoli) of ``data`` (§2.1), in plain Python."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for byte in bytes(data):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def seal(body: bytes) -> bytes:
    """``body`` followed by its trailer: the bytes of a checkpoint (§2.1); no check."""
    fast = accel.seal
    if fast is not None:
        return fast(body)
    return body + TRAILER_TAG + crc32c(body).to_bytes(4, "little")


def trusted_body(data: bytes) -> bytes:
    """The body of checkpoint bytes this process wrote or already checked (no check)."""
    return data[: len(data) - TRAILER_SIZE]


def weight_limit(size: int) -> int:
    """The largest weight a checkpoint of ``size`` input bytes may have (§2.4)."""
    return _WEIGHT_FACTOR * size + _WEIGHT_BASE


def check(data: bytes, *, delta: bool = False) -> bytes:
    """Check ``data`` by §2 (§7 step 1) and return its body.

    Raises :class:`GrammarError` for the first broken rule: ``input.too_large``,
    ``input.trailer``, ``input.checksum``, a ``wire.*`` rule or
    ``term.depth`` in byte order, then ``input.weight``. With ``delta`` the
    top-level message is a ``CheckpointDelta`` (FORMAT.md §13).
    """
    size = len(data)
    if size > MAX_CHECKPOINT_BYTES:
        raise GrammarError(
            rules.INPUT_TOO_LARGE,
            "<input>",
            f"{size} bytes, over the limit of {MAX_CHECKPOINT_BYTES}",
        )
    if size < TRAILER_SIZE or data[size - 9 : size - 4] != TRAILER_TAG:
        raise GrammarError(
            rules.INPUT_TRAILER,
            "<input>",
            "no checksum trailer at the end (cut or not a checkpoint)",
        )
    body = data[: size - 9]
    expected = int.from_bytes(data[size - 4 :], "little")
    if crc32c(body) != expected:
        raise GrammarError(rules.INPUT_CHECKSUM, "<input>", "the checksum does not match the bytes")
    _scan(body, size, _DELTA_ROOT if delta else _ROOT)
    return body


def _scan(body: bytes, size: int, root: _Message = _ROOT) -> None:
    """The grammar of §2.2 over ``body``, then the weight limit for ``size`` input bytes."""
    weight = _Scanner(body).message(root, 0, len(body), "", 1)
    if weight > weight_limit(size):
        raise GrammarError(
            rules.INPUT_WEIGHT,
            "<input>",
            f"weight {weight} over the limit of {weight_limit(size)} for {size} bytes",
        )


def read(data: bytes, *, delta: bool = False) -> bytes:
    """:func:`check` ``data``, in C when the accelerator is in use; return the body."""
    fast = accel.grammar_check
    if fast is None:
        return check(data, delta=delta)
    result = fast(data, _DELTA_INDEX if delta else 0)
    if isinstance(result, bytes):
        return result
    raise GrammarError(*result)


def read_checkpoint(
    data: bytes, *, meanwhile: Callable[[], None] | None = None
) -> tuple[bytes | memoryview, bool]:
    """:func:`read` of a checkpoint: its body, and whether it is known to keep §1-§4.

    Raises what :func:`read` raises. With the accelerator the grammar and
    ``check_canonical`` run in one C call, and the body is a view of
    ``data`` (nothing copied); the flag is that check's answer (exact on
    bytes the grammar accepts). Without it the flag is ``False``: the
    caller checks the parsed message.

    ``meanwhile``, when given, is called at most once, in this thread: always
    when the bytes are accepted, perhaps not when they are refused. For an
    input of at least :data:`ALONGSIDE_BYTES`, the C call runs in a second
    thread (it holds no interpreter lock) while ``meanwhile`` runs. What
    ``meanwhile`` raises is raised once that call has ended, unless the
    grammar refuses the bytes: the refusal is raised instead.
    """
    fast = accel.read_checkpoint
    if fast is None:
        body = check(data)
        if meanwhile is not None:
            meanwhile()
        return body, False
    if meanwhile is None or len(data) < ALONGSIDE_BYTES:
        verdict = fast(data)
        if meanwhile is not None and not isinstance(verdict, tuple):
            meanwhile()
    else:
        verdict = _alongside(fast, data, meanwhile)
    if isinstance(verdict, tuple):
        raise GrammarError(*verdict)
    return memoryview(data)[: len(data) - TRAILER_SIZE], verdict


ALONGSIDE_BYTES = 1 << 20
"""The input size from which :func:`read_checkpoint` checks in a second thread while its
``meanwhile`` runs."""


def _alongside(
    fast: Callable[[bytes], bool | tuple[str, str, str]], data: bytes, meanwhile: Callable[[], None]
) -> bool | tuple[str, str, str]:
    """``fast(data)`` in a second thread while ``meanwhile()`` runs in this one."""
    outcome: list[bool | tuple[str, str, str] | BaseException] = []

    def check_there() -> None:
        try:
            outcome.append(fast(data))
        except BaseException as exc:  # raised in the caller's thread below
            outcome.append(exc)

    worker = threading.Thread(target=check_there, name="dsxir-check", daemon=True)
    worker.start()
    try:
        meanwhile()
    except BaseException:
        worker.join()
        if isinstance(outcome[0], tuple):
            return outcome[0]  # the refusal comes first
        raise
    worker.join()
    verdict = outcome[0]
    if isinstance(verdict, BaseException):
        raise verdict
    return verdict


def sealed(body: bytes, *, delta: bool = False) -> bytes:
    """The checkpoint bytes of a serialized ``body``: checked as a reader checks, then sealed.

    Refuses (:class:`GrammarError`) what :func:`check` would refuse in the
    sealed bytes: ``input.too_large`` (the trailer counted), a ``wire.*``
    rule or ``term.depth``, ``input.weight`` (§2.5). With ``delta`` the body
    is a ``CheckpointDelta``'s (FORMAT.md §13).
    """
    size = len(body) + TRAILER_SIZE
    if size > MAX_CHECKPOINT_BYTES:
        raise GrammarError(
            rules.INPUT_TOO_LARGE,
            "<input>",
            f"{size} bytes, over the limit of {MAX_CHECKPOINT_BYTES}",
        )
    fast = accel.grammar_scan
    if fast is None:
        _scan(body, size, _DELTA_ROOT if delta else _ROOT)
        return seal(body)
    refusal = fast(body, size, _DELTA_INDEX if delta else 0)
    if refusal is not None:
        raise GrammarError(*refusal)
    return seal(body)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


class _Scanner:
    __slots__ = ("buf",)

    def __init__(self, buf: bytes) -> None:
        self.buf = buf

    def varint(self, pos: int, end: int, path: str, where: str) -> tuple[int, int]:
        """The varint at ``pos``: (value, next position); truncation names ``path``."""
        buf = self.buf
        value = 0
        for i in range(10):
            if pos >= end:
                raise GrammarError(rules.WIRE_TRUNCATED, path or "<input>", f"{where} cut short")
            b = buf[pos]
            pos += 1
            if i == 9 and b > 1:
                raise GrammarError(rules.WIRE_VARINT, where, "varint longer than 64 bits")
            value |= (b & 0x7F) << (7 * i)
            if b < 0x80:
                if i > 0 and b == 0:
                    raise GrammarError(rules.WIRE_VARINT, where, "varint not minimal")
                return value, pos
        raise AssertionError("unreachable")  # pragma: no cover

    def message(self, schema: _Message, pos: int, end: int, path: str, depth: int) -> int:
        """Scan one message's bytes; return the weight of the messages below it.

        ``depth`` is the depth of this message when it is a Term, and the
        depth of the Terms it holds when it is a TermList, TermMap or
        TermMapEntry (§3.6).
        """
        at = path or "<input>"
        weight = 0
        previous = 0
        previous_wire = -1
        counts: dict[int, int] = {}
        is_term = schema.full_name == _TERM
        kinds = 0
        while pos < end:
            tag, pos = self._tag(pos, end, at)
            number, wire_type = tag >> 3, tag & 7
            if number == 0 or number == _TRAILER_NUMBER:
                raise GrammarError(rules.WIRE_TAG, at, f"field number {number}")
            if wire_type not in (_VARINT, _I64, _LEN, _I32):
                raise GrammarError(rules.WIRE_TAG, at, f"wire type {wire_type} of field {number}")
            field = schema.fields.get(number)
            if number < previous or (
                number == previous
                and not (field.repeated if field is not None else wire_type == previous_wire)
            ):
                raise GrammarError(rules.WIRE_ORDER, at, f"field {number} after field {previous}")
            previous, previous_wire = number, wire_type
            if field is None:
                pos = self._skip(pos, end, wire_type, at)
                continue
            if wire_type != field.wire_type:
                raise GrammarError(rules.WIRE_TAG, at, f"field {number} with wire type {wire_type}")
            if is_term:
                kinds += 1
                if kinds > 1:
                    raise GrammarError(rules.WIRE_ONEOF, at, "a Term with more than one kind")
            index = counts.get(number, 0)
            counts[number] = index + 1
            fpath = _join(path, f"{field.name}[{index}]" if field.repeated else field.name)
            if wire_type == _VARINT:
                value, pos = self.varint(pos, end, at, fpath)
                _check_scalar(field, value, fpath)
                continue
            if wire_type != _LEN:
                size = 8 if wire_type == _I64 else 4
                if end - pos < size:
                    raise GrammarError(rules.WIRE_TRUNCATED, at, f"{fpath} cut short")
                pos += size
                continue
            length, pos = self.varint(pos, end, at, fpath)
            if length > end - pos:
                raise GrammarError(rules.WIRE_TRUNCATED, at, f"{fpath} longer than its message")
            stop = pos + length
            child = field.message
            if child is None:
                if field.kind == _K_STRING:
                    try:
                        self.buf[pos:stop].decode("utf-8")
                    except UnicodeDecodeError:
                        raise GrammarError(rules.WIRE_UTF8, fpath, "not UTF-8") from None
                if length == 0 and not field.presence:
                    raise GrammarError(rules.WIRE_DEFAULT, fpath, "default value written")
            else:
                inner = _child_depth(schema.full_name, depth, child.full_name)
                if child.full_name == _TERM and inner > MAX_TERM_DEPTH:
                    raise GrammarError(
                        rules.TERM_DEPTH, fpath, f"Term nested deeper than {MAX_TERM_DEPTH}"
                    )
                weight += child.weight + self.message(child, pos, stop, fpath, inner)
            pos = stop
        return weight

    def _tag(self, pos: int, end: int, at: str) -> tuple[int, int]:
        tag, pos = self.varint(pos, end, at, at)
        if tag >= 1 << 32:
            raise GrammarError(rules.WIRE_VARINT, at, "tag of 2^32 or more")
        return tag, pos

    def _skip(self, pos: int, end: int, wire_type: int, at: str) -> int:
        if wire_type == _VARINT:
            return self.varint(pos, end, at, at)[1]
        if wire_type == _LEN:
            length, pos = self.varint(pos, end, at, at)
        else:
            length = 8 if wire_type == _I64 else 4
        if length > end - pos:
            raise GrammarError(rules.WIRE_TRUNCATED, at, "an unknown field cut short")
        return pos + length


def _check_scalar(field: _Field, value: int, fpath: str) -> None:
    kind = field.kind
    if kind == _K_BOOL and value > 1:
        raise GrammarError(rules.WIRE_RANGE, fpath, f"bool {value}")
    if kind == _K_UINT32 and value >= 1 << 32:
        raise GrammarError(rules.WIRE_RANGE, fpath, f"{value} over uint32")
    if kind == _K_INT32 and (1 << 31) <= value < (1 << 64) - (1 << 31):
        raise GrammarError(rules.WIRE_RANGE, fpath, f"{value} outside int32")
    if value == 0 and not field.presence:
        raise GrammarError(rules.WIRE_DEFAULT, fpath, "default value written")


def _child_depth(parent: str, depth: int, child: str) -> int:
    """The depth (§3.6) a message of type ``child`` gets inside ``parent`` at ``depth``."""
    if parent == _TERM:
        return depth + 1
    if parent in _TERM_CONTAINERS:
        return depth
    if child == _TERM:
        return 1
    return 2 if child in _TERM_CONTAINERS else 0


def _flat_table() -> list[tuple[int, int, tuple[tuple[int, str, int, int, bool, bool, int], ...]]]:
    """The field table for C: one ``(role, weight, fields)`` per message, the root first.

    ``role`` is 1 for a Term, 2 for a TermList, TermMap or TermMapEntry, 0
    otherwise; a field is ``(number, name, kind, wire type, presence,
    repeated, index of its message type or -1)``.
    """
    order: list[_Message] = []
    index: dict[str, int] = {}

    def visit(message: _Message) -> None:
        if message.full_name in index:
            return
        index[message.full_name] = len(order)
        order.append(message)
        for field in message.fields.values():
            if field.message is not None:
                visit(field.message)

    visit(_ROOT)
    visit(_DELTA_ROOT)
    table = []
    for message in order:
        role = (
            1 if message.full_name == _TERM else 2 if message.full_name in _TERM_CONTAINERS else 0
        )
        fields = tuple(
            (
                number,
                field.name,
                field.kind,
                field.wire_type,
                field.presence,
                field.repeated,
                -1 if field.message is None else index[field.message.full_name],
            )
            for number, field in sorted(message.fields.items())
        )
        table.append((role, message.weight, fields))
    return table


def give_table(set_table: Callable[..., None]) -> None:
    """Hand the field table and the limits to the compiled module's ``set_grammar_table``."""
    set_table(_flat_table(), MAX_TERM_DEPTH, MAX_CHECKPOINT_BYTES, _WEIGHT_FACTOR, _WEIGHT_BASE)


if accel.set_grammar_table is not None:
    give_table(accel.set_grammar_table)
