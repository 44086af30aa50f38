"""new / encode / decode / transitions / gate / JSON / credentials."""

from __future__ import annotations

import math
import struct
from typing import Any

import pytest
from hypothesis import given, settings

from dsxir.errors import (
    AlreadyTerminal,
    InvalidCheckpoint,
    InvalidTransition,
    ResumeMismatch,
)
from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session import grammar
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from strategies import checkpoints

TRAINSET = [{"q": "2+2", "a": "4"}, {"q": "3+3", "a": "6"}]
HASH = ck.hash_trainset(TRAINSET)
FORMAT = ("demo.RandomSearch", 2)


def make(**kw: Any) -> Checkpoint:
    args: dict[str, Any] = {
        "session_id": "s1",
        "optimizer": "demo.Opt",
        "trainset_hash": HASH,
        "sampler_blob": b"state",
        "sampler_format": FORMAT,
    }
    args.update(kw)
    return ck.new(**args)


# --- new ---------------------------------------------------------------------


def test_new_is_running_with_empty_progress_and_now_stamps() -> None:
    cp = make(optimizer_opts={"n": 3, "model": {"name": "m"}}, program_module="app.Program")
    assert ck.status_name(cp) == "running"
    assert cp.format == ck.FORMAT_ID
    assert len(cp.progress.trial_log) == 0
    assert cp.progress.attempts == cp.progress.completed == cp.progress.errors == 0
    assert not cp.progress.HasField("best_score")
    assert cp.created_at == cp.updated_at == cp.progress.started_at
    assert cp.created_at.seconds > 1_700_000_000
    assert [o.key for o in cp.optimizer_opts] == ["n", "model"]
    assert cp.program_module == "app.Program"


def test_options_keep_order_and_duplicates() -> None:
    cp = make(optimizer_opts=[("b", 1), ("a", 2), ("b", 3)])
    assert [(o.key, ck.from_term(o.value)) for o in cp.optimizer_opts] == [
        ("b", 1),
        ("a", 2),
        ("b", 3),
    ]


@pytest.mark.parametrize(
    ("kw", "error", "text"),
    [
        ({"session_id": ""}, InvalidCheckpoint, "session_id"),
        ({"optimizer": ""}, InvalidCheckpoint, "optimizer"),
        ({"trainset_hash": b"x" * 31}, InvalidCheckpoint, "trainset_hash"),
        ({"sampler_format": ("m", 0)}, InvalidCheckpoint, "sampler_format.version"),
        ({"sampler_format": ("", 1)}, InvalidCheckpoint, "sampler_format.module"),
        ({"sampler_format": "m"}, TypeError, "pair"),
        ({"session_id": 3}, TypeError, "session_id"),
        (
            {"optimizer_opts": [("n", float("nan"))]},
            InvalidCheckpoint,
            r"optimizer_opts\[0\]",
        ),
        ({"optimizer_opts": [("", 1)]}, InvalidCheckpoint, r"optimizer_opts\[0\].key"),
    ],
)
def test_new_refuses_bad_arguments(kw: dict[str, Any], error: type, text: str) -> None:
    with pytest.raises(error, match=text):
        make(**kw)


@pytest.mark.parametrize(
    "key",
    [
        "api_key",
        "OPENAI_API_KEY",
        "hf_token",
        "client_secret",
        "password",
        "apikey",
        "auth",
    ],
)
def test_credentials_are_refused_by_default(key: str) -> None:
    with pytest.raises(InvalidCheckpoint, match=rf"optimizer_opts\[1\].key: option '{key}'"):
        make(optimizer_opts=[("n", 1), (key, "sk-123")])


def test_nested_credentials_are_refused_and_can_be_redacted() -> None:
    opts = {"lm": {"model": "gpt", "api_key": "sk-123", "extra": [{"x_token": "t"}]}}
    with pytest.raises(InvalidCheckpoint, match=r"optimizer_opts\[0\].value\['api_key'\]"):
        make(optimizer_opts=opts)
    cp = make(optimizer_opts=opts, redact_secrets=True)
    raw = ck.encode(cp)
    assert b"sk-123" not in raw
    value = ck.from_term(cp.optimizer_opts[0].value)
    assert value == {
        "model": "gpt",
        "api_key": "[redacted]",
        "extra": [{"x_token": "[redacted]"}],
    }


def test_screening_keeps_atoms_and_tuples() -> None:
    cp = make(optimizer_opts={"mode": ck.Atom("fast"), "pair": (ck.Atom("a"), [ck.Atom("b")])})
    assert ck.from_term(cp.optimizer_opts[0].value) == ck.Atom("fast")
    assert ck.from_term(cp.optimizer_opts[1].value) == (ck.Atom("a"), [ck.Atom("b")])


def test_harmless_keys_are_not_mistaken_for_credentials() -> None:
    make(
        optimizer_opts={
            "max_tokens": 10,
            "author": "x",
            "tokenizer": "bpe",
            "num_threads": 2,
        }
    )


