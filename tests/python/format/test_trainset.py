"""hash_trainset: stable where it must be, sensitive where it must be."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dsxir.optimizer_session.checkpoint import hash_trainset
from strategies import terms

QA = [{"question": "2+2?", "answer": "4"}, {"question": "capital?", "answer": "Paris"}]


def test_digest_is_32_bytes_of_the_documented_algorithm() -> None:
    from dsxir.optimizer_session.terms import term_bytes

    expected = hashlib.sha256(b"dsxir.trainset.v1\n" + (2).to_bytes(8, "big"))
    for example in QA:
        t = term_bytes(example)
        expected.update(len(t).to_bytes(8, "big") + t)
    assert hash_trainset(QA) == expected.digest()
    assert len(hash_trainset([])) == 32


def test_insertion_order_of_maps_does_not_matter() -> None:
    flipped = [{"answer": e["answer"], "question": e["question"]} for e in QA]
    assert hash_trainset(QA) == hash_trainset(flipped)


@pytest.mark.parametrize("value", [1.0, True, "1", [1], (1,), None, b"1"])
def test_types_matter(value: Any) -> None:
    assert hash_trainset([{"x": 1}]) != hash_trainset([{"x": value}])


def test_example_order_and_framing_matter() -> None:
    assert hash_trainset(QA) != hash_trainset(list(reversed(QA)))
    assert hash_trainset(["ab", "c"]) != hash_trainset(["a", "bc"])
    assert hash_trainset([["a", "b"]]) != hash_trainset(["a", "b"])


@given(st.lists(terms, max_size=5))
def test_every_value_change_changes_the_digest(examples: list[Any]) -> None:
    assert hash_trainset(examples) != hash_trainset([*examples, None])


def test_same_digest_in_other_processes_and_hash_seeds() -> None:
    code = (
        "from dsxir.optimizer_session.checkpoint import hash_trainset;"
        "print(hash_trainset([{'q': 'a', 'b': {3, 4} and 1, 'c': [1, 2.5]}, {'z': None}]).hex())"
    )
    digests = set()
    for seed in ("0", "1", "12345", "random"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_dspy_like_objects_and_dataclasses_hash_as_maps() -> None:
    @dataclasses.dataclass
    class Example:
        question: str
        answer: str

    class DspyExample:
        def __init__(self, **kw: Any) -> None:
            self._store = kw

        def toDict(self) -> dict[str, Any]:
            return dict(self._store)

    expected = hash_trainset(QA)
    assert hash_trainset([Example(**e) for e in QA]) == expected
    assert hash_trainset([DspyExample(**e) for e in QA]) == expected
    assert hash_trainset(iter(QA)) == expected


def test_unsupported_types_name_their_path() -> None:
    with pytest.raises(TypeError, match=r"trainset\[1\]\['meta'\]\[0\]: object has no Term form"):
        hash_trainset([{"ok": 1}, {"meta": [object()]}])
