"""An independent decoder (protoc --decode) reads what encode writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from dsxir.optimizer_session import checkpoint as ck

ROOT = Path(__file__).resolve().parents[3]


def test_protoc_decodes_encoded_checkpoints() -> None:
    cp = ck.new(
        session_id="protoc-check",
        optimizer="dspy.teleprompt.MIPROv2",
        trainset_hash=ck.hash_trainset([{"q": 1}]),
        sampler_blob=b"\x01\x02",
        sampler_format=("sampler", 3),
        optimizer_opts={"n": 2**80, "name": "x"},
    )
    ck.record_trial(cp, score=0.0, stats={"tokens": 7})
    ck.record_trial(cp, score=None, status="error", error={"message": "boom"})
    ck.complete(cp, "done")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{ROOT / 'proto'}",
            "--decode=dsxir.optimizer_session.v1.Checkpoint",
            "dsxir/optimizer_session/v1/checkpoint.proto",
        ],
        input=ck.encode(cp),
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert 'session_id: "protoc-check"' in out
    assert "status: SESSION_STATUS_COMPLETED" in out
    assert "score: 0" in out
    assert "status: TRIAL_STATUS_ERROR" in out
    assert "completed: 1" in out and "errors: 1" in out
    assert 'string_value: "done"' in out
    assert "version: 3" in out
