"""Term values as plain JSON (``--json`` output, ``export --format jsonl``), and back.

The mapping, one to one (so :func:`from_plain` gives back the exact Term):

==============================  ==============================================
Term                            plain JSON
==============================  ==============================================
null, true, false               ``null``, ``true``, ``false``
integer (any size)              a number (``30``); an integer of more than
                                :data:`MAX_PLAIN_DIGITS` decimal digits is
                                ``{"$int": "0x…"}`` (hex, ``-0x…`` when negative)
float                           a number written with a fraction or an
                                exponent (``3.0``, ``1e-07``, ``-0.0``);
                                ``{"$float": "Infinity"}``, ``{"$float": "-Infinity"}``
string                          a string
bytes                           ``{"$bytes": "<base64>"}``
atom                            ``{"$atom": "name"}``
list                            an array
tuple                           ``{"$tuple": [...]}``
map, every key a string, none   an object (``{"seed": 7}``)
starting with ``$``
any other map                   ``{"$map": [[key, value], ...]}``, in stored order
==============================  ==============================================

An object with exactly one member whose name starts with ``$`` is therefore
always one of these wrappers, never a map. Typed float fields outside Terms
(scores) are numbers or the strings ``"Infinity"``/``"-Infinity"``, as in
proto3 JSON (:func:`dsxir.cli.views.json_float`).
"""

from __future__ import annotations

import base64
import binascii
import math
from typing import Any

from dsxir.optimizer_session.v1.term_pb2 import Term, TermMap

__all__ = ["MAX_PLAIN_DIGITS", "PlainError", "from_plain", "map_plain", "term_plain"]

MAX_PLAIN_DIGITS = 4000
"""Longer integers are written as hex: many JSON readers refuse longer numbers
(Python's ``json`` refuses more than 4300 digits)."""

_TOO_BIG = 10**MAX_PLAIN_DIGITS
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_WRAPPERS = ("$int", "$float", "$bytes", "$atom", "$tuple", "$map")


class PlainError(ValueError):
    """A JSON value that is not the plain form of any Term."""


def term_plain(term: Term) -> Any:
    """The plain JSON value of a Term (see the module text)."""
    kind = term.WhichOneof("kind")
    if kind == "null_value" or kind is None:
        return None
    if kind == "bool_value":
        return term.bool_value
    if kind == "int_value":
        return term.int_value
    if kind == "bigint_value":
        return _int_plain(int.from_bytes(term.bigint_value, "big", signed=True))
    if kind == "float_value":
        return float_plain(term.float_value)
    if kind == "string_value":
        return term.string_value
    if kind == "bytes_value":
        return {"$bytes": base64.b64encode(term.bytes_value).decode("ascii")}
    if kind == "atom_value":
        return {"$atom": term.atom_value}
    if kind == "list_value":
        return [term_plain(item) for item in term.list_value.items]
    if kind == "tuple_value":
        return {"$tuple": [term_plain(item) for item in term.tuple_value.items]}
    return map_plain(term.map_value)


def map_plain(term_map: TermMap) -> Any:
    """The plain JSON value of a map: an object when every key is a string not starting with $."""
    entries = term_map.entries
    if all(
        e.key.WhichOneof("kind") == "string_value" and not e.key.string_value.startswith("$")
        for e in entries
    ):
        return {e.key.string_value: term_plain(e.value) for e in entries}
    return {"$map": [[term_plain(e.key), term_plain(e.value)] for e in entries]}


def float_plain(value: float) -> Any:
    """A float inside a Term: a number, or ``{"$float": "Infinity"}`` / ``"-Infinity"``."""
    if math.isinf(value):
        return {"$float": "Infinity" if value > 0 else "-Infinity"}
    return value


def _int_plain(value: int) -> Any:
    if -_TOO_BIG < value < _TOO_BIG:
        return value
    return {"$int": hex(value)}


# --- back to Terms -------------------------------------------------------------------


