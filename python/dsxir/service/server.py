"""The gRPC server: CheckpointStoreService, health checking and reflection over one store.

:class:`CheckpointServer` runs in the calling process (threads); :func:`serve`
runs one until SIGTERM or SIGINT and then shuts down gracefully: health
turns NOT_SERVING, new calls are refused, watch streams end with
UNAVAILABLE, and calls in flight (commits included) get ``grace`` seconds to
finish before the store is closed.

Defaults are conservative: listen on ``127.0.0.1`` only (all interfaces only
when asked, e.g. ``0.0.0.0:50051``), messages up to 64 MiB, no
authentication unless a token is given, plaintext unless a certificate is
given.
"""

from __future__ import annotations

import signal
import sys
import threading
from concurrent import futures
from dataclasses import dataclass
from types import FrameType
from typing import TextIO

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc  # type: ignore[import-untyped]
from grpc_reflection.v1alpha import reflection  # type: ignore[import-untyped]

from dsxir.optimizer_session.validate import MAX_CHECKPOINT_BYTES
from dsxir.service.auth import TokenAuthInterceptor
from dsxir.service.defaults import (
    DEFAULT_LISTEN,
    DEFAULT_MAX_MESSAGE_BYTES,
    MAX_MESSAGE_LIMIT,
)
from dsxir.service.servicer import CheckpointStoreServicer
from dsxir.service.watch import WatchHub
from dsxir.store import close_store
from dsxir.store.events import CommitFeed
from dsxir.store.grpc.protocol import SERVICE_NAME
from dsxir.store.interface import Store

__all__ = [
    "DEFAULT_LISTEN",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "CheckpointServer",
    "ServerConfig",
    "TlsFiles",
    "serve",
]

assert MAX_MESSAGE_LIMIT == MAX_CHECKPOINT_BYTES + 64 * 1024


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of the server's TLS: certificate chain, key, and client CA for mTLS."""

    cert: str
    key: str
    client_ca: str | None = None


@dataclass(frozen=True)
class ServerConfig:
    """How to run the server (see the module text for the defaults)."""

    listen: str = DEFAULT_LISTEN
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    token: str | None = None
    tls: TlsFiles | None = None
    workers: int = 32
    grace_seconds: float = 30.0

    def check(self) -> None:
        """Refuse a configuration that cannot work (``ValueError`` saying why)."""
        host, sep, port = self.listen.rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ValueError(
                f"--listen must be HOST:PORT (e.g. {DEFAULT_LISTEN}), not {self.listen!r}"
            )
        if not 1024 <= self.max_message_bytes <= MAX_MESSAGE_LIMIT:
            raise ValueError(f"max message size must be in [1024, {MAX_MESSAGE_LIMIT}] bytes")
        if self.workers < 4:
            raise ValueError("at least 4 worker threads are needed")
        if self.grace_seconds < 0:
            raise ValueError("grace must not be negative")


class CheckpointServer:
    """A running gRPC server over ``store`` (started by the constructor)."""

    def __init__(self, store: Store, config: ServerConfig | None = None) -> None:
        """Bind and start; ``port`` is the bound port (useful with port 0)."""
        self.config = config = config or ServerConfig()
        config.check()
        self.store = store
        self.hub = WatchHub()
        feed = store if isinstance(store, CommitFeed) else None
        self.servicer = CheckpointStoreServicer(
            store,
            self.hub,
            publish_own_commits=feed is None,
            max_watchers=max(1, config.workers // 2),
        )
        limit = config.max_message_bytes
        interceptors: list[grpc.ServerInterceptor] = (
            [TokenAuthInterceptor(config.token)] if config.token else []
        )
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="dsxir-rpc"),
            handlers=[self.servicer.handler()],
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
            ],
        )
        self.health = health.HealthServicer(experimental_non_blocking=True)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        reflection.enable_server_reflection(
            (
                SERVICE_NAME,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ),
            self._server,
        )
        self.port = self._bind(config)
        self._unsubscribe = (
            feed.subscribe_commits(self.hub.publish, self.hub.interrupt) if feed else None
        )
        self._server.start()
        for name in ("", SERVICE_NAME):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._stopped = threading.Event()

    def _bind(self, config: ServerConfig) -> int:
        try:
            if config.tls is None:
                port = self._server.add_insecure_port(config.listen)
            else:
                credentials = grpc.ssl_server_credentials(
                    [(_read(config.tls.key), _read(config.tls.cert))],
                    root_certificates=_read(config.tls.client_ca) if config.tls.client_ca else None,
                    require_client_auth=config.tls.client_ca is not None,
                )
                port = self._server.add_secure_port(config.listen, credentials)
        except RuntimeError as exc:  # grpc's "Failed to bind to address ..."
            raise OSError(f"cannot listen on {config.listen}: {exc}") from None
        if port == 0:
            raise OSError(f"cannot listen on {config.listen}")
        return port

    @property
    def address(self) -> str:
        """``HOST:PORT`` the server listens on."""
        host = self.config.listen.rpartition(":")[0]
        return f"{host}:{self.port}"

    def stop(self, grace: float | None = None) -> None:
        """Shut down gracefully (see the module text) and close the store; idempotent."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.health.enter_graceful_shutdown()
        self.hub.close()
        done = self._server.stop(self.config.grace_seconds if grace is None else grace)
        done.wait()
        if self._unsubscribe is not None:
            self._unsubscribe()
        close_store(self.store)


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def serve(store: Store, config: ServerConfig, *, out: TextIO | None = None) -> int:
    """Run a server until SIGTERM or SIGINT, then shut down gracefully; return 0.

    Prints ``serving on HOST:PORT`` (one line, flushed) once the server accepts
    calls, and ``stopped`` when it has shut down.
    """
    out = out or sys.stdout
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server = CheckpointServer(store, config)
        print(f"serving on {server.address}", file=out, flush=True)
        while not stop.wait(3600):
            pass
        print("shutting down", file=out, flush=True)
        server.stop()
        print("stopped", file=out, flush=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
