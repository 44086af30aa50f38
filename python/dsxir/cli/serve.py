"""``dsxir-checkpoint serve``: run the CheckpointStoreService over a store.

:data:`serve_command` is a click command; the ``dsxir-checkpoint`` group
registers it as ``serve`` (``dsxir-checkpoint serve``, or ``python -m
dsxir.cli serve``). Bad options and unusable files are one line on stderr
with the command line's exit codes (2 usage, 6 I/O, 7 a missing extra),
never a traceback.
"""

from __future__ import annotations

import click

from dsxir.cli.exits import CliError, Exit
from dsxir.cli.targets import open_store_or_fail
from dsxir.service.defaults import DEFAULT_LISTEN, DEFAULT_MAX_MESSAGE_BYTES

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
    help="Where to listen; 0.0.0.0:PORT or [::]:PORT for all interfaces; port 0 picks one.",
)
@click.option(
    "--max-message-bytes",
    type=int,
    default=DEFAULT_MAX_MESSAGE_BYTES,
    show_default=True,
    help="Largest request or response; larger ones fail with RESOURCE_EXHAUSTED.",
)
@click.option("--token-file", metavar="PATH", help="Require this bearer token (first line).")
@click.option("--token-env", metavar="NAME", help="Require the bearer token in this variable.")
@click.option("--tls-cert", metavar="PEM", help="Serve TLS with this certificate chain.")
@click.option("--tls-key", metavar="PEM", help="The private key of --tls-cert.")
@click.option("--tls-client-ca", metavar="PEM", help="Require client certificates of this CA.")
@click.option("--workers", type=int, default=32, show_default=True, help="Handler threads.")
@click.option(
    "--grace",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds calls in flight get to finish on SIGTERM.",
)
def serve_command(
    store_url: str | None,
    listen: str,
    max_message_bytes: int,
    token_file: str | None,
    token_env: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    tls_client_ca: str | None,
    workers: int,
    grace: float,
) -> int:
    """Serve a checkpoint store over gRPC until SIGTERM (docs/service.md).

    Prints "serving on HOST:PORT" once calls are accepted. Health checking
    (grpc.health.v1) and server reflection are on, so grpcurl works.
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
