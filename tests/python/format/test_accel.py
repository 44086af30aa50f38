"""The compiled accelerator dsxir._accel gives what the pure-Python code gives.

Importing dsxir._accel below fails this module when the build silently fell
back to pure Python. The rest compares the two on the vectors, on generated
valid checkpoints, on checkpoints broken one rule at a time, on thousands of
corrupted ones, on Term values and on arbitrary bytes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import math
import os
import random
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from dsxir.errors import InvalidCheckpoint, ResumeMismatch
from dsxir.optimizer_session import accel, credentials, delta, grammar, terms, validate
from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session.atom import Atom
from dsxir.optimizer_session.term_rules import MAX_TERM_DEPTH
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint, Progress
from dsxir.optimizer_session.v1.term_pb2 import Term
from dsxir.optimizer_session.wire import varint
from strategies import checkpoints
from strategies import terms as term_values
from vectors.changes import clear_field, set_field

ACCEL = importlib.import_module("dsxir._accel")
grammar.give_table(ACCEL.set_grammar_table)  # once, also under DSXIR_PURE_PYTHON=1

VECTORS = Path(__file__).resolve().parents[2] / "vectors"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text())
ALL_VECTORS = [
    (group, v["name"], (VECTORS / v["binpb"]).read_bytes())
    for group in ("valid", "unknown", "invalid")
    for v in MANIFEST[group]
]
VALID_BYTES = [raw for group, _, raw in ALL_VECTORS if group != "invalid"]


def body_of(data: bytes) -> bytes:
    """``data`` without its trailer when it has one (check_canonical reads bodies)."""
    if len(data) >= 9 and data[-9:-4] == grammar.TRAILER_TAG:
        return data[:-9]
    return data


def slow(max_examples: int = 100) -> settings:
    return settings(
        max_examples=max_examples, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )


@contextlib.contextmanager
def pure_python() -> Iterator[None]:
    """Run the library without the accelerator (as DSXIR_PURE_PYTHON=1 does)."""
    names = (
        "term_bytes",
        "map_body",
        "frame_terms",
        "check_canonical",
        "check_trials",
        "grammar_check",
        "grammar_scan",
        "read_checkpoint",
        "crc32c",
        "seal",
    )
    saved = {name: getattr(accel, name) for name in names}
    saved_seal = credentials.seal_screened
    for name in names:
        setattr(accel, name, None)
    credentials.seal_screened = None
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(accel, name, value)
        credentials.seal_screened = saved_seal


@contextlib.contextmanager
def accelerated() -> Iterator[None]:
    """Run the library with the accelerator, even under DSXIR_PURE_PYTHON=1."""
    names = {
        "term_bytes": ACCEL.term_bytes,
        "map_body": ACCEL.map_body,
        "frame_terms": ACCEL.frame_terms,
        "check_canonical": ACCEL.check_canonical,
        "check_trials": ACCEL.check_trials,
        "grammar_check": ACCEL.grammar_check,
        "grammar_scan": ACCEL.grammar_scan,
        "read_checkpoint": ACCEL.read_checkpoint,
        "crc32c": ACCEL.crc32c,
        "seal": ACCEL.seal,
    }
    saved = {name: getattr(accel, name) for name in names}
    saved_seal = credentials.seal_screened
    ACCEL.set_atom_type(Atom)
    ACCEL.set_text_screen(credentials.has_secret)
    for name, value in names.items():
        setattr(accel, name, value)
    credentials.seal_screened = ACCEL.seal_screened
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(accel, name, value)
        credentials.seal_screened = saved_seal


@st.composite
def valid_checkpoints(draw: st.DrawFn, max_trials: int = 6) -> Checkpoint:
    """strategies.checkpoints(), without the draws whose option values hold a
    credential-looking key (which ck.new refuses while generating), in
    either direction (the rules do not tie the best to it)."""
    try:
        cp: Checkpoint = draw(checkpoints(max_trials=max_trials))
    except InvalidCheckpoint:
        reject()
    cp.direction = draw(st.sampled_from([0, 1]))  # type: ignore[assignment]
    return cp


def python_verdict(cp: Checkpoint) -> str | None:
    """None when validate.check (pure Python) accepts ``cp``, else the refused field's path."""
    try:
        with pure_python():
            validate.check(cp)
    except InvalidCheckpoint as exc:
        return exc.path
    return None


def compare(cp: Checkpoint) -> str | None:
    """The compiled and the Python verdicts on ``cp``'s canonical bytes agree."""
    data = cp.SerializeToString(deterministic=True)
    fast = ACCEL.check_canonical(data)
    slow = python_verdict(cp)
    assert fast == (slow is None), f"compiled {fast}, Python {slow!r}: {data.hex()}"
    compare_trials(cp.progress)
    return slow


def compare_trials(progress: Progress, start: int = 0) -> tuple[int, int] | None:
    """check_trials of ``progress``'s bytes and the Python walk of its entries agree.

    Returns the ok and error counts, or None when both refuse an entry.
    """
    data = progress.SerializeToString(deterministic=True)
    fast = ACCEL.check_trials(data, start)
    try:
        with pure_python():
            slow: tuple[int, int] | None = validate._check_trials(progress, start)
    except InvalidCheckpoint:
        slow = None
    assert (fast is None) == (slow is None), f"compiled {fast}, Python {slow}: {data.hex()}"
    if fast is not None:
        assert slow is not None
        assert fast == (len(progress.trial_log), *slow), data.hex()
    with accelerated():  # the accelerated walk answers as the reference does
        try:
            assert validate._check_trials(progress, start) == slow
        except InvalidCheckpoint:
            assert slow is None
    return slow


def parsed(data: bytes) -> Checkpoint | None:
    cp = Checkpoint()
    try:
        cp.ParseFromString(data)
    except Exception:
        return None
    return cp


def decode_outcome(data: bytes) -> tuple[str, Any, Any]:
    try:
        cp = ck.decode(data)
    except ResumeMismatch as exc:
        return ("refused", exc.field, str(exc))
    return ("ok", ck.encode(cp), None)


def canonicalize_outcome(data: bytes) -> str | None:
    """None when canonicalize accepts ``data`` (alike with and without C), else the path."""
    outcomes = []
    for mode in (accelerated, pure_python):
        with mode():
            try:
                ck.canonicalize(data)
                outcomes.append(None)
            except ResumeMismatch as exc:
                outcomes.append(exc.field)
    assert outcomes[0] == outcomes[1], data.hex()
    return outcomes[0]


