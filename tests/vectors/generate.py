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

import reference
from changes import clear_field, set_field
from sync import sync

from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session.terms import Atom, term_bytes
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.optimizer_session.wire import varint

seal = reference.seal

HERE = Path(__file__).resolve().parent
# The weight limit of FORMAT.md §2.4: WEIGHT_FACTOR x the input's length + WEIGHT_BASE.
WEIGHT_FACTOR = 7
WEIGHT_BASE = 50_331_648
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
TRAINSET = [
    {"question": "2+2?", "answer": "4"},
    {"question": "capital of France?", "answer": "Paris"},
]


def encoded(cp: Checkpoint) -> bytes:
    """The checkpoint bytes of ``cp``: the library's body (screened) with its trailer."""
    return ck.encode(cp) if reference.library_seals() else seal(ck.encode(cp))


def body_of(cp: Checkpoint) -> bytes:
    """The body of ``cp`` (its bytes without the trailer, FORMAT.md §2.1)."""
    return encoded(cp)[:-9]


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
    known = encoded(cp)
    cp.progress.trial_log[1].MergeFromString(UNKNOWN_ENTRY)
    cp.progress.MergeFromString(UNKNOWN_PROGRESS)
    cp.MergeFromString(UNKNOWN_TOP)
    newer = seal(cp.SerializeToString(deterministic=True))
    return {
        "newer_minor_extra_fields": (
            newer,
            known,
            "written by v1.2 with new fields in Checkpoint (16, 111), Progress (8) and "
            "TrialLogEntry (9), after direction (15); every reader keeps them and writes "
            "them back where they stood (known_only: the same without them, kept as data)",
        )
    }


