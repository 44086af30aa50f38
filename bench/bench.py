"""Speed and memory of the Python library, as ratios against pickle/json in one run.

Run by ``make bench``. Nothing here is a test: it prints figures and the
targets beside them. Each timing is the best of several repeats.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from dsxir.optimizer_session import checkpoint as ck
from dsxir.session import open_session
from dsxir.store import FileStore, MemoryStore, Store

TRAINSET_HASH = hashlib.sha256(b"bench").digest()


def best_of(fn: Callable[[], Any], repeat: int = 7) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def session(trials: int, stats_size: int = 3) -> ck.Checkpoint:
    cp = ck.new(
        session_id="bench",
        optimizer="dspy.teleprompt.MIPROv2",
        trainset_hash=TRAINSET_HASH,
        sampler_blob=b"\x00" * 256,
        sampler_format=("bench.Sampler", 1),
        optimizer_opts={"num_candidates": 16, "temperature": 0.7},
    )
    for i in range(trials):
        if i % 10 == 9:
            ck.record_trial(
                cp,
                score=None,
                status="error",
                candidate_id=f"cand-{i}",
                duration_ms=500,
                error={"message": "rate limited", "retry_after": 30},
                error_class="RateLimitError",
            )
        else:
            stats = {f"stat_{k}": i * k + 0.5 for k in range(stats_size)}
            ck.record_trial(
                cp,
                score=(i * 7919 % 1000) / 1000,
                candidate_id=f"cand-{i}",
                stats=stats,
                duration_ms=1200 + i,
            )
    return cp


def as_python(cp: ck.Checkpoint) -> dict[str, Any]:
    """The same checkpoint as plain Python data, for pickle and json."""
    log = []
    for e in cp.progress.trial_log:
        log.append(
            {
                "trial_idx": e.trial_idx,
                "candidate_id": e.candidate_id if e.HasField("candidate_id") else None,
                "score": e.score if e.HasField("score") else None,
                "status": "ok" if e.status == 1 else "error",
                "stats": ck.from_term(e.stats) if e.HasField("stats") else None,
                "duration_ms": e.duration_ms,
                "error": ck.from_term(e.error) if e.HasField("error") else None,
                "error_class": e.error_class if e.HasField("error_class") else None,
            }
        )
    return {
        "session_id": cp.session_id,
        "optimizer": cp.optimizer,
        "optimizer_opts": [(o.key, ck.from_term(o.value)) for o in cp.optimizer_opts],
        "trainset_hash": cp.trainset_hash.hex(),
        "created_at": cp.created_at.ToJsonString(),
        "updated_at": cp.updated_at.ToJsonString(),
        "progress": {
            "trial_log": log,
            "best_score": cp.progress.best_score,
            "best_trial_idx": cp.progress.best_trial_idx,
            "attempts": cp.progress.attempts,
            "completed": cp.progress.completed,
            "errors": cp.progress.errors,
            "started_at": cp.progress.started_at.ToJsonString(),
        },
        "sampler_blob": cp.sampler_blob.hex(),
        "sampler_format": [cp.sampler_format.module, cp.sampler_format.version],
        "status": "running",
        "terminal_reason": None,
    }


def bench_round_trip() -> float:
    cp = session(10_000)
    raw = ck.encode(cp)
    data = as_python(cp)
    pickled = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
    texted = json.dumps(data)
    ours = best_of(lambda: ck.encode(ck.decode(raw)))
    pk = best_of(lambda: pickle.dumps(pickle.loads(pickled), protocol=pickle.HIGHEST_PROTOCOL))
    js = best_of(lambda: json.dumps(json.loads(texted)))
    print("1. decode+encode, 10,000-trial checkpoint")
    print(f"   sizes: protobuf {len(raw):,} B, pickle {len(pickled):,} B, json {len(texted):,} B")
    print(f"   dsxir {ours * 1e3:.1f} ms | pickle {pk * 1e3:.1f} ms | json {js * 1e3:.1f} ms")
    ratio = ours / pk
    print(f"   ratio vs pickle {ratio:.2f}x (target <= 1.0x), vs json {ours / js:.2f}x")
    return ratio


def bench_trainset() -> float:
    trainset = [
        {
            "question": f"What is {i} plus {i + 1}? Explain briefly.",
            "answer": str(2 * i + 1),
            "id": i,
            "tags": ["arithmetic", "easy"],
        }
        for i in range(20_000)
    ]
    ours = best_of(lambda: ck.hash_trainset(trainset), repeat=5)
    pk = best_of(lambda: hashlib.sha256(pickle.dumps(trainset)).digest(), repeat=5)
    ratio = ours / pk
    print("2. hash_trainset, 20,000 examples")
    print(f"   dsxir {ours * 1e3:.1f} ms | sha256(pickle.dumps) {pk * 1e3:.1f} ms")
    print(f"   ratio {ratio:.2f}x (target <= 4x)")
    return ratio


def bench_record_trial() -> float:
    def per_call(base: int) -> float:
        best = float("inf")
        for _ in range(5):
            cp = session(base)
            start = time.perf_counter()
            for i in range(1000):
                ck.record_trial(cp, score=i / 1000, stats={"tokens": i, "latency": 0.5})
            best = min(best, (time.perf_counter() - start) / 1000)
        return best

    small, large = per_call(100), per_call(10_000)
    ratio = large / small
    print("3. record_trial, 1,000 calls after 100 vs after 10,000 trials")
    print(f"   {small * 1e6:.1f} us/call at 100 | {large * 1e6:.1f} us/call at 10,000")
    print(f"   ratio {ratio:.2f}x (target <= 1.5x)")
    return ratio


PEAK_SCRIPT = """
import sys
from dsxir.optimizer_session import checkpoint as ck
from dsxir.session import open_session
from dsxir.store import FileStore, MemoryStore, Store

