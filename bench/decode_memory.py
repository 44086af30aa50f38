"""``make bench``: peak memory of decoding hostile checkpoints, and a decode+encode round trip.

**Peak memory.** Each input is decoded by ``checkpoint.decode`` in a fresh
process: the process imports the library, decodes a tiny checkpoint (so that
nothing imported on first use counts), takes its high-water mark
(``VmHWM``) as the baseline, reads the input file and decodes it. The peak
is the high-water mark's growth over that baseline, so it includes the input
bytes themselves (1x). Every shape runs with the compiled accelerator and
without it (``DSXIR_PURE_PYTHON=1``). The inputs are built byte by byte,
canonical and sealed with the CRC-32C trailer (FORMAT.md §2), each about
``DSXIR_BENCH_DECODE_MIB`` MiB (default 16):

- adversarial shapes, the cheapest bytes per allocated message: empty trial
  entries (2 bytes each); empty Terms (no kind, 2 bytes) and null Terms
  (4 bytes) in a stats list; lists nested to the deepest depth a reader
  accepts (24, the stats map counting 1), many of them in one list; a stats
  map of empty entries (2 bytes each) and of tiny entries (a 3-byte key, a
  null value). Most are refused by the weight limit (FORMAT.md §2.4,
  ``input.weight``) before anything is allocated.
- baselines: a large sampler blob (one field holding the bytes), a realistic
  10,000-trial checkpoint (bench/bench.py's), and random bytes.
- the same shapes with one fault placed where a reader finds it last (the
  last trial's index, the last chain one level too deep, the last map key
  repeated).
- the adversarial shapes again at the largest size the weight limit lets
  through (found by bisection on the grammar, to 1 KiB): the weight right
  under ``7 x n + 48 MiB``, where a reader allocates the most for its input.

The child reports whether the input was accepted or refused (and the rule);
an input that does not get the verdict its shape intends is marked. Each
line shows the peak against the goal, and the last line the worst ratio of
peak to goal over every shape and path. Goal: peak <= 8x input + 64 MiB.

**Trailer cost.** In the round-trip child: the CRC-32C of the checkpoint's
body and the grammar's scan (with the weight), each timed alone, against
decode + encode of the same checkpoint.

**Round trip.** ``encode(decode(bytes))`` of a 10,000-trial checkpoint with 5
float stats per trial against ``pickle.dumps(pickle.loads(...))`` of the same
data as Python dicts (bench/bench.py's ``as_python``), best of 7, in a fresh
process per path. Goal: <= 1.0x pickle.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable
from typing import Any

__all__ = ["main"]

GOAL_FACTOR = 8
GOAL_FIXED_MIB = 64
MIB = 1024 * 1024
DEPTH = 24  # MAX_TERM_DEPTH: the stats map is depth 1, its values 2, ...


def _mib() -> float:
    return float(os.environ.get("DSXIR_BENCH_DECODE_MIB", "") or 16)


# --- protobuf wire bytes -----------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def _ld(field: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _uint(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value) if value else b""


NULL = _ld(1, b"")  # Term { null_value {} }
NO_KIND = b""  # Term {}: refused


def _list_term(items: list[bytes] | tuple[bytes, ...]) -> bytes:
    return _ld(9, b"".join(_ld(1, item) for item in items))  # Term { list_value { items } }


def _chain(depth: int) -> bytes:
    """A Term of ``depth`` levels: lists around a null."""
    term = NULL
    for _ in range(depth - 1):
        term = _list_term((term,))
    return term


def _stats_entry(key: bytes, value: bytes) -> bytes:
    return _ld(1, _ld(1, key) + _ld(2, value))  # TermMap.entries { key value }


def _trial(idx: int, stats: bytes | None = None) -> bytes:
    """A TrialLogEntry field of Progress: ok, with optional stats (TermMap bytes)."""
    body = _uint(1, idx) + _uint(4, 1) + (b"" if stats is None else _ld(5, stats))
    return _ld(1, body)


def _sealed(body: bytes) -> bytes:
    from dsxir.optimizer_session import grammar

    return grammar.seal(body)


def _checkpoint(trial_log: bytes, trials: int, sampler_blob: bytes = b"") -> bytes:
    """Sealed checkpoint bytes holding ``trial_log`` (Progress field 1 entries), all ok."""
    from dsxir.optimizer_session import checkpoint as ck
    from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint

    cp = ck.new(
        session_id="hostile",
        optimizer="bench.Optimizer",
        trainset_hash=bytes(32),
        sampler_blob=sampler_blob,
        sampler_format=("bench.Sampler", 1),
    )
    cp.progress.attempts = cp.progress.completed = trials
    head, tail = Checkpoint(), Checkpoint()
    head.CopyFrom(cp)
    tail.CopyFrom(cp)
    for field in Checkpoint.DESCRIPTOR.fields:
        part: Any = tail if field.number < 9 else head
        part.ClearField(field.name)
    tail.ClearField("progress")
    progress = trial_log + cp.progress.SerializeToString(deterministic=True)
    return _sealed(
        head.SerializeToString(deterministic=True)
        + _ld(9, progress)
        + tail.SerializeToString(deterministic=True)
    )


def _repeat(target: int, make: Callable[[int], bytes]) -> list[bytes]:
    """Pieces ``make(0), make(1), ...`` until they hold ``target`` bytes."""
    pieces: list[bytes] = []
    size = 0
    while size < target:
        piece = make(len(pieces))
        pieces.append(piece)
        size += len(piece)
    return pieces


# --- shapes ------------------------------------------------------------------------------------


def _empty_trials(target: int, bad_last: bool) -> bytes:
    entries = _repeat(target, _trial)
    if bad_last:
        entries[-1] = _trial(len(entries))  # index one past its place
    return _checkpoint(b"".join(entries), len(entries))


def _term_list(target: int, item: bytes) -> bytes:
    items = b"".join(_repeat(target, lambda _: _ld(1, item)))
    stats = _stats_entry(_ld(6, b"l"), _ld(9, items))  # {"l": [item, ...]}
    return _checkpoint(_trial(0, stats), 1)


def _deep_lists(target: int, last_depth: int) -> bytes:
    chain = _ld(1, _chain(DEPTH - 2))  # in the outer list (depth 2): 3 .. 24
    chains = _repeat(target, lambda _: chain)
    chains[-1] = _ld(1, _chain(last_depth - 2))
    stats = _stats_entry(_ld(6, b"d"), _ld(9, b"".join(chains)))
    return _checkpoint(_trial(0, stats), 1)


def _empty_trials_bare(target: int) -> bytes:
    """Trial entries with no field at all (2 bytes each): the heaviest bytes (§2.4)."""
    entries = _repeat(target, lambda _: _ld(1, b""))
    return _checkpoint(b"".join(entries), 0)


def _empty_map_entries(target: int) -> bytes:
    entries = _repeat(target, lambda _: _ld(1, b""))  # TermMap.entries {}: no key, no value
    return _checkpoint(_trial(0, b"".join(entries)), 1)


def _tiny_map(target: int, repeat_last: bool) -> bytes:
    entries = _repeat(target, lambda i: _stats_entry(_ld(7, i.to_bytes(3, "big")), NULL))
    if repeat_last:
        entries[-1] = entries[-2]
    return _checkpoint(_trial(0, b"".join(entries)), 1)


def _at_limit(build: Callable[[int], bytes]) -> bytes:
    """``build(target)`` for the largest target (to 1 KiB) the weight limit lets through."""
    from dsxir.optimizer_session import accel, grammar

    def passes(data: bytes) -> bool:
        if accel.grammar_check is not None:
            answer = accel.grammar_check(data)
            return not (isinstance(answer, tuple) and answer[0] == "input.weight")
        try:
            grammar.check(data)
        except grammar.GrammarError as exc:
            return exc.rule != "input.weight"
        return True

    low, high = 1024, 64 * MIB  # low passes, high is over the limit
    if not passes(build(low)) or passes(build(high)):
        raise RuntimeError("no size at the weight limit between 1 KiB and 64 MiB")
    while high - low > 1024:
        middle = (low + high) // 2
        if passes(build(middle)):
            low = middle
        else:
            high = middle
    return build(low)


def _sampler_blob(target: int) -> bytes:
    return _checkpoint(b"", 0, sampler_blob=random.Random(7).randbytes(target))


def _realistic() -> bytes:
    from bench import session
    from dsxir.optimizer_session import checkpoint as ck

    return ck.encode(session(10_000))


def _shapes(target: int) -> list[tuple[str, bool | None, Callable[[], bytes]]]:
    """(label, accepted? (None: either, by the weight limit), builder) of every input."""
    return [
        ("empty trial entries", False, lambda: _empty_trials_bare(target)),
        ("trial entries (index and status)", None, lambda: _empty_trials(target, False)),
        ("null Terms in a stats list", None, lambda: _term_list(target, NULL)),
        ("empty Terms (no kind) in a stats list", False, lambda: _term_list(target, NO_KIND)),
        (f"lists nested {DEPTH} deep, repeated", None, lambda: _deep_lists(target, DEPTH)),
        ("stats map of empty entries", False, lambda: _empty_map_entries(target)),
        ("tiny map entries", None, lambda: _tiny_map(target, False)),
        ("sampler blob (baseline)", True, lambda: _sampler_blob(target)),
        ("10,000 realistic trials", True, _realistic),
        ("empty trial entries, last index wrong", False, lambda: _empty_trials(target, True)),
        (
            f"lists {DEPTH} deep, the last {DEPTH + 1}",
            False,
            lambda: _deep_lists(target, DEPTH + 1),
        ),
        ("tiny map entries, last key repeated", False, lambda: _tiny_map(target, True)),
        ("random bytes", False, lambda: random.Random(7).randbytes(target)),
        ("random bytes, sealed", False, lambda: _sealed(random.Random(7).randbytes(target))),
        # At the weight limit: accepted, or refused by a rule checked after parsing.
        ("at the limit: empty trial entries", False, lambda: _at_limit(_empty_trials_bare)),
        (
            "at the limit: trial entries",
            True,
            lambda: _at_limit(lambda t: _empty_trials(t, False)),
        ),
        ("at the limit: null Terms", True, lambda: _at_limit(lambda t: _term_list(t, NULL))),
        (
            "at the limit: empty Terms (no kind)",
            False,
            lambda: _at_limit(lambda t: _term_list(t, NO_KIND)),
        ),
        (
            f"at the limit: lists nested {DEPTH} deep",
            True,
            lambda: _at_limit(lambda t: _deep_lists(t, DEPTH)),
        ),
        ("at the limit: map of empty entries", False, lambda: _at_limit(_empty_map_entries)),
        ("at the limit: tiny map entries", True, lambda: _at_limit(lambda t: _tiny_map(t, False))),
        (
            "at the limit: tiny map, last key repeated",
            False,
            lambda: _at_limit(lambda t: _tiny_map(t, True)),
        ),
    ]


# --- children ----------------------------------------------------------------------------------


def _high_water() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _child_peak(path: str) -> dict[str, Any]:
    import time

    from dsxir.errors import ResumeMismatch
    from dsxir.optimizer_session import checkpoint as ck

    tiny = ck.new(
        session_id="warm",
        optimizer="bench.Optimizer",
        trainset_hash=bytes(32),
        sampler_blob=b"",
        sampler_format=("bench.Sampler", 1),
    )
    ck.decode(ck.encode(tiny))
    baseline = _high_water()
    with open(path, "rb") as handle:
        raw = handle.read()
    start = time.perf_counter()
    try:
        ck.decode(raw)
        verdict = "accepted"
    except ResumeMismatch as exc:
        verdict = f"refused: {exc.rule} at {exc.field}"
    seconds = time.perf_counter() - start
    peak = _high_water() - baseline
    return {"size": len(raw), "peak": peak, "seconds": seconds, "verdict": verdict}


def _child_round_trip() -> dict[str, Any]:
    import pickle

    from bench import as_python, best_of, session
    from dsxir.optimizer_session import accel, grammar
    from dsxir.optimizer_session import checkpoint as ck

    cp = session(10_000, stats_size=5)
    raw = ck.encode(cp)
    body = raw[: -grammar.TRAILER_SIZE]
    pickled = pickle.dumps(as_python(cp), protocol=pickle.HIGHEST_PROTOCOL)
    ours = best_of(lambda: ck.encode(ck.decode(raw)))
    theirs = best_of(lambda: pickle.dumps(pickle.loads(pickled), protocol=pickle.HIGHEST_PROTOCOL))
    crc = accel.crc32c or grammar.crc32c
    scan = accel.grammar_scan
    crc_time = best_of(lambda: crc(body))
    if scan is not None:
        scan_time = best_of(lambda: scan(body, len(raw)))
    else:
        scan_time = best_of(lambda: grammar._scan(body, len(raw)))
    return {
        "ours": ours,
        "pickle": theirs,
        "bytes": len(raw),
        "pickle_bytes": len(pickled),
        "crc": crc_time,
        "scan": scan_time,
    }


def _run_child(pure: bool, *args: str) -> dict[str, Any]:
    env = dict(os.environ)
    env.pop("DSXIR_PURE_PYTHON", None)
    if pure:
        env["DSXIR_PURE_PYTHON"] = "1"
    out = subprocess.run(
        [sys.executable, __file__, *args], env=env, capture_output=True, text=True, check=True
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


# --- the run -----------------------------------------------------------------------------------

PATHS = (("accelerated", False), ("pure", True))


def _peak_table(folder: str, target: int) -> None:
    """One line per shape; the last line is the worst peak / goal over every shape."""
    print(
        f"decode peak memory, fresh process per input (input read included); "
        f"goal peak <= {GOAL_FACTOR}x input + {GOAL_FIXED_MIB} MiB"
    )
    head = f"{'input':<42}{'MiB':>7}"
    for name, _ in PATHS:
        head += f" | {name + ' peak MiB':>21}{'x in':>6}{'of goal':>8}{'ms':>7}"
    print(head + " | goal; verdict")
    worst, worst_label = 0.0, ""
    for label, accepted, build in _shapes(target):
        path = os.path.join(folder, "input.bin")
        with open(path, "wb") as handle:
            handle.write(build())
        line, met, notes = "", True, set()
        size = 0
        for name, pure in PATHS:
            result = _run_child(pure, "peak", path)
            size, peak = result["size"], result["peak"]
            goal = GOAL_FACTOR * size + GOAL_FIXED_MIB * MIB
            met = met and peak <= goal
            if peak / goal > worst:
                worst, worst_label = peak / goal, f"{label}, {name}"
            line += (
                f" | {peak / MIB:>21.1f}{peak / size:>5.1f}x{peak / goal:>8.2f}"
                f"{result['seconds'] * 1e3:>7.0f}"
            )
            if accepted is not None and result["verdict"].startswith("accepted") != accepted:
                notes.add(f"UNEXPECTED {result['verdict']}")
            else:
                notes.add(_short(result["verdict"]))
        os.unlink(path)
        tail = " | " + ("met" if met else "missed") + "".join(f"; {note}" for note in sorted(notes))
        print(f"{label:<42}{size / MIB:>7.2f}{line}{tail}", flush=True)
    print(f"worst peak / goal over every shape: {worst:.2f} ({worst_label}); goal <= 1.00")


def _short(text: str, width: int = 72) -> str:
    return text if len(text) <= width else text[: width - 28] + "..." + text[-25:]


def _round_trip_table() -> None:
    print("decode+encode of 10,000 trials with 5 float stats vs a pickle round trip of dicts")
    for name, pure in PATHS:
        result = _run_child(pure, "round-trip")
        ratio = result["ours"] / result["pickle"]
        print(
            f"  {name:<12} dsxir {result['ours'] * 1e3:7.1f} ms | pickle "
            f"{result['pickle'] * 1e3:7.1f} ms | ratio {ratio:.2f}x (goal <= 1.0x) | "
            f"{result['bytes']:,} B protobuf, {result['pickle_bytes']:,} B pickle",
            flush=True,
        )
        print(
            f"  {'':<12} trailer: CRC-32C {result['crc'] * 1e3:.3f} ms "
            f"({result['crc'] / result['ours']:.1%} of decode+encode), grammar scan "
            f"{result['scan'] * 1e3:.2f} ms ({result['scan'] / result['ours']:.1%}; "
            f"run by decode; by encode only for a message with unknown fields)",
            flush=True,
        )


def main(argv: list[str]) -> int:
    """Print both tables; ``peak PATH`` and ``round-trip`` are the children's entry points."""
    if argv[:1] == ["peak"] and len(argv) == 2:
        print(json.dumps(_child_peak(argv[1])))
        return 0
    if argv == ["round-trip"]:
        print(json.dumps(_child_round_trip()))
        return 0
    if argv:
        print("usage: decode_memory.py", file=sys.stderr)
        return 2
    load = os.getloadavg()
    print(f"{os.cpu_count()} CPUs, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    with tempfile.TemporaryDirectory(prefix="dsxir-bench-decode-") as folder:
        _peak_table(folder, int(_mib() * MIB))
    _round_trip_table()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