def _mutated(change: Callable[[Checkpoint], None], base: Checkpoint | None = None) -> bytes:
    cp = Checkpoint()
    cp.CopyFrom(base if base is not None else with_trials(4))
    change(cp)
    return seal(cp.SerializeToString(deterministic=True))


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
    base = encoded(with_trials(4))
    s, one = term_bytes("s"), term_bytes(1)
    return [
        *grammar_vectors(),
        (
            "empty",
            seal(b""),
            "format",
            "format.required",
            "an empty body with its trailer: the grammar holds, but no format identifier",
        ),
        (
            "garbage",
            seal(b"\xff\xff\xff\xff"),
            "<input>",
            "wire.truncated",
            "four FF bytes with a trailer: a tag that never ends",
        ),
        (
            "truncated",
            base[: len(base) // 2],
            "<input>",
            "input.trailer",
            "a valid checkpoint cut in half: no trailer at its end",
        ),
        (
            "truncated_resealed",
            seal(base[: len(base) // 2]),
            "<input>",
            "wire.truncated",
            "the first half of a valid checkpoint's bytes with a right trailer",
        ),
        (
            "bad_varint",
            seal(b"\x80" * 10 + b"\x01"),
            "<input>",
            "wire.varint",
            "an 11-byte tag varint",
        ),
        (
            "bad_utf8_session_id",
            seal(b"\x12\x02\xc3\x28"),
            "session_id",
            "wire.utf8",
            "invalid UTF-8 in a string field",
        ),
        (
            "another_message",
            seal(term_bytes(["hi"])[2:]),
            "format",
            "format.shape",
            "a TermList message: passes the grammar, its field 1 a string that is no format "
            "identifier",
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


VARINT, I64, LEN, SGROUP, I32 = 0, 1, 2, 3, 5
Field = tuple[int, int, bytes]


def _tag(number: int, wire: int, width: int = 0) -> bytes:
    return _padded(number << 3 | wire, width)


def _padded(value: int, width: int = 0) -> bytes:
    """``value`` as a varint, padded with redundant continuation bytes to ``width`` bytes."""
    out = bytearray(varint(value))
    while len(out) < width:
        out[-1] |= 0x80
        out.append(0)
    return bytes(out)


def _field(
    number: int, wire: int, value: bytes, *, tag_width: int = 0, len_width: int = 0
) -> bytes:
    if wire == LEN:
        return _tag(number, wire, tag_width) + _padded(len(value), len_width) + value
    return _tag(number, wire, tag_width) + value


def _parse(data: bytes) -> list[Field]:
    """The fields of a canonical body, in order (the value of a LEN field without its length)."""
    fields: list[Field] = []
    pos = 0

    def read() -> int:
        nonlocal pos
        value = shift = 0
        while True:
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return value

    while pos < len(data):
        key = read()
        number, wire = key >> 3, key & 7
        start = pos
        if wire == VARINT:
            read()
            fields.append((number, wire, data[start:pos]))
        elif wire == LEN:
            length = read()
            fields.append((number, wire, data[pos : pos + length]))
            pos += length
        else:
            pos += 8 if wire == I64 else 4
            fields.append((number, wire, data[start:pos]))
    return fields


def _emit(fields: list[Field]) -> bytes:
    return b"".join(_field(n, w, v) for n, w, v in fields)


def _replace(fields: list[Field], number: int, encoded_field: bytes) -> bytes:
    """The body with field ``number`` written as ``encoded_field``."""
    return b"".join(encoded_field if n == number else _field(n, w, v) for n, w, v in fields)


def _get(fields: list[Field], number: int) -> bytes:
    return next(v for n, _, v in fields if n == number)


def _weight_body() -> bytes:
    """The smallest body of empty trial entries whose weight passes the limit (§2.4).

    An empty TrialLogEntry is 2 bytes on the wire and weighs 104; the limit is
    7 x the input's length + 50,331,648, so about 559,250 of them pass it.
    """
    m = _parse(body_of(fresh(optimizer_opts=[], sampler_blob=b"")))
    started_at = _field(7, LEN, _get(_parse(_get(m, 9)), 7))
    other = sum(len(_field(n, w, v)) for n, w, v in m if n != 9)

    def size(count: int) -> int:
        return other + len(_field(9, LEN, b"\x0a\x00" * count + started_at)) + 9

    # the weight of fresh()'s other messages: progress, started_at, created_at,
    # updated_at and sampler_format (48 each)
    count = (WEIGHT_BASE - 5 * 48) // (104 - 2 * WEIGHT_FACTOR) - 8
    while 104 * count + 5 * 48 <= WEIGHT_FACTOR * size(count) + WEIGHT_BASE:
        count += 1
    return _replace(m, 9, _field(9, LEN, b"\x0a\x00" * count + started_at))


def grammar_vectors() -> list[tuple[str, bytes, str, str, str]]:
    """Invalid vectors of the byte grammar (FORMAT.md §2): the trailer, wire.*, the weight."""
    base = encoded(with_trials(4))
    body = base[:-9]
    m = _parse(body)
    fresh_body = body_of(fresh())
    sampler_format = _parse(_get(m, 12))
    progress = _parse(_get(m, 9))
    flipped = bytearray(base)
    flipped[40] ^= 0x10
    return [
        ("zero_bytes", b"", "<input>", "input.trailer", "no bytes at all"),
        (
            "unsealed",
            body,
            "<input>",
            "input.trailer",
            "a valid checkpoint's body without its trailer (what a plain protobuf writer writes)",
        ),
        (
            "trailer_tag_wrong",
            body + b"\xfd\xff\xff\xff\x0e" + base[-4:],
            "<input>",
            "input.trailer",
            "the trailer's tag with its last byte changed (0F to 0E)",
        ),
        (
            "checksum_wrong",
            base[:-1] + bytes([base[-1] ^ 0x01]),
            "<input>",
            "input.checksum",
            "a valid checkpoint with one bit of its CRC-32C flipped",
        ),
        (
            "checksum_body_bit_flipped",
            bytes(flipped),
            "<input>",
            "input.checksum",
            "a valid checkpoint with bit 4 of byte 40 flipped: the CRC-32C no longer matches",
        ),
        (
            "wire_truncated_unknown_length",
            seal(body + _tag(99, LEN) + varint(10) + b"xy"),
            "<input>",
            "wire.truncated",
            "an unknown bytes field 99 whose length (10) runs past the end of the body",
        ),
        (
            "wire_truncated_nested_value",
            seal(_replace(m, 12, _field(12, LEN, _emit(sampler_format[:1]) + b"\x10"))),
            "sampler_format",
            "wire.truncated",
            "sampler_format ends right after the tag of its version",
        ),
        (
            "wire_varint_value_padded",
            seal(_replace(m, 13, _field(13, VARINT, _padded(1, 2)))),
            "status",
            "wire.varint",
            "status 1 written as the 2-byte varint 81 00",
        ),
        (
            "wire_varint_tag_padded",
            seal(_replace(m, 2, _field(2, LEN, _get(m, 2), tag_width=2))),
            "<input>",
            "wire.varint",
            "the tag of session_id written as the 2-byte varint 92 00",
        ),
        (
            "wire_varint_length_padded",
            seal(_replace(m, 2, _field(2, LEN, _get(m, 2), len_width=2))),
            "session_id",
            "wire.varint",
            "the length of session_id written as a 2-byte varint",
        ),
        (
            "wire_varint_over_64_bits",
            seal(body + _tag(99, VARINT) + b"\xff" * 9 + b"\x02"),
            "<input>",
            "wire.varint",
            "an unknown varint field 99 of 10 bytes ending in 02: more than 64 bits",
        ),
        (
            "wire_varint_tag_2_32",
            seal(body + varint(1 << 35) + b"\x01"),
            "<input>",
            "wire.varint",
            "a tag of 2^35: at least 2^32",
        ),
        (
            "wire_tag_field_0",
            seal(body + b"\x00\x01"),
            "<input>",
            "wire.tag",
            "a varint field number 0 after the known fields",
        ),
        (
            "wire_tag_group",
            seal(body + _tag(100, SGROUP) + _field(1, VARINT, b"\x01") + _tag(100, 4)),
            "<input>",
            "wire.tag",
            "an unknown group 100 (wire types 3 and 4 are refused)",
        ),
        (
            "wire_tag_trailer_number",
            seal(body + base[-9:]),
            "<input>",
            "wire.tag",
            "a trailer inside the body: field 536,870,911 is reserved for the trailer",
        ),
        (
            "wire_tag_known_wrong_type",
            seal(_replace(m, 13, _field(13, I32, (1).to_bytes(4, "little")))),
            "<input>",
            "wire.tag",
            "status (an enum) written as a fixed32",
        ),
        (
            "wire_order_reversed",
            seal(_emit(m[::-1])),
            "<input>",
            "wire.order",
            "the top-level fields in reverse order",
        ),
        (
            "wire_order_singular_repeated",
            seal(_replace(m, 2, _field(2, LEN, b"other") + _field(2, LEN, _get(m, 2)))),
            "<input>",
            "wire.order",
            "session_id written twice (a runtime keeps the last)",
        ),
        (
            "wire_order_nested",
            seal(_replace(m, 12, _field(12, LEN, _emit(sampler_format[::-1])))),
            "sampler_format",
            "wire.order",
            "sampler_format's version before its module",
        ),
        (
            "wire_order_repeated_interrupted",
            seal(
                _replace(
                    m,
                    9,
                    _field(
                        9,
                        LEN,
                        _emit(progress[:1] + [f for f in progress if f[0] == 4] + progress[1:]),
                    ),
                )
            ),
            "progress",
            "wire.order",
            "progress.attempts written between trial_log[0] and trial_log[1]",
        ),
        (
            "wire_oneof",
            seal(fresh_body + _field(14, LEN, b"\x10\x01" + _field(6, LEN, b"a"))),
            "terminal_reason",
            "wire.oneof",
            "a terminal reason Term holding a bool and a string",
        ),
        (
            "wire_range_bool",
            seal(fresh_body + _field(14, LEN, b"\x10\x02")),
            "terminal_reason.bool_value",
            "wire.range",
            "a Term bool_value of 2",
        ),
        (
            "wire_range_uint32",
            seal(
                _replace(
                    m,
                    12,
                    _field(12, LEN, _emit(sampler_format[:1]) + b"\x10" + varint(1 << 32)),
                )
            ),
            "sampler_format.version",
            "wire.range",
            "sampler_format.version of 2^32 (a uint32)",
        ),
        (
            "wire_range_enum",
            seal(_replace(m, 13, _field(13, VARINT, varint(1 << 31)))),
            "status",
            "wire.range",
            "status 2^31: outside int32",
        ),
        (
            "wire_utf8_surrogate",
            seal(_replace(m, 2, _field(2, LEN, b"\xed\xa0\x80"))),
            "session_id",
            "wire.utf8",
            "session_id holding the UTF-8 form of the surrogate U+D800",
        ),
        (
            "wire_utf8_overlong",
            seal(_replace(m, 3, _field(3, LEN, b"\xc0\xaf"))),
            "optimizer",
            "wire.utf8",
            "optimizer holding the overlong form C0 AF of '/'",
        ),
        (
            "wire_default_direction",
            seal(body + b"\x78\x00"),
            "direction",
            "wire.default",
            "direction 0 (higher) written explicitly (canonicalize drops it)",
        ),
        (
            "wire_default_sampler_blob",
            seal(_replace(m, 11, _field(11, LEN, b""))),
            "sampler_blob",
            "wire.default",
            "sampler_blob written empty",
        ),
        (
            "wire_default_trial_idx",
            seal(
                _replace(
                    m,
                    9,
                    _field(
                        9,
                        LEN,
                        _field(1, LEN, b"\x08\x00" + progress[0][2]) + _emit(progress[1:]),
                    ),
                )
            ),
            "progress.trial_log[0].trial_idx",
            "wire.default",
            "trial 0 with trial_idx 0 written",
        ),
        (
            "weight",
            seal(_weight_body()),
            "<input>",
            "input.weight",
            "about 559,250 empty trial entries (2 bytes each, weight 104): a weight over "
            "7 x the length + 50,331,648",
        ),
    ]


def _terminal_with_direction(direction: int) -> Checkpoint:
    cp = with_trials(3)
    ck.complete(cp, "done")
    cp.direction = direction  # type: ignore[assignment]
    return _stamp(cp, 9)


def canonicalize_vectors() -> dict[str, tuple[bytes, str]]:
    """(input in another protobuf encoding, description): what canonicalize rewrites (§2.6).

    The expected output is computed by the reference when the vectors are written.
    """
    cp = with_trials(4)
    canonical = encoded(cp)
    body = canonical[:-9]
    m = _parse(body)
    progress = _parse(_get(m, 9))
    return {
        "direction_explicit_higher": (
            body + b"\x78\x00",
            "direction 0 (higher) written explicitly, no trailer: the default is dropped",
        ),
        "direction_explicit_higher_sealed": (
            seal(body + b"\x78\x00"),
            "direction 0 written explicitly, with a right trailer (decode refuses it: "
            "wire.default)",
        ),
        "unsealed": (body, "a canonical body without its trailer: the trailer is added"),
        "canonical": (canonical, "canonical bytes are given back unchanged"),
        "fields_reversed": (_emit(m[::-1]), "the top-level fields in reverse order"),
        "padded_varints": (
            _replace(m, 13, _field(13, VARINT, _padded(1, 3), tag_width=2)),
            "status with a padded tag and a padded value",
        ),
        "defaults_written": (
            _replace(
                m,
                9,
                _field(9, LEN, _field(1, LEN, b"\x08\x00" + progress[0][2]) + _emit(progress[1:])),
            )
            + _field(15, VARINT, b"\x00"),
            "trial 0's trial_idx and direction written with their defaults",
        ),
        "singular_repeated": (
            _replace(m, 2, _field(2, LEN, b"other") + _field(2, LEN, _get(m, 2))),
            "session_id written twice: the last one is the value",
        ),
        "unknown_field_first": (
            _field(99, VARINT, b"\x07") + body,
            "an unknown field 99 before every known field: written back after them",
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
        "canonicalize": [],
        "trainset": [],
    }
    for name, (cp, description) in valid_vectors().items():
        raw = encoded(cp)
        if reference.verdict(raw).output != raw:
            raise AssertionError(f"valid vector {name} is not accepted as it is")
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
        if reference.verdict(newer).output != newer:
            raise AssertionError(f"unknown-field vector {name} is not accepted as it is")
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
        got = reference.verdict(raw)
        if (got.rule, got.path) != (rule, field):
            raise AssertionError(f"invalid vector {name}: declared {rule} at {field}, got {got}")
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
    for name, (given, description) in canonicalize_vectors().items():
        canonical = reference.canonicalize(given)
        if reference.library_seals() and ck.canonicalize(given) != canonical:
            raise AssertionError(f"canonicalize vector {name}: the library gives other bytes")
        files[f"canonicalize/{name}.binpb"] = given
        files[f"canonicalize/{name}.canonical.binpb"] = canonical
        manifest["canonicalize"].append(
            {
                "name": name,
                "input": f"canonicalize/{name}.binpb",
                "canonical": f"canonicalize/{name}.canonical.binpb",
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
        and p.parent.name not in ("trainset-json", "hostile", "delta")
    }
    status = sync(files, on_disk, HERE, check=args.check, shown="vector: tests/vectors/")
    if args.check:
        return status
    digest = hashlib.sha256(files["manifest.json"]).hexdigest()[:16]
    print(f"wrote {len(files)} files; manifest sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