def compare_raw(data: bytes) -> str:
    """Any bytes: the accelerated and pure decode agree, and a True of the
    compiled check on the bytes themselves (decode's fast path) is right."""
    with accelerated():
        fast = decode_outcome(data)
    with pure_python():
        slow = decode_outcome(data)
    assert fast == slow, data.hex()
    data = body_of(data)
    if ACCEL.check_canonical(data):
        cp = parsed(data)
        if cp is not None:  # not parseable: decode refuses before asking
            assert python_verdict(cp) is None, data.hex()
    cp = parsed(data)
    if cp is not None:
        compare(cp)
    return fast[0]


# --- the module is there and switchable ----------------------------------------------


def test_accelerator_is_built_and_used_unless_disabled() -> None:
    assert Path(ACCEL.__file__).name.startswith("_accel")
    disabled = os.environ.get("DSXIR_PURE_PYTHON", "") not in ("", "0")
    assert accel.ACCELERATED is not disabled
    assert (accel.check_canonical is None) is disabled


@pytest.mark.parametrize(("value", "expected"), [(None, "True"), ("1", "False"), ("0", "True")])
def test_environment_switch(value: str | None, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DSXIR_PURE_PYTHON"}
    if value is not None:
        env["DSXIR_PURE_PYTHON"] = value
    code = "from dsxir.optimizer_session import accel; print(accel.ACCELERATED)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == expected


def test_the_python_check_has_the_last_word(monkeypatch: pytest.MonkeyPatch) -> None:
    cp = ck.decode(VALID_BYTES[0])
    monkeypatch.setattr(accel, "check_canonical", lambda data: False)
    assert validate.checked_bytes(cp) == VALID_BYTES[0][:-9]
    assert validate.sealed_bytes(cp) == VALID_BYTES[0]
    assert ck.encode(ck.decode(VALID_BYTES[0])) == VALID_BYTES[0]


# --- check_canonical ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("group", "name", "raw"), [pytest.param(*v, id=f"{v[0]}-{v[1]}") for v in ALL_VECTORS]
)
def test_vectors(group: str, name: str, raw: bytes) -> None:
    outcome = compare_raw(raw)
    assert outcome == ("refused" if group == "invalid" else "ok")
    cp = parsed(raw)
    if group != "invalid":
        assert cp is not None
        # Canonical input: no re-serialization.
        assert ACCEL.check_canonical(body_of(raw)) is True
        assert compare(cp) is None


@slow()
@given(valid_checkpoints())
def test_generated_checkpoints_are_accepted_by_both(cp: Checkpoint) -> None:
    assert compare(cp) is None
    with accelerated():
        fast = ck.encode(cp)
    with pure_python():
        assert ck.encode(cp) == fast


def _nan(bits: int) -> float:
    value: float = struct.unpack("<d", struct.pack("<Q", bits))[0]
    return value


def _term(raw: bytes) -> Term:
    return Term.FromString(raw)


def _nest(depth: int) -> bytes:
    """A Term of ``depth``: a null in depth - 1 lists."""
    term = b"\x0a\x00"
    for _ in range(depth - 1):
        items = b"\x0a" + varint(len(term)) + term
        term = b"\x4a" + varint(len(items)) + items
    return term


def _framed(body: bytes) -> bytes:
    """Field 1, length-delimited."""
    return b"\x0a" + varint(len(body)) + body


def _entry(key: bytes | None, value: bytes | None) -> bytes:
    body = b""
    if key is not None:
        body += b"\x0a" + varint(len(key)) + key
    if value is not None:
        body += b"\x12" + varint(len(value)) + value
    return b"\x0a" + varint(len(body)) + body


def _set_stats(entries: bytes) -> Callable[[Checkpoint], None]:
    def mutate(cp: Checkpoint) -> None:
        if not cp.progress.trial_log:
            cp.progress.trial_log.add(trial_idx=0, status=2)
            cp.progress.errors += 1
            cp.progress.attempts += 1
        cp.progress.trial_log[0].stats.Clear()
        cp.progress.trial_log[0].stats.MergeFromString(entries)

    return mutate


def _set_reason(raw: bytes) -> Callable[[Checkpoint], None]:
    def mutate(cp: Checkpoint) -> None:
        cp.terminal_reason.Clear()
        cp.terminal_reason.MergeFromString(raw)

    return mutate


