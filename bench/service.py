"""``make bench-service``: commits per second and commit latency through the service.

For each backend (file store, PostgreSQL in a throwaway local cluster), each
checkpoint size (10 KB, 1 MB) and each number of concurrent clients (1, 4,
16), clients commit checkpoints of their own session through a server
process (``python -m dsxir.cli serve``) on loopback for a
fixed time; every commit is a full compare-and-swap ``put`` of the whole
checkpoint, validated by the server and made durable by the backend
(``fsync`` for files, a synchronous commit for PostgreSQL). Clients run in
two processes (threads inside each), all on this machine, so the figures
include the clients' own CPU.

A second table measures sustained per-trial commits: 8 clients, each a
process of its own working on its own session, commit one trial after
another for ``--trial-seconds`` (default 5); a commit is
``checkpoint.record_trial`` (a score, one float stat, as Optuna's one
parameter) on the client's checkpoint in memory followed by a
compare-and-swap ``PutCheckpointDelta`` of what changed (``Baseline.step``,
as the session runner commits), both timed. It runs on sessions of 50,000
trials (``DSXIR_BENCH_SERVICE_TRIALS`` sets another size for a quick run)
beside the anchor of 100 trials. Each session is built once in memory
(the large one by ``record_trial`` in a loop, then copied under each
client's session id by ``history.fork``) and created by one untimed put.
Goal: at least 500 commits/s at 50,000 trials.

Prints one row per case (commits/s, p50 and p99 latency in milliseconds);
``--json PATH`` writes them too. Run with ``make bench-service`` or
``python bench/service.py [--seconds S] [--quick] [--trial-seconds S]``. The
throwaway PostgreSQL cluster is the test suite's (tests/python/pg_cluster.py).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "python"))

__all__ = ["main"]

SIZES = {"10KB": 10_000, "1MB": 1_000_000}
CLIENTS = (1, 4, 16)
TRIAL_CLIENTS = 8
TRIAL_ANCHOR = 100
DEFAULT_TRIALS = 50_000
GOAL_COMMITS_PER_S = 500


def _checkpoint_bytes(session_id: str, size: int) -> Any:
    from dsxir.optimizer_session import checkpoint

    cp = checkpoint.new(
        session_id=session_id,
        optimizer="bench.Optimizer",
        trainset_hash=bytes(32),
        sampler_blob=os.urandom(max(0, size - 1200)),
        sampler_format=("bench.Sampler", 1),
    )
    for i in range(10):
        checkpoint.record_trial(cp, score=i / 10, candidate_id=f"c{i}", stats={"tokens": i * 100})
    return cp


def _client_process(
    address: str, prefix: str, threads: int, size: int, seconds: float, barrier: Barrier, out: Any
) -> None:
    from dsxir.store.grpc import GrpcStore

    store = GrpcStore(address, timeout=120)
    latencies: list[list[float]] = [[] for _ in range(threads)]
    start = threading.Event()
    stop_at = [0.0]

    def run(index: int) -> None:
        cp = _checkpoint_bytes(f"{prefix}-{index}", size)
        generation = store.put(cp)  # create, untimed
        start.wait()
        while time.monotonic() < stop_at[0]:
            began = time.perf_counter()
            generation = store.put(cp, expected_generation=generation)
            latencies[index].append(time.perf_counter() - began)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait(120)
    stop_at[0] = time.monotonic() + seconds
    start.set()
    for worker in workers:
        worker.join()
    store.close()
    out.put([value for group in latencies for value in group])


def _trial_client_process(
    address: str, session_id: str, base: bytes, seconds: float, barrier: Barrier, out: Any
) -> None:
    """One client: per-trial commits (``record_trial`` + a delta, as a session commits)."""
    from sessions import add_trial

    from dsxir.optimizer_session import checkpoint, history
    from dsxir.optimizer_session.delta import Baseline
    from dsxir.store.grpc import GrpcStore

    store = GrpcStore(address, timeout=120)
    cp = history.fork(checkpoint.decode(base), session_id)
    generation = store.put(cp)  # create, untimed
    baseline = Baseline.of(cp)
    trial = len(cp.progress.trial_log)
    latencies: list[float] = []
    barrier.wait(300)
    started = time.monotonic()
    stop_at = started + seconds
    finished = started
    while finished < stop_at:
        began = time.perf_counter()
        add_trial(cp, trial)
        delta, following = baseline.step(cp, base_generation=generation)
        generation = store.put_delta(delta)
        baseline = following
        latencies.append(time.perf_counter() - began)
        finished = time.monotonic()
        trial += 1
    store.close()
    out.put((latencies, finished - started))


def _measure(address: str, tag: str, clients: int, size: int, seconds: float) -> dict[str, Any]:
    processes = 1 if clients == 1 else 2
    shares = [
        clients // processes + (1 if i < clients % processes else 0) for i in range(processes)
    ]
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(processes)
    out = context.Queue()
    children = [
        context.Process(
            target=_client_process,
            args=(address, f"{tag}-p{i}", share, size, seconds, barrier, out),
        )
        for i, share in enumerate(shares)
    ]
    for child in children:
        child.start()
    samples: list[float] = []
    for _ in children:
        samples.extend(out.get(timeout=seconds + 120))
    for child in children:
        child.join(60)
    return _summary(clients, samples, seconds)


def _measure_trials(address: str, tag: str, base: bytes, seconds: float) -> dict[str, Any]:
    """8 client processes committing trials; the rate is over the longest client's time."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(TRIAL_CLIENTS)
    out = context.Queue()
    children = [
        context.Process(
            target=_trial_client_process,
            args=(address, f"{tag}-c{i}", base, seconds, barrier, out),
        )
        for i in range(TRIAL_CLIENTS)
    ]
    for child in children:
        child.start()
    samples: list[float] = []
    elapsed = seconds
    for _ in children:
        latencies, took = out.get(timeout=seconds + 300)
        samples.extend(latencies)
        elapsed = max(elapsed, took)
    for child in children:
        child.join(60)
    return _summary(TRIAL_CLIENTS, samples, elapsed)


