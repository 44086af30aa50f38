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

Prints one row per case (commits/s, p50 and p99 latency in milliseconds);
``--json PATH`` writes them too. Run with ``make bench-service`` or
``python bench/service.py [--seconds S] [--quick]``. The throwaway
PostgreSQL cluster is the test suite's (tests/python/pg_cluster.py).
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


def _measure(address: str, tag: str, clients: int, size: int, seconds: float) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    processes = 1 if clients == 1 else 2
    barrier = context.Barrier(processes)
    out = context.Queue()
    shares = [
        clients // processes + (1 if i < clients % processes else 0) for i in range(processes)
    ]
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
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)

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
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
