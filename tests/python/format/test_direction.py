"""Format v1.1 ``direction``: building, bytes, refusals, best tracking, v1.0 input.

Every decode here runs twice, with the compiled accelerator and without it,
and both must give the same checkpoint or the same refusal.
"""

from __future__ import annotations

import contextlib
import json
import math
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dsxir.errors import InvalidCheckpoint, ResumeMismatch
from dsxir.optimizer_session import accel, grammar
from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session.v1.checkpoint_pb2 import (
    DIRECTION_HIGHER,
    DIRECTION_LOWER,
    Checkpoint,
)
from dsxir.optimizer_session.wire import varint

VECTORS = Path(__file__).resolve().parents[2] / "vectors"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text())
V1_0 = "dsxir.optimizer_session.checkpoint/v1.0"
V1_1 = "dsxir.optimizer_session.checkpoint/v1.1"
DIRECTION_TAG = b"\x78"  # field 15, varint


def make(**kw: Any) -> Checkpoint:
    args: dict[str, Any] = {
        "session_id": "s1",
        "optimizer": "demo.Opt",
        "trainset_hash": b"\x07" * 32,
        "sampler_blob": b"state",
        "sampler_format": ("demo.Sampler", 1),
    }
    args.update(kw)
    return ck.new(**args)


_C_NAMES = ("check_canonical", "grammar_check", "grammar_scan", "crc32c")


@contextlib.contextmanager
def _mode(compiled: bool) -> Iterator[None]:
    saved = {name: getattr(accel, name) for name in _C_NAMES}
    if compiled:
        if saved["check_canonical"] is None:
            pytest.skip("the accelerator is not in use")
    else:
        for name in _C_NAMES:
            setattr(accel, name, None)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(accel, name, value)


def decode_both(data: bytes) -> tuple[str, Any]:
    """decode ``data`` with and without the accelerator; both must agree.

    ("ok", canonical bytes) or ("refused", field path).
    """
    outcomes = []
    for compiled in (True, False) if accel.check_canonical is not None else (False,):
        with _mode(compiled):
            try:
                outcome: tuple[str, Any] = ("ok", ck.encode(ck.decode(data)))
            except ResumeMismatch as exc:
                assert exc.reason == "checkpoint_shape"
                outcome = ("refused", exc.field)
        outcomes.append(outcome)
    assert all(o == outcomes[0] for o in outcomes), outcomes
    return outcomes[0]


def _body(data: bytes) -> bytes:
    """Checkpoint bytes without their trailer."""
    assert data[-9:-4] == grammar.TRAILER_TAG
    return data[:-9]


def _sealed(cp: Checkpoint) -> bytes:
    return grammar.seal(cp.SerializeToString(deterministic=True))


def _bits(value: float) -> bytes:
    return struct.pack("<d", value)


def _with_lower(cp: Checkpoint) -> bytes:
    """The bytes of a copy of ``cp`` whose direction is lower."""
    copy = Checkpoint()
    copy.CopyFrom(cp)
    copy.direction = DIRECTION_LOWER
    return ck.encode(copy)


# --- building -----------------------------------------------------------------------


def test_new_writes_v1_1_and_higher_is_the_absent_default() -> None:
    higher, default = make(direction="higher"), make()
    assert higher.format == default.format == ck.FORMAT_ID == V1_1
    assert higher.direction == default.direction == DIRECTION_HIGHER
    assert ck.direction_name(higher) == "higher"
    # 0 is not written; lower is field 15, last in the body
    assert _body(_with_lower(higher)) == _body(ck.encode(higher)) + DIRECTION_TAG + b"\x01"
    lower = make(direction="lower")
    assert lower.direction == DIRECTION_LOWER
    assert ck.direction_name(lower) == "lower"
    assert _body(ck.encode(lower)).endswith(DIRECTION_TAG + b"\x01")  # last and minimal
    assert ck.DIRECTIONS == {"higher": DIRECTION_HIGHER, "lower": DIRECTION_LOWER}


@pytest.mark.parametrize("bad", ["Lower", "LOWER", "max", "", "higher "])
def test_new_refuses_an_unknown_direction_name(bad: str) -> None:
    with pytest.raises(InvalidCheckpoint) as info:
        make(direction=bad)
    assert info.value.path == "direction"


@pytest.mark.parametrize("bad", [None, 0, 1, True, b"lower", ["lower"]])
def test_new_refuses_a_direction_that_is_not_a_str(bad: Any) -> None:
    with pytest.raises(TypeError, match="direction must be 'higher' or 'lower'"):
        make(direction=bad)