def _on_trial(change: Callable[[Any], None]) -> Callable[[Checkpoint], None]:
    def mutate(cp: Checkpoint) -> None:
        if not cp.progress.trial_log:
            entry = cp.progress.trial_log.add(trial_idx=0, status=2)
            cp.progress.errors += 1
            cp.progress.attempts += 1
        else:
            entry = cp.progress.trial_log[len(cp.progress.trial_log) // 2]
        change(entry)

    return mutate


def _with_best(change: Callable[[Checkpoint], None]) -> Callable[[Checkpoint], None]:
    def mutate(cp: Checkpoint) -> None:
        p = cp.progress
        p.trial_log.add(trial_idx=len(p.trial_log), status=1, score=0.0)
        p.attempts += 1
        p.completed += 1
        p.best_score = 0.0
        p.best_trial_idx = len(p.trial_log) - 1
        change(cp)

    return mutate


def _then(*changes: Callable[[Checkpoint], None]) -> Callable[[Checkpoint], None]:
    def mutate(cp: Checkpoint) -> None:
        for change in changes:
            change(cp)

    return mutate


def _merge(raw: bytes) -> Callable[[Checkpoint], None]:
    def mutate(cp: Checkpoint) -> None:
        cp.MergeFromString(raw)

    return mutate


_PREFIX = "dsxir.optimizer_session.checkpoint/v"
_GO_NAN = _nan(0x7FF8000000000001)
_KEY_A, _KEY_B = b"\x32\x01a", b"\x32\x01b"
_NULL = b"\x0a\x00"
MUTATIONS: dict[str, Callable[[Checkpoint], None]] = {
    "format_empty": set_field("format", ""),
    "format_minor_10": set_field("format", _PREFIX + "1.10"),
    "format_minor_leading_zero": set_field("format", _PREFIX + "1.01"),
    "format_major_2": set_field("format", _PREFIX + "2.0"),
    "format_major_01": set_field("format", _PREFIX + "01.0"),
    "format_major_10": set_field("format", _PREFIX + "10.0"),
    "format_no_minor": set_field("format", _PREFIX + "1."),
    "format_no_dot": set_field("format", _PREFIX + "1"),
    "format_trailing": set_field("format", _PREFIX + "1.0\n"),
    "format_unicode_digit": set_field("format", _PREFIX + "1.\u0661"),
    "format_prefix": set_field("format", "x" + _PREFIX + "1.0"),
    "session_id_empty": set_field("session_id", ""),
    "optimizer_empty": set_field("optimizer", ""),
    "option_key_empty": lambda cp: cp.optimizer_opts.add(key="", value=_term(_NULL)),
    "option_no_value": lambda cp: cp.optimizer_opts.add(key="k"),
    "option_value_no_kind": lambda cp: cp.optimizer_opts.add(key="k", value=Term()),
    "option_value_nan": lambda cp: cp.optimizer_opts.add(
        key="k", value=Term(float_value=_nan(0x7FF8000000000001))
    ),
    "program_module_empty": set_field("program_module", ""),
    "program_module_set": set_field("program_module", "m"),
    "hash_short": set_field("trainset_hash", b"\x00" * 31),
    "hash_long": set_field("trainset_hash", b"\x00" * 33),
    "hash_empty": set_field("trainset_hash", b""),
    "created_missing": clear_field("created_at"),
    "updated_missing": clear_field("updated_at"),
    "created_nanos_negative": set_field("created_at.nanos", -1),
    "created_nanos_big": set_field("created_at.nanos", 1_000_000_000),
    "created_nanos_max": set_field("created_at.nanos", 999_999_999),
    "updated_seconds_low": set_field("updated_at.seconds", -62_135_596_801),
    "updated_seconds_high": set_field("updated_at.seconds", 253_402_300_800),
    "updated_seconds_min": set_field("updated_at.seconds", -62_135_596_800),
    "updated_seconds_int64_min": set_field("updated_at.seconds", -(2**63)),
    "progress_missing": clear_field("progress"),
    "started_missing": clear_field("progress.started_at"),
    "started_nanos_bad": set_field("progress.started_at.nanos", -(2**31)),
    "trial_idx_wrong": _on_trial(lambda e: setattr(e, "trial_idx", e.trial_idx + 1)),
    "trial_idx_huge": _on_trial(lambda e: setattr(e, "trial_idx", 2**64 - 1)),
    "trial_score_nan": _on_trial(lambda e: setattr(e, "score", math.nan)),
    "trial_score_go_nan": _on_trial(lambda e: setattr(e, "score", _nan(0x7FF8000000000001))),
    "trial_score_negative_nan": _on_trial(lambda e: setattr(e, "score", _nan(0xFFF0000000000001))),
    "trial_score_inf": _on_trial(lambda e: setattr(e, "score", math.inf)),
    "trial_status_0": _on_trial(lambda e: setattr(e, "status", 0)),
    "trial_status_3": _on_trial(lambda e: setattr(e, "status", 3)),
    "trial_status_negative": _on_trial(lambda e: setattr(e, "status", -1)),
    "trial_error_no_kind": _on_trial(lambda e: e.error.MergeFromString(_entry(_KEY_A, b""))),
    "trial_unknown_field": _on_trial(lambda e: e.MergeFromString(b"\xc8\x01\x07")),
    "stats_unsorted": _set_stats(_entry(_KEY_B, _NULL) + _entry(_KEY_A, _NULL)),
    "stats_sorted": _set_stats(_entry(_KEY_A, _NULL) + _entry(_KEY_B, _NULL)),
    "stats_duplicate": _set_stats(_entry(_KEY_A, _NULL) + _entry(_KEY_A, b"\x10\x01")),
    "stats_empty_key_first": _set_stats(_entry(b"\x32\x00", _NULL) + _entry(_KEY_A, _NULL)),
    "stats_empty_key_last": _set_stats(_entry(_KEY_A, _NULL) + _entry(b"\x32\x00", _NULL)),
    # "a" and "a" followed by an unknown field: the first key is a proper prefix.
    "stats_prefix_first": _set_stats(_entry(_KEY_A, _NULL) + _entry(_KEY_A + b"\x78\x01", _NULL)),
    "stats_prefix_last": _set_stats(_entry(_KEY_A + b"\x78\x01", _NULL) + _entry(_KEY_A, _NULL)),
    "stats_no_key": _set_stats(_entry(None, _NULL)),
    "stats_no_value": _set_stats(_entry(_KEY_A, None)),
    "stats_key_no_kind": _set_stats(_entry(b"", _NULL)),
    "stats_key_unknown_only": _set_stats(_entry(b"\x78\x01", _NULL)),
    "stats_key_with_unknown": _set_stats(_entry(b"\x32\x01a\x78\x01", _NULL)),
    "stats_entry_unknown": _set_stats(_framed(b"\x0a\x03\x32\x01a\x12\x02\x0a\x00\x18\x01")),
    "stats_depth_24": _set_stats(_entry(_KEY_A, _nest(MAX_TERM_DEPTH - 1))),
    "stats_depth_25": _set_stats(_entry(_KEY_A, _nest(MAX_TERM_DEPTH))),
    "stats_key_depth_25": _set_stats(_entry(_nest(MAX_TERM_DEPTH), _NULL)),
    "best_score_nan": _with_best(set_field("progress.best_score", math.nan)),
    "best_score_only": _with_best(clear_field("progress.best_trial_idx")),
    "best_idx_only": _with_best(clear_field("progress.best_score")),
    "best_idx_past": _with_best(lambda cp: setattr(cp.progress, "best_trial_idx", 10**6)),
    "best_idx_error": _with_best(lambda cp: setattr(cp.progress.trial_log[-1], "status", 2)),
    "best_no_score": _with_best(lambda cp: cp.progress.trial_log[-1].ClearField("score")),
    "best_negative_zero": _with_best(set_field("progress.best_score", -0.0)),
    "best_other_value": _with_best(set_field("progress.best_score", 1.0)),
    "best_ok": _with_best(lambda cp: None),
    "completed_more": lambda cp: setattr(cp.progress, "completed", cp.progress.completed + 1),
    "errors_more": lambda cp: setattr(cp.progress, "errors", cp.progress.errors + 1),
    "attempts_less": lambda cp: setattr(cp.progress, "attempts", max(cp.progress.attempts - 1, 0)),
    "attempts_more": lambda cp: setattr(cp.progress, "attempts", cp.progress.attempts + 5),
    "sampler_missing": clear_field("sampler_format"),
    "sampler_module_empty": set_field("sampler_format.module", ""),
    "sampler_version_0": set_field("sampler_format.version", 0),
    "sampler_version_max": set_field("sampler_format.version", 2**32 - 1),
    "status_0": set_field("status", 0),
    "status_6": set_field("status", 6),
    "status_negative": set_field("status", -3),
    "reason_no_kind": _set_reason(b""),
    "reason_unknown_only": _set_reason(b"\x78\x01"),
    "reason_null_with_unknown": _set_reason(b"\x0a\x02\x08\x01\x78\x01"),
    "reason_depth_24": _set_reason(_nest(MAX_TERM_DEPTH)),
    "reason_depth_25": _set_reason(_nest(MAX_TERM_DEPTH + 1)),
    "reason_bigint_ok": _set_reason(b"\x22\x09\x00\x80" + b"\x00" * 7),
    "reason_bigint_negative_ok": _set_reason(b"\x22\x09\xff\x7f" + b"\xff" * 7),
    "reason_bigint_empty": _set_reason(b"\x22\x00"),
    "reason_bigint_short": _set_reason(b"\x22\x08\x7f" + b"\xff" * 7),
    "reason_bigint_not_minimal": _set_reason(b"\x22\x0a\x00\x00\x80" + b"\x00" * 7),
    "reason_bigint_ff_not_minimal": _set_reason(b"\x22\x0a\xff\xff\x7f" + b"\xff" * 7),
    "reason_float_nan": _set_reason(b"\x29" + struct.pack("<Q", 0x7FF0000000000001)),
    "reason_float_inf": _set_reason(b"\x29" + struct.pack("<d", -math.inf)),
    "reason_wrong_wire_type": _set_reason(b"\x0d\x00\x00\x00\x00"),
    "reason_list_item_no_kind": _set_reason(b"\x4a\x02\x0a\x00"),
    "reason_tuple_nan": _set_reason(b"\x52\x0b\x0a\x09\x29" + struct.pack("<d", math.nan)),
    "reason_map_unsorted": _set_reason(
        b"\x5a"
        + varint(2 * len(_entry(_KEY_A, _NULL)))
        + _entry(_KEY_B, _NULL)
        + _entry(_KEY_A, _NULL)
    ),
    "direction_lower": set_field("direction", 1),
    "direction_2": set_field("direction", 2),
    "direction_negative": set_field("direction", -1),
    "direction_int32_max": set_field("direction", 2**31 - 1),
    "direction_wrong_wire_type": _merge(b"\x7a\x01\x02"),
    "direction_2_reason_no_kind": _then(_set_reason(b""), set_field("direction", 2)),
    "unknown_top_level": _merge(b"\xf8\x07\x01"),
    "unknown_group": _merge(b"\xfb\x07\x08\x01\xfc\x07"),
    "unknown_known_number_wrong_type": _merge(b"\x6d\x01\x00\x00\x00"),
}


_GRAMMAR_ONLY = frozenset(
    {
        "direction_wrong_wire_type",
        "reason_wrong_wire_type",
        "unknown_group",
        "unknown_known_number_wrong_type",
    }
)


@pytest.mark.parametrize("name", sorted(MUTATIONS))
@slow(12)
@given(base=valid_checkpoints(max_trials=3))
def test_one_rule_broken_at_a_time(name: str, base: Checkpoint) -> None:
    cp = Checkpoint()
    cp.CopyFrom(base)
    MUTATIONS[name](cp)
    path = compare(cp)
    sealed = grammar.seal(cp.SerializeToString(deterministic=True))
    with accelerated():
        fast = decode_outcome(sealed)
    try:
        grammar.check(sealed)
    except grammar.GrammarError as exc:
        # Unknown fields the runtime keeps but the grammar refuses (a known
        # number with another wire type, a group): refused on both sides.
        assert name in _GRAMMAR_ONLY if path is None else exc.path == path, name
        assert fast[:2] == ("refused", exc.path)
        with pytest.raises(InvalidCheckpoint) as refused, accelerated():
            ck.encode(cp)
        assert (refused.value.path, refused.value.rule) == (exc.path, exc.rule)
        return
    assert fast[0] == ("ok" if path is None else "refused")
    if path is not None:
        assert fast[1] == path
        with pytest.raises(InvalidCheckpoint) as info, accelerated():
            ck.encode(cp)
        assert info.value.path == path
        assert info.value.rule is not None
        assert fast[2].endswith(f" (rule {info.value.rule})")


def test_mutations_reach_both_verdicts() -> None:
    base = ck.decode(VALID_BYTES[0])
    verdicts = {}
    for name, mutate in MUTATIONS.items():
        cp = Checkpoint()
        cp.CopyFrom(base)
        mutate(cp)
        verdicts[name] = compare(cp)
    accepted = {n for n, v in verdicts.items() if v is None}
    assert {"format_minor_10", "stats_sorted", "stats_prefix_first", "best_ok"} <= accepted
    assert {"direction_lower", "direction_wrong_wire_type"} <= accepted
    assert verdicts["direction_2"] == verdicts["direction_negative"] == "direction"
    assert verdicts["direction_2_reason_no_kind"] == "terminal_reason"
    assert {"stats_prefix_last", "stats_unsorted", "stats_duplicate"}.isdisjoint(accepted)
    assert len(accepted) >= 15
    assert len(verdicts) - len(accepted) >= 60


# Map keys written non-canonically (upb re-serializes them otherwise), in an
# order that is right on the raw bytes or on the canonical ones.
_ONE_PADDED, _TWO = b"\x18\x82\x00", b"\x18\x04"  # 1 is canonically 18 02
_TRUE_AS_2, _TRUE = b"\x10\x02", b"\x10\x01"
# A tenth varint byte over 1 is cut to 64 bits: canonically 18 81 80..80 01,
# a proper prefix of the second key (the same int, then an unknown field).
_INT_LONG = b"\x18\x81" + b"\x80" * 8 + b"\x7f"
_INT_CANONICAL_AND_MORE = b"\x18\x81" + b"\x80" * 8 + b"\x01\x78\x01"
_UNKNOWN_FIRST = b"\x78\x01\x32\x01a"  # upb writes the kind first
_NONE_LIST_PADDED = b"\x4a\x05\x0a\x82\x00\x0a\x00"  # [None] is 4a 04 0a 02 0a 00
_TRUE_LIST = b"\x4a\x04\x0a\x02\x10\x01"
_LIST_UNKNOWN_FIRST = b"\x4a\x06\x78\x01\x0a\x02\x0a\x00"  # 4a 06 0a 02 0a 00 78 01
_TRUE_LIST_AND_MORE = b"\x4a\x06\x0a\x02\x10\x01\x78\x01"
_NON_CANONICAL_KEYS = [
    ((_ONE_PADDED, _TWO), None),
    ((_TWO, _ONE_PADDED), "terminal_reason.map_value.entries[1].key"),
    ((_TRUE, _TRUE_AS_2), "terminal_reason.map_value.entries[1].key"),
    ((_TRUE_AS_2, b"\x18\x00"), None),
    ((_INT_LONG, _INT_CANONICAL_AND_MORE), None),
    ((_INT_CANONICAL_AND_MORE, _INT_LONG), "terminal_reason.map_value.entries[1].key"),
    ((_UNKNOWN_FIRST, b"\x32\x01b"), None),
    ((b"\x32\x01b", _UNKNOWN_FIRST), "terminal_reason.map_value.entries[1].key"),
    ((_LIST_UNKNOWN_FIRST, _TRUE_LIST_AND_MORE), None),
    ((_TRUE_LIST_AND_MORE, _LIST_UNKNOWN_FIRST), "terminal_reason.map_value.entries[1].key"),
    ((_NONE_LIST_PADDED, _TRUE_LIST), None),
    ((_TRUE_LIST, _NONE_LIST_PADDED), "terminal_reason.map_value.entries[1].key"),
]


@pytest.mark.parametrize(("keys", "refused_at"), _NON_CANONICAL_KEYS)
def test_key_order_is_defined_on_canonical_bytes(
    keys: tuple[bytes, bytes], refused_at: str | None
) -> None:
    """The compiled check must not order keys by bytes upb would write
    differently; decode refuses such bytes by the grammar, and canonicalize
    orders the keys by their canonical bytes."""
    body = b"".join(_entry(k, _NULL) for k in keys)
    reason = b"\x5a" + varint(len(body)) + body
    data = body_of(VALID_BYTES[0]) + b"\x72" + varint(len(reason)) + reason
    assert ACCEL.check_canonical(data) is False  # not canonical: re-serialized
    assert compare_raw(grammar.seal(data)) == "refused"
    assert canonicalize_outcome(data) == refused_at


_U32 = 2**32


@pytest.mark.parametrize(
    ("field", "value", "refused_at"),
    [
        ("sampler_format.version", _U32, "sampler_format.version"),
        ("sampler_format.version", _U32 + 7, None),
        ("status", _U32, "status"),
        ("status", _U32 + 2, None),
        ("status", 2**64 - 1, "status"),
        ("direction", 0, None),
        ("direction", _U32, None),
        ("direction", _U32 + 1, None),
        ("direction", _U32 + 2, "direction"),
        ("direction", 2**64 - 1, "direction"),
        ("created_at.nanos", _U32 + 5, None),
        ("created_at.nanos", 2**31, "created_at.nanos"),
        ("created_at.seconds", 2**64 - 1, None),
    ],
)
def test_varints_are_cut_as_upb_cuts_them(field: str, value: int, refused_at: str | None) -> None:
    """Values wider than their field, as only non-canonical input has them."""
    cp = ck.decode(VALID_BYTES[0])
    clear_field(field)(cp)
    message, _, name = field.rpartition(".")
    number = {"version": 2, "status": 13, "direction": 15, "nanos": 2, "seconds": 1}[name]
    raw = bytes(((number << 3),)) + varint(value)
    if message:
        outer = {"sampler_format": 12, "created_at": 7}[message]
        sub = getattr(cp, message).SerializeToString(deterministic=True) + raw
        cp.ClearField(message)
        raw = bytes(((outer << 3) | 2,)) + varint(len(sub)) + sub
    data = cp.SerializeToString(deterministic=True) + raw
    assert compare_raw(grammar.seal(data)) == "refused"  # not canonical: the grammar
    assert canonicalize_outcome(data) == refused_at


@pytest.mark.parametrize("seed", range(4))
def test_corrupted_checkpoints(seed: int) -> None:
    """Bit flips, byte changes, truncations and splices of valid checkpoints:
    decided alike on the bytes themselves and re-serialized by upb."""
    rng = random.Random(seed)
    parsed_outcomes = {"ok": 0, "refused": 0}
    for _ in range(4000):
        data = bytearray(body_of(rng.choice(VALID_BYTES)))
        how = rng.randrange(4)
        if how == 0:
            for _ in range(rng.randint(1, 3)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif how == 1:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif how == 2:
            data = data[: rng.randrange(len(data))]
        else:
            donor = rng.choice(VALID_BYTES)
            start = rng.randrange(len(donor))
            piece = donor[start : start + rng.randint(1, 60)]
            at = rng.randrange(len(data) + 1)
            data[at:at] = piece
        raw = grammar.seal(bytes(data))
        outcome = compare_raw(raw)
        if parsed(raw) is not None:
            parsed_outcomes[outcome] += 1
    # Enough of them still parse, and they reach both verdicts.
    assert parsed_outcomes["ok"] >= 500, parsed_outcomes
    assert parsed_outcomes["refused"] >= 250, parsed_outcomes


# Term messages built field by field, valid or not, for the Term rules.
def _term_messages(depth: int = 0) -> st.SearchStrategy[bytes]:
    scalars = st.one_of(
        st.just(b""),  # no kind
        st.just(b"\x0a\x00"),
        st.sampled_from([b"\x10\x00", b"\x10\x01"]),
        st.integers(-(2**63), 2**63 - 1).map(lambda n: b"\x18" + varint((n << 1) ^ (n >> 63))),
        st.binary(max_size=11).map(lambda b: b"\x22" + varint(len(b)) + b),
        st.binary(min_size=8, max_size=8).map(lambda b: b"\x29" + b),
        st.sampled_from([b"\x29" + struct.pack("<d", math.nan), b"\x29" + struct.pack("<d", -0.0)]),
        st.text(max_size=3).map(lambda s: b"\x32" + varint(len(s.encode())) + s.encode()),
        st.binary(max_size=3).map(lambda b: b"\x3a" + varint(len(b)) + b),
        st.just(b"\x78\x01"),  # unknown only
    )
    if depth >= 3:
        return scalars
    inner = _term_messages(depth + 1)

    def as_list(tag: int) -> Callable[[list[bytes]], bytes]:
        def build(items: list[bytes]) -> bytes:
            body = b"".join(b"\x0a" + varint(len(i)) + i for i in items)
            return bytes((tag,)) + varint(len(body)) + body

        return build

    def as_map(arg: tuple[list[tuple[bytes | None, bytes | None]], bool]) -> bytes:
        pairs, ordered = arg
        if ordered:
            pairs = sorted(pairs, key=lambda kv: kv[0] or b"")
        body = b"".join(_entry(k, v) for k, v in pairs)
        return b"\x5a" + varint(len(body)) + body

    maybe = st.one_of(st.none(), inner, inner, inner)
    return st.one_of(
        scalars,
        st.lists(inner, max_size=3).map(as_list(0x4A)),
        st.lists(inner, max_size=3).map(as_list(0x52)),
        st.tuples(st.lists(st.tuples(maybe, maybe), max_size=3), st.booleans()).map(as_map),
    )


@slow(300)
@given(
    st.sampled_from(VALID_BYTES), _term_messages(), st.sampled_from(["reason", "stats", "option"])
)
def test_term_messages_in_every_place(base: bytes, term: bytes, where: str) -> None:
    cp = ck.decode(base)
    parsed_term = Term.FromString(term)
    if where == "reason":
        cp.terminal_reason.CopyFrom(parsed_term)
    elif where == "opt":
        cp.optimizer_opts.add(key="k", value=parsed_term)
    else:
        body = _entry(b"\x32\x01k", term)
        _set_stats(body)(cp)
    compare(cp)


@slow(600)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    verdict = ACCEL.check_canonical(data)
    assert verdict in (True, False)
    assert ACCEL.check_canonical(memoryview(data)) is verdict
    assert ACCEL.check_canonical(bytearray(data)) is verdict
    if verdict:
        cp = parsed(data)
        assert cp is None or python_verdict(cp) is None
    counted = ACCEL.check_trials(data, 0)
    assert counted is None or (isinstance(counted, tuple) and len(counted) == 3)
    progress = Progress()
    try:
        progress.ParseFromString(data)
    except Exception:
        return
    if counted is not None:  # what C accepts, Python accepts, with the same counts
        with pure_python():
            assert validate._check_trials(progress, 0) == counted[1:]


@pytest.mark.parametrize("seed", range(3))
def test_protobuf_shaped_noise_never_crashes(seed: int) -> None:
    """Deep and odd wire structures: groups, overlong varints, huge lengths."""
    rng = random.Random(seed)
    pieces = [
        b"\x0b",
        b"\x0c",
        b"\x08" + b"\xff" * 10,
        b"\x0a\xff\xff\xff\xff\x0f",
        b"\x4a",
        b"\x5a",
        b"\x0a",
        b"\x00",
        b"\x07",
        b"\x6d",
        b"\x09",
    ]
    for _ in range(3000):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 80)))
        ACCEL.check_canonical(data)
        ACCEL.check_canonical(rng.choice(VALID_BYTES)[:20] + data)
    deep = b"\xa3\x01" * 5000 + b"\xa4\x01" * 5000
    assert ACCEL.check_canonical(deep) is False
    assert ACCEL.check_canonical(VALID_BYTES[0] + _nest(5000)[:1000]) is False


