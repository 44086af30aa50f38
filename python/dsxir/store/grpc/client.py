"""A store on a remote ``CheckpointStoreService``: :class:`GrpcStore`.

It has the interface and the semantics of the file store (the CAS rule of
:mod:`dsxir.store.interface`, ``NotFound``, ``Conflict``,
``InvalidCheckpoint``, ``InvalidSessionId``, ``CorruptStore``,
``IllegalHistory``, and leases with ``LeaseHeld`` and ``LeaseLost`` on the
server's clock): arguments are
checked and checkpoints encoded locally first, exactly as a local store
does, and the server's status codes are turned back into those exceptions
(:mod:`.errors`). Failures with no store meaning raise a
:class:`~dsxir.store.grpc.errors.ServiceError` subclass:
``Unavailable`` (also a ``ConnectionError``), ``Unauthenticated``,
``ResourceExhausted``. A commit that fails with ``Unavailable`` may or may not
have happened; read the generation to learn which. Nothing is retried
behind the caller's back.

URLs (:meth:`GrpcStore.from_url`)::

    grpc://HOST:PORT[?token_file=PATH&token_env=NAME&timeout=SECONDS&insecure=1]
    grpcs://HOST:PORT[?ca_file=PATH&server_name=NAME&cert_file=PATH&key_file=PATH&...]

The token is read from ``token_file`` or from the environment variable
``token_env`` (not both; a ``token_env`` that is not set or empty is an
error), else from ``DSXIR_CHECKPOINT_TOKEN`` when that is set and not
empty; it is never part of the URL. ``grpcs`` uses TLS, with the system's
roots unless ``ca_file`` is given; ``cert_file``/``key_file`` present a
client certificate. A token is sent in plain text (``grpc://``) only to a
loopback address (``localhost``, ``127.0.0.0/8``, ``::1``) or a unix
socket, unless ``insecure=1`` (``insecure=True``) says to anyway.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import ipaddress
import os
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from dsxir.checkpoint_store.v1 import service_pb2 as pb
from dsxir.errors import CorruptStore, InvalidCheckpoint, InvalidDelta, LeaseLost, ResumeMismatch
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session import delta as dl
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint, CheckpointDelta
from dsxir.optimizer_session.validate import MAX_CHECKPOINT_BYTES
from dsxir.optimizer_session.wire import varint
from dsxir.store.grpc import convert, leases
from dsxir.store.grpc.errors import ServiceError, from_rpc_error
from dsxir.store.grpc.protocol import MAX_PAGE_SIZE, SERVICE_NAME, split_checkpoint
from dsxir.store.grpc.tokens import DEFAULT_TOKEN_ENV, bearer_metadata, read_token
from dsxir.store.interface import (
    Lease,
    ListFilter,
    Listing,
    OnDamage,
    Stored,
    check_expected_generation,
    listing_of,
)
from dsxir.store.leases import check_holder, check_lease
from dsxir.store.session_ids import check_session_id

__all__ = ["GrpcStore", "WatchEvent", "WatchStream", "is_local_target", "open_url"]

_MESSAGE_LIMIT = MAX_CHECKPOINT_BYTES + 64 * 1024
_R = TypeVar("_R", bound=Message)
if TYPE_CHECKING:
    _Unary = grpc.UnaryUnaryMultiCallable[bytes, bytes]
_EVENT_KINDS = {
    pb.WATCH_EVENT_TYPE_INITIAL: "initial",
    pb.WATCH_EVENT_TYPE_COMMITTED: "committed",
    pb.WATCH_EVENT_TYPE_DELETED: "deleted",
}


@dataclass(frozen=True)
class WatchEvent:
    """One event of a watched session.

    ``kind`` is ``"initial"`` (always first: the session when the watch
    started, ``listing`` None when it did not exist), ``"committed"`` or
    ``"deleted"``; ``listing`` is the session after the event (None when
    deleted) and ``generation`` its generation (0 without a session). With
    ``watch(…, checkpoints=True)``, ``checkpoint`` is the session's
    checkpoint after the event (None without a session), the event's own
    copy; otherwise it is always None.
    """

    kind: str
    session_id: str
    listing: Listing | None
    checkpoint: Checkpoint | None = None
    generation: int = 0


class WatchStream:
    """The events of one session as they happen; iterate, then :meth:`cancel`.

    Iteration raises the store-level exception of the status that ended the
    stream (``Unavailable`` when the server shut down or its commit feed was
    interrupted: watch again, you will get the current state first).

    With ``checkpoints``, the stream keeps the session's latest checkpoint:
    a checkpoint sent whole is read with ``checkpoint.decode``, a delta with
    ``decode_delta`` and applied (``apply_in_place``) to the checkpoint of
    the previous event, whose generation must be its ``base_generation``.
    An event that breaks this (bytes a reader refuses, a delta on another
    generation or none to apply it to, a summary that is not its
    checkpoint's, a missing state) ends the stream with ``CorruptStore``.
    """

    def __init__(
        self, call: Any, session_id: str, *, checkpoints: bool = False, where: str = ""
    ) -> None:
        """Wrap a started server-streaming call; ``where`` names the store in errors."""
        self._call = call
        self._session_id = session_id
        self._checkpoints = checkpoints
        self._where = where
        self._state: Checkpoint | None = None
        self._generation = 0

    def __iter__(self) -> Iterator[WatchEvent]:
        """The events, in commit order."""
        try:
            for data in self._call:
                try:
                    event = self._event(data)
                except Exception:
                    self._call.cancel()
                    raise
                yield event
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.CANCELLED:
                return
            raise from_rpc_error(exc, session_id=self._session_id) from None

    def _event(self, data: bytes) -> WatchEvent:
        number, state = 0, None
        if self._checkpoints:
            try:
                number, state, data = convert.split_state(data)
            except ValueError as exc:
                raise self._corrupt(f"an event that cannot be read ({exc})") from None
        response = _response(pb.WatchSessionResponse, data)
        kind = _EVENT_KINDS.get(response.type, "unknown")
        listing = (
            convert.listing_from_summary(response.session) if response.HasField("session") else None
        )
        generation = 0 if listing is None else listing.generation
        if not self._checkpoints:
            return WatchEvent(kind, response.session_id, listing, None, generation)
        if response.WhichOneof("state") is not None:
            raise self._corrupt("an event whose state cannot be read")
        cp = self._advance(kind, listing, number, state)
        copy = None
        if cp is not None:
            copy = Checkpoint()
            copy.CopyFrom(cp)
        return WatchEvent(kind, response.session_id, listing, copy, generation)

    def _advance(
        self, kind: str, listing: Listing | None, number: int, state: bytes | None
    ) -> Checkpoint | None:
        """The stream's checkpoint after an event of the checkpoint view, checked."""
        if listing is None and kind in ("initial", "deleted"):
            if state is not None:
                raise self._corrupt(f"a checkpoint or delta in an event without a session ({kind})")
            self._state, self._generation = None, 0
            return None
        if listing is None or kind not in ("initial", "committed"):
            raise self._corrupt(f"an event of kind {kind!r} without a session")
        generation = listing.generation
        if number == pb.WatchSessionResponse.CHECKPOINT_FIELD_NUMBER and state is not None:
            try:
                cp = checkpoint.decode(state)
            except ResumeMismatch as exc:
                raise self._corrupt(f"an invalid checkpoint: {exc}") from None
        elif number == pb.WatchSessionResponse.DELTA_FIELD_NUMBER and state is not None:
            cp = self._applied(state, generation, kind)
        else:
            raise self._corrupt(f"an event ({kind}) without the checkpoint or a delta")
        if cp.session_id != self._session_id or listing_of(cp, generation) != listing:
            raise self._corrupt(f"a {kind} event whose summary is not its checkpoint's")
        self._state, self._generation = cp, generation
        return cp

    def _applied(self, data: bytes, generation: int, kind: str) -> Checkpoint:
        """The stream's checkpoint changed by the delta of ``data``, committed as ``generation``."""
        try:
            delta = dl.decode_delta(data)
        except InvalidDelta as exc:
            raise self._corrupt(f"an invalid delta: {exc}") from None
        base, previous = delta.base_generation, self._generation
        if kind != "committed" or self._state is None or base != previous:
            raise self._corrupt(
                f"a delta on generation {base} in a {kind} event, after an event of "
                f"generation {previous}" + ("" if self._state is not None else " without a session")
            )
        if generation != base + 1:
            raise self._corrupt(f"a delta on generation {base} for generation {generation}")
        try:
            dl.apply_in_place(self._state, delta)  # raises before changing the state
        except (InvalidDelta, InvalidCheckpoint) as exc:
            raise self._corrupt(f"a delta that does not apply: {exc}") from None
        return self._state

    def _corrupt(self, what: str) -> CorruptStore:
        return CorruptStore(f"{self._where}/{self._session_id}", f"the server sent {what}")

    def cancel(self) -> None:
        """End the stream (iteration then stops)."""
        self._call.cancel()

    def __enter__(self) -> WatchStream:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.cancel()


class GrpcStore:
    """A checkpoint store served by a remote ``CheckpointStoreService``."""

    def __init__(
        self,
        target: str,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        token: str | None = None,
        timeout: float | None = 60.0,
        options: list[tuple[str, Any]] | None = None,
        insecure: bool = False,
    ) -> None:
        """Connect to ``target`` (``HOST:PORT``), with TLS when ``credentials`` are given.

        ``token`` is sent as a bearer token on every call; ``timeout`` bounds
        every unary call (None: no deadline). The connection is made lazily.
        Without ``credentials``, a token is refused (``ValueError``) unless
        ``target`` is a loopback address or ``insecure`` is true.
        """
        if token and credentials is None and not insecure and not is_local_target(target):
            raise ValueError(
                f"refusing to send the bearer token in plain text to {target}: use "
                "grpcs:// (TLS), or allow it with insecure=1 in the URL (insecure=True)"
            )
        self.target = target
        self._timeout = timeout
        self._metadata = bearer_metadata(token) if token else None
        channel_options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", _MESSAGE_LIMIT),
            ("grpc.max_send_message_length", _MESSAGE_LIMIT),
            *(options or []),
        ]
        if credentials is None:
            self._channel = grpc.insecure_channel(target, options=channel_options)
        else:
            self._channel = grpc.secure_channel(target, credentials, options=channel_options)
        self._scheme = "grpcs" if credentials is not None else "grpc"
        prefix = f"/{SERVICE_NAME}/"
        unary = self._channel.unary_unary
        self._put: _Unary = unary(prefix + "PutCheckpoint")
        self._put_delta: _Unary = unary(prefix + "PutCheckpointDelta")
        self._get: _Unary = unary(prefix + "GetCheckpoint")
        self._list: _Unary = unary(prefix + "ListSessions")
        self._delete: _Unary = unary(prefix + "DeleteCheckpoint")
        self._acquire: _Unary = unary(prefix + "AcquireLease")
        self._renew: _Unary = unary(prefix + "RenewLease")
        self._release: _Unary = unary(prefix + "ReleaseLease")
        self._get_lease: _Unary = unary(prefix + "GetLease")
        self._watch: grpc.UnaryStreamMultiCallable[bytes, bytes] = self._channel.unary_stream(
            prefix + "WatchSession"
        )
        self._closed = threading.Event()

    @classmethod
    def from_url(cls, url: str) -> GrpcStore:
        """The store a ``grpc://`` or ``grpcs://`` URL names (see the module text)."""
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("grpc", "grpcs") or not parsed.hostname or parsed.port is None:
            raise ValueError(f"store URL {url!r}: expected grpc://HOST:PORT or grpcs://HOST:PORT")
        if parsed.path not in ("", "/") or parsed.username or parsed.password:
            raise ValueError(f"store URL {url!r}: no path or user allowed (tokens go in a file)")
        query = dict(urllib.parse.parse_qsl(parsed.query, strict_parsing=bool(parsed.query)))
        known = {
            "token_file",
            "token_env",
            "timeout",
            "insecure",
            "ca_file",
            "server_name",
            "cert_file",
            "key_file",
        }
        unknown = sorted(set(query) - known)
        if unknown:
            raise ValueError(f"store URL {url!r}: unknown parameter(s) {', '.join(unknown)}")
        if parsed.scheme == "grpc" and {"ca_file", "cert_file", "key_file", "server_name"} & set(
            query
        ):
            raise ValueError(f"store URL {url!r}: TLS parameters need grpcs://")
        insecure = _flag(url, "insecure", query.get("insecure", "0"))
        if insecure and parsed.scheme == "grpcs":
            raise ValueError(f"store URL {url!r}: insecure=1 is for grpc:// only")
        if "token_file" in query and "token_env" in query:
            raise ValueError(f"store URL {url!r}: give token_file or token_env, not both")
        if "token_file" in query:
            token = read_token(file=query["token_file"])
        elif "token_env" in query:
            token = read_token(env=query["token_env"])
        else:
            default = os.environ.get(DEFAULT_TOKEN_ENV, "").strip()
            token = read_token(env=DEFAULT_TOKEN_ENV) if default else None
        timeout = float(query["timeout"]) if "timeout" in query else 60.0
        credentials = None
        options: list[tuple[str, Any]] = []
        if parsed.scheme == "grpcs":
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(query.get("ca_file")),
                private_key=_read(query.get("key_file")),
                certificate_chain=_read(query.get("cert_file")),
            )
            if "server_name" in query:
                options.append(("grpc.ssl_target_name_override", query["server_name"]))
        return cls(
            parsed.netloc,
            credentials=credentials,
            token=token,
            timeout=timeout,
            options=options,
            insecure=insecure,
        )

    def __repr__(self) -> str:
        return f"GrpcStore({self._scheme}://{self.target})"

    # --- the store interface ----------------------------------------------------

    def put(self, cp: Checkpoint, *, expected_generation: int | None = None) -> int:
        """Commit ``cp`` under the CAS rule; return the new generation (see the module text)."""
        session_id = check_session_id(cp.session_id)
        expected = check_expected_generation(expected_generation)
        body = checkpoint.encode(cp)
        request = pb.PutCheckpointRequest(expected_generation=expected or 0)
        # The canonical bytes travel as they are: field 1 (checkpoint), then the request.
        data = _length_delimited(1, body) + request.SerializeToString()
        response = _response(pb.PutCheckpointResponse, self._call(self._put, data, session_id))
        return response.generation

    def put_delta(self, delta: CheckpointDelta) -> int:
        """Commit a delta (FORMAT.md §13) under the CAS rule; the new generation.

        The delta's sealed bytes travel (``encode_delta`` refuses what a
        reader would, before anything is sent); ``delta.base_generation`` is
        the expected generation. The server's refusals come back as
        :meth:`put`'s do, a refused delta as ``InvalidDelta``.
        """
        if not isinstance(delta, CheckpointDelta):
            raise TypeError(f"put_delta takes a CheckpointDelta, not {type(delta).__name__}")
        session_id = check_session_id(delta.head.session_id)
        data = _length_delimited(1, dl.encode_delta(delta))
        call = self._call(self._put_delta, data, session_id)
        return _response(pb.PutCheckpointDeltaResponse, call).generation

    def get(self, session_id: str) -> Stored:
        """The latest committed checkpoint, checked with the rules of ``decode``."""
        check_session_id(session_id)
        data = self._call(self._get, pb.GetCheckpointRequest(session_id=session_id), session_id)
        try:
            raw, rest = split_checkpoint(data)
        except ValueError:
            raise ServiceError(
                grpc.StatusCode.INTERNAL, "the server sent the checkpoint twice"
            ) from None
        response = _response(pb.GetCheckpointResponse, rest)
        if raw is None:
            raise CorruptStore(f"{self!r}/{session_id}", "the server sent no checkpoint")
        try:
            cp = checkpoint.decode(raw)
        except ResumeMismatch as exc:
            raise CorruptStore(
                f"{self!r}/{session_id}", f"the server sent an invalid checkpoint: {exc}"
            ) from None
        if cp.session_id != session_id or response.generation < 1:
            raise CorruptStore(f"{self!r}/{session_id}", "the server sent another session")
        return Stored(cp, response.generation)

    def list(
        self,
        *,
        status: str | None = None,
        optimizer: str | None = None,
        updated_since: _dt.datetime | None = None,
        on_damage: OnDamage | None = None,
    ) -> list[Listing]:
        """Summaries of the matching sessions, by session id (every page).

        The server leaves damaged sessions out of its pages, so ``on_damage``
        is never called.
        """
        request = convert.list_request(ListFilter.of(status, optimizer, updated_since))
        request.page_size = MAX_PAGE_SIZE
        found: list[Listing] = []
        while True:
            response = _response(pb.ListSessionsResponse, self._call(self._list, request, None))
            found.extend(convert.listing_from_summary(item) for item in response.sessions)
            if not response.next_page_token:
                return found
            request.page_token = response.next_page_token

    def delete(self, session_id: str) -> None:
        """Forget a session; nothing happens when there is none."""
        check_session_id(session_id)
        self._call(self._delete, pb.DeleteCheckpointRequest(session_id=session_id), session_id)

    def acquire_lease(self, session_id: str, holder: str, *, ttl: float) -> Lease:
        """Hold ``session_id`` for ``ttl`` seconds of the server's clock, or ``LeaseHeld``.

        ``holder`` and ``ttl`` are checked as every store checks them
        (:mod:`dsxir.store.leases`), before anything is sent.
        """
        check_session_id(session_id)
        holder = check_holder(holder)
        request = pb.AcquireLeaseRequest(
            session_id=session_id, holder=holder, ttl=leases.duration_of(ttl)
        )
        response = _response(
            pb.AcquireLeaseResponse, self._call(self._acquire, request, session_id)
        )
        return self._granted(response, session_id)

    def renew_lease(self, lease: Lease, *, ttl: float) -> Lease:
        """Extend a held lease to now + ``ttl`` seconds (server clock), or ``LeaseLost``.

        A token no store ever gives (empty, over 256 bytes) is ``LeaseLost``
        without a call, as a local store answers it.
        """
        lease = check_lease(lease)
        duration = leases.duration_of(ttl)
        if leases.token_problem(lease.token) is not None:
            raise LeaseLost(lease.session_id, "not a lease token of this store")
        request = pb.RenewLeaseRequest(session_id=lease.session_id, token=lease.token, ttl=duration)
        data = self._call(self._renew, request, lease.session_id)
        return self._granted(_response(pb.RenewLeaseResponse, data), lease.session_id)

    def release_lease(self, lease: Lease) -> None:
        """Give a lease up; nothing happens when it is no longer the session's."""
        lease = check_lease(lease)
        if leases.token_problem(lease.token) is not None:
            return  # never the session's lease
        request = pb.ReleaseLeaseRequest(session_id=lease.session_id, token=lease.token)
        self._call(self._release, request, lease.session_id)

    def get_lease(self, session_id: str) -> Lease | None:
        """The session's lease (expired or not) without its token, or ``None``."""
        check_session_id(session_id)
        request = pb.GetLeaseRequest(session_id=session_id)
        data = self._call(self._get_lease, request, session_id)
        response = _response(pb.GetLeaseResponse, data)
        if not response.HasField("lease"):
            return None
        found = _lease_of(response.lease)
        if found.session_id != session_id:
            raise ServiceError(grpc.StatusCode.INTERNAL, "the server sent another session's lease")
        return dataclasses.replace(found, token="")

    # --- beyond the interface ---------------------------------------------------

    def watch(self, session_id: str, *, checkpoints: bool = False) -> WatchStream:
        """Watch a session: its current state, then every commit and delete (no deadline).

        With ``checkpoints``, each event also has the session's checkpoint
        after it (``WatchEvent.checkpoint``), kept from the checkpoints and
        deltas the server sends and checked as :class:`WatchStream` says;
        a commit usually costs the bytes of its delta only.
        """
        check_session_id(session_id)
        request = pb.WatchSessionRequest(session_id=session_id)
        if checkpoints:
            request.view = pb.WATCH_VIEW_CHECKPOINT
        call = self._watch(request.SerializeToString(), metadata=self._metadata)
        return WatchStream(call, session_id, checkpoints=checkpoints, where=repr(self))

    def _granted(
        self, response: pb.AcquireLeaseResponse | pb.RenewLeaseResponse, session_id: str
    ) -> Lease:
        lease = _lease_of(response.lease)
        if lease.session_id != session_id or not lease.token:
            raise ServiceError(grpc.StatusCode.INTERNAL, "the server sent no lease of the session")
        return lease

    def close(self) -> None:
        """Close the channel (idempotent)."""
        if not self._closed.is_set():
            self._closed.set()
            self._channel.close()

    def __enter__(self) -> GrpcStore:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, method: _Unary, request: Any, session_id: str | None) -> bytes:
        data = request if isinstance(request, bytes) else request.SerializeToString()
        try:
            response: bytes = method(data, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc, session_id=session_id) from None
        return response