def test_direction_name_refuses_a_number_the_format_lacks() -> None:
    cp = make()
    cp.direction = 2  # type: ignore[assignment]
    with pytest.raises(InvalidCheckpoint) as info:
        ck.direction_name(cp)
    assert info.value.path == "direction"


# --- bytes and JSON -----------------------------------------------------------------


@pytest.mark.parametrize("direction", ["higher", "lower"])
def test_round_trip_binary_and_json(direction: str) -> None:
    cp = make(direction=direction)
    ck.record_trial(cp, score=0.5)
    ck.pause(cp)
    raw = ck.encode(cp)
    assert decode_both(raw) == ("ok", raw)
    back = ck.decode(raw)
    assert ck.direction_name(back) == direction
    text = ck.to_json(cp)
    assert ('"direction": "DIRECTION_LOWER"' in text) is (direction == "lower")
    assert ck.encode(ck.from_json(text)) == raw


@pytest.mark.parametrize("number", [2, 3, 127, -1, -(2**31), 2**31 - 1])
def test_unknown_direction_numbers_are_refused(number: int) -> None:
    cp = make()
    ck.record_trial(cp, score=1.0)
    cp.direction = number  # type: ignore[assignment]
    assert decode_both(_sealed(cp)) == ("refused", "direction")
    with pytest.raises(InvalidCheckpoint) as info:
        ck.encode(cp)
    assert info.value.path == "direction"
    assert str(number) in info.value.detail
    text = json.dumps({**json.loads(ck.to_json(make())), "direction": number})
    with pytest.raises(ResumeMismatch) as refused:
        ck.from_json(text)
    assert refused.value.field == "direction"


def test_direction_is_checked_after_terminal_reason() -> None:
    cp = make()
    ck.complete(cp, "done")
    cp.direction = 5  # type: ignore[assignment]
    cp.terminal_reason.Clear()  # a Term with no kind
    assert decode_both(_sealed(cp)) == ("refused", "terminal_reason")
    cp.terminal_reason.string_value = "done"
    assert decode_both(_sealed(cp)) == ("refused", "direction")


@pytest.mark.parametrize(
    ("wire", "rule", "path", "rewritten"),
    [
        # decode refuses every other encoding; canonicalize rewrites it as upb reads it
        (b"\x78\x00", "wire.default", "direction", "higher"),
        (b"\x78\x80\x00", "wire.varint", "direction", "higher"),
        (b"\x78\x81\x00", "wire.varint", "direction", "lower"),
        (b"\x78\x02\x78\x01", "wire.order", "<input>", "lower"),  # the last of two wins
        (b"\x78\x01\x78\x00", "wire.order", "<input>", "higher"),
        (b"\x78\x01\x78\x02", "wire.order", "<input>", "direction"),
        (b"\x78" + varint(2**32 + 1), "wire.range", "direction", "lower"),  # upb keeps 32 bits
        (b"\x78" + varint(2**32 + 2), "wire.range", "direction", "direction"),
        (b"\x78" + varint(2**64 - 1), "direction.known", "direction", "direction"),  # -1
        # field 15 with another wire type: upb keeps it as an unknown field,
        # which no writer may write (a known number with another type)
        (b"\x7a\x01\x01", "wire.tag", "<input>", "wire.tag"),
    ],
)
def test_direction_on_the_wire(wire: bytes, rule: str, path: str, rewritten: str) -> None:
    base = _body(ck.encode(make()))
    body = base + wire
    assert decode_both(grammar.seal(body)) == ("refused", path)
    with pytest.raises(ResumeMismatch) as refused:
        ck.decode(grammar.seal(body))
    assert refused.value.rule == rule
    if rewritten == "direction":
        with pytest.raises(ResumeMismatch) as refused:
            ck.canonicalize(body)
        assert (refused.value.field, refused.value.rule) == ("direction", "direction.known")
        return
    if rewritten == "wire.tag":
        with pytest.raises(InvalidCheckpoint) as not_written:
            ck.canonicalize(body)
        assert (not_written.value.path, not_written.value.rule) == ("<input>", "wire.tag")
        return
    result = ck.canonicalize(body)
    assert ck.direction_name(ck.decode(result)) == rewritten
    lower = b"\x78\x01" if rewritten == "lower" else b""
    assert result == grammar.seal(base + lower)


# --- best tracking ------------------------------------------------------------------