def test_check_canonical_argument_types() -> None:
    with pytest.raises(TypeError):
        ACCEL.check_canonical("text")
    assert ACCEL.check_canonical(b"") is False


# --- check_trials -----------------------------------------------------------------------


def _most_trials() -> Checkpoint:
    """The valid vector with the most trial entries."""
    return max((ck.decode(raw) for raw in VALID_BYTES), key=lambda cp: len(cp.progress.trial_log))


def _numbered(first: int, count: int) -> Progress:
    """The progress of a valid checkpoint with its entries renumbered from ``first``."""
    cp = _most_trials()
    progress = Progress()
    for i in range(count):
        entry = progress.trial_log.add()
        entry.CopyFrom(cp.progress.trial_log[i % len(cp.progress.trial_log)])
        entry.trial_idx = first + i
    progress.completed, progress.attempts = 99, 1  # not the entries': skipped by check_trials
    return progress


def test_check_trials_numbers_the_entries_from_start() -> None:
    progress = _numbered(7, 5)
    counted = compare_trials(progress, 7)
    assert counted is not None and sum(counted) == 5
    assert compare_trials(progress, 0) is None
    assert compare_trials(progress, 8) is None
    assert ACCEL.check_trials(Progress().SerializeToString(), 3) == (0, 0, 0)
    last = _numbered((1 << 64) - 1, 1)
    assert compare_trials(last, (1 << 64) - 1) is not None
    wrapped = _numbered((1 << 64) - 1, 1)
    wrapped.trial_log.add().CopyFrom(_numbered(0, 1).trial_log[0])  # the index past 2^64 - 1
    assert compare_trials(wrapped, (1 << 64) - 1) is None


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_check_trials_after_each_mutation(name: str) -> None:
    """The mutations of the trial log (and the others, which it skips) on numbered entries."""
    cp = _most_trials()
    assert len(cp.progress.trial_log) >= 2
    MUTATIONS[name](cp)
    compare_trials(cp.progress)
    shifted = Progress()
    shifted.CopyFrom(cp.progress)
    if all(entry.trial_idx < 1 << 32 for entry in shifted.trial_log):
        for entry in shifted.trial_log:
            entry.trial_idx += 1000
        compare_trials(shifted, 1000)


