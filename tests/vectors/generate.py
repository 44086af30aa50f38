"""Write the golden vectors of tests/vectors/ (FORMAT.md §11) from the Python library.

Run with ``--check`` to fail when the committed vectors differ from what this
script writes (``make check-generated`` does). Every vector is deterministic:
timestamps are fixed, nothing depends on the clock or on hash seeds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session.terms import Atom, term_bytes
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.optimizer_session.wire import varint

HERE = Path(__file__).resolve().parent
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
TRAINSET = [
    {"question": "2+2?", "answer": "4"},
    {"question": "capital of France?", "answer": "Paris"},
]


def _stamp(cp: Checkpoint, offset: int = 0) -> Checkpoint:
    cp.created_at.seconds, cp.created_at.nanos = T0, 123_456_000
    cp.progress.started_at.seconds, cp.progress.started_at.nanos = T0, 123_456_000
    cp.updated_at.seconds, cp.updated_at.nanos = T0 + 60 + offset, 654_321_000
    return cp


def fresh(**overrides: Any) -> Checkpoint:
    kwargs: dict[str, Any] = {
        "session_id": "s1",
        "optimizer": "dspy.teleprompt.MIPROv2",
        "trainset_hash": ck.hash_trainset(TRAINSET),
        "sampler_blob": b"\x00\x01sampler-state\xff",
        "sampler_format": ("dspy.teleprompt.MIPROv2.Sampler", 1),
        "optimizer_opts": [("num_candidates", 8), ("temperature", 0.7)],
    }
    kwargs.update(overrides)
    return _stamp(ck.new(**kwargs))


def with_trials(n: int = 4, **overrides: Any) -> Checkpoint:
    cp = fresh(**overrides)
    for i in range(n):
        if i % 4 == 2:
            ck.record_trial(
                cp,
                score=None,
                status="error",
                candidate_id=f"c{i}",
                duration_ms=10 + i,
                error={"message": "rate limited", "retry_after_s": 30},
                error_class="RateLimitError",
            )
        else:
            ck.record_trial(
                cp,
                score=round(0.25 * (i % 5), 2),
                candidate_id=f"c{i}",
                stats={"tokens": 100 + i, "latency_s": 0.5 + i / 8},
                duration_ms=1000 + i,
                sampler_blob=struct.pack(">I", i),
            )
    return _stamp(cp, n)


def _deep_list(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth - 1):
        value = [value]
    return value


EDGE_VALUES: list[tuple[str, Any]] = [
    ("null", None),
    ("true", True),
    ("false", False),
    ("zero", 0),
    ("int64_min", -(2**63)),
    ("int64_max", 2**63 - 1),
    ("just_above_int64", 2**63),
    ("just_below_int64", -(2**63) - 1),
    ("big_positive", 2**200 + 12345),
    ("big_negative", -(2**130)),
    ("float_zero", 0.0),
    ("float_negative_zero", -0.0),
    ("float_inf", float("inf")),
    ("float_negative_inf", float("-inf")),
    ("float_min_subnormal", 5e-324),
    ("float_one", 1.0),
    ("empty_string", ""),
    ("unicode", "naïve, 漢字, 𝄞🎉 (beyond the BMP)"),
    ("empty_bytes", b""),
    ("all_bytes", bytes(range(256))),
    ("atom", Atom("ok")),
    ("empty_list", []),
    ("empty_tuple", ()),
    ("empty_map", {}),
    ("list_of_kinds", [1, 1.0, True, "1", b"1", Atom("one"), None]),
    ("tuple", (Atom("error"), "timeout", 30)),
    (
        "map_mixed_keys",
        {
            1: "int",
            "1": "str",
            False: "bool",
            2.5: "float",
            None: "null",
            (1, 2): "tuple",
            b"k": "b",
        },
    ),
    (
        "nested_map",
        {"model": {"name": "gpt", "params": {"top_p": 0.9, "stop": ["\n", "###"]}}},
    ),
    ("deep_24", _deep_list(24)),
]


def valid_vectors() -> dict[str, tuple[Checkpoint, str]]:
    out: dict[str, tuple[Checkpoint, str]] = {}
    out["fresh"] = (fresh(), "a new session: running, empty progress, two options")
    cp = fresh(optimizer_opts=[], sampler_blob=b"")
    out["minimal"] = (cp, "no options, empty sampler blob, nothing optional")
    out["running_trials"] = (
        with_trials(4),
        "running, ok and error trials, stats and errors",
    )
    cp = with_trials(4)
    ck.pause(cp)
    out["paused"] = (_stamp(cp, 9), "paused after four trials")
    for name, move in (
        ("completed", ck.complete),
        ("failed", ck.fail),
        ("cancelled", ck.cancel),
    ):
        cp = with_trials(3)
        move(cp, {"reason": name, "at_trial": 3})
        out[name] = (_stamp(cp, 9), f"{name}, with a terminal reason")
    cp = with_trials(2)
    ck.cancel(cp)
    out["cancelled_no_reason"] = (_stamp(cp, 9), "cancelled with no reason")
    cp = fresh(optimizer_opts=EDGE_VALUES, program_module="MyApp.QA.Program")
    out["terms_edge"] = (
        cp,
        "every Term kind with edge values, as options; program_module set",
    )
    cp = fresh(optimizer_opts=[("max_bootstrapped_demos", 4), ("max_bootstrapped_demos", 8)])
    out["duplicate_option_keys"] = (cp, "a keyword list keeps order and repeated keys")
    cp = fresh(optimizer="Dsxir.Optimizer.MIPROv2")
    ck.record_trial(cp, score=0.0, candidate_id="zero")
    ck.record_trial(cp, score=None, candidate_id="unscored")
    out["score_zero_vs_absent"] = (
        _stamp(cp, 2),
        "trial 0 has an explicit 0.0 score (best), trial 1 has none",
    )
    cp = fresh()
    ck.record_trial(cp, score=-0.0)
    ck.record_trial(cp, score=0.0)
    out["negative_zero_score"] = (
        _stamp(cp, 2),
        "-0.0 is kept bit for bit and stays best: 0.0 is not strictly greater",
    )
    cp = fresh()
    ck.record_trial(cp, score=float("-inf"))
    ck.record_trial(cp, score=float("inf"))
    out["infinite_scores"] = (_stamp(cp, 2), "-Infinity then +Infinity scores")
    cp = fresh(direction="lower")
    ck.record_trial(cp, score=0.9, candidate_id="c0")
    ck.record_trial(cp, score=0.4, candidate_id="c1")
    ck.record_trial(cp, score=None, status="error", candidate_id="c2", error={"message": "timeout"})
    ck.record_trial(cp, score=0.4, candidate_id="c3")
    ck.record_trial(cp, score=0.7, candidate_id="c4")
    ck.record_trial(cp, score=None, candidate_id="c5")
    out["direction_lower"] = (
        _stamp(cp, 6),
        "direction lower (field 15 = 1): trial 1 (0.4) is best, the later equal 0.4 is not",
    )
    cp = fresh(direction="lower")
    ck.record_trial(cp, score=0.0)
    ck.record_trial(cp, score=-0.0)
    out["direction_lower_negative_zero"] = (
        _stamp(cp, 2),
        "direction lower: 0.0 stays best, -0.0 is not strictly less",
    )
    cp = fresh(direction="lower")
    ck.record_trial(cp, score=float("inf"))
    ck.record_trial(cp, score=float("-inf"))
    out["direction_lower_infinite_scores"] = (
        _stamp(cp, 2),
        "direction lower: +Infinity then -Infinity, which is best",
    )
    cp = with_trials(4)
    cp.format = "dsxir.optimizer_session.checkpoint/v1.0"
    out["legacy_v1_0"] = (
        cp,
        "written by v1.0: no direction (higher is better), read and re-encoded unchanged",
    )
    cp = with_trials(3)
    ck.record_trial(
        cp,
        score=0.9,
        best_program_artifact={
            "instructions": "Think step by step.",
            "demos": [{"q": "1+1", "a": "2"}],
        },
    )
    out["best_program_artifact"] = (_stamp(cp, 5), "a best program artifact")
    cp = with_trials(150)
    out["long_log"] = (cp, "150 trials: multi-byte lengths everywhere")
    cp = fresh()
    cp.format = "dsxir.optimizer_session.checkpoint/v1.7"
    out["newer_minor"] = (cp, "a newer minor of major 1 is read")
    cp = fresh()
    cp.created_at.seconds, cp.created_at.nanos = -62_135_596_800, 0
    cp.updated_at.seconds, cp.updated_at.nanos = 253_402_300_799, 999_999_999
    out["timestamp_extremes"] = (
        cp,
        "0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999999Z",
    )
    cp = fresh()
    ck.record_trial(cp, score=0.5, stats={"trace": _deep_list(23)})
    out["deep_stats"] = (
        _stamp(cp, 1),
        "stats nested to depth 24 (the limit) inside the trial log",
    )
    return out


UNKNOWN_TOP = (
    b"\x82\x01\x05newer" + b"\xf8\x06\x2a"
)  # field 16 (string "newer"), field 111 (varint 42)
UNKNOWN_PROGRESS = b"\x40\x07"  # field 8 (varint 7)
UNKNOWN_ENTRY = b"\x4a\x03abc"  # field 9 (bytes "abc")


def unknown_vectors() -> dict[str, tuple[bytes, bytes, str]]:
    cp = with_trials(2, direction="lower")
    cp.format = "dsxir.optimizer_session.checkpoint/v1.2"
    known = ck.encode(cp)
    cp.progress.trial_log[1].MergeFromString(UNKNOWN_ENTRY)
    cp.progress.MergeFromString(UNKNOWN_PROGRESS)
    cp.MergeFromString(UNKNOWN_TOP)
    newer = cp.SerializeToString(deterministic=True)
    return {
        "newer_minor_extra_fields": (
            newer,
            known,
            "written by v1.2 with new fields in Checkpoint (16, 111), Progress (8) and "
            "TrialLogEntry (9), after direction (15); kept and written last by runtimes "
            "that keep unknown fields",
        )
    }


def _mutated(change: Callable[[Checkpoint], None], base: Checkpoint | None = None) -> bytes:
    cp = Checkpoint()
    cp.CopyFrom(base if base is not None else with_trials(4))
    change(cp)
    return cp.SerializeToString(deterministic=True)


def set_field(path: str, value: Any) -> Callable[[Checkpoint], None]:
    """A change that sets the field at a dotted path (``progress.completed``)."""

    def change(cp: Checkpoint) -> None:
        *parents, last = path.split(".")
        target: Any = cp
        for part in parents:
            target = getattr(target, part)
        setattr(target, last, value)

    return change


def clear_field(path: str) -> Callable[[Checkpoint], None]:
    """A change that clears the field at a dotted path."""

    def change(cp: Checkpoint) -> None:
        *parents, last = path.split(".")
        target: Any = cp
        for part in parents:
            target = getattr(target, part)
        target.ClearField(last)

    return change


def _stats_raw(raw_map_body: bytes) -> Callable[[Checkpoint], None]:
    def change(cp: Checkpoint) -> None:
        cp.progress.trial_log[0].stats.Clear()
        cp.progress.trial_log[0].stats.MergeFromString(raw_map_body)

    return change


def _entry(key: bytes | None, value: bytes | None) -> bytes:
    body = b""
    if key is not None:
        body += b"\x0a" + bytes([len(key)]) + key
    if value is not None:
        body += b"\x12" + bytes([len(value)]) + value
    return b"\x0a" + bytes([len(body)]) + body


def _reason_raw(raw_term: bytes) -> Callable[[Checkpoint], None]:
    def change(cp: Checkpoint) -> None:
        cp.terminal_reason.Clear()
        cp.terminal_reason.MergeFromString(raw_term)

    return change


def _best(score: float, idx: int) -> Callable[[Checkpoint], None]:
    def change(cp: Checkpoint) -> None:
        cp.progress.best_score = score
        cp.progress.best_trial_idx = idx

    return change


def invalid_vectors() -> list[tuple[str, bytes, str, str, str]]:
    """(name, bytes, field, rule, description); protobuf_level is measured, not declared.

    ``rule`` is the id (spec/checkpoint-rules-v1.json) of the rule the vector breaks.
    """
    base = ck.encode(with_trials(4))
    s, one = term_bytes("s"), term_bytes(1)
    return [
        (
            "empty",
            b"",
            "format",
            "format.required",
            "zero bytes: valid protobuf, but no format identifier",
        ),
        ("garbage", b"\xff\xff\xff\xff", "<input>", "input.malformed", "not protobuf"),
        (
            "truncated",
            base[: len(base) // 2],
            "<input>",
            "input.malformed",
            "a valid checkpoint cut in half",
        ),
        ("bad_varint", b"\x08" + b"\xff" * 11, "<input>", "input.malformed", "an 11-byte varint"),
        (
            "bad_utf8_session_id",
            b"\x12\x02\xc3\x28",
            "<input>",
            "input.malformed",
            "invalid UTF-8 in a string field",
        ),
        (
            "another_message",
            term_bytes(["hi"])[2:],
            "format",
            "format.shape",
            "a TermList message: parses, its field 1 a string that is no format identifier",
        ),
        (
            "format_wrong",
            _mutated(set_field("format", "dsxir.optimizer_session.checkpoint/1.0")),
            "format",
            "format.shape",
            "format identifier without the v",
        ),
        (
            "format_newer_major",
            _mutated(set_field("format", "dsxir.optimizer_session.checkpoint/v2.0")),
            "format",
            "format.major",
            "a newer major version",
        ),
        (
            "format_leading_zero",
            _mutated(set_field("format", "dsxir.optimizer_session.checkpoint/v01.0")),
            "format",
            "format.shape",
            "a major with a leading zero",
        ),
        (
            "session_id_empty",
            _mutated(set_field("session_id", "")),
            "session_id",
            "session_id.required",
            "empty session id",
        ),
        (
            "optimizer_empty",
            _mutated(set_field("optimizer", "")),
            "optimizer",
            "optimizer.required",
            "empty optimizer",
        ),
        (
            "option_key_empty",
            _mutated(_option_key_empty),
            "optimizer_opts[0].key",
            "optimizer_opts.key.required",
            "an option with an empty key",
        ),
        (
            "option_value_missing",
            _mutated(lambda cp: cp.optimizer_opts[1].ClearField("value")),
            "optimizer_opts[1].value",
            "optimizer_opts.value.required",
            "an option without a value",
        ),
        (
            "program_module_empty",
            _mutated(set_field("program_module", "")),
            "program_module",
            "program_module.not_empty",
            "program_module present but empty",
        ),
        (
            "trainset_hash_short",
            _mutated(set_field("trainset_hash", b"\x01" * 31)),
            "trainset_hash",
            "trainset_hash.length",
            "31-byte trainset hash",
        ),
        (
            "created_at_missing",
            _mutated(clear_field("created_at")),
            "created_at",
            "timestamp.required",
            "no created_at",
        ),
        (
            "updated_at_nanos",
            _mutated(set_field("updated_at.nanos", 1_000_000_000)),
            "updated_at.nanos",
            "timestamp.nanos",
            "nanos out of range",
        ),
        (
            "updated_at_seconds",
            _mutated(set_field("updated_at.seconds", 253_402_300_800)),
            "updated_at.seconds",
            "timestamp.seconds",
            "after 9999-12-31",
        ),
        (
            "progress_missing",
            _mutated(clear_field("progress")),
            "progress",
            "progress.required",
            "no progress",
        ),
        (
            "trial_idx_gap",
            _mutated(lambda cp: setattr(cp.progress.trial_log[2], "trial_idx", 5)),
            "progress.trial_log[2].trial_idx",
            "trial.trial_idx",
            "trial_idx is not the entry's position",
        ),
        (
            "trial_score_nan",
            _mutated(lambda cp: setattr(cp.progress.trial_log[1], "score", float("nan"))),
            "progress.trial_log[1].score",
            "float.nan",
            "a NaN score",
        ),
        (
            "trial_status_unspecified",
            _mutated(lambda cp: setattr(cp.progress.trial_log[0], "status", 0)),
            "progress.trial_log[0].status",
            "trial.status",
            "trial status 0",
        ),
        (
            "trial_status_unknown",
            _mutated(lambda cp: setattr(cp.progress.trial_log[0], "status", 7)),
            "progress.trial_log[0].status",
            "trial.status",
            "trial status 7 (open enum keeps it; readers refuse)",
        ),
        (
            "stats_unsorted",
            _mutated(_stats_raw(_entry(s, one) + _entry(term_bytes("a"), one))),
            "progress.trial_log[0].stats.entries[1].key",
            "term.map.order",
            "map keys out of canonical order",
        ),
        (
            "stats_duplicate_key",
            _mutated(_stats_raw(_entry(s, one) + _entry(s, one))),
            "progress.trial_log[0].stats.entries[1].key",
            "term.map.order",
            "a duplicate map key",
        ),
        (
            "stats_entry_no_key",
            _mutated(_stats_raw(_entry(None, one))),
            "progress.trial_log[0].stats.entries[0]",
            "term.map.key_required",
            "a map entry without a key",
        ),
        (
            "stats_entry_no_value",
            _mutated(_stats_raw(_entry(s, None))),
            "progress.trial_log[0].stats.entries[0]",
            "term.map.value_required",
            "a map entry without a value",
        ),
        (
            "stats_value_no_kind",
            _mutated(_stats_raw(_entry(s, b""))),
            "progress.trial_log[0].stats.entries[0].value",
            "term.kind",
            "a Term with no kind",
        ),
        (
            "stats_value_nan",
            _mutated(_stats_raw(_entry(s, b"\x29" + struct.pack("<d", float("nan"))))),
            "progress.trial_log[0].stats.entries[0].value.float_value",
            "float.nan",
            "NaN inside a Term",
        ),
        (
            "stats_value_go_nan",
            _mutated(_stats_raw(_entry(s, b"\x29" + struct.pack("<Q", 0x7FF8000000000001)))),
            "progress.trial_log[0].stats.entries[0].value.float_value",
            "float.nan",
            "NaN with Go's bit pattern",
        ),
        (
            "bigint_not_minimal",
            _mutated(_reason_raw(b"\x22\x0a\x00\x00" + (2**63).to_bytes(8, "big"))),
            "terminal_reason.bigint_value",
            "term.bigint",
            "a big integer with a redundant leading byte",
        ),
        (
            "bigint_fits_int64",
            _mutated(_reason_raw(b"\x22\x01\x05")),
            "terminal_reason.bigint_value",
            "term.bigint",
            "a big integer that fits in int64",
        ),
        (
            "bigint_empty",
            _mutated(_reason_raw(b"\x22\x00")),
            "terminal_reason.bigint_value",
            "term.bigint",
            "an empty big integer",
        ),
        (
            "term_too_deep",
            _mutated(_reason_raw(_too_deep())),
            "terminal_reason" + ".list_value.items[0]" * 24,
            "term.depth",
            "a Term of depth 25",
        ),
        (
            "started_at_missing",
            _mutated(clear_field("progress.started_at")),
            "progress.started_at",
            "timestamp.required",
            "no started_at",
        ),
        (
            "best_score_without_idx",
            _mutated(clear_field("progress.best_trial_idx")),
            "progress.best_trial_idx",
            "best.pair",
            "best_score set, best_trial_idx absent",
        ),
        (
            "best_idx_without_score",
            _mutated(clear_field("progress.best_score")),
            "progress.best_score",
            "best.pair",
            "best_trial_idx set, best_score absent",
        ),
        (
            "best_score_nan",
            _mutated(set_field("progress.best_score", float("nan"))),
            "progress.best_score",
            "float.nan",
            "a NaN best score",
        ),
        (
            "best_idx_past_log",
            _mutated(_best(0.25, 9)),
            "progress.best_trial_idx",
            "best.trial_idx.range",
            "best_trial_idx beyond the log",
        ),
        (
            "best_idx_error_trial",
            _mutated(_best(0.25, 2)),
            "progress.best_trial_idx",
            "best.trial_idx.trial",
            "best_trial_idx names an error trial",
        ),
        (
            "best_score_mismatch",
            _mutated(_best(0.5, 1)),
            "progress.best_trial_idx",
            "best.score",
            "best_score differs from the named trial's score",
        ),
        (
            "best_negative_zero_mismatch",
            _mutated(_best(-0.0, 0)),
            "progress.best_trial_idx",
            "best.score",
            "best_score -0.0 but the trial scored 0.0: bits differ",
        ),
        (
            "completed_mismatch",
            _mutated(set_field("progress.completed", 2)),
            "progress.completed",
            "counters.completed",
            "completed differs from the ok entries",
        ),
        (
            "errors_mismatch",
            _mutated(set_field("progress.errors", 0)),
            "progress.errors",
            "counters.errors",
            "errors differs from the error entries",
        ),
        (
            "attempts_too_low",
            _mutated(set_field("progress.attempts", 3)),
            "progress.attempts",
            "counters.attempts",
            "attempts below completed + errors",
        ),
        (
            "artifact_nan",
            _mutated(
                lambda cp: cp.best_program_artifact.MergeFromString(
                    _entry(s, b"\x29" + struct.pack("<d", float("nan")))
                )
            ),
            "best_program_artifact.entries[0].value.float_value",
            "float.nan",
            "NaN in the best program artifact",
        ),
        (
            "sampler_format_missing",
            _mutated(clear_field("sampler_format")),
            "sampler_format",
            "sampler_format.required",
            "no sampler_format",
        ),
        (
            "sampler_module_empty",
            _mutated(set_field("sampler_format.module", "")),
            "sampler_format.module",
            "sampler_format.module.required",
            "empty sampler module",
        ),
        (
            "sampler_version_zero",
            _mutated(set_field("sampler_format.version", 0)),
            "sampler_format.version",
            "sampler_format.version.min",
            "sampler version 0",
        ),
        (
            "status_unspecified",
            _mutated(set_field("status", 0)),
            "status",
            "status.known",
            "status 0",
        ),
        ("status_unknown", _mutated(set_field("status", 9)), "status", "status.known", "status 9"),
        (
            "terminal_reason_no_kind",
            _mutated(_reason_raw(b"")),
            "terminal_reason",
            "term.kind",
            "a terminal reason Term with no kind",
        ),
        (
            "direction_unknown",
            _mutated(set_field("direction", 2)),
            "direction",
            "direction.known",
            "direction 2",
        ),
        (
            "direction_negative",
            _mutated(set_field("direction", -1)),
            "direction",
            "direction.known",
            "direction -1 (a ten-byte varint)",
        ),
        (
            "direction_unknown_after_reason",
            _mutated(_reason_raw(b""), _terminal_with_direction(7)),
            "terminal_reason",
            "term.kind",
            "direction 7 and a terminal reason with no kind: terminal_reason is checked first",
        ),
    ]


def _terminal_with_direction(direction: int) -> Checkpoint:
    cp = with_trials(3)
    ck.complete(cp, "done")
    cp.direction = direction  # type: ignore[assignment]
    return _stamp(cp, 9)


def noncanonical_vectors() -> dict[str, tuple[bytes, bytes, str]]:
    """(input, the canonical bytes every reader re-encodes it to, description)."""
    canonical = ck.encode(with_trials(4))
    return {
        "direction_explicit_higher": (
            canonical + b"\x78\x00",
            canonical,
            "direction 0 (higher) written explicitly: accepted, the default dropped on re-encoding",
        ),
    }


def _option_key_empty(cp: Checkpoint) -> None:
    cp.optimizer_opts[0].key = ""


def _too_deep() -> bytes:
    raw = term_bytes("leaf")
    for _ in range(24):
        body = b"\x0a" + varint(len(raw)) + raw
        raw = b"\x4a" + varint(len(body)) + body
    return raw


def _list_of(items: list[bytes]) -> bytes:
    body = b"".join(b"\x0a" + varint(len(t)) + t for t in items)
    return b"\x4a" + varint(len(body)) + body


def _unsorted_map(pairs: list[tuple[Any, Any]]) -> bytes:
    """A map Term whose entries are written in the given (non-canonical) order."""
    body = b""
    for key, value in pairs:
        k, v = term_bytes(key), term_bytes(value)
        entry = b"\x0a" + varint(len(k)) + k + b"\x12" + varint(len(v)) + v
        body += b"\x0a" + varint(len(entry)) + entry
    return b"\x5a" + varint(len(body)) + body


def trainset_vectors() -> list[tuple[str, bytes, list[Any], str]]:
    """(name, Term-list bytes, the Python examples, description)."""
    qa = [
        {"question": "2+2?", "answer": "4"},
        {"question": "capital?", "answer": "Paris"},
    ]
    vectors: list[tuple[str, bytes, list[Any], str]] = []

    def add(name: str, examples: list[Any], description: str, raw: bytes | None = None) -> None:
        vectors.append((name, raw or term_bytes(examples), examples, description))

    add("empty", [], "no examples")
    add("qa", qa, "two question/answer maps")
    add(
        "qa_unsorted_input",
        qa,
        "the same two maps with entries written in insertion order (answer last): same digest",
        raw=_list_of(
            [_unsorted_map([("question", e["question"]), ("answer", e["answer"])]) for e in qa]
        ),
    )
    add(
        "qa_reordered",
        list(reversed(qa)),
        "the same examples in the other order: another digest",
    )
    add("int_one", [{"x": 1}], "1 as an integer")
    add("float_one", [{"x": 1.0}], "1.0 as a float: differs from the integer")
    add("bool_true", [{"x": True}], "true: differs from 1")
    add("string_one", [{"x": "1"}], '"1": differs from 1')
    add(
        "kinds",
        [
            {
                "id": 2**70,
                "neg": -(2**63),
                "blob": b"\x00\xff",
                "tags": ["a", Atom("b")],
            },
            {"pair": (1, "one"), "nothing": None, "inf": float("-inf"), "nz": -0.0},
        ],
        "every kind a trainset example may hold",
    )
    add("unicode", [{"text": "Grüße, 世界 𝄞"}], "text beyond the BMP")
    return vectors


def build() -> dict[str, bytes]:
    """Every file of tests/vectors/ (but this script), by relative path."""
    files: dict[str, bytes] = {}
    manifest: dict[str, list[dict[str, Any]]] = {
        "valid": [],
        "unknown": [],
        "invalid": [],
        "noncanonical": [],
        "trainset": [],
    }
    for name, (cp, description) in valid_vectors().items():
        raw = ck.encode(cp)
        files[f"valid/{name}.binpb"] = raw
        files[f"valid/{name}.json"] = (ck.to_json(cp) + "\n").encode()
        manifest["valid"].append(
            {
                "name": name,
                "binpb": f"valid/{name}.binpb",
                "json": f"valid/{name}.json",
                "description": description,
            }
        )
    for name, (newer, known, description) in unknown_vectors().items():
        files[f"unknown/{name}.binpb"] = newer
        files[f"unknown/{name}.known_only.binpb"] = known
        manifest["unknown"].append(
            {
                "name": name,
                "binpb": f"unknown/{name}.binpb",
                "known_only": f"unknown/{name}.known_only.binpb",
                "description": description,
            }
        )
    for name, raw, field, rule, description in invalid_vectors():
        files[f"invalid/{name}.binpb"] = raw
        manifest["invalid"].append(
            {
                "name": name,
                "binpb": f"invalid/{name}.binpb",
                "field": field,
                "rule": rule,
                "protobuf_level": _protobuf_refuses(raw),
                "description": description,
            }
        )
    for name, (given, canonical, description) in noncanonical_vectors().items():
        files[f"noncanonical/{name}.binpb"] = given
        files[f"noncanonical/{name}.canonical.binpb"] = canonical
        manifest["noncanonical"].append(
            {
                "name": name,
                "binpb": f"noncanonical/{name}.binpb",
                "canonical": f"noncanonical/{name}.canonical.binpb",
                "description": description,
            }
        )
    for name, raw, examples, description in trainset_vectors():
        files[f"trainset/{name}.binpb"] = raw
        manifest["trainset"].append(
            {
                "name": name,
                "input": f"trainset/{name}.binpb",
                "sha256": ck.hash_trainset(examples).hex(),
                "description": description,
            }
        )
    files["manifest.json"] = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
    return files


def _protobuf_refuses(raw: bytes) -> bool:
    try:
        Checkpoint.FromString(raw)
    except Exception:
        return True
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="fail when the committed vectors differ"
    )
    args = parser.parse_args()
    files = build()
    on_disk = {
        str(p.relative_to(HERE)): p.read_bytes()
        for p in HERE.rglob("*")
        if p.is_file()
        and p.suffix in (".binpb", ".json")
        and p.parent.name not in ("trainset-json", "hostile")
    }
    if args.check:
        stale = sorted(set(files) ^ set(on_disk) | {k for k in files if on_disk.get(k) != files[k]})
        for name in stale:
            print(f"stale vector: tests/vectors/{name}", file=sys.stderr)
        return 1 if stale else 0
    for name in set(on_disk) - set(files):
        (HERE / name).unlink()
    for name, raw in files.items():
        path = HERE / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
    digest = hashlib.sha256(files["manifest.json"]).hexdigest()[:16]
    print(f"wrote {len(files)} files; manifest sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
