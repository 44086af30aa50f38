"""Helpers of the store and service tests: a private PostgreSQL, servers, clients.

One PostgreSQL cluster serves the whole test run: it is started on first use
(``initdb`` + ``pg_ctl`` in a temporary folder, as the ``postgres`` user when
running as root, on a unix socket and a free loopback port) and stopped and
removed when the process exits. Each test gets its own schema, so tests never
see each other's rows. Servers run in the test process (threads) unless a
test needs to kill one, then :func:`start_server_process` runs
``python -m dsxir.cli serve`` as a child. The fixtures built on these are in
conftest.py.
"""

from __future__ import annotations

import atexit
import itertools
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import psycopg
from google.rpc import error_details_pb2  # type: ignore[import-untyped]
from grpc_status import rpc_status  # type: ignore[import-untyped]

from dsxir.service import CheckpointServer, ServerConfig
from dsxir.store import FileStore, MemoryStore, Store
from dsxir.store.postgres import PostgresStore
from pg_cluster import LocalCluster

TOKEN = "test-token-0123456789abcdef"
REPO = Path(__file__).resolve().parents[2]

_cluster_lock = threading.Lock()
_cluster: LocalCluster | None = None
_schemas = itertools.count()


def shared_cluster() -> LocalCluster:
    """The test run's PostgreSQL cluster, started on first use."""
    global _cluster
    with _cluster_lock:
        if _cluster is None:
            cluster = LocalCluster()
            try:
                cluster.start()
            except BaseException:
                cluster.destroy()
                raise
            atexit.register(cluster.destroy)
            if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
                # A run stopped with SIGTERM (a CI timeout) still removes its cluster.
                signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
            _cluster = cluster
        return _cluster


def new_schema() -> str:
    """A schema name no other test uses."""
    return f"t{os.getpid()}_{next(_schemas)}"


def pg_url_of_new_schema(**options: str) -> str:
    """A ``postgresql://`` URL of a fresh schema of the shared cluster."""
    return shared_cluster().url(schema=new_schema(), **{"pool_timeout": "3", **options})


def backend(kind: str, tmp_path: Path) -> Store:
    """A new store of ``kind``: memory, file or postgres."""
    if kind == "memory":
        return MemoryStore()
    if kind == "file":
        return FileStore(tmp_path / "store")
    if kind == "postgres":
        return PostgresStore.from_url(pg_url_of_new_schema())
    raise ValueError(kind)


def serve_in_thread(store: Store, **config: object) -> CheckpointServer:
    """A server over ``store`` in this process, on a free loopback port."""
    return CheckpointServer(store, ServerConfig(listen="127.0.0.1:0", **config))  # type: ignore[arg-type]


def sql(url: str, statement: str) -> list[tuple[object, ...]]:
    """Run one statement on the cluster (outside any store) and return its rows."""
    conninfo = re.sub(r"[?&](schema|pool_timeout|pool_min|pool_max)=[^&]*", "", url)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        cursor = conn.execute(statement)
        return cursor.fetchall() if cursor.description else []


class ServerProcess:
    """``python -m dsxir.cli serve`` as a child process."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        """Start it and wait for its ``serving on HOST:PORT`` line."""
        self.args = args
        self.process = subprocess.Popen(
            [sys.executable, "-m", "dsxir.cli", "serve", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
            cwd=REPO,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("serving on "):
            self.process.kill()
            _, err = self.process.communicate(timeout=30)
            raise AssertionError(f"server did not start: {line!r} {err}")
        self.address = line.split()[-1]

    def kill(self) -> None:
        """SIGKILL and reap."""
        self.process.kill()
        self.process.wait(timeout=30)

    def terminate(self, timeout: float = 60) -> tuple[int, str]:
        """SIGTERM, wait; return the exit code and the rest of stdout."""
        self.process.terminate()
        out, _ = self.process.communicate(timeout=timeout)
        return self.process.returncode, out


def start_server_process(store_url: str, *extra: str, listen: str = "127.0.0.1:0") -> ServerProcess:
    """A server process over ``store_url``."""
    return ServerProcess(["--store", store_url, "--listen", listen, *extra])


def wait_until(condition: object, timeout: float, message: str) -> None:
    """Poll ``condition()`` until true or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s: {message}")


@dataclass
class Refusal:
    """What a failed call said: its code, message, ErrorInfo and BadRequest fields."""

    code: grpc.StatusCode
    details: str
    reason: str | None
    metadata: dict[str, str]
    fields: list[str]
    trailers: list[tuple[str, bytes | str]]


def refusal_of(error: grpc.RpcError) -> Refusal:
    """What ``error`` said, with the details the service attaches (ErrorInfo, BadRequest)."""
    reason, metadata, fields = None, {}, []
    status = rpc_status.from_call(error)
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, metadata = info.reason, dict(info.metadata)
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields += [violation.field for violation in bad.field_violations]
    trailers = [(key, value) for key, value in error.trailing_metadata() or ()]
    return Refusal(error.code(), error.details() or "", reason, metadata, fields, trailers)