def _best(cp: Checkpoint) -> tuple[int, bytes] | None:
    p = cp.progress
    return (p.best_trial_idx, _bits(p.best_score)) if p.HasField("best_score") else None


def _scored(direction: str, *scores: float | None) -> Checkpoint:
    cp = make(direction=direction)
    for score in scores:
        ck.record_trial(cp, score=score)
    return cp


@pytest.mark.parametrize(
    ("direction", "scores", "best"),
    [
        ("lower", [0.9, 0.4, 0.7], (1, 0.4)),
        ("higher", [0.9, 0.4, 0.7], (0, 0.9)),
        ("lower", [0.5, 0.5, 0.5], (0, 0.5)),  # equal scores: the first stays best
        ("lower", [None, 3.0, None, 2.0], (3, 2.0)),  # no score is never best
        ("lower", [0.0, -0.0], (0, 0.0)),  # -0.0 is not less than 0.0
        ("lower", [-0.0, 0.0], (0, -0.0)),  # nor 0.0 than -0.0; the bits are kept
        ("higher", [-0.0, 0.0], (0, -0.0)),
        ("lower", [math.inf, 1e308, -1e308, -math.inf], (3, -math.inf)),
        ("lower", [-math.inf, -1e308, -math.inf], (0, -math.inf)),
        ("lower", [math.inf, math.inf], (0, math.inf)),  # +inf is a score, and first
        ("higher", [-math.inf, 1.0, math.inf], (2, math.inf)),
        ("lower", [-5, 2, -7], (2, -7.0)),  # ints are scores too
    ],
)
def test_best_follows_the_direction(
    direction: str, scores: list[float | None], best: tuple[int, float]
) -> None:
    cp = _scored(direction, *scores)
    assert _best(cp) == (best[0], _bits(best[1]))
    assert ck.decode(ck.encode(cp)) == cp


def test_error_trials_never_become_best_when_lower() -> None:
    cp = make(direction="lower")
    ck.record_trial(cp, score=1.0)
    ck.record_trial(cp, score=-100.0, status="error", error={"message": "boom"})
    assert _best(cp) == (0, _bits(1.0))
    assert (cp.progress.completed, cp.progress.errors, cp.progress.attempts) == (1, 1, 2)


def test_transitions_keep_the_direction_and_the_identifier() -> None:
    cp = make(direction="lower")
    for step in (
        lambda c: ck.record_trial(c, score=1.0),
        ck.pause,
        ck.resume,
        lambda c: ck.record_trial(c, score=0.5),
        ck.complete,
    ):
        step(cp)
        assert ck.direction_name(cp) == "lower" and cp.format == V1_1
    assert _best(cp) == (1, _bits(0.5))


# --- v1.0 input ---------------------------------------------------------------------


def test_v1_0_vector_reads_as_higher_and_re_encodes_to_itself() -> None:
    raw = (VECTORS / "valid" / "legacy_v1_0.binpb").read_bytes()
    assert decode_both(raw) == ("ok", raw)
    cp = ck.decode(raw)
    assert cp.format == V1_0
    assert ck.direction_name(cp) == "higher"
    assert _body(_with_lower(cp)) == _body(raw) + DIRECTION_TAG + b"\x01"  # no field 15 in v1.0
    ck.record_trial(cp, score=math.inf)  # a v1.0 session goes on, higher is better
    assert cp.format == V1_0
    assert cp.progress.best_trial_idx == len(cp.progress.trial_log) - 1


def test_the_manifest_lists_the_direction_vectors() -> None:
    valid = {v["name"] for v in MANIFEST["valid"]}
    assert {
        "direction_lower",
        "direction_lower_negative_zero",
        "direction_lower_infinite_scores",
        "legacy_v1_0",
    } <= valid
    invalid = {v["name"]: v["field"] for v in MANIFEST["invalid"]}
    assert invalid["direction_unknown"] == invalid["direction_negative"] == "direction"
    assert invalid["direction_unknown_after_reason"] == "terminal_reason"
    rewritten = {v["name"] for v in MANIFEST["canonicalize"]}
    assert "direction_explicit_higher" in rewritten


def test_direction_lower_vector_keeps_its_first_best() -> None:
    cp = ck.decode((VECTORS / "valid" / "direction_lower.binpb").read_bytes())
    assert ck.direction_name(cp) == "lower"
    scores = [e.score if e.HasField("score") else None for e in cp.progress.trial_log]
    assert scores == [0.9, 0.4, None, 0.4, 0.7, None]
    assert _best(cp) == (1, _bits(0.4))
