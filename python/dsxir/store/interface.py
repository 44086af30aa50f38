"""The store interface: what every store promises, and the values it returns.

A store keeps the latest checkpoint of each session under a **generation**, a
counter that the store assigns on every commit. Commits are compare-and-swap:

- ``put(cp)`` (``expected_generation=None``) **creates** a session: it
  commits generation 1 when no checkpoint is stored for ``cp.session_id`` and
  raises :class:`~dsxir.errors.Conflict` (``expected=None``, ``actual`` = the
  stored generation) when one is. Creating never overwrites.
- ``put(cp, expected_generation=g)`` **updates** a session: it commits
  generation ``g + 1`` when the stored generation is exactly ``g`` and raises
  ``Conflict`` (``expected=g``, ``actual`` = the stored generation, or
  ``None`` when nothing is stored) otherwise. ``g`` must be an ``int >= 1``;
  anything else is a ``TypeError``/``ValueError`` before anything is read.
- Of any number of callers (threads or processes) that pass the same
  ``expected_generation``, exactly one commits; the others get ``Conflict``.
- ``delete(session_id)`` forgets the session, its generation and its lease,
  and does nothing when there is none. A session created again after a
  delete starts at generation 1 again.
- An update is refused with :class:`~dsxir.errors.IllegalHistory` when the
  checkpoint is not a legal successor of the stored one (FORMAT.md §9.1:
  same session, optimizer, trainset hash, creation time and direction; the
  trial log only extended; counters never lower; a status change §9 allows;
  nothing after a terminal status). The generation check comes first.

A store may also offer ``put_delta(delta)`` (:class:`~dsxir.store.FileStore`,
the PostgreSQL store and the gRPC client do): it commits what a checkpoint
delta (FORMAT.md §13) adds to the stored checkpoint, with
``delta.base_generation`` as the expected generation, under the same rules
(docs/stores.md, "Delta commits"); the session runner uses it when the
store has it.

**Leases** (docs/stores.md) let one worker at a time run a session. They are
kept beside the checkpoints, on the store's clock (the local clock for file
and memory stores, the database's for PostgreSQL, the server's over gRPC):

- ``acquire_lease(session_id, holder, ttl=s)`` grants a :class:`Lease` for
  ``s`` seconds when the session has no lease or its lease has expired (a
  takeover; a lease ending more than a day ahead, which no grant makes,
  counts as expired: :func:`.leases.holds`), and raises
  :class:`~dsxir.errors.LeaseHeld` naming the holder and the end of the
  lease otherwise. The session need not exist.
- ``renew_lease(lease, ttl=s)`` extends a lease to now + ``s`` while its
  token is still the session's lease, expired or not (nobody took it);
  :class:`~dsxir.errors.LeaseLost` otherwise.
- ``release_lease(lease)`` gives it up; a lease that is no longer the
  session's is left alone, without error.
- ``get_lease(session_id)`` returns the session's lease, expired or not,
  with an empty token; ``None`` when it has none.

``ttl`` (seconds, finite, in (0, 86400]) and ``holder`` (a non-empty str of
at most 256 UTF-8 bytes, no control characters) are checked as
:mod:`.leases` says, with ``TypeError``/``ValueError`` before anything is
read; tokens are ``secrets.token_hex(16)``.

Leases are advisory: ``put`` does not look at them. The session runner
(:mod:`dsxir.session`) takes one before its first read and renews it while it
runs; the generation check keeps two writers from ever both committing on
the same state.

Stores take and return checkpoints (the generated protobuf message) but keep
only their canonical bytes (``checkpoint.encode``): ``put`` refuses an invalid
checkpoint with :class:`~dsxir.errors.InvalidCheckpoint` and ``get`` returns a
freshly decoded one, so changing a returned checkpoint never changes the
store. Every method refuses a session id that :func:`check_session_id`
refuses, before touching anything.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from dsxir.errors import Conflict, CorruptStore, ResumeMismatch
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session.statuses import STATUSES
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint

__all__ = [
    "STATUSES",
    "Lease",
    "ListFilter",
    "Listing",
    "OnDamage",
    "Store",
    "Stored",
    "check_expected_generation",
    "check_page",
    "decode_stored",
    "listing_of",
    "next_generation",
    "timestamp_to_datetime",
]

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


@dataclass(frozen=True)
class Stored:
    """A checkpoint as read from a store, with the generation it was committed as."""

    checkpoint: Checkpoint
    generation: int


@dataclass(frozen=True)
class Lease:
    """A worker's hold on a session until ``expires_at`` (aware UTC, store clock).

    ``token`` is the secret handle that renews and releases the lease; it is
    empty in what ``get_lease`` returns, and left out of ``repr`` so that a
    logged or printed lease never shows it. ``holder`` is the name the worker
    gave itself (e.g. ``"host:pid"``), shown to the workers it refuses.
    """

    session_id: str
    holder: str
    token: str = field(repr=False)
    expires_at: _dt.datetime

    def expired(self, now: _dt.datetime | None = None) -> bool:
        """Whether the lease has ended at ``now`` (default: the local clock)."""
        return self.expires_at <= (now or _dt.datetime.now(_dt.timezone.utc))


@dataclass(frozen=True)
class Listing:
    """One session in a store listing, read from its summary (the trial log is not read).

    ``updated_at`` is the checkpoint's ``updated_at`` (UTC, microsecond
    precision); ``best_score`` is ``None`` while no ok trial has a score;
    ``trials`` is the length of the trial log.
    """

    session_id: str
    status: str
    optimizer: str
    updated_at: _dt.datetime
    best_score: float | None
    completed: int
    errors: int
    attempts: int
    trials: int
    generation: int


OnDamage = Callable[[CorruptStore], None]
"""What ``Store.list`` calls for a damaged session instead of raising, when given."""


@runtime_checkable
class Store(Protocol):
    """The interface of every checkpoint store (see the module text for the CAS rule)."""

    def put(self, cp: Checkpoint, *, expected_generation: int | None = None) -> int:
        """Commit ``cp`` under the CAS rule; return the new generation."""
        ...

    def get(self, session_id: str) -> Stored:
        """The latest committed checkpoint of a session; ``NotFound`` when there is none."""
        ...

    def list(
        self,
        *,
        status: str | None = None,
        optimizer: str | None = None,
        updated_since: _dt.datetime | None = None,
        on_damage: OnDamage | None = None,
    ) -> list[Listing]:
        """Summaries of the stored sessions that match every filter given, by session id.

        A session whose stored data is damaged raises ``CorruptStore``, unless
        ``on_damage`` is given: then it is called with that ``CorruptStore``
        and the listing goes on with the other sessions.
        """
        ...

    def delete(self, session_id: str) -> None:
        """Forget a session and its lease; nothing happens when there is none."""
        ...

    def acquire_lease(self, session_id: str, holder: str, *, ttl: float) -> Lease:
        """Hold ``session_id`` for ``ttl`` seconds, or ``LeaseHeld`` (see the module text)."""
        ...

    def renew_lease(self, lease: Lease, *, ttl: float) -> Lease:
        """Extend a held lease to now + ``ttl`` seconds, or ``LeaseLost``."""
        ...

    def release_lease(self, lease: Lease) -> None:
        """Give a lease up; nothing happens when it is no longer the session's."""
        ...

    def get_lease(self, session_id: str) -> Lease | None:
        """The session's lease (expired or not) without its token, or ``None``."""
        ...


