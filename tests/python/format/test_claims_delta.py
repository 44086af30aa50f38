"""What FORMAT.md §13 says of deltas that the delta vectors alone do not show."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf.descriptor import FieldDescriptor

from dsxir.errors import IllegalHistory, InvalidDelta
from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session import delta as dl
from dsxir.optimizer_session import grammar
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint, CheckpointDelta
from dsxir.store import FileStore

KEEPABLE = (3, 4, 5, 6, 7, 10, 11, 12, 13, 14, 15)


def _session(session_id: str = "s", trials: int = 2) -> Checkpoint:
    cp = ck.new(
        session_id=session_id,
        optimizer="opt.O",
        trainset_hash=bytes(32),
        sampler_blob=b"blob",
        sampler_format=("opt.S", 1),
    )
    for i in range(trials):
        ck.record_trial(cp, score=i / 10)
    return cp


def _next(cp: Checkpoint) -> Checkpoint:
    new = ck.decode(ck.encode(cp))
    ck.record_trial(new, score=0.5)
    return new


def _refusal(data: bytes) -> tuple[str, str]:
    with pytest.raises(InvalidDelta) as refused:
        dl.decode_delta(data)
    return refused.value.rule, refused.value.path


def test_the_fields_of_a_delta_have_the_numbers_of_the_table() -> None:
    """FORMAT.md §13, field table: format 1, base_generation 2, base_trials 3, head 4, kept 5."""
    fields = {f.name: f for f in CheckpointDelta.DESCRIPTOR.fields}
    assert {name: f.number for name, f in fields.items()} == {
        "format": 1,
        "base_generation": 2,
        "base_trials": 3,
        "head": 4,
        "kept": 5,
    }
    assert fields["head"].message_type is Checkpoint.DESCRIPTOR
    assert fields["format"].type == FieldDescriptor.TYPE_STRING


def test_writers_of_this_version_write_format_v1_0() -> None:
    """FORMAT.md §13, field table: writers write ``dsxir.optimizer_session.delta/v1.0``."""
    base = _session()
    delta = dl.diff(base, _next(base), base_generation=4)
    assert delta.format == dl.DELTA_FORMAT_ID == "dsxir.optimizer_session.delta/v1.0"
    ident = b"dsxir.optimizer_session.delta/v1.0"
    assert dl.encode_delta(delta).startswith(b"\x0a" + bytes([len(ident)]) + ident)


def test_kept_may_set_exactly_the_bits_of_the_mask() -> None:
    """FORMAT.md §13.1 item 4: bits outside fields 3-7 and 10-15 (0xFCF8) are ``delta.kept``."""
    assert sum(1 << n for n in KEEPABLE) == dl.KEPT_MASK == 0xFCF8
    for bit in range(32):  # kept is a uint32
        delta = CheckpointDelta(format=dl.DELTA_FORMAT_ID, base_generation=1, kept=1 << bit)
        delta.head.session_id = "s"  # field 2 only, so no kept field is held
        body = delta.SerializeToString(deterministic=True)
        if bit in KEEPABLE:
            assert dl.decode_delta(grammar.seal(body)).kept == 1 << bit
        else:
            assert _refusal(grammar.seal(body)) == ("delta.kept", "kept"), bit


def test_the_reader_refuses_in_the_order_of_section_13_1() -> None:
    """FORMAT.md §13.1: rules 1-5 in their order, whatever else is wrong."""
    delta = CheckpointDelta(format="dsxir.optimizer_session.checkpoint/v1.1", kept=1 << 1)
    steps = [
        (lambda d: None, ("delta.format", "format")),
        (
            lambda d: setattr(d, "format", dl.DELTA_FORMAT_ID),
            ("delta.base_generation", "base_generation"),
        ),
        (lambda d: setattr(d, "base_generation", 3), ("delta.head", "head")),
        (lambda d: d.head.SetInParent(), ("delta.kept", "kept")),
    ]
    for change, want in steps:
        change(delta)
        assert _refusal(grammar.seal(delta.SerializeToString(deterministic=True))) == want
    # Rule 5 once kept is allowed: the lowest-numbered held field is named.
    delta.kept = (1 << 12) | (1 << 3)
    delta.head.sampler_format.module = "m"
    delta.head.optimizer = "o"
    body = delta.SerializeToString(deterministic=True)
    assert _refusal(grammar.seal(body)) == ("delta.kept_in_head", "head.optimizer")


def test_an_empty_message_in_the_head_is_held() -> None:
    """FORMAT.md §13.1 item 5: a field is held when its number appears in the head's bytes."""
    base = _session()
    delta = dl.diff(base, _next(base), base_generation=1)
    assert delta.kept >> 7 & 1  # created_at is kept
    delta.head.created_at.SetInParent()  # written as an empty Timestamp: 3a 00
    body = delta.SerializeToString(deterministic=True)
    assert b"\x3a\x00" in body
    assert _refusal(grammar.seal(body)) == ("delta.kept_in_head", "head.created_at")


