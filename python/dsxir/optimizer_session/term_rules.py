"""The rules a Term keeps (FORMAT.md §3), and how a refusal names its path.

:func:`check_term` and :func:`check_term_map` refuse a ``Term`` or
``TermMap`` message that a reader must refuse: no kind, NaN, nesting deeper
than :data:`MAX_TERM_DEPTH`, map entries without key or value, keys not in
ascending order of their canonical bytes or repeated, big integers that are
not minimal or that fit in ``int64``. They raise
:class:`~dsxir.errors.InvalidCheckpoint` with the path of the offending part
and the id of the broken rule (:mod:`~dsxir.optimizer_session.rules`).

:class:`Refusal` is how the Term code (here and in
:mod:`~dsxir.optimizer_session.terms`) reports a refusal on its way up:
each level prepends its part of the path, and :func:`raise_at` raises it
under a root name.
"""

from __future__ import annotations

from dsxir.errors import InvalidCheckpoint
from dsxir.optimizer_session import rules
from dsxir.optimizer_session.v1.term_pb2 import Term, TermMap

__all__ = ["MAX_TERM_DEPTH", "Refusal", "check_term", "check_term_map", "raise_at"]

MAX_TERM_DEPTH = 24
"""The deepest Term a reader accepts (a scalar has depth 1)."""

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1


class Refusal(Exception):
    """A refusal on its way up; each level prepends its part of the path.

    ``rule`` is the id of the broken format rule, ``None`` for a value the
    API cannot take that breaks none (a type with no Term form, a lone
    surrogate, a key Python cannot hold).
    """

    def __init__(
        self,
        detail: str,
        kind: type[Exception] = InvalidCheckpoint,
        part: str | None = None,
        *,
        rule: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.kind = kind
        self.rule = rule
        self.parts: list[str] = [] if part is None else [part]


def raise_at(bad: Refusal, root: str) -> None:
    """Raise ``bad`` as ``TypeError`` or ``InvalidCheckpoint``, its path starting at ``root``."""
    path = root + "".join(reversed(bad.parts))
    if bad.kind is TypeError:
        raise TypeError(f"{path}: {bad.detail}") from None
    raise InvalidCheckpoint(path, bad.detail, bad.rule) from None


def check_term(term: Term, path: str) -> None:
    """Refuse a Term message that breaks a rule of FORMAT.md §3 (raises InvalidCheckpoint)."""
    try:
        _check(term, 1)
    except Refusal as bad:
        raise_at(bad, path)


def check_term_map(term_map: TermMap, path: str) -> None:
    """Refuse a TermMap message that breaks a rule of FORMAT.md §3."""
    try:
        _check_map(term_map, 2)
    except Refusal as bad:
        raise_at(bad, path)


def _check(term: Term, depth: int) -> None:
    if depth > MAX_TERM_DEPTH:
        raise Refusal(f"nesting deeper than {MAX_TERM_DEPTH}", rule=rules.TERM_DEPTH)
    kind = term.WhichOneof("kind")
    if kind is None:
        raise Refusal("term has no kind", rule=rules.TERM_KIND)
    if kind == "float_value":
        if term.float_value != term.float_value:
            raise Refusal("NaN is not allowed", part=".float_value", rule=rules.FLOAT_NAN)
    elif kind in ("list_value", "tuple_value"):
        for i, item in enumerate(getattr(term, kind).items):
            try:
                _check(item, depth + 1)
            except Refusal as bad:
                bad.parts.append(f".{kind}.items[{i}]")
                raise
    elif kind == "map_value":
        try:
            _check_map(term.map_value, depth + 1)
        except Refusal as bad:
            bad.parts.append(".map_value")
            raise
    elif kind == "bigint_value":
        detail = _bigint_problem(term.bigint_value)
        if detail:
            raise Refusal(detail, part=".bigint_value", rule=rules.TERM_BIGINT)


def _check_map(term_map: TermMap, depth: int) -> None:
    previous = None
    for i, entry in enumerate(term_map.entries):
        try:
            if not entry.HasField("key"):
                raise Refusal("map entry has no key", rule=rules.TERM_MAP_KEY_REQUIRED)
            try:
                _check(entry.key, depth)
            except Refusal as bad:
                bad.parts.append(".key")
                raise
            if not entry.HasField("value"):
                raise Refusal("map entry has no value", rule=rules.TERM_MAP_VALUE_REQUIRED)
            try:
                _check(entry.value, depth)
            except Refusal as bad:
                bad.parts.append(".value")
                raise
            key_bytes = entry.key.SerializeToString(deterministic=True)
            if previous is not None and key_bytes <= previous:
                problem = "duplicate map key" if key_bytes == previous else "keys are not sorted"
                raise Refusal(problem, part=".key", rule=rules.TERM_MAP_ORDER)
            previous = key_bytes
        except Refusal as bad:
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
