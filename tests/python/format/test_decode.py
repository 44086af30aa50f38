"""decode never trusts its input: any bytes give a checkpoint or ResumeMismatch."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsxir.errors import ResumeMismatch
from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session import grammar
from dsxir.optimizer_session.wire import varint

VECTORS = Path(__file__).resolve().parents[2] / "vectors"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text())
VALID = [(VECTORS / v["binpb"]).read_bytes() for v in MANIFEST["valid"]]


def _decode_or_refuse(data: bytes) -> None:
    try:
        cp = ck.decode(data)
    except ResumeMismatch as exc:
        assert exc.reason == "checkpoint_shape"
        assert exc.field
        return
    assert ck.decode(ck.encode(cp)) == cp  # whatever is accepted is valid


@settings(max_examples=400)
@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    _decode_or_refuse(data)


@settings(max_examples=300)
@given(st.sampled_from(VALID), st.binary(min_size=1, max_size=40), st.integers(0, 10_000))
def test_spliced_bytes(base: bytes, insert: bytes, where: int) -> None:
    where %= len(base) + 1
    _decode_or_refuse(base[:where] + insert + base[where:])


@pytest.mark.parametrize("index", range(len(VALID)))
def test_every_truncation(index: int) -> None:
    data = VALID[index][:4000]
    for cut in range(len(data)):
        _decode_or_refuse(data[:cut])


@pytest.mark.parametrize("index", range(len(VALID)))
def test_bit_flips(index: int) -> None:
    rng = random.Random(index)
    data = VALID[index]
    for _ in range(400):
        flipped = bytearray(data)
        for _ in range(rng.randint(1, 3)):
            pos = rng.randrange(len(flipped))
            flipped[pos] ^= 1 << rng.randrange(8)
        _decode_or_refuse(bytes(flipped))


def test_size_limit_is_checked_before_parsing() -> None:
    too_big = memoryview(bytearray(ck.MAX_CHECKPOINT_BYTES + 1))
    with pytest.raises(ResumeMismatch) as info:
        ck.decode(too_big)
    assert info.value.field == "<input>"
    assert info.value.rule == "input.too_large"
    assert "over the limit" in str(info.value)


def test_nesting_past_the_runtime_limit_is_refused() -> None:
    term = b"\x0a\x00"  # a null Term wrapped in 200 lists
    for _ in range(200):
        items = b"\x0a" + varint(len(term)) + term
        term = b"\x4a" + varint(len(items)) + items
    reason = b"\x72" + varint(len(term)) + term  # field 14, terminal_reason
    with pytest.raises(ResumeMismatch) as info:
        ck.decode(grammar.seal(VALID[0][:-9] + reason))
    # the grammar stops at the first Term past depth 24, before upb would parse it
    assert info.value.field == "terminal_reason" + ".list_value.items[0]" * 24
    assert info.value.rule == "term.depth"


def test_non_bytes_input_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        ck.decode("not bytes")  # type: ignore[arg-type]


def test_a_memoryview_of_wide_items_cannot_slip_past_the_size_limit() -> None:
    from dsxir.optimizer_session.validate import MAX_CHECKPOINT_BYTES

    wide = memoryview(bytearray(MAX_CHECKPOINT_BYTES + 8)).cast("Q")
    assert len(wide) < MAX_CHECKPOINT_BYTES < wide.nbytes
    with pytest.raises(ResumeMismatch) as info:
        ck.decode(wide)
    assert info.value.field == "<input>"
    assert info.value.rule == "input.too_large"


def test_encode_refuses_what_decode_would_refuse_for_its_size() -> None:
    from dsxir.errors import InvalidCheckpoint
    from dsxir.optimizer_session.validate import MAX_CHECKPOINT_BYTES

    cp = ck.new(
        session_id="big",
        optimizer="o",
        trainset_hash=bytes(32),
        sampler_blob=b"x" * (MAX_CHECKPOINT_BYTES + 1),
        sampler_format=("m", 1),
    )
    with pytest.raises(InvalidCheckpoint) as info:
        ck.encode(cp)
    assert info.value.path == "<input>"
    assert info.value.rule == "input.too_large"
