"""``dsxir-checkpoint serve``: run the CheckpointStoreService over a store.

:data:`serve_command` is a click command; the ``dsxir-checkpoint`` group
registers it as ``serve`` (``dsxir-checkpoint serve``, or ``python -m
dsxir.cli serve``). Bad options and unusable files are one line on stderr
with the command line's exit codes (2 usage, 6 I/O, 7 a missing extra),
never a traceback. Serving on an address other than loopback without a
token and TLS is refused unless ``--insecure`` is given; the risks taken
knowingly are one warning line each on stderr. docs/security.md lists every
limit below.
"""

from __future__ import annotations

import click

from dsxir.cli.exits import CliError, Exit
from dsxir.cli.targets import open_store_or_fail
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
    PUT_COST_CANONICAL,
    PUT_COST_OTHER,
)

__all__ = ["serve_command"]


@click.command(
    "serve",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--store",
    "store_url",
    metavar="URL",
    default=None,
    help="The store to serve: file:PATH, memory:, postgresql://... "
    "(default: the file store in .dsxir/sessions).",
)
@click.option(
    "--listen",
    default=DEFAULT_LISTEN,
    show_default=True,
    metavar="HOST:PORT",
    help="Where to listen; 0.0.0.0:PORT or [::]:PORT for all interfaces; port 0 picks one. "
    "Other than loopback, a token and TLS are required unless --insecure is given.",
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Serve on an address other than loopback without a token and TLS "
    "(a warning is printed on stderr).",
)
@click.option(
    "--max-message-bytes",
    type=int,
    default=DEFAULT_MAX_MESSAGE_BYTES,
    show_default=True,
    help="Largest request or response (64 MiB); larger ones fail with RESOURCE_EXHAUSTED.",
)
@click.option("--token-file", metavar="PATH", help="Require this bearer token (first line).")
@click.option("--token-env", metavar="NAME", help="Require the bearer token in this variable.")
@click.option("--tls-cert", metavar="PEM", help="Serve TLS with this certificate chain.")
@click.option("--tls-key", metavar="PEM", help="The private key of --tls-cert.")
@click.option("--tls-client-ca", metavar="PEM", help="Require client certificates of this CA.")
@click.option(
    "--workers",
    type=int,
    default=DEFAULT_WORKERS,
    show_default=True,
    help="Threads that run store operations.",
)
@click.option(
    "--max-calls",
    type=int,
    default=DEFAULT_MAX_CALLS,
    show_default=True,
    help="Calls handled at once (health checks and open watch streams aside); "
    "more are answered RESOURCE_EXHAUSTED.",
)
@click.option(
    "--read-timeout",
    type=float,
    default=DEFAULT_READ_TIMEOUT_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="A call whose request has not arrived by then is ended (DEADLINE_EXCEEDED).",
)
@click.option(
    "--memory-budget",
    type=int,
    default=DEFAULT_MEMORY_BUDGET_BYTES,
    show_default=True,
    metavar="BYTES",
    help="Memory the requests in flight may take (default 2 GiB): before it is parsed, a "
    f"put is charged {PUT_COST_CANONICAL} bytes per request byte when its checkpoint is "
    f"canonical, {PUT_COST_OTHER} otherwise, and refused with RESOURCE_EXHAUSTED when that "
    f"is not free. At least {PUT_COST_CANONICAL} x --max-message-bytes.",
)
@click.option(
    "--max-watchers",
    type=int,
    default=None,
    metavar="N",
    help="Watch streams open at once  [default: --workers/2]",
)
@click.option(
    "--watchers-per-client",
    type=int,
    default=DEFAULT_WATCHERS_PER_CLIENT,
    show_default=True,
    help="Watch streams one client (IP address) may hold open at once.",
)
@click.option(
    "--watch-idle-timeout",
    type=float,
    default=DEFAULT_WATCH_IDLE_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="A watch stream with no event for this long (15 min) ends (UNAVAILABLE); "
    "clients watch again.",
)
@click.option(
    "--watch-write-timeout",
    type=float,
    default=DEFAULT_WATCH_WRITE_TIMEOUT_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="A watcher that does not take an event within this is ended (ABORTED).",
)
@click.option(
    "--grace",
    type=float,
    default=DEFAULT_GRACE_SECONDS,
    show_default=True,
    help="Seconds calls in flight get to finish on SIGTERM.",
)
def serve_command(
    store_url: str | None,
    listen: str,
    insecure: bool,
    max_message_bytes: int,
    token_file: str | None,
    token_env: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    tls_client_ca: str | None,
    workers: int,
    max_calls: int,
    read_timeout: float,
    memory_budget: int,
    max_watchers: int | None,
    watchers_per_client: int,
    watch_idle_timeout: float,
    watch_write_timeout: float,
    grace: float,
) -> int:
    """Serve a checkpoint store over gRPC until SIGTERM (docs/service.md).

    Prints "serving on HOST:PORT" once calls are accepted. Health checking
    (grpc.health.v1) and server reflection are on, so grpcurl works. Limits
    and security defaults: docs/security.md.
    """
    # gRPC and the stores load only when serving, not for every command line run.
    try:
        from dsxir.service.server import ServerConfig, TlsFiles, serve
    except ModuleNotFoundError as exc:
        raise CliError(Exit.MISSING_EXTRA, _missing_service_extra(exc)) from None
    from dsxir.store import close_store
    from dsxir.store.grpc.tokens import read_token

    try:
        token = read_token(file=token_file, env=token_env)
    except (OSError, ValueError) as exc:
        raise CliError(Exit.USAGE, f"token: {exc}") from None
    if (tls_cert is None) != (tls_key is None):
        raise CliError(Exit.USAGE, "--tls-cert and --tls-key go together")
    if tls_client_ca is not None and tls_cert is None:
        raise CliError(Exit.USAGE, "--tls-client-ca needs --tls-cert and --tls-key")
    tls = TlsFiles(tls_cert, tls_key, tls_client_ca) if tls_cert and tls_key else None
    config = ServerConfig(
        listen=listen,
        max_message_bytes=max_message_bytes,
        token=token,
        tls=tls,
        workers=workers,
        grace_seconds=grace,
        max_calls=max_calls,
        read_timeout=read_timeout,
        memory_budget=memory_budget,
        max_watchers=max_watchers,
        watchers_per_client=watchers_per_client,
        watch_idle_seconds=watch_idle_timeout,
        watch_write_timeout=watch_write_timeout,
        insecure=insecure,
    )
    try:
        config.check()
    except ValueError as exc:
        raise CliError(Exit.USAGE, str(exc)) from None
    store = open_store_or_fail(store_url)
    try:
        return serve(store, config)
    except OSError as exc:
        close_store(store)
        raise CliError(Exit.IO_ERROR, str(exc)) from None


def _missing_service_extra(exc: ModuleNotFoundError) -> str:
    return (
        f"serve needs the [service] extra ({exc.name} is not installed): "
        "pip install 'dsxir-checkpoint[service]'"
    )