def from_plain(value: Any) -> Term:
    """The canonical Term whose plain JSON value is ``value`` (as ``json.loads`` reads it).

    Raises :class:`PlainError` for a value no Term maps to (an unknown ``$``
    wrapper, NaN, two equal map keys).
    """
    term = Term()
    _fill(term, value, "$")
    return term


def _fill(term: Term, value: Any, path: str) -> None:
    if value is None:
        term.null_value.SetInParent()
    elif isinstance(value, bool):
        term.bool_value = value
    elif isinstance(value, int):
        _fill_int(term, value)
    elif isinstance(value, float):
        if value != value:
            raise PlainError(f"{path}: NaN has no Term")
        term.float_value = value
    elif isinstance(value, str):
        term.string_value = value
    elif isinstance(value, list):
        term.list_value.SetInParent()
        for i, item in enumerate(value):
            _fill(term.list_value.items.add(), item, f"{path}[{i}]")
    elif isinstance(value, dict):
        _fill_object(term, value, path)
    else:
        raise PlainError(f"{path}: {type(value).__name__} is not a JSON value")


def _fill_int(term: Term, value: int) -> None:
    if _INT64_MIN <= value <= _INT64_MAX:
        term.int_value = value
    else:
        size = ((value if value >= 0 else ~value).bit_length() + 8) // 8
        term.bigint_value = value.to_bytes(size, "big", signed=True)


def _fill_object(term: Term, value: dict[str, Any], path: str) -> None:
    wrapper = next((k for k in value if k.startswith("$")), None)
    if wrapper is None:
        _fill_map(term, [(k, v) for k, v in value.items()], path)
        return
    if len(value) != 1 or wrapper not in _WRAPPERS:
        raise PlainError(
            f"{path}: an object with {wrapper!r} must be one of {', '.join(_WRAPPERS)}"
        )
    inner = value[wrapper]
    where = f"{path}.{wrapper}"
    if wrapper == "$int":
        if not isinstance(inner, str):
            raise PlainError(f"{where}: must be a hex string")
        try:
            _fill_int(term, int(inner, 16))
        except ValueError:
            raise PlainError(f"{where}: not a hex integer: {inner!r}") from None
    elif wrapper == "$float":
        if inner not in ("Infinity", "-Infinity"):
            raise PlainError(f'{where}: must be "Infinity" or "-Infinity"')
        term.float_value = math.inf if inner == "Infinity" else -math.inf
    elif wrapper == "$bytes":
        try:
            term.bytes_value = base64.b64decode(str(inner), validate=True)
        except (binascii.Error, ValueError):
            raise PlainError(f"{where}: not base64") from None
    elif wrapper == "$atom":
        if not isinstance(inner, str):
            raise PlainError(f"{where}: must be a string")
        term.atom_value = inner
    elif wrapper == "$tuple":
        if not isinstance(inner, list):
            raise PlainError(f"{where}: must be an array")
        term.tuple_value.SetInParent()
        for i, item in enumerate(inner):
            _fill(term.tuple_value.items.add(), item, f"{where}[{i}]")
    else:
        if not isinstance(inner, list) or not all(
            isinstance(pair, list) and len(pair) == 2 for pair in inner
        ):
            raise PlainError(f"{where}: must be an array of [key, value] pairs")
        _fill_map(term, [(pair[0], pair[1]) for pair in inner], path)


def _fill_map(term: Term, pairs: list[tuple[Any, Any]], path: str) -> None:
    entries: list[tuple[bytes, Term, Term]] = []
    for i, (key, item) in enumerate(pairs):
        key_term, value_term = Term(), Term()
        _fill(key_term, key, f"{path}<key {i}>")
        _fill(value_term, item, f"{path}[{key!r}]")
        entries.append((key_term.SerializeToString(deterministic=True), key_term, value_term))
    entries.sort(key=lambda entry: entry[0])
    term.map_value.SetInParent()
    previous: bytes | None = None
    for raw, key_term, value_term in entries:
        if raw == previous:
            raise PlainError(f"{path}: two equal map keys")
        previous = raw
        added = term.map_value.entries.add()
        added.key.CopyFrom(key_term)
        added.value.CopyFrom(value_term)
