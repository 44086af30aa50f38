"""The byte grammar of FORMAT.md §2: the trailer, the strict scan, the weight limit.

Every refusal is checked three ways: the plain-Python reference
(``grammar.check``), the compiled scanner (``dsxir._accel.grammar_check``,
when built) and ``checkpoint.decode``; they must name the same rule and the
same path (FORMAT.md §2.3), and C and Python the same detail.
"""

from __future__ import annotations

import importlib
import random
import struct
import threading
from collections.abc import Callable

import pytest

from dsxir.errors import InvalidCheckpoint, ResumeMismatch
from dsxir.optimizer_session import accel, grammar, rules
from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.optimizer_session.wire import varint
from store_util import make_cp

try:
    ACCEL = importlib.import_module("dsxir._accel")
    grammar.give_table(ACCEL.set_grammar_table)  # also under DSXIR_PURE_PYTHON=1
except ImportError:  # pragma: no cover - the suite runs with the extension built
    ACCEL = None

VARINT, I64, LEN, I32 = 0, 1, 2, 5
MAX = grammar.MAX_CHECKPOINT_BYTES


def tag(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def ln(number: int, payload: bytes) -> bytes:
    """A LEN field."""
    return tag(number, LEN) + varint(len(payload)) + payload


def vi(number: int, value: int) -> bytes:
    """A VARINT field."""
    return tag(number, VARINT) + varint(value)


def dbl(number: int, value: float) -> bytes:
    return tag(number, I64) + struct.pack("<d", value)


STAMP = vi(1, 1_700_000_000) + vi(2, 5)
HASH = bytes(range(32))


def body(
    *,
    opts: bytes = b"",
    progress: bytes = ln(7, STAMP),
    extra_top: bytes = b"",
    head: bytes | None = None,
    blob: bytes = b"blob",
) -> bytes:
    """The body of a valid checkpoint, with pieces replaced or added."""
    if head is None:
        head = ln(1, b"dsxir.optimizer_session.checkpoint/v1.1") + ln(2, b"s-1") + ln(3, b"opt")
    return (
        head
        + opts
        + ln(6, HASH)
        + ln(7, STAMP)
        + ln(8, STAMP)
        + ln(9, progress)
        + ln(11, blob)
        + ln(12, ln(1, b"mod") + vi(2, 1))
        + vi(13, 1)
        + extra_top
    )


def option(value_term: bytes, key: bytes = b"k") -> bytes:
    return ln(4, ln(1, key) + ln(2, value_term))


def answers(data: bytes) -> list[tuple[str, str, str] | bytes]:
    """The answers of the reference and of C: the body, or (rule, path, detail)."""
    out: list[tuple[str, str, str] | bytes] = []
    try:
        out.append(grammar.check(data))
    except grammar.GrammarError as exc:
        out.append((exc.rule, exc.path, exc.detail))
    if ACCEL is not None:
        out.append(ACCEL.grammar_check(data))
    return out


def refused(data: bytes) -> tuple[str, str]:
    """The rule and path every reader gives; asserts they agree."""
    found = answers(data)
    first = found[0]
    assert isinstance(first, tuple), f"accepted: {data.hex()}"
    assert all(answer == first for answer in found), found
    rule, path, _ = first
    with pytest.raises(ResumeMismatch) as caught:
        ck.decode(data)
    assert (caught.value.rule, caught.value.field) == (rule, path)
    assert str(caught.value).endswith(f" (rule {rule})")
    return rule, path


def accepted(data: bytes) -> bytes:
    found = answers(data)
    assert all(answer == data[:-9] for answer in found), found
    return data[:-9]


# --- the base case ------------------------------------------------------------------


def test_the_base_body_is_a_valid_checkpoint() -> None:
    data = grammar.seal(body())
    accepted(data)
    assert ck.encode(ck.decode(data)) == data


def test_crc32c_check_value() -> None:
    assert grammar.crc32c(b"123456789") == 0xE3069283
    if ACCEL is not None:
        assert ACCEL.crc32c(b"123456789") == 0xE3069283
        rng = random.Random(7)
        for size in (0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000):
            chunk = rng.randbytes(size)
            assert ACCEL.crc32c(chunk) == grammar.crc32c(chunk)


def test_encode_writes_the_trailer() -> None:
    cp = ck.decode(grammar.seal(body()))
    data = ck.encode(cp)
    assert data[-9:-4] == grammar.TRAILER_TAG
    assert int.from_bytes(data[-4:], "little") == grammar.crc32c(data[:-9])
    assert data[:-9] == cp.SerializeToString(deterministic=True)


# --- one case per rule, with its path ------------------------------------------------

TERM_LIST = 9
CASES: list[tuple[str, str, str, bytes]] = [
    # input.*
    ("input.trailer empty", rules.INPUT_TRAILER, "<input>", b""),
    ("input.trailer short", rules.INPUT_TRAILER, "<input>", b"\xfd\xff\xff\xff\x0f\0\0\0"),
    ("input.trailer body only", rules.INPUT_TRAILER, "<input>", body()),
    # wire.truncated: a tag, a value, a length past the end; names the message
    ("truncated tag", rules.WIRE_TRUNCATED, "<input>", grammar.seal(body() + b"\x80")),
    ("truncated length", rules.WIRE_TRUNCATED, "<input>", grammar.seal(body() + b"\x82\x01\x05")),
    ("truncated value", rules.WIRE_TRUNCATED, "<input>", grammar.seal(b"\x0a\x05abc")),
    (
        "truncated fixed in progress",
        rules.WIRE_TRUNCATED,
        "progress",
        grammar.seal(body(progress=ln(1, ln(2, b"c")) + b"\x11\x00\x00")),
    ),
    (
        "truncated in a trial entry",
        rules.WIRE_TRUNCATED,
        "progress.trial_log[0]",
        grammar.seal(body(progress=ln(1, b"\x20"))),
    ),
    # wire.varint
    ("non-minimal tag", rules.WIRE_VARINT, "<input>", grammar.seal(b"\x8a\x00\x00")),
    ("tag of 2^32", rules.WIRE_VARINT, "<input>", grammar.seal(b"\x80\x80\x80\x80\x10\x00")),
    (
        "11-byte tag",
        rules.WIRE_VARINT,
        "<input>",
        grammar.seal(b"\x80" * 9 + b"\x02" + b"\x00"),
    ),
    ("non-minimal value", rules.WIRE_VARINT, "direction", grammar.seal(body() + b"\x78\x81\x00")),
    (
        "non-minimal length",
        rules.WIRE_VARINT,
        "format",
        grammar.seal(b"\x0a\x80\x00"),
    ),
    (
        "value over 64 bits",
        rules.WIRE_VARINT,
        "progress.attempts",
        grammar.seal(body(progress=b"\x20" + b"\xff" * 9 + b"\x02")),
    ),
    (
        "unknown field's value names its message",
        rules.WIRE_VARINT,
        "progress",
        grammar.seal(body(progress=ln(7, STAMP) + tag(40, VARINT) + b"\x80\x00")),
    ),
    # wire.tag
    ("field number 0", rules.WIRE_TAG, "<input>", grammar.seal(b"\x00\x00")),
    (
        "the trailer's number in a body",
        rules.WIRE_TAG,
        "<input>",
        grammar.seal(body() + grammar.TRAILER_TAG + b"\0\0\0\0"),
    ),
    ("a group", rules.WIRE_TAG, "<input>", grammar.seal(body() + tag(40, 3))),
    ("wire type 6", rules.WIRE_TAG, "<input>", grammar.seal(body() + tag(40, 6))),
    (
        "known field, other wire type",
        rules.WIRE_TAG,
        "sampler_format",
        grammar.seal(
            body().replace(ln(12, ln(1, b"mod") + vi(2, 1)), ln(12, ln(1, b"mod") + ln(2, b"x")))
        ),
    ),
    # wire.order
    ("out of order", rules.WIRE_ORDER, "<input>", grammar.seal(ln(2, b"s") + ln(1, b"f"))),
    ("singular twice", rules.WIRE_ORDER, "<input>", grammar.seal(ln(1, b"f") + ln(1, b"f"))),
    (
        "repeated interrupted",
        rules.WIRE_ORDER,
        "progress",
        grammar.seal(body(progress=ln(1, vi(4, 1)) + dbl(2, 1.0) + ln(1, vi(4, 1)))),
    ),
    (
        "unknown repeated with another wire type",
        rules.WIRE_ORDER,
        "<input>",
        grammar.seal(body() + vi(40, 1) + tag(40, I32) + b"\0\0\0\0"),
    ),
    # wire.oneof
    (
        "two kinds",
        rules.WIRE_ONEOF,
        "optimizer_opts[0].value",
        grammar.seal(body(opts=option(vi(2, 1) + vi(3, 2)))),
    ),
    (
        "two kinds, second option",
        rules.WIRE_ONEOF,
        "optimizer_opts[1].value",
        grammar.seal(body(opts=option(vi(2, 1)) + option(ln(6, b"a") + ln(7, b"b")))),
    ),
    (
        "one kind twice",
        rules.WIRE_ORDER,
        "optimizer_opts[1].value",
        grammar.seal(body(opts=option(vi(2, 1)) + option(ln(6, b"a") + ln(6, b"b")))),
    ),
    # wire.range
    (
        "bool 2",
        rules.WIRE_RANGE,
        "optimizer_opts[0].value.bool_value",
        grammar.seal(body(opts=option(vi(2, 2)))),
    ),
    (
        "uint32 of 2^32",
        rules.WIRE_RANGE,
        "sampler_format.version",
        grammar.seal(
            body().replace(ln(12, ln(1, b"mod") + vi(2, 1)), ln(12, ln(1, b"mod") + vi(2, 1 << 32)))
        ),
    ),
    ("enum of 2^31", rules.WIRE_RANGE, "status", grammar.seal(body()[:-2] + vi(13, 1 << 31))),
    # wire.utf8
    ("not UTF-8", rules.WIRE_UTF8, "session_id", grammar.seal(ln(1, b"f") + ln(2, b"\xff"))),
    (
        "a surrogate",
        rules.WIRE_UTF8,
        "optimizer_opts[0].value.list_value.items[1].string_value",
        grammar.seal(
            body(opts=option(ln(TERM_LIST, ln(1, ln(6, b"ok")) + ln(1, ln(6, b"\xed\xa0\x80")))))
        ),
    ),
    (
        "overlong",
        rules.WIRE_UTF8,
        "optimizer_opts[0].key",
        grammar.seal(body(opts=option(vi(2, 1), key=b"\xc0\xaf"))),
    ),
    # wire.default
    ("empty format", rules.WIRE_DEFAULT, "format", grammar.seal(ln(1, b""))),
    ("status 0", rules.WIRE_DEFAULT, "status", grammar.seal(body()[:-2] + vi(13, 0))),
    (
        "attempts 0",
        rules.WIRE_DEFAULT,
        "progress.attempts",
        grammar.seal(body(progress=vi(4, 0) + ln(7, STAMP))),
    ),
    (
        "a stats key's map entry path",
        rules.WIRE_RANGE,
        "progress.trial_log[0].stats.entries[1].key.bool_value",
        grammar.seal(
            body(
                progress=ln(
                    1,
                    vi(4, 1)
                    + ln(5, ln(1, ln(1, ln(6, b"a")) + ln(2, vi(2, 1))) + ln(1, ln(1, vi(2, 2)))),
                )
            )
        ),
    ),
]


def nested_lists(depth: int) -> bytes:
    """A Term of ``depth`` (a list holding a list … holding null)."""
    term = ln(1, b"")  # null: depth 1
    for _ in range(depth - 1):
        term = ln(TERM_LIST, ln(1, term))
    return term


@pytest.mark.parametrize(("name", "rule", "path", "data"), CASES, ids=[c[0] for c in CASES])
def test_rule_and_path(name: str, rule: str, path: str, data: bytes) -> None:
    assert refused(data) == (rule, path)


def test_checksum() -> None:
    data = bytearray(grammar.seal(body()))
    data[-1] ^= 0x80
    assert refused(bytes(data)) == (rules.INPUT_CHECKSUM, "<input>")


def test_too_large_first() -> None:
    data = bytes(MAX + 1)  # no trailer either: the size comes first
    with pytest.raises(ResumeMismatch) as caught:
        ck.decode(data)
    assert (caught.value.rule, caught.value.field) == (rules.INPUT_TOO_LARGE, "<input>")
    assert answers(data)[0][:2] == (rules.INPUT_TOO_LARGE, "<input>")  # type: ignore[index]
    if ACCEL is not None:
        assert ACCEL.grammar_check(data)[:2] == (rules.INPUT_TOO_LARGE, "<input>")


def test_memoryview_counts_bytes_not_items() -> None:
    """A view cast to 8-byte items has len() 8 times smaller: the limit counts bytes."""
    view = memoryview(bytearray(MAX + 8)).cast("Q")
    assert len(view) * 8 == view.nbytes > MAX
    with pytest.raises(ResumeMismatch) as caught:
        ck.decode(view)
    assert (caught.value.rule, caught.value.field) == (rules.INPUT_TOO_LARGE, "<input>")
    with pytest.raises(ResumeMismatch) as caught:
        ck.canonicalize(view)
    assert caught.value.rule == rules.INPUT_TOO_LARGE


def test_memoryview_of_a_valid_checkpoint() -> None:
    data = grammar.seal(body())
    padded = data + bytes(-len(data) % 8 or 8)
    view = memoryview(padded).cast("Q")
    with pytest.raises(ResumeMismatch) as caught:  # the padding is not a trailer
        ck.decode(view)
    assert caught.value.rule == rules.INPUT_TRAILER
    assert ck.encode(ck.decode(memoryview(data))) == data
    assert ck.encode(ck.decode(bytearray(data))) == data


@pytest.mark.parametrize("depth", [24, 25])
def test_term_depth(depth: int) -> None:
    data = grammar.seal(body(opts=option(nested_lists(depth))))
    if depth <= 24:
        accepted(data)
        ck.decode(data)
        return
    path = "optimizer_opts[0].value" + ".list_value.items[0]" * 24
    assert refused(data) == (rules.TERM_DEPTH, path)


def test_stats_terms_start_at_depth_two() -> None:
    stats = lambda d: ln(5, ln(1, ln(1, ln(6, b"a")) + ln(2, nested_lists(d))))  # noqa: E731
    ok = grammar.seal(body(progress=ln(1, vi(4, 1) + stats(23))))
    accepted(ok)
    deep = grammar.seal(body(progress=ln(1, vi(4, 1) + stats(24))))
    path = "progress.trial_log[0].stats.entries[0].value" + ".list_value.items[0]" * 23
    assert refused(deep) == (rules.TERM_DEPTH, path)


def test_presence_fields_keep_zero() -> None:
    """An explicit score of 0.0 is written and accepted; no score is nothing."""
    cp = ck.decode(grammar.seal(body()))
    ck.record_trial(cp, score=0.0)
    data = ck.encode(cp)
    assert dbl(3, 0.0) in data
    again = ck.decode(data)
    assert again.progress.trial_log[0].HasField("score")
    ck.record_trial(again, score=None)
    assert not ck.decode(ck.encode(again)).progress.trial_log[1].HasField("score")


def test_unknown_fields_round_trip_byte_for_byte() -> None:
    trial = dbl(3, 0.5) + vi(4, 1) + ln(30, b"\x00\xffopaque") + vi(31, 0)
    progress = (
        ln(1, trial)
        + dbl(2, 0.5)
        + vi(3, 0)
        + vi(4, 1)
        + vi(5, 1)
        + ln(7, STAMP)
        + tag(20, I32)
        + b"\x01\x02\x03\x04"
        + tag(20, I32)
        + b"\x05\x06\x07\x08"
    )
    sealed = grammar.seal(
        body(progress=progress, extra_top=vi(16, 7) + ln(99, b"later") + tag(100, I64) + bytes(8))
    )
    accepted(sealed)
    cp = ck.decode(sealed)
    assert ck.encode(cp) == sealed
    ck.record_trial(cp, score=1.0)
    again = ck.encode(cp)
    assert ln(99, b"later") in again and ln(30, b"\x00\xffopaque") in again


def test_unknown_field_before_a_known_one_is_out_of_order() -> None:
    data = grammar.seal(body(progress=vi(40, 1) + ln(7, STAMP)))
    assert refused(data) == (rules.WIRE_ORDER, "progress")


# --- every prefix, every bit flip -----------------------------------------------------


def sample_checkpoints() -> list[bytes]:
    cp = ck.decode(grammar.seal(body(opts=option(nested_lists(3)))))
    ck.record_trial(cp, score=0.25, stats={"acc": 0.5, "n": 3, "tags": ["a", None]})
    ck.record_trial(cp, score=None, status="error", error={"class": "E", "message": "m"})
    lower = ck.decode(ck.encode(cp))
    lower.direction = 1  # type: ignore[assignment]
    return [grammar.seal(body()), ck.encode(cp), ck.encode(lower)]


@pytest.mark.parametrize("index", range(3))
def test_every_prefix_is_refused(index: int) -> None:
    data = sample_checkpoints()[index]
    for cut in range(len(data)):
        found = answers(data[:cut])
        assert all(isinstance(a, tuple) for a in found), cut
        assert found[0][0] in (rules.INPUT_TRAILER, rules.INPUT_CHECKSUM), cut  # type: ignore[index]
        assert all(a == found[0] for a in found)


@pytest.mark.parametrize("index", range(3))
def test_every_bit_flip_is_refused(index: int) -> None:
    data = sample_checkpoints()[index]
    for bit in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        found = answers(bytes(flipped))
        assert all(isinstance(a, tuple) for a in found), bit
        assert found[0][0] in (rules.INPUT_TRAILER, rules.INPUT_CHECKSUM), bit  # type: ignore[index]
        assert all(a == found[0] for a in found)


# --- the weight limit ----------------------------------------------------------------

# created_at, updated_at, progress, progress.started_at, sampler_format: 48 each
BASE_WEIGHT = 5 * 48
EMPTY_ENTRY = ln(1, b"")


def empty_entries(count: int) -> bytes:
    return grammar.seal(body(progress=EMPTY_ENTRY * count + ln(7, STAMP)))


def first_overweight() -> int:
    """The fewest empty trial entries whose checkpoint is over the weight limit."""
    count = 550_000
    while True:
        size = len(body()) + 2 * count + len(varint(2 * count + 10)) + 8
        if BASE_WEIGHT + 104 * count > grammar.weight_limit(size):
            return count
        count += 1


def test_weight_limit_is_7_x_the_length_plus_48_mib() -> None:
    assert grammar.weight_limit(0) == 50_331_648
    assert grammar.weight_limit(100) == 700 + 50_331_648
    assert grammar.weight_limit(MAX) == 7 * 268_435_456 + 50_331_648


def test_weight_limit_just_over_and_just_under() -> None:
    count = first_overweight()
    over = empty_entries(count)
    under = empty_entries(count - 1)
    assert 1_100_000 < len(over) < 1_150_000
    assert BASE_WEIGHT + 104 * count > grammar.weight_limit(len(over))
    assert BASE_WEIGHT + 104 * (count - 1) <= grammar.weight_limit(len(under))
    assert refused(over) == (rules.INPUT_WEIGHT, "<input>")
    accepted(under)
    with pytest.raises(ResumeMismatch) as caught:  # past the grammar: the entries' own rules
        ck.decode(under)
    assert caught.value.rule == rules.TRIAL_STATUS


def exactly_at_the_limit() -> tuple[int, int]:
    """Empty trial entries and a sampler blob length whose checkpoint weighs exactly the limit.

    The blob weighs nothing, so each of its bytes moves the limit by 7 and
    not the weight: some count of entries has a blob of 2 to 127 bytes that
    brings the limit onto the weight.
    """
    count = (grammar.weight_limit(0) - BASE_WEIGHT) // (104 - 14) - 40
    while True:
        weight = BASE_WEIGHT + 104 * count
        excess = weight - grammar.weight_limit(0)
        if excess % 7 == 0:
            size = len(grammar.seal(at_limit_body(count, 1)))
            blob = excess // 7 - size + 1
            assert blob <= 127, "the search started past the limit"
            if blob >= 2:
                return count, blob
        count += 1


def at_limit_body(count: int, blob: int) -> bytes:
    return body(progress=EMPTY_ENTRY * count + ln(7, STAMP), blob=b"x" * blob)


def test_weight_exactly_at_the_limit_is_accepted_and_one_byte_shorter_refused() -> None:
    count, blob = exactly_at_the_limit()
    at = grammar.seal(at_limit_body(count, blob))
    shorter = grammar.seal(at_limit_body(count, blob - 1))
    assert BASE_WEIGHT + 104 * count == grammar.weight_limit(len(at))
    assert len(shorter) == len(at) - 1
    assert BASE_WEIGHT + 104 * count == grammar.weight_limit(len(shorter)) + 7
    accepted(at)
    with pytest.raises(ResumeMismatch) as caught:  # past the grammar: the entries' own rules
        ck.decode(at)
    assert caught.value.rule == rules.TRIAL_STATUS
    assert refused(shorter) == (rules.INPUT_WEIGHT, "<input>")
    weight = BASE_WEIGHT + 104 * count
    detail = f"weight {weight} over the limit of {weight - 7} for {len(shorter)} bytes"
    assert answers(shorter)[0] == (rules.INPUT_WEIGHT, "<input>", detail)


# --- the writer -----------------------------------------------------------------------


def test_encode_refuses_over_the_weight_limit() -> None:
    cp = ck.decode(grammar.seal(body()))
    items = ln(1, ln(TERM_LIST, b"")) * 1_100_000  # empty lists: 96 weight per 4 bytes
    cp.optimizer_opts.add(key="k").value.ParseFromString(ln(TERM_LIST, items))
    with pytest.raises(InvalidCheckpoint) as caught:
        ck.encode(cp)
    assert (caught.value.rule, caught.value.path) == (rules.INPUT_WEIGHT, "<input>")


def test_writer_size_limit_counts_the_trailer() -> None:
    base = Checkpoint.FromString(body())

    def with_body_size(size: int) -> Checkpoint:
        cp = Checkpoint()
        cp.CopyFrom(base)
        blob = size - len(body()) + 4 + 1  # the blob field's payload grows, its tag stays
        cp.sampler_blob = b"x" * blob
        serialized = len(cp.SerializeToString(deterministic=True))
        cp.sampler_blob = b"x" * (blob - (serialized - size))
        assert len(cp.SerializeToString(deterministic=True)) == size
        return cp

    if accel.crc32c is not None:  # the plain-Python CRC of 256 MiB takes minutes
        data = ck.encode(with_body_size(MAX - 9))
        assert len(data) == MAX
        del data
    with pytest.raises(InvalidCheckpoint) as caught:
        ck.encode(with_body_size(MAX - 8))
    assert (caught.value.rule, caught.value.path) == (rules.INPUT_TOO_LARGE, "<input>")
    assert f"{MAX + 1} bytes" in caught.value.detail


def test_sealed_refuses_what_check_refuses() -> None:
    with pytest.raises(grammar.GrammarError) as caught:
        grammar.sealed(ln(2, b"s") + ln(1, b"f"))
    assert (caught.value.rule, caught.value.path) == (rules.WIRE_ORDER, "<input>")


# --- canonicalize ---------------------------------------------------------------------


def test_canonicalize_takes_other_encodings_and_trailers() -> None:
    canonical = grammar.seal(body())
    messy = body()[:-2] + vi(15, 0) + vi(13, 1)  # a default written, out of order
    assert ck.canonicalize(messy) == canonical
    assert ck.canonicalize(grammar.seal(messy)) == canonical
    assert ck.canonicalize(canonical) == canonical
    assert ck.canonicalize(body()) == canonical
    with pytest.raises(ResumeMismatch) as caught:
        ck.decode(grammar.seal(messy))
    assert (caught.value.rule, caught.value.field) == (rules.WIRE_DEFAULT, "direction")
    broken = bytearray(grammar.seal(messy))
    broken[-1] ^= 1
    with pytest.raises(ResumeMismatch) as caught:
        ck.canonicalize(bytes(broken))
    assert (caught.value.rule, caught.value.field) == (rules.INPUT_CHECKSUM, "<input>")
    with pytest.raises(ResumeMismatch) as caught:
        ck.canonicalize(b"\xff\xff")
    assert caught.value.field == "<input>"


# --- C and Python: the same answers on thousands of inputs ---------------------------


def mutations(rng: random.Random, base: bytes) -> Callable[[], bytes]:
    def make() -> bytes:
        data = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            choice = rng.random()
            pos = rng.randrange(len(data) + 1)
            if choice < 0.35 and data:
                data[min(pos, len(data) - 1)] ^= 1 << rng.randrange(8)
            elif choice < 0.55:
                data[pos:pos] = rng.randbytes(rng.randint(1, 6))
            elif choice < 0.75:
                del data[pos : pos + rng.randint(1, 6)]
            elif choice < 0.9 and data:
                data[min(pos, len(data) - 1)] = rng.choice(
                    [0x00, 0x01, 0x80, 0xFF, 0x7F, 0x0A, 0x12]
                )
            else:
                data[pos:pos] = rng.choice(
                    [
                        b"\xfd\xff\xff\xff\x0f",
                        b"\x80\x00",
                        b"\x0a\x00",
                        b"\xed\xa0\x80",
                        b"\x10\x02",
                    ]
                )
        return grammar.seal(bytes(data))

    return make


@pytest.mark.skipif(ACCEL is None, reason="needs the compiled extension")
def test_c_and_python_agree_on_mutated_checkpoints() -> None:
    rng = random.Random(2026)
    bases = [b[:-9] for b in sample_checkpoints()] + [body(opts=option(nested_lists(24)))]
    verdicts: dict[str, int] = {}
    for base in bases:
        make = mutations(rng, base)
        for _ in range(1500):
            data = make()
            python, c = answers(data)
            assert python == c, data.hex()
            key = "ok" if isinstance(python, bytes) else python[0]
            verdicts[key] = verdicts.get(key, 0) + 1
    # the mutations reach many rules, not only one
    assert len(verdicts) >= 8, verdicts
    assert verdicts.get("ok", 0) > 0


@pytest.mark.skipif(ACCEL is None, reason="needs the compiled extension")
def test_c_and_python_agree_on_random_bytes() -> None:
    rng = random.Random(11)
    for _ in range(3000):
        data = grammar.seal(rng.randbytes(rng.randint(0, 40)))
        assert answers(data)[0] == answers(data)[1], data.hex()


@pytest.mark.skipif(ACCEL is None, reason="needs the compiled extension")
def test_c_scan_agrees_for_the_writer() -> None:
    rng = random.Random(5)
    make = mutations(rng, body(opts=option(nested_lists(5))))
    for _ in range(1000):
        sealed = make()
        piece = sealed[:-9]
        try:
            grammar._scan(piece, len(sealed))
            python = None
        except grammar.GrammarError as exc:
            python = (exc.rule, exc.path, exc.detail)
        assert ACCEL.grammar_scan(piece, len(sealed)) == python


def test_pure_python_fallback_gives_the_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    data = sample_checkpoints()[1]
    for name in ("grammar_check", "grammar_scan", "crc32c"):
        monkeypatch.setattr(accel, name, None)
    assert grammar.read(data) == data[:-9]
    assert grammar.sealed(data[:-9]) == data
    assert ck.encode(ck.decode(data)) == data


# --- read_checkpoint with work done meanwhile ------------------------------------------


def _checkpoint_bytes(blob_size: int) -> bytes:
    return ck.encode(make_cp("s1", trials=2, blob=b"\x01" * blob_size))


@pytest.mark.parametrize("size", [100, grammar.ALONGSIDE_BYTES])
def test_meanwhile_runs_once_and_changes_no_verdict(size: int) -> None:
    data = _checkpoint_bytes(size)
    calls: list[int] = []
    body, valid = grammar.read_checkpoint(data, meanwhile=lambda: calls.append(1))
    assert calls == [1]
    plain_body, plain_valid = grammar.read_checkpoint(data)
    assert (bytes(body), valid) == (bytes(plain_body), plain_valid)
    assert ck.decode(data, meanwhile=lambda: calls.append(2)) == ck.decode(data)
    assert calls == [1, 2]


@pytest.mark.parametrize("size", [100, grammar.ALONGSIDE_BYTES])
def test_a_refusal_comes_before_what_meanwhile_raises(size: int) -> None:
    data = bytearray(_checkpoint_bytes(size))
    data[-1] ^= 0xFF  # the checksum fails

    def failing() -> None:
        raise OSError("meanwhile failed")

    with pytest.raises(grammar.GrammarError) as refused:
        grammar.read_checkpoint(bytes(data), meanwhile=failing)
    assert refused.value.rule == rules.INPUT_CHECKSUM


@pytest.mark.parametrize("size", [100, grammar.ALONGSIDE_BYTES])
def test_what_meanwhile_raises_on_accepted_bytes_is_raised_after_the_check(size: int) -> None:
    data = _checkpoint_bytes(size)

    def failing() -> None:
        raise OSError("meanwhile failed")

    with pytest.raises(OSError, match="meanwhile failed"):
        grammar.read_checkpoint(data, meanwhile=failing)
    assert not [t for t in threading.enumerate() if t.name == "dsxir-check"]