def test_check_trials_argument_types() -> None:
    with pytest.raises(TypeError):
        ACCEL.check_trials("text", 0)
    with pytest.raises(OverflowError):
        ACCEL.check_trials(b"", -1)


# --- term_bytes -------------------------------------------------------------------------


def python_term_bytes(value: Any) -> bytes:
    with pure_python():
        return terms.term_bytes(value)


def python_error(call: Callable[[], Any]) -> tuple[type, str]:
    with pure_python():
        try:
            call()
        except (TypeError, InvalidCheckpoint) as exc:
            return type(exc), str(exc)
    raise AssertionError("no error")


@given(term_values)
def test_term_bytes_equal_the_python_encoder(value: Any) -> None:
    fast = ACCEL.term_bytes(value)
    assert fast is not None
    assert fast == python_term_bytes(value)
    with pure_python():
        slow_body = terms.map_body({"v": value, 1: [value]})
    assert ACCEL.map_body({"v": value, 1: [value]}) == slow_body


def _deep(depth: int) -> Any:
    value: Any = None
    for _ in range(depth - 1):
        value = [value]
    return value


class _Int(int):
    pass


class _Str(str):
    pass


class _Dict(dict):  # type: ignore[type-arg]
    pass


@dataclasses.dataclass
class _Point:
    x: int


