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

When the optional compiled accelerator is in use
(:mod:`~dsxir.optimizer_session.accel`), values of the exact built-in types
are encoded by it; it gives the same bytes as the Python code here, which
handles everything it declines and reports every refusal.
"""

from __future__ import annotations

import dataclasses
import numbers
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from dsxir.optimizer_session import accel, rules
from dsxir.optimizer_session.atom import Atom
from dsxir.optimizer_session.term_rules import MAX_TERM_DEPTH, Refusal, raise_at
from dsxir.optimizer_session.v1.term_pb2 import Term, TermMap
from dsxir.optimizer_session.wire import varint

__all__ = [
    "Atom",
    "framed_term_bytes",
    "from_term",
    "map_body",
    "term_bytes",
    "to_term",
]

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_pack_double = struct.Struct("<d").pack
_pack_u64 = struct.Struct(">Q").pack


# --- encoding Python values ---------------------------------------------------


def _enc_none(value: Any, depth: int) -> bytes:
    return b"\x0a\x00"


def _enc_bool(value: Any, depth: int) -> bytes:
    return b"\x10\x01" if value else b"\x10\x00"


def _enc_int(value: Any, depth: int) -> bytes:
    v = int(value)
    if _INT64_MIN <= v <= _INT64_MAX:
        return b"\x18" + varint(((v << 1) ^ (v >> 63)) & 0xFFFFFFFFFFFFFFFF)
    raw = v.to_bytes(((v if v >= 0 else ~v).bit_length() + 8) // 8, "big", signed=True)
    return b"\x22" + varint(len(raw)) + raw


def _enc_float(value: Any, depth: int) -> bytes:
    v = float(value)
    if v != v:
        raise Refusal("NaN is not allowed", rule=rules.FLOAT_NAN)
    return b"\x29" + _pack_double(v)


def _enc_str(value: Any, depth: int) -> bytes:
    try:
        raw = str.encode(value, "utf-8")
    except UnicodeEncodeError:
        raise Refusal("string is not valid Unicode (lone surrogate)") from None
    return b"\x32" + varint(len(raw)) + raw


def _enc_bytes(value: Any, depth: int) -> bytes:
    raw = bytes(value)
    return b"\x3a" + varint(len(raw)) + raw


def _enc_atom(value: Any, depth: int) -> bytes:
    try:
        raw = str.encode(value.name, "utf-8")
    except UnicodeEncodeError:
        raise Refusal("atom name is not valid Unicode (lone surrogate)") from None
    return b"\x42" + varint(len(raw)) + raw


def _list_body(items: Iterable[Any], depth: int) -> bytes:
    parts = []
    for i, item in enumerate(items):
        try:
            item_bytes = _encode(item, depth)
        except Refusal as bad:
            bad.parts.append(f"[{i}]")
            raise
        parts.append(b"\x0a" + varint(len(item_bytes)) + item_bytes)
    return b"".join(parts)


def _enc_list(value: Any, depth: int) -> bytes:
    body = _list_body(value, depth + 1)
    return b"\x4a" + varint(len(body)) + body


def _enc_tuple(value: Any, depth: int) -> bytes:
    body = _list_body(value, depth + 1)
    return b"\x52" + varint(len(body)) + body


def _map_body(pairs: Iterable[tuple[Any, Any]], depth: int) -> bytes:
    entries = []
    for key, val in pairs:
        try:
            key_bytes = _encode(key, depth)
            val_bytes = _encode(val, depth)
        except Refusal as bad:
            bad.parts.append(f"[{key!r}]")
            raise
        entries.append((key_bytes, val_bytes))
    entries.sort()
    parts = []
    previous = None
    for key_bytes, val_bytes in entries:
        if key_bytes == previous:
            raise Refusal(
                f"duplicate map key (canonical bytes {key_bytes.hex()})", rule=rules.TERM_MAP_ORDER
            )
        previous = key_bytes
        entry = b"\x0a" + varint(len(key_bytes)) + key_bytes
        entry += b"\x12" + varint(len(val_bytes)) + val_bytes
        parts.append(b"\x0a" + varint(len(entry)) + entry)
    return b"".join(parts)


def _enc_map(value: Any, depth: int) -> bytes:
    body = _map_body(_pairs(value), depth + 1)
    return b"\x5a" + varint(len(body)) + body


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
    raise Refusal(f"{type(value).__name__} has no Term form", TypeError)


def _encode(value: Any, depth: int) -> bytes:
    if depth > MAX_TERM_DEPTH:
        raise Refusal(f"nesting deeper than {MAX_TERM_DEPTH}", rule=rules.TERM_DEPTH)
    encoder = _EXACT.get(type(value)) or _encoder_for(value)
    return encoder(value, depth)


def term_bytes(value: Any, *, root: str = "value") -> bytes:
    """The canonical bytes of ``value`` as a ``Term`` message.

    Raises ``TypeError`` for a value with no Term form and
    :class:`~dsxir.errors.InvalidCheckpoint` for NaN, invalid Unicode,
    duplicate keys or excessive depth; both name the path from ``root``.
    """
    if accel.term_bytes is not None:
        fast = accel.term_bytes(value)
        if fast is not None:
            return fast
    try:
        return _encode(value, 1)
    except Refusal as bad:
        raise_at(bad, root)
        raise AssertionError("unreachable") from None


def map_body(value: Any, *, root: str = "value") -> bytes:
    """The canonical bytes of a mapping as a ``TermMap`` message."""
    if accel.map_body is not None and type(value) is dict:
        fast = accel.map_body(value)
        if fast is not None:
            return fast
    try:
        if type(value) is not dict and _encoder_for(value) is not _enc_map:
            raise Refusal(f"{type(value).__name__} is not a mapping", TypeError)
        return _map_body(_pairs(value), 2)
    except Refusal as bad:
        raise_at(bad, root)
        raise AssertionError("unreachable") from None


def framed_term_bytes(values: Sequence[Any], *, root: str = "values") -> bytes:
    """``uint64_be(len(t)) + t`` for the canonical bytes ``t`` of each value, joined.

    The framing of FORMAT.md §6; refusals name ``root[i]`` and the path below.
    """
    if accel.frame_terms is not None:
        fast = accel.frame_terms(values)
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
    except Refusal as bad:
        raise_at(bad, root)
        raise AssertionError("unreachable") from None


def _from(term: Term) -> Any:
    kind = term.WhichOneof("kind")
    if kind is None:
        raise Refusal("term has no kind", rule=rules.TERM_KIND)
    if kind == "null_value":
        return None
    if kind in ("list_value", "tuple_value"):
        items = []
        for i, item in enumerate(getattr(term, kind).items):
            try:
                items.append(_from(item))
            except Refusal as bad:
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
                    raise Refusal(f"a {type(key).__name__} cannot be a Python dict key")
                if key in out:
                    raise Refusal(f"key {key!r} collides with another key in Python")
            except Refusal as bad:
                bad.parts.append(f".map_value.entries[{i}]")
                raise
            out[key] = value
        return out
    if kind == "bigint_value":
        return int.from_bytes(term.bigint_value, "big", signed=True)
    if kind == "atom_value":
        return Atom(term.atom_value)
    return getattr(term, kind)
