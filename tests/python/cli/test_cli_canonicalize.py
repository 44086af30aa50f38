"""``checkpoint.canonicalize`` and ``dsxir-checkpoint canonicalize``: explicit rewrites."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import one_error_line, run, run_bytes

from dsxir.errors import ResumeMismatch
from dsxir.optimizer_session import checkpoint, grammar

VECTORS = Path(__file__).resolve().parents[2] / "vectors"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text())


def _field(number: int, body: bytes) -> bytes:
    return bytes([number << 3 | 2, len(body)]) + body


def _reordered(canonical: bytes) -> bytes:
    """The same checkpoint with its session_id (field 2) moved after optimizer (field 3)."""
    cp = checkpoint.decode(canonical)
    without = checkpoint.Checkpoint()
    without.CopyFrom(cp)
    without.ClearField("session_id")
    rest = without.SerializeToString(deterministic=True)
    head = _field(1, cp.format.encode())
    assert rest.startswith(head)
    return head + rest[len(head) :] + _field(2, cp.session_id.encode())


def test_canonical_bytes_come_back_unchanged() -> None:
    for vector in MANIFEST["valid"]:
        raw = (VECTORS / vector["binpb"]).read_bytes()
        assert checkpoint.canonicalize(raw) == raw, vector["name"]


def test_other_encodings_become_canonical() -> None:
    for vector in MANIFEST["canonicalize"]:
        raw = (VECTORS / vector["input"]).read_bytes()
        canonical = (VECTORS / vector["canonical"]).read_bytes()
        assert checkpoint.canonicalize(raw) == canonical, vector["name"]
        assert checkpoint.encode(checkpoint.decode(canonical)) == canonical
        if raw != canonical:
            with pytest.raises(ResumeMismatch):  # decode never rewrites
                checkpoint.decode(raw)
    canonical = (VECTORS / MANIFEST["valid"][0]["binpb"]).read_bytes()
    moved = _reordered(canonical)  # no trailer
    assert moved != canonical and len(moved) == len(canonical) - grammar.TRAILER_SIZE
    assert checkpoint.canonicalize(moved) == canonical
    assert checkpoint.canonicalize(grammar.seal(moved)) == canonical  # a trailer is checked


def test_a_trailer_with_a_wrong_checksum_is_refused() -> None:
    canonical = (VECTORS / MANIFEST["valid"][0]["binpb"]).read_bytes()
    for data in (canonical, grammar.seal(_reordered(canonical))):
        broken = bytearray(data)
        broken[-2] ^= 0x10
        with pytest.raises(ResumeMismatch) as refused:
            checkpoint.canonicalize(bytes(broken))
        assert (refused.value.field, refused.value.rule) == ("<input>", "input.checksum")


def test_invalid_checkpoints_are_refused_naming_field_and_rule() -> None:
    """Past the grammar (which canonicalize does not apply), the rules of §1-§4 hold."""
    seen = 0
    for vector in MANIFEST["invalid"]:
        if vector["rule"].startswith(("input.", "wire.")) or vector["rule"] == "term.depth":
            continue
        seen += 1
        with pytest.raises(ResumeMismatch) as refused:
            checkpoint.canonicalize((VECTORS / vector["binpb"]).read_bytes())
        assert (refused.value.field, refused.value.rule) == (vector["field"], vector["rule"])
    assert seen > 20


def test_the_command_writes_canonical_bytes_and_checks(tmp_path: Path) -> None:
    canonical = (VECTORS / MANIFEST["valid"][0]["binpb"]).read_bytes()
    moved = tmp_path / "moved.binpb"
    moved.write_bytes(_reordered(canonical))
    out = tmp_path / "out.binpb"
    done = run("canonicalize", str(moved), "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == canonical

    done = run("canonicalize", "--check", str(moved))
    assert done.returncode == 1 and "valid, not canonical" in done.stdout
    done = run("canonicalize", "--check", str(out))
    assert done.returncode == 0 and "canonical" in done.stdout

    piped = run_bytes("canonicalize", "-", "-o", "-", stdin=_reordered(canonical))
    assert piped.returncode == 0 and piped.stdout == canonical


def test_the_command_refuses_bad_input_and_bad_usage(tmp_path: Path) -> None:
    bad = next(v for v in MANIFEST["invalid"] if v["rule"] == "trial.status")
    done = run("canonicalize", str(VECTORS / bad["binpb"]), "-o", str(tmp_path / "x"))
    assert done.returncode == 3
    assert f"(rule {bad['rule']})" in one_error_line(done)
    assert not (tmp_path / "x").exists()
    for args in (["canonicalize", "f"], ["canonicalize", "f", "--check", "-o", "-"]):
        done = run(*args)
        assert done.returncode == 2, args
        assert "-o OUT" in one_error_line(done)
