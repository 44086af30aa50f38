"""What bounds the server's work: calls at once, memory for requests, watch slots.

- :class:`Slots`: a counter with a cap (calls handled at once);
- :class:`MemoryBudget`: bytes the requests in flight may take; a request is
  charged :func:`request_cost` of its size *before* it is parsed, so a
  message that would take gigabytes to parse is refused instead;
- :class:`WatchSlots`: watch streams open at once, in all and per client
  (the IP address of the peer, :func:`client_of`);
- :func:`give_back_memory`: hand freed heap back to the system after a large
  request (glibc's ``malloc_trim``; nothing elsewhere).

Every method is thread-safe.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import urllib.parse
from collections.abc import Callable

from dsxir.optimizer_session import accel
from dsxir.optimizer_session.grammar import TRAILER_SIZE, TRAILER_TAG
from dsxir.optimizer_session.wire import read_varint
from dsxir.service.defaults import PUT_COST_CANONICAL, PUT_COST_OTHER, REQUEST_COST

__all__ = [
    "MemoryBudget",
    "Slots",
    "WatchSlots",
    "client_of",
    "give_back_memory",
    "request_cost",
]

_MAX_ENVELOPE_FIELDS = 8


class Slots:
    """At most ``limit`` holders at once."""

    def __init__(self, limit: int) -> None:
        """A counter that refuses the ``limit + 1``-th holder."""
        self.limit = limit
        self._held = 0
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        """Take a slot; False when all are held."""
        with self._lock:
            if self._held >= self.limit:
                return False
            self._held += 1
            return True

    def release(self) -> None:
        """Give a slot back."""
        with self._lock:
            self._held -= 1

    @property
    def held(self) -> int:
        """How many slots are held."""
        with self._lock:
            return self._held


class MemoryBudget:
    """``total`` bytes shared by the requests in flight."""

    def __init__(self, total: int) -> None:
        """A budget of ``total`` bytes, none charged."""
        self.total = total
        self._used = 0
        self._lock = threading.Lock()

    def try_charge(self, amount: int) -> bool:
        """Charge ``amount`` bytes; False (nothing charged) when they are not free."""
        with self._lock:
            if self._used + amount > self.total:
                return False
            self._used += amount
            return True

    def release(self, amount: int) -> None:
        """Give ``amount`` charged bytes back."""
        with self._lock:
            self._used -= amount

    @property
    def used(self) -> int:
        """Bytes charged now."""
        with self._lock:
            return self._used


class WatchSlots:
    """Watch streams open at once: at most ``total``, and ``per_client`` per client."""

    def __init__(self, total: int, per_client: int) -> None:
        """Caps of ``total`` streams and ``per_client`` streams per client."""
        self.total = total
        self.per_client = per_client
        self._by_client: dict[str, int] = {}
        self._held = 0
        self._lock = threading.Lock()

    def try_acquire(self, client: str) -> str | None:
        """Take a slot for ``client``; the reason for a refusal, None when taken."""
        with self._lock:
            if self._held >= self.total:
                return f"too many watchers (the server allows {self.total})"
            mine = self._by_client.get(client, 0)
            if mine >= self.per_client:
                return (
                    f"too many watchers from {client} "
                    f"(the server allows {self.per_client} per client)"
                )
            self._by_client[client] = mine + 1
            self._held += 1
            return None

    def release(self, client: str) -> None:
        """Give back a slot of ``client``."""
        with self._lock:
            self._held -= 1
            left = self._by_client.get(client, 1) - 1
            if left > 0:
                self._by_client[client] = left
            else:
                self._by_client.pop(client, None)

    @property
    def held(self) -> int:
        """How many watch streams are open."""
        with self._lock:
            return self._held


def client_of(peer: str) -> str:
    """The client a gRPC peer string names: its IP address, or the whole string.

    ``ipv4:10.0.0.1:5000`` and ``ipv6:[::1]:5000`` (also with the brackets
    percent-encoded) give ``10.0.0.1`` and ``::1``; anything else (a unix
    socket) is its own client.
    """
    kind, sep, address = peer.partition(":")
    if not sep or kind not in ("ipv4", "ipv6"):
        return peer
    address = urllib.parse.unquote(address)
    host = address.rpartition(":")[0] or address
    return host.removeprefix("[").removesuffix("]")


def request_cost(method: str, data: bytes) -> int:
    """The bytes charged to the memory budget for request ``data`` of ``method``.

    A PutCheckpoint is charged :data:`PUT_COST_CANONICAL` per byte when its
    checkpoint ends with the trailer (FORMAT.md §2.1) and its body passes the
    compiled canonical check (which reads the bytes without parsing them),
    :data:`PUT_COST_OTHER` otherwise, and so is a PutCheckpointDelta; other
    methods :data:`REQUEST_COST`.
    """
    if method == "PutCheckpointDelta":  # a delta: small, and parsed whole
        return PUT_COST_OTHER * len(data)
    if method != "PutCheckpoint":
        return REQUEST_COST * len(data)
    check = accel.check_canonical
    sealed = _checkpoint_field(data)
    if (
        check is not None
        and sealed is not None
        and len(sealed) >= TRAILER_SIZE
        and sealed[-TRAILER_SIZE : -TRAILER_SIZE + len(TRAILER_TAG)] == TRAILER_TAG
        and check(sealed[:-TRAILER_SIZE])  # type: ignore[arg-type]
    ):
        return PUT_COST_CANONICAL * len(data)
    return PUT_COST_OTHER * len(data)


def _checkpoint_field(data: bytes) -> memoryview | None:
    """Field 1 of a PutCheckpointRequest, when the envelope is plain (else None)."""
    view = memoryview(data)
    position, found, fields = 0, None, 0
    while position < len(view):
        fields += 1
        if fields > _MAX_ENVELOPE_FIELDS:
            return None
        tag, position = read_varint(view, position)
        if tag is None:
            return None
        if tag == 1 << 3 | 2:
            length, position = read_varint(view, position)
            if length is None or found is not None or position + length > len(view):
                return None
            found = view[position : position + length]
            position += length
        elif tag == 2 << 3:
            value, position = read_varint(view, position)
            if value is None:
                return None
        else:
            return None
    return found


def _load_trim() -> Callable[[], None] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int

    def give_back() -> None:
        trim(0)

    return give_back


_trim = _load_trim()


def give_back_memory() -> None:
    """Return the heap's free memory to the system (glibc ``malloc_trim``; else nothing)."""
    if _trim is not None:
        _trim()