EDGE_VALUES = [
    None,
    True,
    False,
    0,
    1,
    -1,
    63,
    64,
    -64,
    -65,
    2**63 - 1,
    -(2**63),
    2**63,
    -(2**63) - 1,
    2**64,
    -(2**64),
    2**64 - 1,
    2**127,
    -(2**200) + 1,
    2**1000,
    0.0,
    -0.0,
    math.inf,
    -math.inf,
    5e-324,
    1.7976931348623157e308,
    "",
    "a",
    "é",
    "\U0001f600 non-BMP \U00010348",
    "x" * 127,
    "x" * 128,
    "y" * 20_000,
    b"",
    b"\x00\xff",
    bytearray(b"abc"),
    Atom("ok"),
    Atom(""),
    Atom("\u00e9t\u00e9"),
    [],
    (),
    {},
    [[]],
    ((),),
    {(): {}},
    {"b": 1, "a": 2, "": 3, "aa": 4, 0: 5, -1: 6, None: 7, True: 8, 1.5: 9, b"a": 10},
    {i: i for i in range(40)},
    {f"k{i}": [i] * 50 for i in range(30)},
    [list(range(100))] * 3,
    {("t", 1): Atom("v"), Atom("k"): (1, 2.0, "3")},
    _deep(MAX_TERM_DEPTH),
    [_deep(MAX_TERM_DEPTH - 1)],
    {"k": _deep(MAX_TERM_DEPTH - 1)},
]