def test_the_grammar_of_section_2_comes_before_the_delta_rules() -> None:
    """FORMAT.md §13.1: the checks of §2 (``wire.*``) come before rules 1-5."""
    base = _session()
    delta = dl.diff(base, _next(base), base_generation=1)
    delta.format = ""  # breaks rule 1 as well
    body = delta.SerializeToString(deterministic=True)
    assert body.startswith(b"\x10\x01")  # base_generation, now the first field
    rule, path = _refusal(grammar.seal(body[2:] + b"\x10\x01"))  # written out of order
    assert rule.startswith("wire."), rule
    assert path == "<input>" or not path.startswith("format")


def test_a_delta_over_the_weight_limit_is_refused() -> None:
    """FORMAT.md §13: the weight limit of §2.4 holds for a delta (``input.weight``)."""
    delta = CheckpointDelta(format=dl.DELTA_FORMAT_ID, base_generation=1)
    delta.head.session_id = "s"
    entries = delta.head.progress.trial_log
    for _ in range(650_000):  # empty entries: 2 bytes each, weight 104 each
        entries.add()
    data = grammar.seal(delta.SerializeToString(deterministic=True))
    assert len(data) < 1_400_000 and 7 * len(data) + 50_331_648 < 650_000 * 104
    assert _refusal(data) == ("input.weight", "<input>")
    del entries[100_000:]  # below the limit, the same shape is read
    read = dl.decode_delta(grammar.seal(delta.SerializeToString(deterministic=True)))
    assert len(read.head.progress.trial_log) == 100_000


def test_applying_does_not_look_at_the_base_generation() -> None:
    """FORMAT.md §13, field table: ``base_generation``: applying does not look at it."""
    base = _session()
    new = _next(base)
    made = {
        ck.encode(dl.apply(base, dl.diff(base, new, base_generation=generation)))
        for generation in (1, 7, 2**64 - 1)
    }
    assert made == {ck.encode(new)}


def test_apply_refuses_another_session_before_another_trial_count() -> None:
    """FORMAT.md §13.2: ``delta.session`` (step 1) before ``delta.base_trials`` (step 2)."""
    other = _session("t", trials=5)
    delta = dl.diff(other, _next(other), base_generation=1)
    with pytest.raises(InvalidDelta) as refused:
        dl.apply(_session("s", trials=2), delta)
    assert (refused.value.rule, refused.value.path) == ("delta.session", "head.session_id")
    with pytest.raises(InvalidDelta) as counted:
        dl.apply(_session("t", trials=2), delta)
    assert (counted.value.rule, counted.value.path) == ("delta.base_trials", "base_trials")


def test_apply_does_not_check_the_history_a_store_does(tmp_path: Path) -> None:
    """FORMAT.md §13.2 (``apply`` does not check §9.1) and §13.3 (a store does)."""
    base = _session()
    ck.complete(base)
    new = ck.decode(ck.encode(base))
    new.optimizer = "another.Optimizer"  # after a terminal status, and another optimizer
    delta = dl.diff(base, new, base_generation=1)
    assert ck.encode(dl.apply(base, delta)) == ck.encode(new)
    store = FileStore(tmp_path / "s")
    store.put(base)
    with pytest.raises(IllegalHistory) as refused:
        store.put_delta(delta)
    assert refused.value.rule == "history.terminal"
    assert store.get("s").generation == 1
