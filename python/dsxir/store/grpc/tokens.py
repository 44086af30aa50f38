"""Bearer tokens of the service: where they are read from and how a call presents one.

A token is read from a file (its first line, surrounding whitespace removed)
or from an environment variable, never from the command line or a URL, where
it would show in process listings and logs. A call presents it as the
metadata ``authorization: Bearer <token>``. Over anything but loopback, use
TLS with it: :class:`~dsxir.store.grpc.GrpcStore` refuses to send one in
plain text to another host unless told to (``insecure``).
"""

from __future__ import annotations

import os

__all__ = ["DEFAULT_TOKEN_ENV", "MIN_TOKEN_CHARS", "bearer_metadata", "read_token"]

DEFAULT_TOKEN_ENV = "DSXIR_CHECKPOINT_TOKEN"
"""The environment variable the client reads its token from by default."""

MIN_TOKEN_CHARS = 16
"""The shortest token accepted."""


def read_token(*, file: str | None = None, env: str | None = None) -> str | None:
    """The token in ``file`` or in environment variable ``env`` (not both); None if neither.

    Raises ``ValueError`` when the file or variable holds no token (a variable
    that is not set is an error too: it was asked for), a token shorter than
    16 characters, or characters that cannot go in gRPC metadata; ``OSError``
    when the file cannot be read.
    """
    if file is not None and env is not None:
        raise ValueError("give a token file or a token environment variable, not both")
    if file is not None:
        with open(file, encoding="utf-8") as handle:
            token = handle.readline().strip()
        source = f"token file {file}"
    elif env is not None:
        if env not in os.environ:
            raise ValueError(f"environment variable {env} is not set")
        token = os.environ[env].strip()
        source = f"environment variable {env}"
    else:
        return None
    if not token:
        raise ValueError(f"{source} holds no token")
    if len(token) < MIN_TOKEN_CHARS:
        raise ValueError(f"{source}: a token must have at least {MIN_TOKEN_CHARS} characters")
    if not all(0x21 <= ord(c) <= 0x7E for c in token):
        raise ValueError(f"{source}: a token must be printable ASCII without spaces")
    return token


def bearer_metadata(token: str) -> tuple[tuple[str, str], ...]:
    """The call metadata that presents ``token``."""
    return (("authorization", f"Bearer {token}"),)
