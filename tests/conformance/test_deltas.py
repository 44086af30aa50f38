"""Every language reads, writes and applies checkpoint deltas identically (FORMAT.md §13).

The delta vectors (``tests/vectors/delta/manifest.json``) go through each
testee's one-shot commands ``reencode-delta`` and ``apply-delta BASE`` and
through its ``serve`` loop; every prefix and single-bit flip of every
readable delta is refused at ``<input>``; random commits (deltas the Python
writer makes over random sessions) give byte-identical checkpoints in every
language, and damaged deltas (a byte changed, the trailer made right again)
get the same answer everywhere as from the Python library.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
from protocol import LANGS, REENCODE_DELTA, Answer, Server

from dsxir.errors import InvalidCheckpoint, InvalidDelta
from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session import delta as dl
from dsxir.optimizer_session import grammar

HERE = Path(__file__).resolve().parent
DELTAS = HERE.parent / "vectors" / "delta"
CASES: list[dict[str, Any]] = json.loads((DELTAS / "manifest.json").read_text())["cases"]
DELTA_RULES = json.loads((HERE.parents[1] / "spec" / "delta-rules-v1.json").read_text())["rules"]
KINDS = {"read": "delta_shape", "apply": "delta_shape", "result": "checkpoint_shape"}


def _bytes(name: str) -> bytes:
    return (DELTAS / name).read_bytes()


def _expect(answer: Answer, case: dict[str, Any], lang: str) -> None:
    what = (lang, case["name"], str(answer))
    if "result" in case:
        assert answer.accepted and answer.output == _bytes(case["result"]), what
        return
    refused = case["refused"]
    assert not answer.accepted, what
    assert (answer.exit_code, answer.kind) == (3, KINDS[refused["stage"]]), what
    assert (answer.rule, answer.path) == (refused["rule"], refused["field"]), what


def test_every_delta_rule_is_broken_by_a_vector() -> None:
    broken = {case["refused"]["rule"] for case in CASES if "refused" in case}
    assert {rule["id"] for rule in DELTA_RULES} <= broken
    assert {case["refused"]["stage"] for case in CASES if "refused" in case} == set(KINDS)


def test_delta_vectors_through_serve(servers: dict[str, Server]) -> None:
    pairs = [(_bytes(case["base"]), _bytes(case["delta"])) for case in CASES]
    readable = [case for case in CASES if case.get("refused", {}).get("stage") != "read"]
    for lang, server in servers.items():
        for case, answer in zip(CASES, server.apply_many(pairs), strict=True):
            _expect(answer, case, lang)
        echoes = server.ask_many((REENCODE_DELTA, _bytes(case["delta"])) for case in readable)
        for case, answer in zip(readable, echoes, strict=True):
            assert answer.output == _bytes(case["delta"]), (lang, case["name"], str(answer))


def _one_shot(lang: str, args: list[str], data: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(HERE / f"testee-{lang}"), *args],
        input=data,
        capture_output=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("lang", LANGS)
def test_delta_one_shot_commands(lang: str) -> None:
    """One case of each kind through ``apply-delta BASE`` and ``reencode-delta``."""
    chosen: dict[str, dict[str, Any]] = {}
    for case in CASES:
        chosen.setdefault(case.get("refused", {}).get("stage", "accepted"), case)
    for stage, case in chosen.items():
        delta = _bytes(case["delta"])
        done = _one_shot(lang, ["apply-delta", str(DELTAS / case["base"])], delta)
        if stage == "accepted":
            assert (done.returncode, done.stdout) == (0, _bytes(case["result"])), done.stderr
        else:
            refused = case["refused"]
            line = done.stderr.decode().rstrip("\n")
            prefix = f"{KINDS[stage]}: {refused['field']}: "
            assert done.returncode == 3 and not done.stdout, (stage, line)
            assert line.startswith(prefix) and line.endswith(f" (rule {refused['rule']})"), line
        echo = _one_shot(lang, ["reencode-delta"], delta)
        if stage == "read":
            assert echo.returncode == 3 and echo.stderr.startswith(b"delta_shape: "), echo
        else:
            assert (echo.returncode, echo.stdout) == (0, delta), echo.stderr


def test_every_prefix_and_bit_flip_of_a_delta_is_refused(servers: dict[str, Server]) -> None:
    case = next(c for c in CASES if c["name"] == "unknown_fields")
    good = _bytes(case["delta"])
    damaged = [good[:cut] for cut in range(len(good))]
    damaged += [
        good[:i] + bytes([good[i] ^ 1 << bit]) + good[i + 1 :]
        for i in range(len(good))
        for bit in range(8)
    ]
    for lang, server in servers.items():
        answers = server.ask_many((REENCODE_DELTA, data) for data in damaged)
        for data, answer in zip(damaged, answers, strict=True):
            assert not answer.accepted, (lang, data.hex())
            assert answer.path == "<input>", (lang, data.hex(), str(answer))
            assert answer.rule in ("input.trailer", "input.checksum"), (lang, str(answer))


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return rng.randrange(-(2**70), 2**70)
    if kind == 1:
        return rng.choice([0.0, -0.0, 1.5, float("inf"), rng.random()])
    if kind == 2:
        return "".join(rng.choice("ab é漢🎉") for _ in range(rng.randrange(6)))
    if kind == 3:
        return rng.choice([None, True, False])
    if kind == 4:
        return rng.randbytes(rng.randrange(4))
    if kind == 5:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == 6:
        return tuple(_random_value(rng, depth + 1) for _ in range(rng.randrange(3)))
    return {f"k{i}": _random_value(rng, depth + 1) for i in range(rng.randrange(4))}


def _random_commits(rng: random.Random, count: int) -> list[tuple[bytes, bytes, bytes]]:
    """``(base, delta, new)`` of each commit of a random session: the Python writer's delta."""
    cp = ck.new(
        session_id=f"s{rng.randrange(1000)}",
        optimizer="opt.Random",
        trainset_hash=rng.randbytes(32),
        sampler_blob=rng.randbytes(rng.randrange(8)),
        sampler_format=("opt.Sampler", 1 + rng.randrange(3)),
        optimizer_opts=[(f"o{i}", _random_value(rng)) for i in range(rng.randrange(3))],
        direction=rng.choice(["higher", "lower"]),
    )
    commits: list[tuple[bytes, bytes, bytes]] = []
    for generation in range(1, count + 1):
        base = ck.encode(cp)
        new = ck.decode(base)
        for _ in range(rng.randrange(4)):
            ok = rng.random() < 0.7
            ck.record_trial(
                new,
                score=rng.choice([None, rng.random(), -0.0]) if ok else None,
                status="ok" if ok else "error",
                candidate_id=rng.choice([None, f"c{generation}"]),
                stats={"v": _random_value(rng)} if rng.random() < 0.6 else None,
                error={"message": "boom"} if not ok else None,
                sampler_blob=rng.randbytes(3) if rng.random() < 0.5 else None,
                best_program_artifact={"p": _random_value(rng)} if rng.random() < 0.2 else None,
            )
        if rng.random() < 0.1:
            ck.pause(new)
            ck.resume(new)
        delta = dl.diff(ck.decode(base), new, base_generation=generation)
        commits.append((base, dl.encode_delta(delta), ck.encode(new)))
        cp = new
    return commits