def _summary(clients: int, samples: list[float], seconds: float) -> dict[str, Any]:
    samples.sort()
    count = len(samples)
    return {
        "clients": clients,
        "commits": count,
        "commits_per_s": count / seconds,
        "p50_ms": 1000 * statistics.median(samples) if samples else float("nan"),
        "p99_ms": 1000 * samples[min(count - 1, int(count * 0.99))] if samples else float("nan"),
    }


def _start_server(store_url: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [
            sys.executable, "-m", "dsxir.cli", "serve",
            "--store", store_url, "--listen", "127.0.0.1:0",
            "--max-message-bytes", str(16 * 1024 * 1024), "--workers", "48",
        ],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("serving on "):
        process.kill()
        raise RuntimeError(f"the server did not start: {line!r}")
    return process, line.split()[-1]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measured time per case")
    parser.add_argument("--quick", action="store_true", help="10KB only, 1 and 16 clients")
    parser.add_argument(
        "--trial-seconds", type=float, default=5.0, help="measured time per per-trial case"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    large = int(os.environ.get("DSXIR_BENCH_SERVICE_TRIALS", "") or DEFAULT_TRIALS)

    from pg_cluster import LocalCluster

    sizes = {"10KB": SIZES["10KB"]} if args.quick else SIZES
    clients = (1, 16) if args.quick else CLIENTS
    results: list[dict[str, Any]] = []
    print(f"{os.cpu_count()} CPUs; {args.seconds:g} s per case; clients and server on loopback")
    print(
        f"{'backend':<10} {'size':>5} {'clients':>7} {'commits/s':>10} {'p50 ms':>8} {'p99 ms':>8}"
    )
    with tempfile.TemporaryDirectory(prefix="dsxir-bench-") as folder, LocalCluster() as cluster:
        backends = {
            "file": f"file:{folder}/store",
            "postgres": cluster.url(schema="bench", pool_max="16"),
        }
        for backend, url in backends.items():
            server, address = _start_server(url)
            try:
                for size_name, size in sizes.items():
                    for count in clients:
                        tag = f"{backend}-{size_name}-{count}"
                        row = {"backend": backend, "size": size_name}
                        row |= _measure(address, tag, count, size, args.seconds)
                        results.append(row)
                        print(
                            f"{backend:<10} {size_name:>5} {count:>7} "
                            f"{row['commits_per_s']:>10.0f} {row['p50_ms']:>8.2f} "
                            f"{row['p99_ms']:>8.2f}",
                            flush=True,
                        )
            finally:
                server.terminate()
                server.wait(60)
        results.extend(_per_trial(backends, large, args.trial_seconds))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)
    return 0


def _per_trial(backends: dict[str, str], large: int, seconds: float) -> list[dict[str, Any]]:
    """The per-trial table: 8 clients at ``TRIAL_ANCHOR`` and ``large`` trials per session."""
    from sessions import trial_session

    from dsxir.optimizer_session import checkpoint

    began = time.perf_counter()
    sessions = {
        trials: checkpoint.encode(trial_session(trials, "bench-trials"))
        for trials in (TRIAL_ANCHOR, large)
    }
    print(
        f"\nper-trial commits (record_trial + CAS put_delta), {TRIAL_CLIENTS} client processes, "
        f"{seconds:g} s per case; sessions built in {time.perf_counter() - began:.1f} s "
        f"({len(sessions[large]):,} bytes at {large:,} trials)"
    )
    print(
        f"{'backend':<10} {'trials':>7} {'clients':>7} {'commits/s':>10} {'p50 ms':>8} "
        f"{'p99 ms':>8}  goal"
    )
    rows: list[dict[str, Any]] = []
    for backend, url in backends.items():
        server, address = _start_server(url)
        try:
            for trials, base in sessions.items():
                row: dict[str, Any] = {"backend": backend, "trials": trials}
                row |= _measure_trials(address, f"{backend}-trials-{trials}", base, seconds)
                rows.append(row)
                goal = (
                    "anchor"
                    if trials == TRIAL_ANCHOR
                    else f">= {GOAL_COMMITS_PER_S} commits/s "
                    + ("(met)" if row["commits_per_s"] >= GOAL_COMMITS_PER_S else "(not met)")
                )
                print(
                    f"{backend:<10} {trials:>7} {TRIAL_CLIENTS:>7} "
                    f"{row['commits_per_s']:>10.0f} {row['p50_ms']:>8.2f} "
                    f"{row['p99_ms']:>8.2f}  {goal}",
                    flush=True,
                )
        finally:
            server.terminate()
            server.wait(60)
    return rows


if __name__ == "__main__":
    sys.exit(main())