def high_water_kib():  # VmHWM is per process image; ru_maxrss survives exec
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))

baseline = high_water_kib()
with open(sys.argv[1], "rb") as f:
    raw = f.read()
cp = ck.decode(raw)
print(len(raw), (high_water_kib() - baseline) * 1024, len(cp.progress.trial_log))
"""


def peak_memory(label: str, cp: ck.Checkpoint, path: str) -> float:
    """Peak RSS growth of a fresh process that reads and decodes ``cp``'s bytes.

    The figure includes the input bytes themselves (1x) and everything decode
    allocates on top of them.
    """
    raw = ck.encode(cp)
    with open(path, "wb") as f:
        f.write(raw)
    del raw
    out = subprocess.run(
        [sys.executable, "-c", PEAK_SCRIPT, path], capture_output=True, text=True, check=True
    ).stdout.split()
    size, grown, trials = int(out[0]), int(out[1]), int(out[2])
    ratio = grown / size
    print(f"   {label}: {size / 2**20:.0f} MiB, {trials:,} trials")
    print(f"   peak growth {grown / 2**20:.0f} MiB = {ratio:.2f}x the input, input included")
    return ratio


def bench_peak_memory(tmp: str) -> list[float]:
    print("4. peak memory of reading and decoding a ~100 MB checkpoint (target <= 3x)")
    text = session(0)
    for i in range(24_000):
        prompt = f"Candidate {i}: " + "Answer the question step by step. " * 120
        ck.record_trial(text, score=i / 24_000, stats={"prompt": prompt, "tokens": 900 + i})
    blob = session(2_000)
    blob.sampler_blob = b"\x5a" * (96 * 1024 * 1024)
    small = session(500_000, stats_size=6)
    return [
        peak_memory("text-heavy (24,000 trials with ~4 KB prompts)", text, f"{tmp}/text.binpb"),
        peak_memory("blob-heavy (96 MiB sampler blob)", blob, f"{tmp}/blob.binpb"),
        peak_memory("small-trial-heavy (500,000 tiny trials)", small, f"{tmp}/small.binpb"),
    ]


def _trial_pairs(bare_store: Store, runner_store: Store, count: int) -> tuple[float, float]:
    """Seconds spent on ``count`` trials committed by hand and by the runner, taking turns."""
    cp = ck.new(
        session_id="bench",
        optimizer="bench.Opt",
        trainset_hash=TRAINSET_HASH,
        sampler_blob=b"",
        sampler_format=("bench.Sampler", 1),
    )
    generation = bare_store.put(cp)
    session = open_session(
        runner_store,
        "bench",
        optimizer="bench.Opt",
        sampler_format=("bench.Sampler", 1),
        trainset_hash=TRAINSET_HASH,
        handle_signals=False,
    )
    bare = ours = 0.0
    clock = time.perf_counter
    for i in range(count):
        start = clock()
        ck.record_trial(cp, score=i / count, stats={"tokens": i}, sampler_blob=b"s")
        generation = bare_store.put(cp, expected_generation=generation)
        middle = clock()
        session.record_trial(score=i / count, stats={"tokens": i}, sampler_blob=b"s")
        ours += clock() - middle
        bare += middle - start
    session.close()
    return bare, ours


def bench_session_overhead(tmp: str) -> dict[str, float]:
    """Per trial: ``Session.record_trial`` against ``record_trial`` + ``put`` by hand.

    Each round commits the same trials to two new sessions in two new stores
    of a kind, one by hand and one through the runner, trial by trial in
    turn so that both see the same machine; the figure is the median round.
    The runner's extra work is its checks, its lease (taken once, renewed by
    a thread) and keeping the last committed state for a rollback.
    """
    print("5. session runner per trial vs bare record_trial + put (target <= 1.2x)")
    ratios = {}
    for label, count in (("memory", 1000), ("file", 200)):
        rounds = []
        for n in range(5):
            if label == "memory":
                stores: tuple[Store, Store] = (MemoryStore(), MemoryStore())
            else:
                stores = (FileStore(f"{tmp}/bare-{n}"), FileStore(f"{tmp}/runner-{n}"))
            rounds.append(_trial_pairs(*stores, count))
        rounds.sort(key=lambda pair: pair[1] / pair[0])
        bare, ours = rounds[len(rounds) // 2]
        ratios[label] = ours / bare
        print(
            f"   {label} store, {count:,} trials: runner {ours / count * 1e6:.1f} us/trial | "
            f"bare {bare / count * 1e6:.1f} us/trial | ratio {ours / bare:.2f}x"
        )
    return ratios


def main() -> int:
    from google.protobuf import __version__ as protobuf_version
    from google.protobuf.internal import api_implementation

    print(
        f"python {sys.version.split()[0]}, protobuf {protobuf_version} "
        f"({api_implementation.Type()})"
    )
    bench_round_trip()
    bench_trainset()
    bench_record_trial()
    with tempfile.TemporaryDirectory() as tmp:
        bench_peak_memory(tmp)
    with tempfile.TemporaryDirectory() as tmp:
        bench_session_overhead(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
