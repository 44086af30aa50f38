"""Term: open data (options, stats, errors, artifacts, examples) as canonical bytes.

Python values map to Terms one to one: ``None``, ``bool``, ``int`` of any
size, ``float``, ``str``, ``bytes``, :class:`Atom`, ``list``, ``tuple`` and
mappings. ``True``, ``1``, ``1.0`` and ``"1"`` are four different Terms.

The encoder writes the canonical encoding of FORMAT.md directly, without
building protobuf messages, so that hashing a trainset costs one pass over
the data; :func:`to_term` parses those bytes once into a ``Term`` message.

Refused, with the path of the offending value: NaN (``InvalidCheckpoint``,
a ``ValueError``), strings that are not valid Unicode (lone surrogates),
nesting deeper than :data:`MAX_TERM_DEPTH`, duplicate map keys, and any type
outside the mapping above (``TypeError``).

When the optional compiled module ``dsxir._accel`` is built, values of the
exact built-in types are encoded by it, and checkpoints are validated by it
(:mod:`~dsxir.optimizer_session.validate`); it gives the same bytes and the
same verdicts as the Python code, which handles everything it declines and
reports every refusal. :data:`ACCELERATED` tells whether it is in use; the
environment variable ``DSXIR_PURE_PYTHON=1`` (any value but empty or ``0``)
turns it off when the package is imported.
"""

from __future__ import annotations

import dataclasses
import importlib
import numbers
import os
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, cast

from dsxir.errors import InvalidCheckpoint
from dsxir.optimizer_session.v1.term_pb2 import Term, TermMap

__all__ = [
    "ACCELERATED",
    "MAX_TERM_DEPTH",
    "Atom",
    "check_term",
    "check_term_map",
    "framed_term_bytes",
    "from_term",
    "map_body",
    "term_bytes",
    "to_term",
]

MAX_TERM_DEPTH = 24
"""The deepest Term a reader accepts (a scalar has depth 1)."""

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_pack_double = struct.Struct("<d").pack
_pack_u64 = struct.Struct(">Q").pack


@dataclasses.dataclass(frozen=True, slots=True)
class Atom:
    """A symbol (an Elixir atom): a name that is not a string."""

    name: str


# --- the optional compiled accelerator -------------------------------------------

_Encoder = Callable[[Any], "bytes | None"]
_accel_term_bytes: _Encoder | None = None
_accel_map_body: _Encoder | None = None
_accel_frame_terms: _Encoder | None = None
_accel_check_canonical: Callable[[bytes], bool] | None = None


def _load_accelerator() -> bool:
    """Bind the compiled functions unless disabled or not built; True when bound."""
    global _accel_term_bytes, _accel_map_body, _accel_frame_terms, _accel_check_canonical
    if os.environ.get("DSXIR_PURE_PYTHON", "") not in ("", "0"):
        return False
    try:
        accel = importlib.import_module("dsxir._accel")
    except ImportError:
        return False
    accel.set_atom_type(Atom)
    _accel_term_bytes = cast(_Encoder, accel.term_bytes)
    _accel_map_body = cast(_Encoder, accel.map_body)
    _accel_frame_terms = cast(_Encoder, accel.frame_terms)
    _accel_check_canonical = cast(Callable[[bytes], bool], accel.check_canonical)
    return True


ACCELERATED = _load_accelerator()
"""True when the compiled module ``dsxir._accel`` is in use (see the module doc)."""