@pytest.mark.parametrize("value", EDGE_VALUES, ids=range(len(EDGE_VALUES)))
def test_term_bytes_edge_values(value: Any) -> None:
    fast = ACCEL.term_bytes(value)
    assert fast is not None
    assert fast == python_term_bytes(value)
    with accelerated():
        assert terms.term_bytes(value) == fast
    assert Term.FromString(fast).SerializeToString(deterministic=True) == fast


DECLINED = [
    math.nan,
    [1, math.nan],
    {"k": -math.nan},
    "\ud800",
    ["ok", "lone \udfff"],
    Atom("\ud800"),
    Atom(5),  # a name that is not a str
    _deep(MAX_TERM_DEPTH + 1),
    {"k": _deep(MAX_TERM_DEPTH)},
    [[_deep(MAX_TERM_DEPTH - 1)]],
    _Int(3),
    _Str("s"),
    _Dict(a=1),
    memoryview(b"abc"),
    _Point(1),
    {1, 2},
    object(),
    [1, 2, object()],
    {"a": {"b": [1, 2, {3: set()}]}},
]


@pytest.mark.parametrize("value", DECLINED, ids=range(len(DECLINED)))
def test_term_bytes_declines_what_python_must_handle(value: Any) -> None:
    assert ACCEL.term_bytes(value) is None
    assert ACCEL.frame_terms([1, value]) is None
    with pure_python():
        try:
            expected: Any = terms.term_bytes(value, root="v")
        except (TypeError, InvalidCheckpoint) as exc:
            expected = (type(exc), str(exc))
    with accelerated():
        try:
            got: Any = terms.term_bytes(value, root="v")
        except (TypeError, InvalidCheckpoint) as exc:
            got = (type(exc), str(exc))
    assert got == expected


def test_map_body_and_frames() -> None:
    value = {"z": 1, "a": [None, 2.5], 3: {"n": Atom("x")}}
    assert ACCEL.map_body(value) == python_map_body(value)
    assert ACCEL.map_body({}) == b""
    assert ACCEL.map_body([1]) is None
    assert ACCEL.map_body(_Dict(a=1)) is None
    examples = [value, 1, "s", [], {}, 2**70]
    framed = b"".join(
        struct.pack(">Q", len(t)) + t for t in (python_term_bytes(e) for e in examples)
    )
    assert ACCEL.frame_terms(examples) == framed
    assert ACCEL.frame_terms(tuple(examples)) == framed
    assert ACCEL.frame_terms([]) == b""
    assert ACCEL.frame_terms(iter(examples)) is None


def python_map_body(value: Any) -> bytes:
    with pure_python():
        return terms.map_body(value)


@given(st.lists(term_values, max_size=6))
def test_hash_trainset_is_the_same_in_both_modes(examples: list[Any]) -> None:
    mixed = [*examples, _Point(3), {"k": _Point(4)}]
    for trainset in (examples, mixed):
        with accelerated():
            fast = ck.hash_trainset(trainset)
            fast_iter = ck.hash_trainset(iter(trainset))
        with pure_python():
            slow = ck.hash_trainset(trainset)
        assert fast == slow == fast_iter


def test_refusals_are_the_same_in_both_modes() -> None:
    for trainset in ([1, {"a": [math.nan]}], [{"m": object()}], [{"d": _deep(MAX_TERM_DEPTH)}]):
        with pure_python():
            expected = python_error(lambda t=trainset: ck.hash_trainset(t))  # type: ignore[misc]
        with accelerated():
            try:
                ck.hash_trainset(trainset)
            except (TypeError, InvalidCheckpoint) as exc:
                got = (type(exc), str(exc))
        assert got == expected


# --- decode in one call, encode in one pass -------------------------------------------------


def _mutations(rng: random.Random, count: int) -> Iterator[bytes]:
    """Sealed bit flips, byte changes and truncations of the valid vectors' bodies."""
    for _ in range(count):
        data = bytearray(body_of(rng.choice(VALID_BYTES)))
        how = rng.randrange(3)
        if how == 0:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif how == 1:
            data[rng.randrange(len(data))] = rng.randrange(256)
        else:
            data = data[: rng.randrange(len(data))]
        yield grammar.seal(bytes(data))


def test_read_checkpoint_is_grammar_check_then_check_canonical() -> None:
    inputs = [raw for _, _, raw in ALL_VECTORS] + list(_mutations(random.Random(5), 3000))
    inputs += [raw[:-1] + bytes([raw[-1] ^ 1]) for raw in VALID_BYTES]  # the checksum
    verdicts = {"refused": 0, True: 0, False: 0}
    for raw in inputs:
        expected = ACCEL.grammar_check(raw)
        got = ACCEL.read_checkpoint(raw)
        if isinstance(expected, tuple):
            assert got == expected, raw.hex()
            verdicts["refused"] += 1
        else:
            assert got is ACCEL.check_canonical(expected), raw.hex()
            verdicts[got] += 1
    assert min(verdicts.values()) >= 30, verdicts


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 1000, 4099])
def test_crc32c_and_seal_equal_the_python_reference(size: int) -> None:
    data = random.Random(size).randbytes(size + 3)
    for start in range(4):  # every alignment of the 8-byte steps
        piece = data[start : start + size]
        assert ACCEL.crc32c(piece) == grammar.crc32c(piece)
        assert ACCEL.crc32c(memoryview(data)[start : start + size]) == grammar.crc32c(piece)
        crc = grammar.crc32c(piece).to_bytes(4, "little")
        assert ACCEL.seal(piece) == piece + grammar.TRAILER_TAG + crc
    assert ACCEL.crc32c(b"123456789") == 0xE3069283