# --- bytes ---------------------------------------------------------------------


@settings(max_examples=150)
@given(checkpoints())
def test_decode_encode_round_trip(cp: Checkpoint) -> None:
    raw = ck.encode(cp)
    again = ck.decode(raw)
    assert again == cp
    assert ck.encode(again) == raw
    assert ck.encode(ck.from_json(ck.to_json(cp))) == raw


def test_encode_is_deterministic_across_builds() -> None:
    a, b = (
        make(optimizer_opts={"x": {"b": 1, "a": 2}}),
        make(optimizer_opts={"x": {"a": 2, "b": 1}}),
    )
    for cp in (a, b):
        for stamp in (cp.created_at, cp.updated_at, cp.progress.started_at):
            stamp.seconds, stamp.nanos = 1, 2
    assert ck.encode(a) == ck.encode(b)


def test_encode_refuses_what_decode_refuses() -> None:
    cp = make()
    ck.record_trial(cp, score=0.5)
    cp.progress.completed = 5
    with pytest.raises(InvalidCheckpoint, match=r"progress\.completed"):
        ck.encode(cp)
    with pytest.raises(ValueError):
        ck.encode(cp)


def test_explicit_zero_score_differs_from_no_score() -> None:
    a, b = make(), make()
    ck.record_trial(a, score=0.0)
    ck.record_trial(b, score=None)
    entry_a, entry_b = (
        ck.decode(ck.encode(a)).progress.trial_log[0],
        ck.decode(ck.encode(b)).progress.trial_log[0],
    )
    assert entry_a.HasField("score") and entry_a.score == 0.0
    assert not entry_b.HasField("score")
    assert bytes.fromhex("190000000000000000") in entry_a.SerializeToString()


def test_unknown_fields_survive_a_round_trip() -> None:
    cp = make()
    body = ck.encode(cp)[:-9] + bytes.fromhex("8201056e65776572")  # field 16 = "newer"
    raw = grammar.seal(body)
    assert ck.encode(ck.decode(raw)) == raw


def test_json_uses_proto3_mapping_and_is_validated() -> None:
    cp = make(optimizer_opts={"n": 2**70})
    ck.record_trial(cp, score=-0.0, stats={"inf": math.inf})
    text = ck.to_json(cp)
    assert '"sessionId": "s1"' in text and '"status": "SESSION_STATUS_RUNNING"' in text
    assert struct.pack("<d", ck.from_json(text).progress.best_score) == struct.pack("<d", -0.0)
    with pytest.raises(ResumeMismatch) as info:
        ck.from_json(text.replace('"sessionId": "s1"', '"sessionId": ""'))
    assert info.value.field == "session_id"
    for bad in ("", "{", "[]", '{"nope": 1}', '{"progress": {"trialLog": 5}}'):
        with pytest.raises(ResumeMismatch) as info:
            ck.from_json(bad)
        assert info.value.reason == "checkpoint_shape"


# --- transitions ---------------------------------------------------------------------


def test_record_trial_counts_and_picks_strictly_better_best() -> None:
    cp = make()
    assert ck.record_trial(cp, score=0.5) == 0
    assert ck.record_trial(cp, score=0.5) == 1  # equal: the first stays best
    assert ck.record_trial(cp, score=None) == 2  # absent: never best
    assert ck.record_trial(cp, score=0.9, status="error", error=RuntimeError("boom")) == 3
    assert ck.record_trial(cp, score=0.7, candidate_id="c4", stats={"tokens": 12}) == 4
    p = cp.progress
    assert [e.trial_idx for e in p.trial_log] == [0, 1, 2, 3, 4]
    assert (p.attempts, p.completed, p.errors) == (5, 4, 1)
    assert (p.best_trial_idx, p.best_score) == (4, 0.7)
    err = p.trial_log[3]
    assert err.error_class == "RuntimeError"
    assert ck.from_term(err.error) == {"class": "RuntimeError", "message": "boom"}
    assert ck.from_term(p.trial_log[4].stats) == {"tokens": 12}
    assert ck.decode(ck.encode(cp)) == cp


def test_record_trial_replaces_blob_and_artifact_and_stamps() -> None:
    cp = make()
    before = (cp.updated_at.seconds, cp.updated_at.nanos)
    ck.record_trial(cp, score=1.0, sampler_blob=b"new", best_program_artifact={"prompt": "p"})
    ck.record_trial(cp, score=2.0, best_program_artifact={"prompt": "q"})
    assert cp.sampler_blob == b"new"
    assert len(cp.best_program_artifact.entries) == 1
    assert (cp.updated_at.seconds, cp.updated_at.nanos) >= before