def check_expected_generation(expected_generation: object) -> int | None:
    """Refuse an ``expected_generation`` that is neither ``None`` nor an ``int >= 1``."""
    if expected_generation is None:
        return None
    if not isinstance(expected_generation, int) or isinstance(expected_generation, bool):
        raise TypeError(
            f"expected_generation must be None or an int, not {type(expected_generation).__name__}"
        )
    if expected_generation < 1:
        raise ValueError(
            f"expected_generation must be >= 1 (None creates), got {expected_generation}"
        )
    return expected_generation


def check_page(after: object, limit: object) -> tuple[str | None, int | None]:
    """Check the paging arguments of a ``list_page``: ``after`` a str, ``limit`` an int >= 0.

    ``list_page(after=..., limit=...)``, which some stores offer beyond the
    interface, keeps the sessions whose id sorts after ``after`` by UTF-8
    bytes, at most ``limit`` of them; ``None`` is no bound for either.
    """
    if after is not None and not isinstance(after, str):
        raise TypeError(f"after must be None or a str, not {type(after).__name__}")
    if limit is None:
        return after, None
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise TypeError(f"limit must be None or an int, not {type(limit).__name__}")
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    return after, limit


def next_generation(session_id: str, stored: int | None, expected: int | None) -> int:
    """The generation a commit gets under the CAS rule, or ``Conflict``.

    ``stored`` is the session's generation now (``None``: no session),
    ``expected`` what the caller passed (``None``: create). Every store that
    reads its generation before writing decides with this.
    """
    if expected is None:
        if stored is not None:
            raise Conflict(session_id, None, stored)
        return 1
    if stored != expected:
        raise Conflict(session_id, expected, stored)
    return expected + 1