class _Bad(Exception):
    """A refusal on its way up; each level prepends its part of the path."""

    def __init__(
        self, detail: str, kind: type[Exception] = InvalidCheckpoint, part: str | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.kind = kind
        self.parts: list[str] = [] if part is None else [part]


def _raise(bad: _Bad, root: str) -> None:
    path = root + "".join(reversed(bad.parts))
    if bad.kind is TypeError:
        raise TypeError(f"{path}: {bad.detail}") from None
    raise InvalidCheckpoint(path, bad.detail) from None


# --- encoding Python values ---------------------------------------------------


def _varint(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _length(n: int) -> bytes:
    return bytes((n,)) if n < 0x80 else _varint(n)


def _enc_none(value: Any, depth: int) -> bytes:
    return b"\x0a\x00"


def _enc_bool(value: Any, depth: int) -> bytes:
    return b"\x10\x01" if value else b"\x10\x00"


def _enc_int(value: Any, depth: int) -> bytes:
    v = int(value)
    if _INT64_MIN <= v <= _INT64_MAX:
        return b"\x18" + _varint(((v << 1) ^ (v >> 63)) & 0xFFFFFFFFFFFFFFFF)
    raw = v.to_bytes(((v if v >= 0 else ~v).bit_length() + 8) // 8, "big", signed=True)
    return b"\x22" + _length(len(raw)) + raw


def _enc_float(value: Any, depth: int) -> bytes:
    v = float(value)
    if v != v:
        raise _Bad("NaN is not allowed")
    return b"\x29" + _pack_double(v)


def _enc_str(value: Any, depth: int) -> bytes:
    try:
        raw = str.encode(value, "utf-8")
    except UnicodeEncodeError:
        raise _Bad("string is not valid Unicode (lone surrogate)") from None
    return b"\x32" + _length(len(raw)) + raw


def _enc_bytes(value: Any, depth: int) -> bytes:
    raw = bytes(value)
    return b"\x3a" + _length(len(raw)) + raw


def _enc_atom(value: Any, depth: int) -> bytes:
    try:
        raw = str.encode(value.name, "utf-8")
    except UnicodeEncodeError:
        raise _Bad("atom name is not valid Unicode (lone surrogate)") from None
    return b"\x42" + _length(len(raw)) + raw


def _list_body(items: Iterable[Any], depth: int) -> bytes:
    parts = []
    for i, item in enumerate(items):
        try:
            item_bytes = _encode(item, depth)
        except _Bad as bad:
            bad.parts.append(f"[{i}]")
            raise
        parts.append(b"\x0a" + _length(len(item_bytes)) + item_bytes)
    return b"".join(parts)


def _enc_list(value: Any, depth: int) -> bytes:
    body = _list_body(value, depth + 1)
    return b"\x4a" + _length(len(body)) + body


def _enc_tuple(value: Any, depth: int) -> bytes:
    body = _list_body(value, depth + 1)
    return b"\x52" + _length(len(body)) + body


def _map_body(pairs: Iterable[tuple[Any, Any]], depth: int) -> bytes:
    entries = []
    for key, val in pairs:
        try:
            key_bytes = _encode(key, depth)
            val_bytes = _encode(val, depth)
        except _Bad as bad:
            bad.parts.append(f"[{key!r}]")
            raise
        entries.append((key_bytes, val_bytes))
    entries.sort()
    parts = []
    previous = None
    for key_bytes, val_bytes in entries:
        if key_bytes == previous:
            raise _Bad(f"duplicate map key (canonical bytes {key_bytes.hex()})")
        previous = key_bytes
        entry = b"\x0a" + _length(len(key_bytes)) + key_bytes
        entry += b"\x12" + _length(len(val_bytes)) + val_bytes
        parts.append(b"\x0a" + _length(len(entry)) + entry)
    return b"".join(parts)


def _enc_map(value: Any, depth: int) -> bytes:
    body = _map_body(_pairs(value), depth + 1)
    return b"\x5a" + _length(len(body)) + body


def _pairs(value: Any) -> Iterable[tuple[Any, Any]]:
    """The (key, value) pairs of anything that maps as a Term map."""
    if isinstance(value, Mapping):
        return value.items()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
    to_dict = getattr(value, "toDict", None)
    if callable(to_dict):
        return _pairs(to_dict())
    return value.items()  # type: ignore[no-any-return]


_EXACT: dict[type, Callable[[Any, int], bytes]] = {
    type(None): _enc_none,
    bool: _enc_bool,
    int: _enc_int,
    float: _enc_float,
    str: _enc_str,
    bytes: _enc_bytes,
    bytearray: _enc_bytes,
    memoryview: _enc_bytes,
    Atom: _enc_atom,
    list: _enc_list,
    tuple: _enc_tuple,
    dict: _enc_map,
}


def _encoder_for(value: Any) -> Callable[[Any, int], bytes]:
    """The encoder of a value whose type is not one of the exact types."""
    for base in (int, float, str, bytes, list, tuple):
        if isinstance(value, base):
            return _EXACT[base]
    if isinstance(value, numbers.Integral):
        return _enc_int
    if isinstance(value, numbers.Real):
        return _enc_float
    if isinstance(value, Mapping) or (
        dataclasses.is_dataclass(value) and not isinstance(value, type)
    ):
        return _enc_map
    if callable(getattr(value, "toDict", None)) or callable(getattr(value, "items", None)):
        return _enc_map
    raise _Bad(f"{type(value).__name__} has no Term form", TypeError)


def _encode(value: Any, depth: int) -> bytes:
    if depth > MAX_TERM_DEPTH:
        raise _Bad(f"nesting deeper than {MAX_TERM_DEPTH}")
    encoder = _EXACT.get(type(value)) or _encoder_for(value)
    return encoder(value, depth)


def term_bytes(value: Any, *, root: str = "value") -> bytes:
    """The canonical bytes of ``value`` as a ``Term`` message.

    Raises ``TypeError`` for a value with no Term form and
    :class:`~dsxir.errors.InvalidCheckpoint` for NaN, invalid Unicode,
    duplicate keys or excessive depth; both name the path from ``root``.
    """
    if _accel_term_bytes is not None:
        fast = _accel_term_bytes(value)
        if fast is not None:
            return fast
    try:
        return _encode(value, 1)
    except _Bad as bad:
        _raise(bad, root)
        raise AssertionError("unreachable") from None


def map_body(value: Any, *, root: str = "value") -> bytes:
    """The canonical bytes of a mapping as a ``TermMap`` message."""
    if _accel_map_body is not None and type(value) is dict:
        fast = _accel_map_body(value)
        if fast is not None:
            return fast
    try:
        if type(value) is not dict and _encoder_for(value) is not _enc_map:
            raise _Bad(f"{type(value).__name__} is not a mapping", TypeError)
        return _map_body(_pairs(value), 2)
    except _Bad as bad:
        _raise(bad, root)
        raise AssertionError("unreachable") from None


def framed_term_bytes(values: Sequence[Any], *, root: str = "values") -> bytes:
    """``uint64_be(len(t)) + t`` for the canonical bytes ``t`` of each value, joined.

    The framing of FORMAT.md §6; refusals name ``root[i]`` and the path below.
    """
    if _accel_frame_terms is not None:
        fast = _accel_frame_terms(values)
        if fast is not None:
            return fast
    parts = []
    for i, value in enumerate(values):
        encoded = term_bytes(value, root=f"{root}[{i}]")
        parts.append(_pack_u64(len(encoded)))
        parts.append(encoded)
    return b"".join(parts)


def to_term(value: Any) -> Term:
    """Convert a Python value to a canonical ``Term`` message."""
    return Term.FromString(term_bytes(value))


# --- reading Terms -------------------------------------------------------------


def from_term(term: Term | TermMap, *, root: str = "term") -> Any:
    """Convert a ``Term`` (or a ``TermMap``, as stats and errors are) back to Python.

    A map becomes a ``dict``; refused (``InvalidCheckpoint``, its path starting
    at ``root``): a Term without a kind, a map key Python cannot hold (a list or
    a map), and two keys that Python considers equal (``1``, ``1.0``, ``True``).
    """
    if isinstance(term, TermMap):
        wrapped = Term()
        wrapped.map_value.CopyFrom(term)
        term = wrapped
    try:
        return _from(term)
    except _Bad as bad:
        _raise(bad, root)
        raise AssertionError("unreachable") from None


def _from(term: Term) -> Any:
    kind = term.WhichOneof("kind")
    if kind is None:
        raise _Bad("term has no kind")
    if kind == "null_value":
        return None
    if kind in ("list_value", "tuple_value"):
        items = []
        for i, item in enumerate(getattr(term, kind).items):
            try:
                items.append(_from(item))
            except _Bad as bad:
                bad.parts.append(f".{kind}.items[{i}]")
                raise
        return items if kind == "list_value" else tuple(items)
    if kind == "map_value":
        out: dict[Any, Any] = {}
        for i, entry in enumerate(term.map_value.entries):
            try:
                key = _from(entry.key)
                value = _from(entry.value)
                if isinstance(key, (list, dict)):
                    raise _Bad(f"a {type(key).__name__} cannot be a Python dict key")
                if key in out:
                    raise _Bad(f"key {key!r} collides with another key in Python")
            except _Bad as bad:
                bad.parts.append(f".map_value.entries[{i}]")
                raise
            out[key] = value
        return out
    if kind == "bigint_value":
        return int.from_bytes(term.bigint_value, "big", signed=True)
    if kind == "atom_value":
        return Atom(term.atom_value)
    return getattr(term, kind)


# --- validating Term messages ----------------------------------------------------


def check_term(term: Term, path: str) -> None:
    """Refuse a Term message that breaks a rule of FORMAT.md §3 (raises InvalidCheckpoint)."""
    try:
        _check(term, 1)
    except _Bad as bad:
        _raise(bad, path)


def check_term_map(term_map: TermMap, path: str) -> None:
    """Refuse a TermMap message that breaks a rule of FORMAT.md §3."""
    try:
        _check_map(term_map, 2)
    except _Bad as bad:
        _raise(bad, path)


def _check(term: Term, depth: int) -> None:
    if depth > MAX_TERM_DEPTH:
        raise _Bad(f"nesting deeper than {MAX_TERM_DEPTH}")
    kind = term.WhichOneof("kind")
    if kind is None:
        raise _Bad("term has no kind")
    if kind == "float_value":
        if term.float_value != term.float_value:
            raise _Bad("NaN is not allowed", part=".float_value")
    elif kind in ("list_value", "tuple_value"):
        for i, item in enumerate(getattr(term, kind).items):
            try:
                _check(item, depth + 1)
            except _Bad as bad:
                bad.parts.append(f".{kind}.items[{i}]")
                raise
    elif kind == "map_value":
        try:
            _check_map(term.map_value, depth + 1)
        except _Bad as bad:
            bad.parts.append(".map_value")
            raise
    elif kind == "bigint_value":
        detail = _bigint_problem(term.bigint_value)
        if detail:
            raise _Bad(detail, part=".bigint_value")


def _check_map(term_map: TermMap, depth: int) -> None:
    previous = None
    for i, entry in enumerate(term_map.entries):
        try:
            if not entry.HasField("key"):
                raise _Bad("map entry has no key")
            try:
                _check(entry.key, depth)
            except _Bad as bad:
                bad.parts.append(".key")
                raise
            if not entry.HasField("value"):
                raise _Bad("map entry has no value")
            try:
                _check(entry.value, depth)
            except _Bad as bad:
                bad.parts.append(".value")
                raise
            key_bytes = entry.key.SerializeToString(deterministic=True)
            if previous is not None and key_bytes <= previous:
                problem = "duplicate map key" if key_bytes == previous else "keys are not sorted"
                raise _Bad(problem, part=".key")
            previous = key_bytes
        except _Bad as bad:
            bad.parts.append(f".entries[{i}]")
            raise


def _bigint_problem(raw: bytes) -> str | None:
    if not raw:
        return "empty big integer"
    if len(raw) > 1 and ((raw[0] == 0x00 and raw[1] < 0x80) or (raw[0] == 0xFF and raw[1] >= 0x80)):
        return "big integer is not minimal"
    if _INT64_MIN <= int.from_bytes(raw, "big", signed=True) <= _INT64_MAX:
        return "big integer fits in int64; it must be an int_value"
    return None
