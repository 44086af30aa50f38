"""The gRPC server: CheckpointStoreService, health checking and reflection over one store.

:class:`CheckpointServer` runs in the calling process: the calls are
handled on an asyncio loop in a background thread (one loop for every server
of the process), store work on a pool of ``workers`` threads (but the
small deltas a file store appends at once: :mod:`dsxir.service.inline`).
:func:`serve` runs one until SIGTERM or SIGINT and then shuts down gracefully: health
turns NOT_SERVING, new calls are refused, watch streams end with
UNAVAILABLE, and calls in flight (commits included) get ``grace`` seconds to
finish before the store is closed.

Defaults are conservative: listen on ``127.0.0.1`` only (another address
only when asked, and without a token and TLS only with ``insecure``),
messages up to 64 MiB, no authentication unless a token is given, plaintext
unless a certificate is given. No client can hold the server: a call is
refused before its message is read when unauthenticated or over the cap of
calls at once, ended when its message does not arrive within the read
timeout, and refused when its request would take more than what is left of
the memory budget; health checks are answered whatever the other calls do.
docs/security.md lists every limit.
"""

from __future__ import annotations

import asyncio
import ipaddress
import signal
import sys
import threading
from collections.abc import AsyncIterator, Coroutine
from concurrent import futures
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2  # type: ignore[import-untyped]
from grpc_reflection.v1alpha import (  # type: ignore[import-untyped]
    reflection,
    reflection_pb2,
)

from dsxir.optimizer_session.validate import MAX_CHECKPOINT_BYTES
from dsxir.service.auth import TokenAuthInterceptor
from dsxir.service.defaults import (
    DEFAULT_GRACE_SECONDS,
    DEFAULT_LISTEN,
    DEFAULT_MAX_CALLS,
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_MEMORY_BUDGET_BYTES,
    DEFAULT_READ_TIMEOUT_SECONDS,
    DEFAULT_WATCH_IDLE_SECONDS,
    DEFAULT_WATCH_WRITE_TIMEOUT_SECONDS,
    DEFAULT_WATCHERS_PER_CLIENT,
    DEFAULT_WORKERS,
    KEEPALIVE_TIME_MS,
    KEEPALIVE_TIMEOUT_MS,
    MAX_CONNECTION_AGE_GRACE_MS,
    MAX_CONNECTION_AGE_MS,
    MAX_CONNECTION_IDLE_MS,
    MAX_MESSAGE_LIMIT,
    MAX_STREAMS_PER_CONNECTION,
    MIN_CLIENT_PING_INTERVAL_MS,
    PUT_COST_CANONICAL,
)
from dsxir.service.failures import RpcFailure, abort
from dsxir.service.limits import MemoryBudget, Slots, WatchSlots, client_of
from dsxir.service.servicer import (
    MAX_SMALL_REQUEST_BYTES,
    CheckpointStoreServicer,
    Limits,
    next_message,
    read_request,
    too_many_calls,
)
from dsxir.service.watch import WatchHub
from dsxir.store import close_store
from dsxir.store.events import CommitFeed
from dsxir.store.grpc.protocol import SERVICE_NAME, Reason
from dsxir.store.interface import Store

__all__ = [
    "DEFAULT_LISTEN",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "CheckpointServer",
    "ServerConfig",
    "TlsFiles",
    "is_loopback_host",
    "serve",
]

assert MAX_MESSAGE_LIMIT == MAX_CHECKPOINT_BYTES + 64 * 1024

_T = TypeVar("_T")
_HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
if TYPE_CHECKING:
    _Context = grpc.aio.ServicerContext[Any, Any]


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of the server's TLS: certificate chain, key, and client CA for mTLS."""

    cert: str
    key: str
    client_ca: str | None = None


