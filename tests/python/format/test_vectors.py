"""The golden vectors of tests/vectors/, as the Python library must read and write them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dsxir.errors import ResumeMismatch
from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session.v1.term_pb2 import Term

VECTORS = Path(__file__).resolve().parents[2] / "vectors"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text())


def _ids(group: str) -> list[Any]:
    return [pytest.param(v, id=v["name"]) for v in MANIFEST[group]]


@pytest.mark.parametrize("vector", _ids("valid"))
def test_valid_vectors_round_trip_byte_for_byte(vector: dict[str, str]) -> None:
    raw = (VECTORS / vector["binpb"]).read_bytes()
    cp = ck.decode(raw)
    assert ck.encode(cp) == raw
    assert ck.encode(ck.from_json((VECTORS / vector["json"]).read_text())) == raw


@pytest.mark.parametrize("vector", _ids("unknown"))
def test_unknown_fields_are_kept(vector: dict[str, str]) -> None:
    raw = (VECTORS / vector["binpb"]).read_bytes()
    known = (VECTORS / vector["known_only"]).read_bytes()
    cp = ck.decode(raw)
    assert ck.encode(cp) == raw
    cp.DiscardUnknownFields()
    assert ck.encode(cp) == known


@pytest.mark.parametrize("vector", _ids("canonicalize"))
def test_canonicalize_vectors_are_rewritten_only_by_canonicalize(vector: dict[str, str]) -> None:
    raw = (VECTORS / vector["input"]).read_bytes()
    canonical = (VECTORS / vector["canonical"]).read_bytes()
    assert ck.canonicalize(raw) == canonical
    assert ck.encode(ck.decode(canonical)) == canonical
    if raw != canonical:
        with pytest.raises(ResumeMismatch):  # decode never rewrites
            ck.decode(raw)


@pytest.mark.parametrize("vector", _ids("invalid"))
def test_invalid_vectors_are_refused_naming_the_field_and_rule(vector: dict[str, Any]) -> None:
    raw = (VECTORS / vector["binpb"]).read_bytes()
    with pytest.raises(ResumeMismatch) as info:
        ck.decode(raw)
    assert info.value.reason == "checkpoint_shape"
    assert info.value.field == vector["field"]
    assert info.value.rule == vector["rule"]
    assert str(info.value).startswith(f"checkpoint_shape: {vector['field']}: ")
    assert str(info.value).endswith(f" (rule {vector['rule']})")


@pytest.mark.parametrize("vector", _ids("trainset"))
def test_trainset_vectors(vector: dict[str, str]) -> None:
    term = Term.FromString((VECTORS / vector["input"]).read_bytes())
    examples = ck.from_term(term)
    assert ck.hash_trainset(examples).hex() == vector["sha256"]


def test_vectors_cover_the_promised_cases() -> None:
    names = {v["name"] for v in MANIFEST["valid"]}
    assert {
        "fresh",
        "paused",
        "completed",
        "failed",
        "cancelled",
        "terms_edge",
    } <= names
    assert {"score_zero_vs_absent", "negative_zero_score", "deep_stats"} <= names
    invalid = {v["name"] for v in MANIFEST["invalid"]}
    assert {
        "empty",
        "truncated",
        "garbage",
        "another_message",
        "format_newer_major",
        "unsealed",
        "weight",
    } <= invalid
    rules_named = {v["rule"] for v in MANIFEST["invalid"]}
    # every grammar rule but the size limit has a vector (FORMAT.md §7.1)
    assert {
        "input.trailer",
        "input.checksum",
        "input.weight",
        "wire.truncated",
        "wire.varint",
        "wire.tag",
        "wire.order",
        "wire.oneof",
        "wire.range",
        "wire.utf8",
        "wire.default",
        "term.depth",
    } <= rules_named
    assert len(MANIFEST["trainset"]) >= 8