def test_record_trial_refusals_leave_the_checkpoint_unchanged() -> None:
    cp = make()
    ck.record_trial(cp, score=0.1)
    snapshot = cp.SerializeToString(deterministic=True)
    for kwargs in (
        {"score": math.nan},
        {"score": 0.2, "stats": {"bad": math.nan}},
        {"score": 0.2, "stats": {"bad": object()}},
        {"score": 0.2, "status": "weird"},
        {"score": 0.2, "duration_ms": -1},
        {"score": 0.2, "best_program_artifact": [1]},
    ):
        with pytest.raises((ValueError, TypeError)):
            ck.record_trial(cp, **kwargs)
        assert cp.SerializeToString(deterministic=True) == snapshot


def test_transitions_follow_the_table() -> None:
    cp = make()
    with pytest.raises(InvalidTransition):
        ck.resume(cp)
    ck.pause(cp)
    assert ck.status_name(cp) == "paused"
    for action in (ck.pause, ck.complete, ck.fail):
        with pytest.raises(InvalidTransition):
            action(cp)
    with pytest.raises(InvalidTransition):
        ck.record_trial(cp, score=1.0)
    ck.resume(cp)
    ck.record_trial(cp, score=1.0)
    ck.complete(cp, {"why": "budget"})
    assert ck.status_name(cp) == "completed"
    assert ck.from_term(cp.terminal_reason) == {"why": "budget"}
    for action in (ck.pause, ck.resume, ck.cancel, ck.complete, ck.fail):
        with pytest.raises(
            AlreadyTerminal, match='session "s1" is already terminal: status=completed'
        ):
            action(cp)
    with pytest.raises(AlreadyTerminal):
        ck.record_trial(cp, score=1.0)


@pytest.mark.parametrize("end", [ck.cancel, ck.fail])
def test_terminal_from_running(end: Any) -> None:
    cp = make()
    end(cp, "stopped")
    assert cp.status in (5, 4)
    assert ck.decode(ck.encode(cp)).terminal_reason == cp.terminal_reason


def test_cancel_from_paused() -> None:
    cp = make()
    ck.pause(cp)
    ck.cancel(cp)
    assert ck.status_name(cp) == "cancelled" and not cp.HasField("terminal_reason")


# --- the gate ---------------------------------------------------------------------


def test_gate_accepts_a_matching_resume() -> None:
    cp = make()
    ck.check_resume(cp, optimizer="demo.Opt", sampler_format=FORMAT, trainset=TRAINSET)
    ck.check_resume(
        cp,
        optimizer="demo.Opt",
        sampler_format=("demo.RandomSearch", {1, 2}),
        trainset_hash=HASH,
    )
    ck.pause(cp)
    ck.check_resume(cp, optimizer="demo.Opt", sampler_format=FORMAT)


@pytest.mark.parametrize(
    ("kw", "reason", "message"),
    [
        ({"optimizer": "other.Opt"}, "optimizer", "by optimizer demo.Opt; this run is other.Opt."),
        (
            {"sampler_format": ("other.Sampler", 2)},
            "sampler_format",
            "sampler is demo.RandomSearch; this run's is other.Sampler.",
        ),
        (
            {"sampler_format": ("demo.RandomSearch", 3)},
            "sampler_version",
            "version 2; this run accepts 3. Accept version 2 if",
        ),
        (
            {"sampler_format": ("demo.RandomSearch", [3, 4])},
            "sampler_version",
            "version 2; this run accepts [3,4].",
        ),
        ({"trainset": TRAINSET[:1]}, "trainset_hash", f"with hash {HASH.hex()}; this run's"),
        ({"trainset_hash": b"\x00" * 32}, "trainset_hash", f"this run's hash is {'00' * 32}."),
    ],
)
def test_gate_refusals(kw: dict[str, Any], reason: str, message: str) -> None:
    cp = make()
    args: dict[str, Any] = {"optimizer": "demo.Opt", "sampler_format": FORMAT}
    args.update(kw)
    with pytest.raises(ResumeMismatch) as info:
        ck.check_resume(cp, **args)
    assert info.value.reason == reason
    assert str(info.value).startswith(f'cannot resume session "s1": {reason}: the checkpoint')
    assert str(info.value).endswith("or start a new session.")
    assert message in str(info.value)


def test_gate_message_form() -> None:
    cp = make(sampler_format=("demo.RandomSearch", 1))
    with pytest.raises(ResumeMismatch) as info:
        ck.check_resume(cp, optimizer="demo.Opt", sampler_format=("demo.RandomSearch", 2))
    assert str(info.value) == (
        'cannot resume session "s1": sampler_version: the checkpoint holds sampler state '
        "version 1; this run accepts 2. Accept version 1 if the sampler can read it, "
        "or start a new session."
    )
    assert (info.value.session_id, info.value.expected, info.value.got) == ("s1", 2, 1)


@pytest.mark.parametrize("end", [ck.complete, ck.fail, ck.cancel])
def test_gate_refuses_terminal_sessions_first(end: Any) -> None:
    cp = make()
    end(cp)
    with pytest.raises(AlreadyTerminal) as info:
        ck.check_resume(cp, optimizer="wrong", sampler_format=("x", 9))
    assert info.value.session_id == "s1"
    assert info.value.status == ck.status_name(cp)