def _python_answer(base: bytes, data: bytes) -> tuple[str, str | None, str] | bytes:
    try:
        return ck.encode(dl.apply(ck.decode(base), dl.decode_delta(data)))
    except InvalidDelta as exc:
        return ("delta_shape", exc.rule, exc.path)
    except InvalidCheckpoint as exc:
        return ("checkpoint_shape", exc.rule, exc.path)


def _seen(answer: Answer) -> tuple[str, str | None, str] | bytes:
    if answer.accepted:
        assert answer.output is not None
        return answer.output
    return (answer.kind, answer.rule, answer.path)


def test_random_commits_apply_identically(servers: dict[str, Server]) -> None:
    rng = random.Random(20261202)
    commits = [commit for _ in range(20) for commit in _random_commits(rng, 10)]
    pairs = [(base, data) for base, data, _ in commits]
    expected = [new for _, _, new in commits]  # what the writer would have written whole
    assert [_python_answer(base, data) for base, data in pairs] == expected
    for lang, server in servers.items():
        answers = server.apply_many(pairs)
        for want, answer in zip(expected, answers, strict=True):
            assert _seen(answer) == want, (lang, str(answer))


def test_damaged_deltas_get_the_same_answer(servers: dict[str, Server]) -> None:
    rng = random.Random(7)
    commits = _random_commits(rng, 40)
    damaged: list[tuple[bytes, bytes]] = []
    for _ in range(600):
        base, data, _ = rng.choice(commits)
        body = bytearray(data[: -grammar.TRAILER_SIZE])
        for _ in range(1 + rng.randrange(3)):
            body[rng.randrange(len(body))] = rng.randrange(256)
        damaged.append((base, grammar.seal(bytes(body))))
    expected = [_python_answer(base, data) for base, data in damaged]
    assert sum(isinstance(answer, bytes) for answer in expected) < len(expected)
    for lang, server in servers.items():
        for want, answer in zip(expected, server.apply_many(damaged), strict=True):
            assert _seen(answer) == want, (lang, str(answer))


def test_python_apply_in_place_makes_what_apply_makes() -> None:
    rng = random.Random(3)
    for base, data, new in _random_commits(rng, 30):
        in_place = ck.decode(base)
        dl.apply_in_place(in_place, dl.decode_delta(data))
        assert ck.encode(in_place) == new
