"""Bearer-token authentication of the service.

The server, when given a token, requires every call except the gRPC health
check to carry the metadata ``authorization: Bearer <token>``; any other call
fails with UNAUTHENTICATED before reaching the store, and before its request
message is read: the refusal is sent as soon as the call's headers arrive,
so an unauthenticated client cannot hold the server waiting for a message.
Tokens are compared in constant time (:func:`hmac.compare_digest`);
:mod:`dsxir.store.grpc.tokens` reads them.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio

from dsxir.service.failures import RpcFailure, abort
from dsxir.store.grpc.protocol import Reason

__all__ = [
    "EXEMPT_PREFIXES",
    "TokenAuthInterceptor",
]

EXEMPT_PREFIXES = ("/grpc.health.v1.Health/",)
"""Methods callable without a token (load balancers probe health without one)."""

if TYPE_CHECKING:
    _Handler = grpc.RpcMethodHandler[Any, Any]


class TokenAuthInterceptor(grpc.aio.ServerInterceptor):
    """Refuses every call without ``authorization: Bearer <token>`` (health checks aside)."""

    def __init__(self, token: str) -> None:
        """Require ``token``."""
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[_Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> _Handler | None:
        """Pass an authenticated or exempt call on; answer any other with UNAUTHENTICATED."""
        method = handler_call_details.method
        if method.startswith(EXEMPT_PREFIXES) or self._authorized(handler_call_details):
            return await continuation(handler_call_details)
        return _DENYING

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


async def _deny(request_iterator: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    await abort(context, _DENIED)


# Request-streaming, so nothing reads the request before the refusal; the wire
# format is the same for every shape, so this answers any method.
_DENYING: _Handler = grpc.stream_stream_rpc_method_handler(_deny)
