"""Write the delta vectors of tests/vectors/delta/ (FORMAT.md §13) from the Python library.

Each case is a base checkpoint, a delta's bytes, and the answer every
language must give: the canonical bytes of the checkpoint the delta makes
from the base, or a refusal with its stage (``read``: §2 or §13.1;
``apply``: §13.2 steps 1-2; ``result``: §7 on the new checkpoint), rule id
and path. Answers are computed here, once, and written as data. Run with
``--check`` to fail when the committed files differ (``make check-generated``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dsxir.errors import InvalidCheckpoint, InvalidDelta
from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session import delta as dl
from dsxir.optimizer_session import grammar
from dsxir.optimizer_session.terms import to_term
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint, CheckpointDelta

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
_spec = importlib.util.spec_from_file_location("vector_checkpoints", HERE.parent / "generate.py")
assert _spec is not None and _spec.loader is not None
vectors = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(vectors)

from sync import sync  # noqa: E402

UNKNOWN_TOP = b"\x80\x01\x07"  # field 16, varint 7: a newer minor's top-level field
UNKNOWN_PROGRESS = b"\x42\x02hi"  # field 8 of Progress, bytes "hi"
UNKNOWN_ENTRY = b"\x48\x2a"  # field 9 of TrialLogEntry, varint 42
UNKNOWN_DELTA = b"\x30\x01"  # field 6 of CheckpointDelta, varint 1
UNKNOWN_TERM_MAP = b"\x12\x00"  # field 2 of TermMap, empty bytes


def _copy(cp: Checkpoint) -> Checkpoint:
    out = Checkpoint()
    out.CopyFrom(cp)
    return out


def _later(cp: Checkpoint, base: Checkpoint) -> Checkpoint:
    """``cp`` stamped one minute after ``base`` (the library stamps the clock's time)."""
    cp.updated_at.CopyFrom(base.updated_at)
    cp.updated_at.seconds += 60
    return cp


def _grown(base: Checkpoint, trials: int, **change: Any) -> Checkpoint:
    """``base`` with ``trials`` more trials recorded, then ``change`` applied."""
    new = _copy(base)
    for i in range(trials):
        n = len(new.progress.trial_log)
        ck.record_trial(
            new,
            score=round(0.3 + 0.1 * n, 2) if i % 3 != 2 else None,
            status="ok" if i % 3 != 2 else "error",
            candidate_id=f"c{n}",
            stats={"tokens": 200 + n} if i % 3 != 2 else None,
            error={"message": "timeout"} if i % 3 == 2 else None,
            error_class="TimeoutError" if i % 3 == 2 else None,
            duration_ms=500 + n,
            sampler_blob=bytes([n, n + 1]),
        )
    for name, value in change.items():
        if value is None:
            new.ClearField(name)
        elif name == "best_program_artifact":
            new.best_program_artifact.CopyFrom(to_term(value).map_value)
        elif name == "terminal_reason":
            new.terminal_reason.CopyFrom(to_term(value))
        else:
            setattr(new, name, value)
    return _later(new, base)


def _sealed(delta: CheckpointDelta) -> bytes:
    """A delta's bytes sealed as they are, with no check (for deltas a writer refuses)."""
    return grammar.seal(delta.SerializeToString(deterministic=True))


Case = tuple[str, str, Checkpoint, bytes]


def _bases() -> dict[str, Checkpoint]:
    empty = vectors.fresh()
    three = vectors.with_trials(3)
    artifact = _copy(three)
    artifact.best_program_artifact.CopyFrom(
        to_term({"instructions": "Think step by step.", "demos": [1, 2]}).map_value
    )
    artifact.program_module = "app.qa.Program"
    unknown = _copy(artifact)
    unknown.best_program_artifact.MergeFromString(UNKNOWN_TERM_MAP)
    return {"empty": empty, "three": three, "artifact": artifact, "unknown": unknown}


def _accepted(bases: dict[str, Checkpoint]) -> list[Case]:
    empty, three, artifact, unknown = (bases[k] for k in ("empty", "three", "artifact", "unknown"))
    cases: list[Case] = []

    def add(name: str, text: str, base: str, delta: CheckpointDelta) -> None:
        cases.append((name, text, bases[base], _sealed(delta)))

    def written(base: Checkpoint, new: Checkpoint, generation: int) -> CheckpointDelta:
        return dl.decode_delta(dl.encode_delta(dl.diff(base, new, base_generation=generation)))

    add(
        "first_trial",
        "one trial appended to a session without any",
        "empty",
        written(empty, _grown(empty, 1), 1),
    )
    add(
        "one_trial",
        "one trial appended to three; the unchanged fields kept",
        "three",
        written(three, _grown(three, 1), 4),
    )
    add(
        "three_trials",
        "three trials at once, one of them an error",
        "three",
        written(three, _grown(three, 3), 4),
    )
    paused = _grown(three, 0)
    ck.pause(paused)
    _later(paused, three)
    add(
        "pause_no_trial",
        "a pause: no trial appended, the status changed",
        "three",
        written(three, paused, 4),
    )
    whole = dl.diff(three, _grown(three, 1), base_generation=4)
    for field in dl._KEEPABLE:
        if whole.kept >> field.number & 1:
            dl._copy(three, whole.head, field)
    whole.kept = 0
    add("nothing_kept", "every field in the head, none kept from the base", "three", whole)
    add(
        "artifact_kept",
        "a program artifact and a module kept from the base",
        "artifact",
        written(artifact, _grown(artifact, 1), 7),
    )
    add(
        "artifact_replaced",
        "a new program artifact in the head",
        "artifact",
        written(
            artifact, _grown(artifact, 1, best_program_artifact={"instructions": "Be brief."}), 7
        ),
    )
    add(
        "module_dropped",
        "program_module held by the base, not by the new checkpoint",
        "artifact",
        written(artifact, _grown(artifact, 1, program_module=None), 7),
    )
    done = _grown(artifact, 2)
    ck.complete(done, {"why": "budget"})
    _later(done, artifact)
    add(
        "completed_with_reason",
        "two trials, then completed with a reason",
        "artifact",
        written(artifact, done, 7),
    )
    absent = dl.diff(three, _grown(three, 1), base_generation=4)
    absent.kept |= 1 << Checkpoint.BEST_PROGRAM_ARTIFACT_FIELD_NUMBER
    add(
        "kept_absent_in_base",
        "keeps the artifact, which the base does not have: none",
        "three",
        absent,
    )
    newer = written(three, _grown(three, 1), 4)
    newer.format = "dsxir.optimizer_session.delta/v1.7"
    add("newer_minor", "a delta of format v1.7: read as v1", "three", newer)
    odd = written(unknown, _grown(unknown, 1), 9)
    odd.head.MergeFromString(UNKNOWN_TOP)
    odd.head.progress.MergeFromString(UNKNOWN_PROGRESS)
    odd.head.progress.trial_log[0].MergeFromString(UNKNOWN_ENTRY)
    odd.MergeFromString(UNKNOWN_DELTA)
    add(
        "unknown_fields",
        "unknown fields in the delta, its head, the head's progress and "
        "trial entry, and inside a kept artifact: all kept",
        "unknown",
        odd,
    )
    return cases


def _refused(bases: dict[str, Checkpoint]) -> list[Case]:
    three, artifact = bases["three"], bases["artifact"]
    good = dl.diff(three, _grown(three, 1), base_generation=4)
    cases: list[Case] = []

    def add(
        name: str,
        text: str,
        change: Callable[[CheckpointDelta], None],
        base: Checkpoint = three,
        start: CheckpointDelta = good,
    ) -> None:
        delta = CheckpointDelta()
        delta.CopyFrom(start)
        change(delta)
        cases.append((name, text, base, _sealed(delta)))

    def raw(name: str, text: str, data: bytes) -> None:
        cases.append((name, text, three, data))

    def setter(path: str, value: Any) -> Callable[[CheckpointDelta], None]:
        def change(delta: CheckpointDelta) -> None:
            *parents, leaf = path.split(".")
            target: Any = delta
            for part in parents:
                target = getattr(target, part)
            if value is None:
                target.ClearField(leaf)
            else:
                setattr(target, leaf, value)

        return change

    sealed = _sealed(good)
    raw("cut", "the delta's last byte cut off", sealed[:-1])
    raw("bit_flip", "one bit of the body flipped", bytes([sealed[0] ^ 1]) + sealed[1:])
    raw("checkpoint_bytes", "a checkpoint's bytes given as a delta", ck.encode(three))
    add("format_missing", "no format identifier", setter("format", None))
    add(
        "format_checkpoint",
        "a checkpoint's format identifier",
        setter("format", "dsxir.optimizer_session.checkpoint/v1.0"),
    )
    add("format_major", "major version 2", setter("format", "dsxir.optimizer_session.delta/v2.0"))
    add("format_leading_zero", "minor 01", setter("format", "dsxir.optimizer_session.delta/v1.01"))
    add("generation_zero", "base_generation 0", setter("base_generation", None))
    add("head_missing", "no head", setter("head", None))
    add("kept_format", "keeps field 1 (format)", setter("kept", good.kept | 1 << 1))
    add("kept_progress", "keeps field 9 (progress)", setter("kept", good.kept | 1 << 9))
    add("kept_bit_zero", "bit 0 set", setter("kept", good.kept | 1))
    add("kept_field_16", "keeps field 16, which v1.0 does not know", setter("kept", 1 << 16))
    add(
        "kept_in_head",
        "keeps the optimizer and holds it too",
        lambda d: None,
        start=_holding(good, three, 3),
    )
    add(
        "kept_in_head_lowest",
        "holds two kept fields: the lowest-numbered one is named",
        lambda d: None,
        start=_holding(_holding(good, three, 11), three, 4),
    )
    entry_status = _sealed(good).replace(b"\x20\x01", b"\x20\x00", 1)
    raw(
        "head_entry_status_zero",
        "the appended entry's status written as 0 (a default written)",
        grammar.seal(entry_status[:-9]),
    )
    add("wrong_session", "the head of another session", setter("head.session_id", "other"))
    add("wrong_base_trials", "a delta for a base of 2 trials", setter("base_trials", 2))
    add("base_trials_ahead", "a delta for a base of 4 trials", setter("base_trials", 4))
    add("trial_index", "the appended entry numbered 7", _entry_idx(7))
    add(
        "completed_count",
        "completed not counting the appended ok trial",
        setter("head.progress.completed", 2),
    )
    add("best_past_log", "best_trial_idx past the new trial log", _best(0.55, 4))
    add("best_base_entry", "best_trial_idx names a base entry with another score", _best(0.9, 1))
    add("no_progress", "a head without progress", setter("head.progress", None))
    add("no_format", "a head without a format identifier", setter("head.format", None))
    add(
        "sampler_format_dropped",
        "sampler_format neither kept nor in the head",
        setter("kept", good.kept & ~(1 << 12)),
    )
    add(
        "artifact_bad_term",
        "a new artifact holding a NaN",
        _nan_artifact,
        base=artifact,
        start=dl.diff(artifact, _grown(artifact, 1), base_generation=7),
    )
    return cases


def _holding(delta: CheckpointDelta, base: Checkpoint, number: int) -> CheckpointDelta:
    """``delta`` with the base's field ``number`` in its head, still kept."""
    out = CheckpointDelta()
    out.CopyFrom(delta)
    dl._copy(base, out.head, Checkpoint.DESCRIPTOR.fields_by_number[number])
    out.kept |= 1 << number
    return out


def _entry_idx(index: int) -> Callable[[CheckpointDelta], None]:
    def change(delta: CheckpointDelta) -> None:
        delta.head.progress.trial_log[0].trial_idx = index

    return change


def _best(score: float, index: int) -> Callable[[CheckpointDelta], None]:
    def change(delta: CheckpointDelta) -> None:
        delta.head.progress.best_score = score
        delta.head.progress.best_trial_idx = index

    return change


def _nan_artifact(delta: CheckpointDelta) -> None:
    delta.kept &= ~(1 << Checkpoint.BEST_PROGRAM_ARTIFACT_FIELD_NUMBER)
    entry = delta.head.best_program_artifact.entries.add()
    entry.key.string_value = "t"
    entry.value.float_value = float("nan")


def _answer(base: Checkpoint, data: bytes) -> dict[str, Any]:
    """The one answer every reader gives: the result's bytes or the refusal."""
    try:
        delta = dl.decode_delta(data)
    except InvalidDelta as exc:
        return {"refused": {"stage": "read", "rule": exc.rule, "field": exc.path}}
    assert dl.encode_delta(delta) == data, "an accepted delta must write back to its bytes"
    in_place = Checkpoint()
    in_place.CopyFrom(base)
    try:
        result = dl.apply(base, delta)
    except (InvalidDelta, InvalidCheckpoint) as exc:
        stage = "apply" if isinstance(exc, InvalidDelta) else "result"
        try:
            dl.apply_in_place(in_place, delta)
        except type(exc) as same:
            assert (same.rule, same.path) == (exc.rule, exc.path), "apply_in_place differs"
        else:
            raise AssertionError("apply_in_place accepted what apply refused") from None
        assert in_place == base, "a refused apply_in_place changed its base"
        return {"refused": {"stage": stage, "rule": exc.rule, "field": exc.path}}
    dl.apply_in_place(in_place, delta)
    output = ck.encode(result)
    assert ck.encode(in_place) == output, "apply and apply_in_place must agree"
    return {"result": output}


def build() -> dict[str, bytes]:
    bases = _bases()
    names = {id(cp): name for name, cp in bases.items()}
    files: dict[str, bytes] = {f"base_{name}.binpb": ck.encode(cp) for name, cp in bases.items()}
    manifest: list[dict[str, Any]] = []
    for name, text, base, data in _accepted(bases) + _refused(bases):
        answer = _answer(base, data)
        case: dict[str, Any] = {
            "name": name,
            "description": text,
            "base": f"base_{names[id(base)]}.binpb",
            "delta": f"{name}.delta.binpb",
        }
        files[case["delta"]] = data
        if "result" in answer:
            case["result"] = f"{name}.result.binpb"
            files[case["result"]] = answer["result"]
        else:
            case["refused"] = answer["refused"]
        manifest.append(case)
    about = (
        "Delta vectors (FORMAT.md §13): apply each delta to its base; the answer is the "
        "result's canonical bytes or the refusal (stage read: §2/§13.1, apply: §13.2 "
        "steps 1-2, result: §7 on the new checkpoint) with its rule and field. A delta "
        "not refused at read writes back to its own bytes."
    )
    text = json.dumps({"about": about, "cases": manifest}, indent=1, ensure_ascii=False)
    files["manifest.json"] = (text + "\n").encode("utf-8")
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when the files differ")
    args = parser.parse_args()
    files = build()
    on_disk = {p.name: p.read_bytes() for p in HERE.iterdir() if p.suffix in (".binpb", ".json")}
    status = sync(files, on_disk, HERE, check=args.check, shown="vector: tests/vectors/delta/")
    if args.check:
        return status
    print(f"wrote {len(files)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
