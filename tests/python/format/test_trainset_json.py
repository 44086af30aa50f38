"""hash_trainset_json / hash_trainset_jsonl (FORMAT.md §6.1) against the shared cases."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsxir.optimizer_session import trainset_json
from dsxir.optimizer_session.checkpoint import hash_trainset
from dsxir.optimizer_session.trainset_json import (
    TrainsetJSONError,
    hash_trainset_json,
    hash_trainset_jsonl,
)

CASES_FILE = Path(__file__).resolve().parents[2] / "vectors" / "trainset-json" / "cases.json"
CASES: list[dict[str, Any]] = json.loads(CASES_FILE.read_text())["cases"]
BY_NAME = {case["name"]: case for case in CASES}
HASH = {"json": hash_trainset_json, "jsonl": hash_trainset_jsonl}


def raw(case: dict[str, Any]) -> bytes:
    return bytes.fromhex(case["text_hex"]) if "text_hex" in case else case["text"].encode()


def jsonl_values(text: str) -> list[Any]:
    """The examples of JSON Lines by the stdlib, for the cross-check of valid text."""
    lines = (line.removesuffix("\r") for line in text.split("\n"))
    return [json.loads(line) for line in lines if line.strip(" \t")]


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_case(case: dict[str, Any]) -> None:
    hasher = HASH[case["format"]]
    data = raw(case)
    if case.get("error"):
        for text in (data, case.get("text")):
            if text is None:
                continue
            with pytest.raises(TrainsetJSONError) as refused:
                hasher(text)
            assert str(refused.value).startswith(
                f"byte {refused.value.offset}: "
                if case["format"] == "json"
                else f"line {case['line']}, byte {refused.value.offset}: "
            )
            assert 0 <= refused.value.offset <= len(data)
        return
    assert hasher(data).hex() == case["digest"]
    assert hasher(case["text"]).hex() == case["digest"]  # str input: the same digest
    # Cross-check: the stdlib reads valid text to the same values.
    values = json.loads(case["text"]) if case["format"] == "json" else jsonl_values(case["text"])
    assert hash_trainset(values).hex() == case["digest"]


def test_cases_cover_both_formats_and_verdicts() -> None:
    verdicts = {(case["format"], "error" in case) for case in CASES}
    assert verdicts == {("json", False), ("json", True), ("jsonl", False), ("jsonl", True)}
    assert all(("digest" in case) != ("error" in case) for case in CASES)
    assert all(
        ("line" in case) == (case["format"] == "jsonl" and "error" in case) for case in CASES
    )


@pytest.mark.parametrize(
    "same",
    [
        ("float_one_fraction", "float_one_exponent", "float_one_exponent_upper_plus"),
        ("int_zero", "int_minus_zero"),
        ("string_unicode_literal", "string_unicode_escapes", "string_unicode_escapes_upper"),
        ("map_order_a", "map_order_b"),
        ("order_1_2", "jsonl_two", "jsonl_two_no_final_newline", "jsonl_crlf"),
        ("order_1_2", "jsonl_blank_between", "jsonl_value_whitespace"),
        ("qa_examples", "jsonl_qa"),
        ("empty_array", "empty_array_whitespace", "jsonl_empty", "jsonl_only_newlines"),
        ("empty_array", "jsonl_blank_lines"),
        ("int_one", "jsonl_cr_then_crlf"),
        ("float_max", "float_rounds_down_to_max"),
        ("float_min_subnormal", "float_rounds_up_to_min_subnormal"),
        ("float_zero", "float_rounds_down_to_zero", "float_underflow_to_zero"),
    ],
)
def test_equal_digests(same: tuple[str, ...]) -> None:
    assert len({BY_NAME[name]["digest"] for name in same}) == 1


@pytest.mark.parametrize(
    "different",
    [
        ("int_one", "float_one_fraction", "true", "string_one"),
        ("int_zero", "float_zero", "float_minus_zero"),
        ("order_1_2", "order_2_1", "jsonl_list_line"),
        ("int64_max", "int64_max_plus_1", "two_pow_64"),
    ],
)
def test_different_digests(different: tuple[str, ...]) -> None:
    assert len({BY_NAME[name]["digest"] for name in different}) == len(different)


def test_numbers_become_the_terms_of_the_rule() -> None:
    assert BY_NAME["int64_max_plus_1"]["digest"] == hash_trainset([2**63]).hex()
    assert BY_NAME["int_2_pow_53_plus_1"]["digest"] == hash_trainset([2**53 + 1]).hex()
    assert BY_NAME["float_halfway_to_even"]["digest"] == hash_trainset([float(2**53)]).hex()
    assert BY_NAME["float_just_above_halfway"]["digest"] == hash_trainset([float(2**53 + 2)]).hex()
    assert BY_NAME["float_minus_zero"]["digest"] == hash_trainset([-0.0]).hex()
    assert BY_NAME["float_min_subnormal"]["digest"] == hash_trainset([math.ulp(0.0)]).hex()


def test_error_names_the_byte_offset_and_line() -> None:
    with pytest.raises(TrainsetJSONError, match=r"^byte 10: duplicate key \"a\"$") as bad:
        hash_trainset_json('[{"a": 1, "a": 2}]')
    assert (bad.value.offset, bad.value.line, bad.value.detail) == (10, None, 'duplicate key "a"')
    # Offsets count UTF-8 bytes, not characters.
    with pytest.raises(TrainsetJSONError, match=r"^byte 11: ") as bad:
        hash_trainset_json('["日本", x]')
    with pytest.raises(TrainsetJSONError, match=r"^line 3, byte 10: ") as bad:
        hash_trainset_jsonl('"é"\n\n[1, x]')
    assert bad.value.line == 3
    assert isinstance(bad.value, ValueError)


def test_str_with_a_lone_surrogate_is_not_utf8() -> None:
    with pytest.raises(TrainsetJSONError, match=r"^byte 4: not UTF-8") as bad:
        hash_trainset_json('["é\ud800"]')
    assert bad.value.offset == 4
    with pytest.raises(TrainsetJSONError, match=r"^line 2, byte 6: not UTF-8"):
        hash_trainset_jsonl('"é"\n"\udc00"')


def test_input_over_the_size_limit_is_refused_before_parsing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(trainset_json, "MAX_TRAINSET_TEXT_BYTES", 8)
    assert hash_trainset_json(b"[1, 2.0]") == hash_trainset([1, 2.0])
    for text in (b"[1, 2.00]", "[1, 2.00]", '["éééé"]'):
        with pytest.raises(TrainsetJSONError, match="more than the limit of 8 bytes"):
            hash_trainset_json(text)
        with pytest.raises(TrainsetJSONError, match="more than the limit of 8 bytes"):
            hash_trainset_jsonl(text)


def test_big_integers_do_not_depend_on_the_interpreter_digit_limit() -> None:
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(640)
    try:
        assert (
            BY_NAME["int_4300_digits"]["digest"]
            == hash_trainset_json(BY_NAME["int_4300_digits"]["text"]).hex()
        )
    finally:
        sys.set_int_max_str_digits(limit)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(examples=st.lists(json_values, max_size=5), indent=st.sampled_from([None, 0, 2]))
def test_stdlib_json_text_hashes_as_its_values(examples: list[Any], indent: int | None) -> None:
    text = json.dumps(examples, indent=indent, ensure_ascii=indent == 2)
    assert hash_trainset_json(text) == hash_trainset(examples)
    lines = "\r\n".join(json.dumps(example, ensure_ascii=False) for example in examples)
    assert hash_trainset_jsonl(lines.encode()) == hash_trainset(examples)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=40) | st.text(alphabet='[]{}",:0123456789.eE+- \\tnulrfasu\n\r'))
def test_any_input_gives_a_digest_or_a_refusal(data: bytes | str) -> None:
    for hasher in (hash_trainset_json, hash_trainset_jsonl):
        try:
            digest = hasher(data)
        except TrainsetJSONError as refused:
            assert refused.offset >= 0
        else:
            assert len(digest) == 32


def test_float_token_round_trip_is_exact() -> None:
    for number in (0.1, 1e-300, 5e-324, 1.7976931348623157e308, 123456.789e3, -2.5e-10):
        assert hash_trainset_json(f"[{number!r}]") == hash_trainset([number]), number