@dataclass(frozen=True)
class ServerConfig:
    """How to run the server (see the module text and docs/security.md for the defaults)."""

    listen: str = DEFAULT_LISTEN
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    token: str | None = None
    tls: TlsFiles | None = None
    workers: int = DEFAULT_WORKERS
    grace_seconds: float = DEFAULT_GRACE_SECONDS
    max_calls: int = DEFAULT_MAX_CALLS
    read_timeout: float = DEFAULT_READ_TIMEOUT_SECONDS
    memory_budget: int = DEFAULT_MEMORY_BUDGET_BYTES
    max_watchers: int | None = None
    """None: half of ``workers``."""
    watchers_per_client: int = DEFAULT_WATCHERS_PER_CLIENT
    watch_idle_seconds: float = DEFAULT_WATCH_IDLE_SECONDS
    watch_write_timeout: float = DEFAULT_WATCH_WRITE_TIMEOUT_SECONDS
    insecure: bool = False
    """Serve on an address other than loopback without a token and TLS."""

    @property
    def watcher_limit(self) -> int:
        """Watch streams open at once."""
        return self.max_watchers if self.max_watchers is not None else max(1, self.workers // 2)

    @property
    def host(self) -> str:
        """The host part of ``listen``."""
        return self.listen.rpartition(":")[0]

    def check(self) -> None:
        """Refuse a configuration that cannot work or is unsafe (``ValueError`` saying why)."""
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
        if self.max_calls < 1:
            raise ValueError("--max-calls must be at least 1")
        if not self.read_timeout > 0:
            raise ValueError("--read-timeout must be positive")
        needed = PUT_COST_CANONICAL * self.max_message_bytes
        if self.memory_budget < needed:
            raise ValueError(
                f"--memory-budget must be at least {PUT_COST_CANONICAL} x --max-message-bytes "
                f"({needed} bytes), so that the largest checkpoint can be checked"
            )
        if self.max_watchers is not None and self.max_watchers < 1:
            raise ValueError("--max-watchers must be at least 1")
        if self.watchers_per_client < 1:
            raise ValueError("--watchers-per-client must be at least 1")
        if not self.watch_idle_seconds > 0 or not self.watch_write_timeout > 0:
            raise ValueError("watch timeouts must be positive")
        exposed = not is_loopback_host(host) and self.token is None and self.tls is None
        if exposed and not self.insecure:
            raise ValueError(
                f"refusing to serve on {self.listen} without a token or TLS: anyone who "
                "reaches it could read, overwrite and delete every checkpoint; give "
                "--token-file or --token-env and --tls-cert/--tls-key, or --insecure "
                "to serve anyway"
            )

    def warnings(self) -> list[str]:
        """One line per unsafe choice this configuration makes knowingly."""
        if is_loopback_host(self.host):
            return []
        if self.token is None and self.tls is None:
            return [
                f"warning: serving on {self.listen} without a token or TLS (--insecure): "
                "anyone who reaches it can read, overwrite and delete every checkpoint"
            ]
        if self.tls is None:
            return [
                f"warning: serving on {self.listen} without TLS: the bearer token and the "
                "checkpoints travel in plain text"
            ]
        if self.token is None and self.tls.client_ca is None:
            return [
                f"warning: serving on {self.listen} without a token or client certificates: "
                "anyone who reaches it can read, overwrite and delete every checkpoint"
            ]
        return []


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (of ``HOST:PORT``, IPv6 in brackets) is a loopback address."""
    host = host.removeprefix("[").removesuffix("]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- the shared asyncio loop ------------------------------------------------------

_loop_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def _shared_loop() -> asyncio.AbstractEventLoop:
    """The process's loop of every server, running in a daemon thread (started once).

    One loop for all: gRPC's asyncio layer polls for every loop through the
    first one, so servers must not come and go with loops of their own.
    """
    global _loop
    with _loop_lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="dsxir-grpc", daemon=True)
            thread.start()
            _loop = loop
        return _loop


def _on_loop(coroutine: Coroutine[Any, Any, _T]) -> _T:
    return asyncio.run_coroutine_threadsafe(coroutine, _shared_loop()).result()


# --- the server -------------------------------------------------------------------


class CheckpointServer:
    """A running gRPC server over ``store`` (started by the constructor)."""

    def __init__(self, store: Store, config: ServerConfig | None = None) -> None:
        """Bind and start; ``port`` is the bound port (useful with port 0)."""
        self.config = config = config or ServerConfig()
        config.check()
        self.store = store
        self.hub = WatchHub()
        feed = store if isinstance(store, CommitFeed) else None
        self.limits = Limits(
            calls=Slots(config.max_calls),
            memory=MemoryBudget(config.memory_budget),
            watches=WatchSlots(config.watcher_limit, config.watchers_per_client),
            read_timeout=config.read_timeout,
            watch_idle_seconds=config.watch_idle_seconds,
            watch_write_timeout=config.watch_write_timeout,
        )
        self._executor = futures.ThreadPoolExecutor(
            max_workers=config.workers, thread_name_prefix="dsxir-rpc"
        )
        self.servicer = CheckpointStoreServicer(
            store,
            self.hub,
            publish_own_commits=feed is None,
            limits=self.limits,
            executor=self._executor,
        )
        self.health = health.aio.HealthServicer()
        self._reflection = reflection.aio.ReflectionServicer(
            (SERVICE_NAME, _HEALTH_SERVICE, reflection.SERVICE_NAME)
        )
        self._stopped = threading.Event()
        try:
            self._server, self.port = _on_loop(self._start())
        except BaseException:
            self._executor.shutdown(wait=False)
            raise
        self._unsubscribe = (
            feed.subscribe_commits(self.hub.publish, self.hub.interrupt) if feed else None
        )

    async def _start(self) -> tuple[grpc.aio.Server, int]:
        config = self.config
        self._closing = self.servicer.closing = asyncio.Event()
        limit = config.max_message_bytes
        interceptors: list[grpc.aio.ServerInterceptor] = (
            [TokenAuthInterceptor(config.token)] if config.token else []
        )
        server = grpc.aio.server(
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
                ("grpc.max_concurrent_streams", MAX_STREAMS_PER_CONNECTION),
                ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
                ("grpc.keepalive_timeout_ms", KEEPALIVE_TIMEOUT_MS),
                ("grpc.keepalive_permit_without_calls", 0),
                ("grpc.http2.min_ping_interval_without_data_ms", MIN_CLIENT_PING_INTERVAL_MS),
                (
                    "grpc.http2.min_recv_ping_interval_without_data_ms",
                    MIN_CLIENT_PING_INTERVAL_MS,
                ),
                ("grpc.http2.max_ping_strikes", 2),
                ("grpc.max_connection_idle_ms", MAX_CONNECTION_IDLE_MS),
                ("grpc.max_connection_age_ms", MAX_CONNECTION_AGE_MS),
                ("grpc.max_connection_age_grace_ms", MAX_CONNECTION_AGE_GRACE_MS),
            ],
        )
        server.add_generic_rpc_handlers(
            (self.servicer.handler(), self._health_handler(), self._reflection_handler())
        )
        port = self._bind(server, config)
        await server.start()
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        return server, port

    def _bind(self, server: grpc.aio.Server, config: ServerConfig) -> int:
        try:
            if config.tls is None:
                port = server.add_insecure_port(config.listen)
            else:
                credentials = grpc.ssl_server_credentials(
                    [(_read(config.tls.key), _read(config.tls.cert))],
                    root_certificates=_read(config.tls.client_ca) if config.tls.client_ca else None,
                    require_client_auth=config.tls.client_ca is not None,
                )
                port = server.add_secure_port(config.listen, credentials)
        except RuntimeError as exc:  # grpc's "Failed to bind to address ..."
            raise OSError(f"cannot listen on {config.listen}: {exc}") from None
        if port == 0:
            raise OSError(f"cannot listen on {config.listen}")
        return port

    # --- health checking and reflection, with the same bounds as the service -----

    def _health_handler(self) -> grpc.GenericRpcHandler:
        """grpc.health.v1.Health: Check is exempt from the call cap, Watch is a watch."""

        async def check(request_iterator: Any, context: _Context) -> Any:
            data: bytes = await read_request(context, self.limits.read_timeout, self._closing)
            request = _parse_health(data)
            if request is None:
                await abort(context, _BAD_HEALTH_REQUEST)
            return await self.health.Check(request, context)

        async def watch(request_iterator: Any, context: _Context) -> None:
            data: bytes = await read_request(context, self.limits.read_timeout, self._closing)
            request = _parse_health(data)
            if request is None:
                await abort(context, _BAD_HEALTH_REQUEST)
            client = client_of(context.peer())
            refusal = self.limits.watches.try_acquire(client)
            if refusal is not None:
                await abort(
                    context,
                    RpcFailure(
                        grpc.StatusCode.RESOURCE_EXHAUSTED, refusal, Reason.TOO_MANY_WATCHERS
                    ),
                )
            watching = asyncio.ensure_future(self.health.Watch(request, context))
            closing = asyncio.ensure_future(self._closing.wait())
            try:
                await asyncio.wait((watching, closing), return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (watching, closing):
                    task.cancel()
                self.limits.watches.release(client)

        serialize = health_pb2.HealthCheckResponse.SerializeToString
        return grpc.method_handlers_generic_handler(
            _HEALTH_SERVICE,
            {
                "Check": grpc.stream_unary_rpc_method_handler(check, response_serializer=serialize),
                "Watch": grpc.stream_stream_rpc_method_handler(
                    watch, response_serializer=serialize
                ),
            },
        )

    def _reflection_handler(self) -> grpc.GenericRpcHandler:
        """Server reflection, counted in the call cap, each request within the read timeout."""

        async def info(request_iterator: Any, context: _Context) -> AsyncIterator[Any]:
            limits = self.limits
            if not limits.calls.try_acquire():
                await abort(context, too_many_calls(limits.calls.limit))
            try:
                answers = self._reflection.ServerReflectionInfo(_requests(context), context)
                async for answer in answers:
                    yield answer
            finally:
                limits.calls.release()

        async def _requests(context: _Context) -> AsyncIterator[Any]:
            while True:
                request = await next_message(context, self.limits.read_timeout, self._closing)
                if request is grpc.aio.EOF:
                    return
                yield request

        return grpc.method_handlers_generic_handler(
            reflection.SERVICE_NAME,
            {
                "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                    info,
                    request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                    response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
                )
            },
        )

    # --- lifecycle ----------------------------------------------------------------

    @property
    def address(self) -> str:
        """``HOST:PORT`` the server listens on."""
        return f"{self.config.host}:{self.port}"

    def stop(self, grace: float | None = None) -> None:
        """Shut down gracefully (see the module text) and close the store; idempotent."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        _on_loop(self._shutdown(self.config.grace_seconds if grace is None else grace))
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._unsubscribe is not None:
            self._unsubscribe()
        close_store(self.store)

    async def _shutdown(self, grace: float) -> None:
        await self.health.enter_graceful_shutdown()
        self._closing.set()
        self.hub.close()
        await self._server.stop(grace)


_BAD_HEALTH_REQUEST = RpcFailure(
    grpc.StatusCode.INVALID_ARGUMENT,
    "<input>: not a valid HealthCheckRequest",
    Reason.INVALID_REQUEST,
    {"field": "<input>"},
    field="<input>",
)


def _parse_health(data: bytes) -> Any:
    if len(data) > MAX_SMALL_REQUEST_BYTES:
        return None
    request = health_pb2.HealthCheckRequest()
    try:
        request.ParseFromString(data)
    except Exception:  # untrusted bytes
        return None
    return request


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def serve(
    store: Store, config: ServerConfig, *, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Run a server until SIGTERM or SIGINT, then shut down gracefully; return 0.

    Prints the configuration's warnings on ``err`` (stderr) first, then ``serving on
    HOST:PORT`` (one line, flushed) once the server accepts calls, and
    ``stopped`` when it has shut down.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    for line in config.warnings():
        print(line, file=err, flush=True)
    try:
        server = CheckpointServer(store, config)
        print(f"serving on {server.address}", file=out, flush=True)
        # A signal the kernel hands to one of gRPC's threads does not wake a
        # main thread blocked in a lock; Python runs the handler the next time
        # the main thread runs, so it must wake up on its own, and often.
        while not stop.wait(0.2):
            pass
        print("shutting down", file=out, flush=True)
        server.stop()
        print("stopped", file=out, flush=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