@dataclass(frozen=True)
class ListFilter:
    """The filters of ``Store.list``; every one given must match (AND).

    ``status`` is a status name, ``optimizer`` an exact optimizer name and
    ``updated_since`` an aware datetime (``updated_at >= updated_since``);
    ``None`` matches anything. :meth:`of` refuses filters that could never
    match by mistake: unknown statuses, naive datetimes, wrong types.
    """

    status: str | None = None
    optimizer: str | None = None
    updated_since: _dt.datetime | None = None

    @classmethod
    def of(
        cls,
        status: str | None = None,
        optimizer: str | None = None,
        updated_since: _dt.datetime | None = None,
    ) -> ListFilter:
        """The filter of a ``list`` call's arguments, checked."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
        if optimizer is not None and not isinstance(optimizer, str):
            raise TypeError("optimizer must be a str")
        if updated_since is not None:
            if not isinstance(updated_since, _dt.datetime):
                raise TypeError("updated_since must be a datetime")
            if updated_since.tzinfo is None or updated_since.utcoffset() is None:
                raise ValueError("updated_since must be timezone-aware (e.g. UTC)")
        return cls(status, optimizer, updated_since)

    def matches(self, item: Listing) -> bool:
        """Whether ``item`` passes every filter given."""
        return (
            (self.status is None or item.status == self.status)
            and (self.optimizer is None or item.optimizer == self.optimizer)
            and (self.updated_since is None or item.updated_at >= self.updated_since)
        )

    def select(self, listings: Iterable[Listing]) -> list[Listing]:
        """The matching listings, ordered by session id."""
        chosen = [item for item in listings if self.matches(item)]
        chosen.sort(key=lambda item: item.session_id)
        return chosen


def decode_stored(
    body: bytes, session_id: str, where: str, *, meanwhile: Callable[[], None] | None = None
) -> Checkpoint:
    """Decode the checkpoint a store holds for ``session_id`` at ``where``.

    Bytes whose checksum matched but that do not decode, or that hold another
    session, are damage: ``CorruptStore`` naming ``where``, never a checkpoint.
    ``meanwhile`` is work done while the bytes are checked (``checkpoint.decode``).
    """
    try:
        cp = checkpoint.decode(body, meanwhile=meanwhile)
    except ResumeMismatch as exc:
        detail = f"checksum matches but the checkpoint is invalid: {exc}"
        raise CorruptStore(where, detail) from None
    if cp.session_id != session_id:
        raise CorruptStore(where, f"holds session {cp.session_id!r}, not {session_id!r}")
    return cp


def timestamp_to_datetime(seconds: int, nanos: int) -> _dt.datetime:
    """A protobuf timestamp as an aware UTC datetime (nanoseconds cut to microseconds)."""
    return _EPOCH + _dt.timedelta(seconds=seconds, microseconds=nanos // 1000)


def listing_of(cp: Checkpoint, generation: int) -> Listing:
    """The listing of a (valid) checkpoint committed as ``generation``."""
    progress = cp.progress
    return Listing(
        session_id=cp.session_id,
        status=checkpoint.status_name(cp),
        optimizer=cp.optimizer,
        updated_at=timestamp_to_datetime(cp.updated_at.seconds, cp.updated_at.nanos),
        best_score=progress.best_score if progress.HasField("best_score") else None,
        completed=progress.completed,
        errors=progress.errors,
        attempts=progress.attempts,
        trials=len(progress.trial_log),
        generation=generation,
    )
