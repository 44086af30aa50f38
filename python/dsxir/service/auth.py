"""Bearer-token authentication of the service.

The server, when given a token, requires every call except the gRPC health
check to carry the metadata ``authorization: Bearer <token>``; any other call
fails with UNAUTHENTICATED before reaching the store. Tokens are compared in
constant time (:func:`hmac.compare_digest`); :mod:`dsxir.store.grpc.tokens`
reads them.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

import grpc

from dsxir.service.failures import RpcFailure, abort
from dsxir.store.grpc.protocol import Reason

__all__ = [
    "EXEMPT_PREFIXES",
    "TokenAuthInterceptor",
]

EXEMPT_PREFIXES = ("/grpc.health.v1.Health/",)
"""Methods callable without a token (load balancers probe health without one)."""


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
    Reason.UNAUTHENTICATED,
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
