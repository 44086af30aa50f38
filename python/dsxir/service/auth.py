"""Bearer-token authentication of the service.

The server, when given a token, requires every call except the gRPC health
check to carry the metadata ``authorization: Bearer <token>``; any other call
fails with UNAUTHENTICATED before reaching the store. Tokens are compared in
constant time (:func:`hmac.compare_digest`). A token is read from a file
(its first line, surrounding whitespace removed) or from an environment
variable, never from the command line or a URL, where it would show in
process listings and logs. Over anything but loopback, use TLS with it.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from typing import Any

import grpc

from dsxir.optimizer_session.service.errors import RpcFailure, abort

__all__ = [
    "DEFAULT_TOKEN_ENV",
    "EXEMPT_PREFIXES",
    "TokenAuthInterceptor",
    "bearer_metadata",
    "read_token",
]

DEFAULT_TOKEN_ENV = "DSXIR_CHECKPOINT_TOKEN"
"""The environment variable the client reads its token from by default."""

EXEMPT_PREFIXES = ("/grpc.health.v1.Health/",)
"""Methods callable without a token (load balancers probe health without one)."""

_MIN_TOKEN_CHARS = 16


def read_token(*, file: str | None = None, env: str | None = None) -> str | None:
    """The token in ``file`` or in environment variable ``env`` (not both); None if neither.

    Raises ``ValueError`` when the file or variable holds no token, a token
    shorter than 16 characters, or characters that cannot go in gRPC metadata;
    ``OSError`` when the file cannot be read.
    """
    if file is not None and env is not None:
        raise ValueError("give a token file or a token environment variable, not both")
    if file is not None:
        with open(file, encoding="utf-8") as handle:
            token = handle.readline().strip()
        source = f"token file {file}"
    elif env is not None:
        token = os.environ.get(env, "").strip()
        source = f"environment variable {env}"
    else:
        return None
    if not token:
        raise ValueError(f"{source} holds no token")
    if len(token) < _MIN_TOKEN_CHARS:
        raise ValueError(f"{source}: a token must have at least {_MIN_TOKEN_CHARS} characters")
    if not all(0x21 <= ord(c) <= 0x7E for c in token):
        raise ValueError(f"{source}: a token must be printable ASCII without spaces")
    return token


def bearer_metadata(token: str) -> tuple[tuple[str, str], ...]:
    """The call metadata that presents ``token``."""
    return (("authorization", f"Bearer {token}"),)


class TokenAuthInterceptor(grpc.ServerInterceptor):
    """Refuses every call without ``authorization: Bearer <token>`` (health checks aside)."""

    def __init__(self, token: str) -> None:
        """Require ``token``."""
        self._expected = f"Bearer {token}".encode()

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """Pass an authenticated or exempt call on; answer any other with UNAUTHENTICATED."""
        method = handler_call_details.method
        if method.startswith(EXEMPT_PREFIXES) or self._authorized(handler_call_details):
            return continuation(handler_call_details)
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        return _denying(handler)

    def _authorized(self, details: grpc.HandlerCallDetails) -> bool:
        presented = b""
        for key, value in details.invocation_metadata or ():
            if key == "authorization":
                presented = value.encode() if isinstance(value, str) else bytes(value)
                break
        return hmac.compare_digest(presented, self._expected)


_DENIED = RpcFailure(
    grpc.StatusCode.UNAUTHENTICATED,
    "missing or invalid bearer token (metadata 'authorization: Bearer <token>')",
    "UNAUTHENTICATED",
)


def _deny(request: Any, context: grpc.ServicerContext) -> Any:
    abort(context, _DENIED)


def _denying(handler: grpc.RpcMethodHandler[Any, Any]) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same shape as ``handler`` that refuses the call."""
    request_streaming = handler.request_streaming
    response_streaming = handler.response_streaming
    if request_streaming and response_streaming:
        return grpc.stream_stream_rpc_method_handler(_deny)
    if request_streaming:
        return grpc.stream_unary_rpc_method_handler(_deny)
    if response_streaming:
        return grpc.unary_stream_rpc_method_handler(_deny)
    return grpc.unary_unary_rpc_method_handler(_deny)