def is_local_target(target: str) -> bool:
    """Whether a channel target is on this host: a loopback address or a unix socket."""
    for prefix in ("dns:///", "dns:", "ipv4:", "ipv6:"):
        if target.startswith(prefix):
            target = target[len(prefix) :]
            break
    if target.startswith(("unix:", "unix-abstract:")):
        return True
    if target.startswith("["):
        host = target[1:].partition("]")[0]
    else:
        host = target.rpartition(":")[0] if target.count(":") == 1 else target
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _flag(url: str, name: str, value: str) -> bool:
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise ValueError(f"store URL {url!r}: {name} must be 1 or 0, not {value!r}")


def _response(cls: type[_R], data: bytes) -> _R:
    """The response message of ``data``; ``ServiceError`` (INTERNAL) when it is not one."""
    try:
        return cls.FromString(data)
    except DecodeError:
        raise ServiceError(
            grpc.StatusCode.INTERNAL, f"the server sent no valid {cls.DESCRIPTOR.name}"
        ) from None


def _lease_of(message: pb.Lease) -> Lease:
    """The lease the server sent; ``ServiceError`` (INTERNAL) when no store gives it."""
    try:
        return leases.lease_from_message(message)
    except ValueError as exc:
        raise ServiceError(
            grpc.StatusCode.INTERNAL, f"the server sent an invalid lease: {exc}"
        ) from None


def _length_delimited(field: int, payload: bytes) -> bytes:
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def _read(path: str | None) -> bytes | None:
    if path is None:
        return None
    with open(path, "rb") as handle:
        return handle.read()


def open_url(url: str) -> GrpcStore:
    """The store of a ``grpc://`` or ``grpcs://`` URL (see :meth:`GrpcStore.from_url`)."""
    return GrpcStore.from_url(url)
