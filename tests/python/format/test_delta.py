"""Checkpoint deltas (FORMAT.md §13): rules, vectors, writer, apply and apply_in_place."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from dsxir.errors import InvalidCheckpoint, InvalidDelta
from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session import delta as dl
from dsxir.optimizer_session import grammar
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint, CheckpointDelta

ROOT = Path(__file__).resolve().parents[3]
SPEC = json.loads((ROOT / "spec" / "delta-rules-v1.json").read_text())["rules"]
FORMAT_MD = (ROOT / "FORMAT.md").read_text()
DELTAS = ROOT / "tests" / "vectors" / "delta"
CASES = json.loads((DELTAS / "manifest.json").read_text())["cases"]


def test_the_constants_are_exactly_the_ids_of_the_spec_file() -> None:
    assert list(dl.DELTA_RULES) == [rule["id"] for rule in SPEC]
    for rule in SPEC:
        assert getattr(dl, rule["id"].upper().replace(".", "_")) == rule["id"]


def test_format_md_lists_every_delta_rule_as_the_spec_file_does() -> None:
    rows = ["| Rule | Path | § | Refused when |", "|---|---|---|---|"]
    for rule in SPEC:
        text = rule["text"].replace("<", "\\<")
        rows.append(f"| `{rule['id']}` | `{rule['path']}` | {rule['section']} | {text} |")
    section = FORMAT_MD.split("### 13.3 Deltas in stores", 1)[1]
    table = [line for line in section.splitlines() if line.startswith("|")]
    assert table == rows


def _answer(case: dict[str, Any]) -> dict[str, Any]:
    base = ck.decode((DELTAS / case["base"]).read_bytes())
    data = (DELTAS / case["delta"]).read_bytes()
    try:
        delta = dl.decode_delta(data)
    except InvalidDelta as exc:
        return {"stage": "read", "rule": exc.rule, "field": exc.path}
    assert dl.encode_delta(delta) == data
    try:
        result = dl.apply(base, delta)
    except InvalidDelta as exc:
        return {"stage": "apply", "rule": exc.rule, "field": exc.path}
    except InvalidCheckpoint as exc:
        return {"stage": "result", "rule": exc.rule, "field": exc.path}
    return {"result": ck.encode(result)}


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_every_delta_vector_gets_its_answer(case: dict[str, Any]) -> None:
    answer = _answer(case)
    if "result" in case:
        assert answer == {"result": (DELTAS / case["result"]).read_bytes()}
    else:
        assert answer == case["refused"]


def _session(trials: int) -> Checkpoint:
    cp = ck.new(
        session_id="s",
        optimizer="opt.O",
        trainset_hash=bytes(32),
        sampler_blob=b"blob",
        sampler_format=("opt.S", 1),
        optimizer_opts=[("n", 3)],
    )
    for i in range(trials):
        ck.record_trial(cp, score=i / 10, stats={"i": i})
    return cp


def test_a_delta_holds_only_what_changed() -> None:
    base = _session(1000)
    new = ck.decode(ck.encode(base))
    ck.record_trial(new, score=0.5, sampler_blob=b"next")
    delta = dl.diff(base, new, base_generation=3)
    assert (delta.base_trials, delta.base_generation) == (1000, 3)
    assert len(delta.head.progress.trial_log) == 1
    kept = {name for name in ("optimizer", "optimizer_opts", "trainset_hash", "sampler_format")}
    for name in kept:
        field = Checkpoint.DESCRIPTOR.fields_by_name[name]
        assert delta.kept >> field.number & 1, name
    assert not delta.kept >> Checkpoint.SAMPLER_BLOB_FIELD_NUMBER & 1
    assert delta.head.sampler_blob == b"next"
    assert len(dl.encode_delta(delta)) < 200 < len(ck.encode(new)) // 100
    assert ck.encode(dl.apply(base, delta)) == ck.encode(new)


def test_baseline_refuses_what_no_delta_can_say() -> None:
    base = _session(2)
    baseline = dl.Baseline.of(base)
    with pytest.raises(ValueError, match="fewer than its base's 2"):
        baseline.delta(_session(1), base_generation=1)
    for bad in (0, -1):
        with pytest.raises(ValueError, match=">= 1"):
            baseline.delta(base, base_generation=bad)
    for wrong in (True, 1.0, "1"):
        with pytest.raises(TypeError):
            baseline.delta(base, base_generation=wrong)  # type: ignore[arg-type]


def test_a_step_hands_back_the_baseline_of_the_new_checkpoint() -> None:
    base = _session(3)
    baseline = dl.Baseline.of(base)
    chain = [base]
    for i in range(4):
        new = ck.decode(ck.encode(chain[-1]))
        ck.record_trial(new, score=i / 10, sampler_blob=b"blob" if i % 2 else b"s%d" % i)
        if i == 2:
            new.optimizer_opts.add(key="m").value.MergeFrom(new.optimizer_opts[0].value)
        delta, after = baseline.step(new, base_generation=4 + i)
        assert delta == baseline.delta(new, base_generation=4 + i)
        assert after == dl.Baseline.of(new)
        assert after != baseline  # a trial more, and a field changed
        assert ck.encode(dl.apply(chain[-1], delta)) == ck.encode(new)
        baseline = after
        chain.append(new)
    # a checkpoint with an unknown field (number 101) takes the other path of the writer
    odd = Checkpoint.FromString(chain[-1].SerializeToString(deterministic=True) + b"\xa8\x06\x01")
    ck.record_trial(odd, score=0.9)
    delta, after = baseline.step(odd, base_generation=9)
    assert after == dl.Baseline.of(odd)
    assert delta.head.progress.trial_log[0] == odd.progress.trial_log[-1]
    assert dl.Baseline.of(base) != base  # not equal to what is no baseline


def test_readers_and_writers_take_bytes_and_deltas_only() -> None:
    with pytest.raises(TypeError):
        dl.decode_delta("text")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        dl.encode_delta(Checkpoint())  # type: ignore[arg-type]
    good = dl.encode_delta(dl.diff(_session(0), _session(1), base_generation=1))
    assert dl.encode_delta(dl.decode_delta(memoryview(good))) == good
    assert dl.encode_delta(dl.decode_delta(bytearray(good))) == good
    with pytest.raises(InvalidDelta) as refused:
        dl.decode_delta(bytes(grammar.MAX_CHECKPOINT_BYTES + 1))
    assert (refused.value.rule, refused.value.path) == ("input.too_large", "<input>")


def test_the_writer_refuses_what_a_reader_refuses() -> None:
    delta = dl.diff(_session(0), _session(1), base_generation=1)
    delta.kept |= 1 << 9
    with pytest.raises(InvalidDelta) as refused:
        dl.encode_delta(delta)
    assert (refused.value.rule, refused.value.path) == ("delta.kept", "kept")
    assert str(refused.value).endswith("(rule delta.kept)")


def test_the_writer_screens_the_head_for_credentials() -> None:
    new = _session(1)
    new.optimizer_opts.add(key="api_key").value.string_value = "sk-abcdefghijklmnopqrstuvwx"
    delta = dl.diff(_session(0), new, base_generation=1)
    with pytest.raises(InvalidCheckpoint) as refused:
        dl.encode_delta(delta)
    assert refused.value.path.startswith("head.optimizer_opts[1]")
    assert refused.value.rule is None


def _damaged(rng: random.Random, data: bytes) -> bytes:
    body = bytearray(data[: -grammar.TRAILER_SIZE])
    body[rng.randrange(len(body))] = rng.randrange(256)
    return grammar.seal(bytes(body))


def test_apply_in_place_refuses_as_apply_does_and_keeps_its_base() -> None:
    rng = random.Random(11)
    base = _session(5)
    new = ck.decode(ck.encode(base))
    for i in range(3):
        ck.record_trial(new, score=None if i == 1 else 0.9, status="error" if i == 1 else "ok")
    good = dl.encode_delta(dl.diff(base, new, base_generation=2))
    verdicts: set[str] = set()
    for _ in range(400):
        try:
            delta = dl.decode_delta(_damaged(rng, good))
        except InvalidDelta:
            continue
        target = Checkpoint()
        target.CopyFrom(base)
        try:
            want = ck.encode(dl.apply(base, delta))
        except (InvalidDelta, InvalidCheckpoint) as exc:
            with pytest.raises(type(exc)) as same:
                dl.apply_in_place(target, delta)
            assert (same.value.rule, same.value.path) == (exc.rule, exc.path)
            assert target == base
            verdicts.add(exc.rule or "")
            continue
        dl.apply_in_place(target, delta)
        assert ck.encode(target) == want
        verdicts.add("accepted")
    assert "accepted" in verdicts and len(verdicts) > 3, verdicts


def test_apply_leaves_its_base_as_it_was() -> None:
    base = _session(3)
    before = ck.encode(base)
    delta = dl.diff(base, _session(4), base_generation=1)
    dl.apply(base, delta)
    assert ck.encode(base) == before


def test_a_delta_is_not_a_checkpoint() -> None:
    delta = dl.encode_delta(dl.diff(_session(0), _session(1), base_generation=1))
    with pytest.raises(Exception) as refused:
        ck.decode(delta)
    assert getattr(refused.value, "rule", None) is not None
    assert CheckpointDelta.FromString(delta[: -grammar.TRAILER_SIZE]).base_generation == 1
