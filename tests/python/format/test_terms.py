"""Term conversion: exact round trips, canonical bytes, refusals naming the path."""

from __future__ import annotations

import dataclasses
import math
import struct
from typing import Any

import pytest
from hypothesis import given

from dsxir.errors import InvalidCheckpoint
from dsxir.optimizer_session.term_rules import MAX_TERM_DEPTH, check_term
from dsxir.optimizer_session.terms import Atom, from_term, term_bytes, to_term
from dsxir.optimizer_session.v1.term_pb2 import Term
from strategies import terms


def _same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down and floats compared by bits."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return len(a) == len(b) and all(k in b and _same(v, b[k]) for k, v in a.items())
    return bool(a == b)


@given(terms)
def test_round_trip_is_exact(value: Any) -> None:
    term = to_term(value)
    check_term(term, "value")
    assert _same(from_term(term), value)
    assert term.SerializeToString(deterministic=True) == term_bytes(value)


@given(terms)
def test_reencoding_a_term_changes_nothing(value: Any) -> None:
    raw = term_bytes(value)
    assert Term.FromString(raw).SerializeToString(deterministic=True) == raw


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (1, 1.0),
        (1, True),
        (1, "1"),
        (1.0, True),
        (0, False),
        ([1], (1,)),
        ("ok", Atom("ok")),
        (b"x", "x"),
        (0.0, -0.0),
        (None, []),
    ],
)
def test_distinct_python_values_have_distinct_terms(a: Any, b: Any) -> None:
    assert term_bytes(a) != term_bytes(b)


def test_map_order_does_not_matter() -> None:
    assert term_bytes({"a": 1, "b": 2, 3: None}) == term_bytes({3: None, "b": 2, "a": 1})


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (2**63 - 1, "int_value"),
        (-(2**63), "int_value"),
        (2**63, "bigint_value"),
        (-(2**63) - 1, "bigint_value"),
        (10**40, "bigint_value"),
    ],
)
def test_integers_use_int_value_exactly_when_they_fit(value: int, kind: str) -> None:
    term = to_term(value)
    assert term.WhichOneof("kind") == kind
    assert from_term(term) == value


def test_big_integers_are_minimal_twos_complement() -> None:
    assert to_term(2**63).bigint_value == bytes.fromhex("008000000000000000")
    assert to_term(-(2**63) - 1).bigint_value == bytes.fromhex("ff7fffffffffffffff")
    assert to_term(-(2**64)).bigint_value == bytes.fromhex("ff0000000000000000")


def test_negative_zero_and_infinities_keep_their_bits() -> None:
    for value in (-0.0, math.inf, -math.inf):
        back = from_term(to_term(value))
        assert struct.pack("<d", back) == struct.pack("<d", value)


def test_nan_is_refused_with_its_path() -> None:
    with pytest.raises(InvalidCheckpoint) as info:
        term_bytes({"a": [1, math.nan]})
    assert info.value.path == "value['a'][1]"
    assert isinstance(info.value, ValueError)


def test_unsupported_types_raise_type_error_with_path() -> None:
    with pytest.raises(TypeError, match=r"value\['when'\]: datetime has no Term form"):
        import datetime

        term_bytes({"when": datetime.datetime(2026, 1, 1)})
    with pytest.raises(TypeError, match=r"value\[0\]: set has no Term form"):
        term_bytes([{1, 2}])


def test_lone_surrogates_are_refused() -> None:
    with pytest.raises(InvalidCheckpoint, match="lone surrogate"):
        term_bytes("\ud800")


def test_depth_limit() -> None:
    value: Any = "leaf"
    for _ in range(MAX_TERM_DEPTH - 1):
        value = [value]
    check_term(to_term(value), "v")
    with pytest.raises(InvalidCheckpoint, match=f"deeper than {MAX_TERM_DEPTH}"):
        term_bytes([value])


def test_mapping_likes_and_dataclasses_are_maps() -> None:
    @dataclasses.dataclass
    class Example:
        question: str
        answer: str

    class DspyLike:
        def __init__(self, **kw: Any) -> None:
            self._store = kw

        def toDict(self) -> dict[str, Any]:
            return dict(self._store)

    class ItemsOnly:
        def items(self) -> list[tuple[str, str]]:
            return [("answer", "4"), ("question", "2+2")]

    plain = term_bytes({"question": "2+2", "answer": "4"})
    assert term_bytes(Example("2+2", "4")) == plain
    assert term_bytes(DspyLike(answer="4", question="2+2")) == plain
    assert term_bytes(ItemsOnly()) == plain


def test_from_term_refuses_what_python_cannot_hold() -> None:
    list_key = Term()
    entry = list_key.map_value.entries.add()
    entry.key.list_value.SetInParent()
    entry.value.null_value.SetInParent()
    with pytest.raises(InvalidCheckpoint, match="cannot be a Python dict key"):
        from_term(list_key)
    colliding = Term()
    for key in (to_term(1), to_term(True)):
        e = colliding.map_value.entries.add()
        e.key.CopyFrom(key)
        e.value.null_value.SetInParent()
    with pytest.raises(InvalidCheckpoint, match="collides"):
        from_term(colliding)
    with pytest.raises(InvalidCheckpoint, match="no kind"):
        from_term(Term())