def _reference_sealed(cp: Checkpoint) -> bytes | tuple[str | None, str]:
    """What encode gives without seal_screened: the bytes, or the refusal's (rule, path)."""
    saved = credentials.seal_screened
    credentials.seal_screened = None
    try:
        return validate.sealed_bytes(cp)
    except InvalidCheckpoint as exc:
        return (exc.rule, exc.path)
    finally:
        credentials.seal_screened = saved


def test_seal_screened_on_the_vectors() -> None:
    ACCEL.set_text_screen(credentials.has_secret)
    sealed = 0
    for group, name, raw in ALL_VECTORS:
        if group == "invalid":
            continue
        cp = ck.decode(raw)
        body = cp.SerializeToString(deterministic=True)
        got = ACCEL.seal_screened(body)
        if group == "unknown":  # unknown fields: the grammar must scan them
            assert got is None, name
        elif ACCEL.check_screened(body):
            assert got == raw == _reference_sealed(cp), name
            sealed += 1
        else:
            assert got is None, name
    assert sealed >= 5


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"\xa0\x06\x01", id="checkpoint"),  # field 100
        pytest.param(b"\x6a\x00", id="known-number-other-wire-type"),  # status as LEN
        pytest.param(b"\x4a\x03\xa0\x06\x01", id="progress"),
        pytest.param(b"\x72\x04\x0a\x02\x78\x01", id="term-null"),  # in terminal_reason
        pytest.param(b"\x22\x09\x0a\x01k\x12\x02\x0a\x00\x18\x01", id="option"),
    ],
)
def test_seal_screened_declines_unknown_fields(raw: bytes) -> None:
    """Where unknown fields stand is the grammar's to judge: encode scans them."""
    cp = ck.decode(VALID_BYTES[0])
    cp.MergeFromString(raw)
    body = cp.SerializeToString(deterministic=True)
    assert ACCEL.check_canonical(body) is True
    assert ACCEL.seal_screened(body) is None
    with accelerated():
        assert _outcome(lambda: ck.encode(cp)) == _reference_sealed(cp)


def _outcome(call: Callable[[], bytes]) -> bytes | tuple[str | None, str]:
    try:
        return call()
    except InvalidCheckpoint as exc:
        return (exc.rule, exc.path)


def test_seal_screened_declines_a_term_too_deep() -> None:
    cp = ck.decode(VALID_BYTES[0])
    cp.terminal_reason.MergeFromString(_nest(MAX_TERM_DEPTH + 1))
    body = cp.SerializeToString(deterministic=True)
    assert ACCEL.seal_screened(body) is None
    with accelerated(), pytest.raises(InvalidCheckpoint) as caught:
        ck.encode(cp)
    with pytest.raises(grammar.GrammarError) as scanned:
        grammar.check(grammar.seal(body))
    assert caught.value.rule == scanned.value.rule == "term.depth"
    assert caught.value.path == scanned.value.path
    cp.terminal_reason.Clear()
    cp.terminal_reason.MergeFromString(_nest(MAX_TERM_DEPTH))
    body = cp.SerializeToString(deterministic=True)
    assert ACCEL.seal_screened(body) == grammar.sealed(body)


def test_seal_screened_weighs_as_the_grammar() -> None:
    """At the weight limit: sealed right under it, declined (and refused by encode
    with input.weight) one message over it, as the grammar's scan decides."""
    cp = ck.decode(VALID_BYTES[0])

    def with_lists(count: int) -> tuple[Checkpoint, bytes]:
        probe = Checkpoint()
        probe.CopyFrom(cp)
        probe.terminal_reason.Clear()
        probe.terminal_reason.MergeFromString(ACCEL.term_bytes([[]] * count))
        return probe, probe.SerializeToString(deterministic=True)

    def passes(count: int) -> bool:
        body = with_lists(count)[1]
        return ACCEL.grammar_scan(body, len(body) + 9) is None

    low, high = 1, 1 << 21  # each [] weighs 96 in 4 bytes: over the limit at ~740,000
    assert passes(low) and not passes(high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if passes(middle) else (low, middle)
    body = with_lists(low)[1]
    assert ACCEL.seal_screened(body) == grammar.seal(body)
    over, body = with_lists(high)
    assert ACCEL.seal_screened(body) is None
    with accelerated(), pytest.raises(InvalidCheckpoint) as caught:
        ck.encode(over)
    assert caught.value.rule == "input.weight"
    assert caught.value.path == "<input>"


def _head() -> Checkpoint:
    """The head of a delta that adds trials 3 and 4 (with stats) to a checkpoint of 3."""
    base = ck.decode(VALID_BYTES[0])
    for i in range(3):
        ck.record_trial(base, score=0.1 * i, candidate_id=f"cand-{i}")
    new = Checkpoint()
    new.CopyFrom(base)
    for i in range(3, 5):
        ck.record_trial(new, score=0.5 + i, candidate_id=f"cand-{i}", stats={"loss": 0.25})
    return delta.diff(base, new, base_generation=1).head


def test_screen_head_accepts_a_clean_head() -> None:
    ACCEL.set_text_screen(credentials.has_secret)
    head = _head()
    data = head.SerializeToString(deterministic=True)
    assert head.progress.trial_log[0].trial_idx == 3
    assert ACCEL.screen_head(data) is True
    assert ACCEL.check_screened(data) is False  # not a complete checkpoint
    assert credentials.screened_bytes(head, data, redact=False, head=True) == data


@pytest.mark.parametrize(
    "plant",
    [
        lambda head: setattr(head.terminal_reason, "string_value", "Bearer abcdefghijklmnopqrstu"),
        lambda head: setattr(
            head.progress.trial_log[1], "candidate_id", "sk-abcdefghijklmnopqrstuvwx"
        ),
        lambda head: (
            head.progress.trial_log[0]
            .stats.entries[0]
            .MergeFrom(
                type(head.progress.trial_log[0].stats.entries[0])(
                    key=Term(string_value="api_key"), value=Term(string_value="abc")
                )
            )
        ),
        lambda head: head.optimizer_opts.add(key="password").value.MergeFrom(
            Term(string_value="hunter2")
        ),
    ],
)
def test_screen_head_refuses_as_the_python_walk(plant: Callable[[Checkpoint], None]) -> None:
    ACCEL.set_text_screen(credentials.has_secret)
    head = _head()
    plant(head)
    data = head.SerializeToString(deterministic=True)
    assert ACCEL.screen_head(data) is False
    with pytest.raises(InvalidCheckpoint) as walked:
        credentials.screen_checkpoint(head, redact=False)
    with pytest.raises(InvalidCheckpoint) as screened:
        credentials.screened_bytes(head, data, redact=False, head=True)
    assert screened.value.path == walked.value.path
    assert str(screened.value) == str(walked.value)
