"""``dsxir-checkpoint serve``: run the CheckpointStoreService over a store.

:data:`serve_command` is a click command; the ``dsxir-checkpoint`` group
registers it as ``serve``, and ``python -m dsxir.optimizer_session.service``
runs it alone. Bad options and unusable files are one line on stderr with
the command line's exit codes (2 usage, 6 I/O), never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from dsxir.cli.exits import CliError, Exit
from dsxir.optimizer_session.service.defaults import DEFAULT_LISTEN, DEFAULT_MAX_MESSAGE_BYTES

__all__ = ["main", "serve_command"]


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
    from dsxir.optimizer_session.service.auth import read_token
    from dsxir.optimizer_session.service.server import ServerConfig, TlsFiles, serve
    from dsxir.optimizer_session.store import close_store, open_store

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
    try:
        store = open_store(store_url)
    except ValueError as exc:
        raise CliError(Exit.USAGE, str(exc)) from None
    try:
        return serve(store, config)
    except OSError as exc:
        close_store(store)
        raise CliError(Exit.IO_ERROR, str(exc)) from None


def main(argv: Sequence[str] | None = None) -> None:
    """Run ``serve`` alone (``python -m dsxir.optimizer_session.service``)."""
    try:
        result = serve_command.main(
            args=argv, prog_name="dsxir-checkpoint serve", standalone_mode=False
        )
        code = int(result) if isinstance(result, int) else 0
    except CliError as exc:
        click.echo(f"dsxir-checkpoint serve: error: {exc.message}", err=True)
        code = exc.code
    except click.ClickException as exc:
        click.echo(f"dsxir-checkpoint serve: error: {exc.format_message()}", err=True)
        code = exc.exit_code
    sys.exit(code)
