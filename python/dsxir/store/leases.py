"""The lease rules every store shares: argument checks, tokens and the local clock.

A store's lease methods (:mod:`.interface`) check their arguments with these
functions before touching anything, so every backend refuses the same values
the same way:

- ``ttl``: a finite ``int`` or ``float`` of seconds, ``> 0`` and at most
  :data:`MAX_LEASE_TTL` (one day); ``bool`` and other types are a
  ``TypeError``, other numbers a ``ValueError``;
- ``holder``: a non-empty ``str`` of at most :data:`MAX_HOLDER_BYTES` bytes
  of UTF-8, without control characters (C0, DEL, C1) or lone surrogates,
  and without anything FORMAT.md §10 calls a credential, since it is stored
  and shown to other workers (``TypeError``/``ValueError``);
- a :class:`~.interface.Lease` passed to ``renew_lease``/``release_lease``:
  a ``Lease`` whose session id :func:`.check_session_id` accepts and whose
  token is a ``str`` (``TypeError``/``InvalidSessionId``).

Tokens are :func:`new_token` (``secrets.token_hex(16)``) and compared with
:func:`same_token` in constant time; :func:`is_token` tells a token a store
may have issued from any other text. Stores on the local clock (file,
memory) count time in microseconds since the Unix epoch (:func:`now_us`).

A lease **holds** a session (:func:`holds`) while its end is after now and at
most :data:`MAX_LEASE_TTL` after now. A lease that ends later than that was
not granted on this clock (the clock jumped back, or the lease was written
by someone else): it counts as expired, so no lease ever keeps a session for
more than a day after its holder stopped renewing it.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import secrets
import time

from dsxir.errors import LeaseLost
from dsxir.optimizer_session.credentials import has_secret
from dsxir.store.interface import Lease
from dsxir.store.session_ids import check_session_id

__all__ = [
    "MAX_HOLDER_BYTES",
    "MAX_LEASE_TTL",
    "check_holder",
    "check_lease",
    "check_ttl",
    "datetime_of_us",
    "holds",
    "is_token",
    "lost",
    "new_token",
    "now_us",
    "same_token",
    "ttl_us",
]

MAX_LEASE_TTL = 86400.0
"""The longest lease a store grants, in seconds (one day)."""
MAX_HOLDER_BYTES = 256
"""The longest holder name a store accepts, in bytes of UTF-8."""

_MAX_LEASE_TTL_US = round(MAX_LEASE_TTL * 1_000_000)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_TOKEN = re.compile("[0-9a-f]{32}")
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


def check_ttl(ttl: object) -> float:
    """Return ``ttl`` as a float when it is a lease length a store grants; refuse it otherwise."""
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
        raise TypeError(f"ttl must be a number of seconds, not {type(ttl).__name__}")
    if not (math.isfinite(ttl) and 0 < ttl <= MAX_LEASE_TTL):
        raise ValueError(
            f"ttl must be a finite number of seconds in (0, {MAX_LEASE_TTL:g}], got {ttl!r}"
        )
    return float(ttl)


def check_holder(holder: object) -> str:
    """Return ``holder`` when it is a holder name a store accepts; refuse it otherwise."""
    if not isinstance(holder, str):
        raise TypeError(f"holder must be a str, not {type(holder).__name__}")
    if not holder:
        raise ValueError("holder must not be empty")
    try:
        size = len(holder.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError("holder is not valid Unicode (lone surrogate)") from None
    if size > MAX_HOLDER_BYTES:
        raise ValueError(f"holder is {size} bytes of UTF-8, over the limit of {MAX_HOLDER_BYTES}")
    found = _CONTROL.search(holder)
    if found is not None:
        raise ValueError(f"holder contains the control character U+{ord(found.group()):04X}")
    if has_secret(holder):  # the holder is stored and shown to other workers
        raise ValueError("holder looks like it holds a credential (FORMAT.md §10); name the worker")
    return holder


def check_lease(lease: object) -> Lease:
    """Return ``lease`` when it is a :class:`Lease` of a valid session id with a str token."""
    if not isinstance(lease, Lease):
        raise TypeError(f"lease must be a Lease, not {type(lease).__name__}")
    check_session_id(lease.session_id)
    if not isinstance(lease.token, str):
        raise TypeError(f"lease token must be a str, not {type(lease.token).__name__}")
    return lease


def new_token() -> str:
    """A fresh lease token: 32 lower-case hex digits from :mod:`secrets`."""
    return secrets.token_hex(16)


def is_token(token: str) -> bool:
    """Whether ``token`` has the form of a token :func:`new_token` makes (32 lower-case hex)."""
    return _TOKEN.fullmatch(token) is not None


def same_token(stored: str, given: str) -> bool:
    """Whether ``given`` is the lease token ``stored`` (constant time; an empty one never is)."""
    if not stored or not given:
        return False
    return secrets.compare_digest(
        stored.encode("utf-8", "surrogatepass"), given.encode("utf-8", "surrogatepass")
    )


def lost(lease: Lease, holder: str | None) -> LeaseLost:
    """The ``LeaseLost`` of ``lease``, given who holds the session now (``None``: nobody)."""
    if holder is None:
        return LeaseLost(lease.session_id, "it was released, or the session was deleted")
    return LeaseLost(lease.session_id, f"it expired and {holder!r} took the session over")


def now_us() -> int:
    """The local clock, in microseconds since the Unix epoch."""
    return time.time_ns() // 1000


def holds(expires_us: int, now: int) -> bool:
    """Whether a lease ending at ``expires_us`` still holds its session at ``now`` (both us).

    It does while it ends after ``now``, and no more than :data:`MAX_LEASE_TTL`
    after it (see the module text): a later end counts as expired.
    """
    return now < expires_us <= now + _MAX_LEASE_TTL_US


def ttl_us(ttl: float) -> int:
    """A checked ``ttl`` in whole microseconds (at least one)."""
    return max(1, round(ttl * 1_000_000))


def datetime_of_us(us: int) -> _dt.datetime:
    """Microseconds since the Unix epoch as an aware UTC datetime."""
    return _EPOCH + _dt.timedelta(microseconds=us)
