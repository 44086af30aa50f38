"""A checkpoint store in PostgreSQL, shared by many processes and machines.

One row per session (table ``dsxir_checkpoints`` of the store's schema, see
:mod:`.migrations`) holds a snapshot (canonical bytes and their CRC32C), the
current generation and the current summary columns, so ``list`` never reads
a checkpoint; table ``dsxir_deltas`` holds one row per delta (FORMAT.md §13)
committed since the snapshot (``delta_count`` of them, ``delta_bytes``
long). Every operation but an update and a delete is one statement in
autocommit mode on a pooled connection (psycopg 3, ``psycopg_pool``):

- create: ``INSERT … ON CONFLICT DO NOTHING``; update (``put``, ``put_delta``),
  in one transaction: ``SELECT … FOR UPDATE`` of the session row (its
  generation must be the expected one, the stored checkpoint intact, and
  the new checkpoint a legal successor of it,
  :func:`~dsxir.optimizer_session.history.check_successor`), then one
  statement that writes the commit and ``generation = generation + 1``.
  The row lock serializes commits of one session across every client, so of
  any number of writers on one generation exactly one commits; the others
  get ``Conflict`` (the CAS rule of :mod:`dsxir.store.interface`).
- ``put`` writes a new snapshot and removes the session's delta rows;
  ``put_delta`` inserts a delta row and updates the session row's summary,
  or writes a new snapshot (a compaction) when the deltas since the last
  one would pass ``max(snapshot //`` :data:`COMPACT_SHARE` ``,``
  :data:`COMPACT_MIN_BYTES` ``)`` bytes, so the bytes written (and the WAL)
  grow with the delta, not with the session. The stored checkpoint an update
  checks against is kept in memory for the sessions this store committed
  last (:data:`REMEMBERED_SESSIONS`) while the session row is the one it
  wrote (same generation, same ``xmin``); otherwise it is read like ``get``.
  A ``put_delta`` on such a remembered session is one statement with no
  lock taken first: it inserts the delta row and updates the session row
  only where the row still has that generation and ``xmin``, so it writes
  nothing when another client committed; the transaction above runs then.
- leases: one row per session in ``dsxir_leases``, ``expires_at`` on the
  **database clock** (``now()``), so clients on machines whose clocks
  disagree still agree on leases. Acquiring is one statement,
  ``INSERT … ON CONFLICT (session_id) DO UPDATE … WHERE expires_at <= now()``
  (or ends more than a day after ``now()``, which no grant made: see
  :func:`dsxir.store.leases.holds`): of any number of clients, exactly one
  takes a free or expired lease. Renewing and releasing match the token in
  the ``WHERE`` clause (a text that is no store's token, such as one holding
  NUL, matches nothing without being sent); ``delete``
  removes the lease in the statement that removes the session.
- delete, in one transaction: the session row and its lease, then the
  delta rows, so that a commit it waited for leaves none behind.
- each commit and delete sends ``NOTIFY`` in the same statement (see
  :mod:`.listener`); the store is a
  :class:`~dsxir.store.events.CommitFeed`.
- ``get`` reads the session row and its delta rows in one statement, checks
  the snapshot's CRC32C and decodes it with full validation, then merges the
  deltas in generation order (each after its CRC32C, generation and base)
  and checks the checkpoint they end with once (:func:`dsxir.store.replay.replay`):
  damaged rows (and a gap or a missing delta row) raise ``CorruptStore``
  naming the row, never wrong data. The first delta rows are decoded while
  the snapshot is checked (:func:`dsxir.store.replay.decode_ahead`; in a
  second thread from a 1 MiB snapshot on), the errors reported in the same
  order.
- ``delta_bytes`` reads one delta row by its key: the sealed bytes of the
  delta that committed a generation, for a watcher one generation behind.
- ``text`` holds no NUL: an optimizer name holding U+0000 is refused by
  ``put`` and ``put_delta`` (``InvalidCheckpoint``, field ``optimizer``) and as an ``optimizer``
  filter of ``list`` (``ValueError``), before any statement, never as a
  driver error. Session ids never hold one (:mod:`dsxir.store.session_ids`).

When the database cannot be reached (down, restarting, pool exhausted for
``pool_timeout`` seconds) an operation raises
:class:`~dsxir.store.grpc.errors.StoreUnavailable`; for a
commit the outcome is then unknown (read the generation to learn it).
Pooled connections are checked before use when the server may have closed
them, so a restart of the database costs no more than the calls made while
it was down.

URL: ``postgresql://[user[:password]@]host[:port]/dbname?…`` with any libpq
parameter, plus these of the store (removed before connecting):
``schema`` (default ``public``; lower-case letters, digits and ``_``, at most
40 characters), ``pool_min`` (1), ``pool_max`` (16), ``pool_timeout``
(seconds, 5).
"""

from __future__ import annotations

import builtins
import datetime as _dt
import functools
import re
import select
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from dsxir.errors import (
    Conflict,
    CorruptStore,
    InvalidCheckpoint,
    InvalidDelta,
    LeaseHeld,
    NotFound,
    StoreUnavailable,
)
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session import delta as dl
from dsxir.optimizer_session.history import check_successor
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint, CheckpointDelta
from dsxir.store import leases
from dsxir.store.events import CommitEvent
from dsxir.store.framing import crc32c
from dsxir.store.interface import (
    Lease,
    ListFilter,
    Listing,
    OnDamage,
    Stored,
    check_expected_generation,
    check_page,
    decode_stored,
    listing_of,
)
from dsxir.store.postgres.listener import Listener
from dsxir.store.postgres.migrations import migrate
from dsxir.store.redact import redact_url
from dsxir.store.replay import decode_ahead, decoded_at, replay
from dsxir.store.session_ids import check_session_id
from dsxir.store.successor import check_put, trial_log_bytes
from dsxir.store.summary import encode_summary

__all__ = ["COMPACT_MIN_BYTES", "COMPACT_SHARE", "REMEMBERED_SESSIONS", "PostgresStore"]

COMPACT_SHARE = 6
"""A delta commit writes a new snapshot instead of a delta row when the deltas
since the snapshot would pass ``max(snapshot // COMPACT_SHARE, COMPACT_MIN_BYTES)``."""
COMPACT_MIN_BYTES = 8192
"""See :data:`COMPACT_SHARE`."""
REMEMBERED_SESSIONS = 8
"""How many sessions' last committed checkpoints a store keeps in memory."""

_SCHEMA_RE = re.compile(r"[a-z_][a-z0-9_]{0,39}")
_STORE_PARAMS = ("schema", "pool_min", "pool_max", "pool_timeout")
_MAX_NOTIFY_BYTES = 7000
_NUL_DETAIL = "holds NUL (U+0000), which a PostgreSQL store cannot hold (text columns)"
_SUMMARY_COLUMNS = (
    "session_id, status, optimizer, updated_at, best_score, completed, errors, attempts,"
    " trials, generation"
)
_SET_SUMMARY = (
    "generation = generation + 1, status = %(status)s, optimizer = %(optimizer)s,"
    " updated_at = %(updated_at)s, best_score = %(best_score)s, completed = %(completed)s,"
    " errors = %(errors)s, attempts = %(attempts)s, trials = %(trials)s, committed_at = now()"
)


@dataclass
class _State:
    """A session's last committed checkpoint, as this store committed or read it.

    ``xmin`` is the transaction id that wrote the session row: with the
    generation, it tells whether the row is still the one this state is of.
    """

    generation: int
    xmin: str
    checkpoint: Checkpoint
    snapshot_bytes: int
    delta_count: int
    delta_bytes: int


class PostgresStore:
    """Sessions as rows of a PostgreSQL table; see the module text."""

    def __init__(
        self,
        conninfo: str,
        *,
        schema: str = "public",
        pool_min: int = 1,
        pool_max: int = 16,
        pool_timeout: float = 5.0,
    ) -> None:
        """A store in ``schema`` of the database ``conninfo`` names (a libpq URL or DSN).

        Connects lazily: the schema is created or migrated on first use.
        """
        if not _SCHEMA_RE.fullmatch(schema):
            raise ValueError(f"schema {schema!r}: use [a-z_][a-z0-9_]*, at most 40 characters")
        if not 1 <= pool_min <= pool_max:
            raise ValueError("need 1 <= pool_min <= pool_max")
        self.schema = schema
        self.channel = f"dsxir_checkpoints_{schema}"
        self._conninfo = conninfo
        self._table = sql.SQL("{}.dsxir_checkpoints").format(sql.Identifier(schema))
        deltas_table = sql.SQL("{}.dsxir_deltas").format(sql.Identifier(schema))
        leases_table = sql.SQL("{}.dsxir_leases").format(sql.Identifier(schema))
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            conninfo,
            min_size=pool_min,
            max_size=pool_max,
            timeout=pool_timeout,
            kwargs={"autocommit": True},
            check=_check_connection,
            open=False,
            name=f"dsxir-{schema}",
        )
        self._open_lock = threading.Lock()
        self._ready = False
        self._listener: Listener | None = None
        self._queries = _Queries(self._table, deltas_table, leases_table, self.channel)
        self._states: dict[str, _State] = {}
        self._states_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        """The store a ``postgresql://`` URL names (see the module text)."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError(f"store URL {url!r}: expected postgresql://...")
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        mine = {key: value for key, value in query if key in _STORE_PARAMS}
        rest = [(key, value) for key, value in query if key not in _STORE_PARAMS]
        conninfo = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(rest)))
        try:
            return cls(
                conninfo,
                schema=mine.get("schema", "public"),
                pool_min=int(mine.get("pool_min", "1")),
                pool_max=int(mine.get("pool_max", "16")),
                pool_timeout=float(mine.get("pool_timeout", "5")),
            )
        except ValueError as exc:
            raise ValueError(f"store URL {redact_url(url)}: {exc}") from None

    def __repr__(self) -> str:
        return f"PostgresStore({redact_url(self._conninfo)}, schema={self.schema!r})"

    # --- the store interface ----------------------------------------------------

    def put(self, cp: Checkpoint, *, expected_generation: int | None = None) -> int:
        """Commit ``cp`` under the CAS rule; return the new generation.

        Raises ``InvalidSessionId``, ``InvalidCheckpoint`` (nothing written;
        also for an optimizer name holding NUL, which PostgreSQL ``text``
        cannot hold), ``Conflict``, ``IllegalHistory`` (not a legal successor
        of the stored checkpoint), ``CorruptStore`` (an update over a damaged
        row), or ``StoreUnavailable`` (outcome unknown).
        """
        session_id = check_session_id(cp.session_id)
        expected = check_expected_generation(expected_generation)
        body = checkpoint.encode(cp)
        if "\x00" in cp.optimizer:
            raise InvalidCheckpoint("optimizer", _NUL_DETAIL)
        generation = 1 if expected is None else expected + 1
        params = {
            "session_id": session_id,
            "expected": expected,
            "body": body,
            "crc": crc32c(body),
            **_summary_params(cp, generation),
        }
        with self._connection() as conn:
            if expected is not None:
                self._update(conn, cp, params)
                return generation
            for _ in range(3):
                if conn.execute(self._queries.insert, params).fetchone() is not None:
                    return generation
                row = conn.execute(self._queries.generation, params).fetchone()
                if row is not None:
                    raise Conflict(session_id, None, int(row[0]))
                # created and deleted again between the two statements: try again
        raise Conflict(session_id, None, None)

    def _update(
        self, conn: psycopg.Connection[Any], cp: Checkpoint, params: dict[str, Any]
    ) -> None:
        """Commit an update in one transaction, over the stored checkpoint locked and checked.

        The new body is a snapshot: the session's delta rows go in the same
        transaction.
        """
        session_id, expected = params["session_id"], params["expected"]
        with conn.transaction():
            row = conn.execute(self._queries.locked, params).fetchone()
            if row is None or int(row[0]) != expected:
                raise Conflict(session_id, expected, None if row is None else int(row[0]))
            state = self._take(session_id, expected, row[1])
            log = None
            if state is None:
                rows = self._fetch(conn, session_id)
                state = self._loaded(session_id, rows)
                if (
                    state is not None and len(rows) == 1
                ):  # a snapshot alone: its bytes hold the trial entries
                    log = trial_log_bytes(bytes(rows[0][2]), state.checkpoint.progress)
            assert state is not None  # the row is locked
            try:
                check_put(state.checkpoint, log, cp, params["body"])
            except BaseException:
                self._remember(session_id, state)  # unchanged, still the stored one
                raise
            if conn.execute(self._queries.update, params).fetchone() is None:
                raise Conflict(session_id, expected, None)  # not reached: the row is locked

    def put_delta(self, delta: CheckpointDelta) -> int:
        """Commit what ``delta`` adds to the stored checkpoint (FORMAT.md §13); the new generation.

        ``delta.base_generation`` is the expected generation (the CAS rule of
        :mod:`dsxir.store.interface`; a session that does not exist is a
        ``Conflict``). Refuses with ``InvalidDelta`` a delta that cannot be
        read or is not the stored checkpoint's (§13.1, §13.2), with
        ``InvalidCheckpoint`` one whose result breaks a rule of FORMAT.md,
        holds a credential or an optimizer name holding NUL, with
        ``IllegalHistory`` a result that is not a legal successor; the other
        errors are :meth:`put`'s. Nothing is written then.

        When this store remembers the session at the expected generation,
        one statement inserts the delta row and updates the session row
        (generation, summary columns, the same ``NOTIFY`` as :meth:`put`)
        while the row is still the one it remembers (generation, ``xmin``).
        Otherwise, or when that statement writes nothing, one transaction
        locks the session row (``SELECT … FOR UPDATE``), then inserts the
        delta row and updates the session row the same way; when the
        deltas since the snapshot would pass ``max(snapshot //``
        :data:`COMPACT_SHARE` ``,`` :data:`COMPACT_MIN_BYTES` ``)`` bytes, it
        writes the new checkpoint as the snapshot and removes the session's
        delta rows instead (a compaction). The stored checkpoint is read
        once, then kept in memory for the sessions this store committed last
        (:data:`REMEMBERED_SESSIONS`) while the session row is the one it
        wrote, so the work and the bytes written grow with the delta, not
        with the session, apart from a compaction now and then.
        """
        if not isinstance(delta, CheckpointDelta):
            raise TypeError(f"put_delta takes a CheckpointDelta, not {type(delta).__name__}")
        session_id = check_session_id(delta.head.session_id)
        data = dl.encode_delta(delta)
        if not delta.kept >> Checkpoint.OPTIMIZER_FIELD_NUMBER & 1 and (
            "\x00" in delta.head.optimizer
        ):
            raise InvalidCheckpoint("optimizer", _NUL_DETAIL)
        expected = delta.base_generation
        generation = expected + 1
        with self._connection() as conn:
            state = self._take_at(session_id, expected)
            if state is not None and self._append_unlocked(conn, state, delta, data):
                return generation
            state = None
            merged = False
            try:
                with conn.transaction():
                    row = conn.execute(self._queries.locked, {"session_id": session_id}).fetchone()
                    if row is None or int(row[0]) != expected:
                        raise Conflict(session_id, expected, None if row is None else int(row[0]))
                    state = self._take(session_id, expected, row[1])
                    if state is None:
                        state = self._loaded(session_id, self._fetch(conn, session_id))
                    assert state is not None  # the row is locked
                    probe = dl.checked_probe(state.checkpoint, delta)
                    check_successor(state.checkpoint, probe, appended=True)
                    merged = True
                    dl.merge(state.checkpoint, probe, delta.kept)
                    self._commit_delta(conn, state, generation, data)
            except BaseException:
                if state is not None and not merged:
                    self._remember(session_id, state)  # unchanged, still the stored one
                raise
        self._remember(session_id, state)
        return generation

    def _append_unlocked(
        self, conn: psycopg.Connection[Any], state: _State, delta: CheckpointDelta, data: bytes
    ) -> bool:
        """Commit ``delta`` as one delta row over the remembered ``state``, in one statement.

        The statement writes only while the session row is the one ``state``
        holds (its generation and ``xmin``), so no lock is taken first; True
        when it wrote. False when the row changed (``state`` is dropped), or
        when the delta would compact or is refused (``state`` is remembered
        again, unchanged): the caller takes the locked path, which refuses
        the delta on the row as it is (a session deleted and created again
        by another client may stand at the same generation).
        """
        session_id = state.checkpoint.session_id
        try:
            probe = dl.checked_probe(state.checkpoint, delta)
            check_successor(state.checkpoint, probe, appended=True)
        except Exception:
            probe = None  # judged again on the locked row: ``state`` may be another session's
        if probe is None or self._compacts(state, data):
            self._remember(session_id, state)  # unchanged
            return False
        dl.merge(state.checkpoint, probe, delta.kept)  # dropped below unless written
        generation = state.generation + 1
        params = self._delta_params(state.checkpoint, generation, data)
        params["xmin"] = state.xmin
        row = conn.execute(self._queries.append_unlocked, params).fetchone()
        if row is None:
            return False
        state.delta_count, state.delta_bytes = state.delta_count + 1, state.delta_bytes + len(data)
        state.generation, state.xmin = generation, row[0]
        self._remember(session_id, state)
        return True

    def _compacts(self, state: _State, data: bytes) -> bool:
        """Whether committing ``data`` after ``state`` writes a new snapshot instead of a row."""
        spent = state.delta_bytes + len(data)
        return spent > max(state.snapshot_bytes // COMPACT_SHARE, COMPACT_MIN_BYTES)

    def _delta_params(self, cp: Checkpoint, generation: int, data: bytes) -> dict[str, Any]:
        """The parameters of a delta commit of ``cp`` as ``generation`` (``data`` the delta)."""
        return {
            "session_id": cp.session_id,
            "expected": generation - 1,
            "generation": generation,
            "delta": data,
            "crc": crc32c(data),
            "length": len(data),
            **_summary_params(cp, generation),
        }

    def _commit_delta(
        self, conn: psycopg.Connection[Any], state: _State, generation: int, data: bytes
    ) -> None:
        """Write ``generation`` (``state`` holds its checkpoint): a delta row, or a snapshot."""
        cp = state.checkpoint
        params = self._delta_params(cp, generation, data)
        spent = state.delta_bytes + len(data)
        if self._compacts(state, data):
            body = checkpoint.encode(cp)
            params["body"], params["crc"] = body, crc32c(body)
            row = conn.execute(self._queries.update, params).fetchone()
            state.snapshot_bytes, state.delta_count, state.delta_bytes = len(body), 0, 0
        else:
            row = conn.execute(self._queries.append, params).fetchone()
            state.delta_count, state.delta_bytes = state.delta_count + 1, spent
        if row is None:
            raise Conflict(cp.session_id, generation - 1, None)  # not reached: the row is locked
        state.generation, state.xmin = generation, row[0]

    def get(self, session_id: str) -> Stored:
        """The latest committed checkpoint; ``NotFound``, or ``CorruptStore`` naming the row."""
        check_session_id(session_id)
        with self._connection() as conn:
            rows = self._fetch(conn, session_id)
        state = self._loaded(session_id, rows)
        if state is None:
            raise NotFound(session_id)
        return Stored(state.checkpoint, state.generation)

    def delta_bytes(self, session_id: str, generation: int) -> bytes | None:
        """The sealed bytes of the delta that committed ``generation`` (base ``generation - 1``).

        They are the bytes ``put_delta`` wrote, byte for byte (``decode_delta``
        reads them), after their CRC32C. None when the session has no delta
        row for ``generation``: that commit was a ``put`` or a compaction, a
        later snapshot replaced it, or the session is gone. A row
        ``generation`` of a session deleted and created again is the new
        session's. One statement, on the key of ``dsxir_deltas``; ``CorruptStore``
        naming the row when its CRC32C does not match.
        """
        check_session_id(session_id)
        if isinstance(generation, bool) or not isinstance(generation, int):
            raise TypeError(f"generation must be an int, not {type(generation).__name__}")
        if not 2 <= generation < 1 << 63:  # no row holds another (a bigint >= 2)
            return None
        with self._connection() as conn:
            row = (
                conn.cursor(binary=True)
                .execute(self._queries.delta, {"session_id": session_id, "generation": generation})
                .fetchone()
            )
        if row is None:
            return None
        data, crc = bytes(row[0]), int(row[1])
        if crc32c(data) != crc:
            raise CorruptStore(
                self._delta_where(session_id, generation),
                f"CRC32C mismatch (stored {crc:08x}, computed {crc32c(data):08x})",
            )
        return data

    def _fetch(self, conn: psycopg.Connection[Any], session_id: str) -> builtins.list[Any]:
        """The session row, then its delta rows by generation (one statement: one snapshot)."""
        cursor = conn.cursor(binary=True)
        return cursor.execute(self._queries.get, {"session_id": session_id}).fetchall()

    def _loaded(self, session_id: str, rows: builtins.list[Any]) -> _State | None:
        """The checkpoint of a session's rows (:meth:`_fetch`); ``None`` without a session row.

        The snapshot is checked like a whole checkpoint; the deltas are
        merged in generation order, each after its CRC32C, its generation
        and its base, and the checkpoint they end with is checked once
        (:func:`~dsxir.store.replay.replay`). Any damage is a
        ``CorruptStore`` naming the row, never wrong data.
        """
        if not rows or rows[0][0] != 0:
            return None
        _, generation, body, crc, count, spent, xmin = rows[0]
        generation, count = int(generation), int(count)
        body = bytes(body)
        decoded: builtins.list[CheckpointDelta | InvalidDelta] = []

        def ahead() -> None:  # while the snapshot is checked
            decoded.extend(decode_ahead(_intact(raw, sum_) for _, _, raw, sum_, *_ in rows[1:]))

        cp = self._checked(session_id, body, int(crc), ahead if len(rows) > 1 else None)
        state = _State(generation, xmin, cp, len(body), count, int(spent))
        if count == 0 and len(rows) == 1:
            return state
        where = self._where(session_id)
        at = [where]

        def deltas() -> Iterator[CheckpointDelta]:
            before = generation - count
            for index, (_, number, raw, crc, *_) in enumerate(rows[1:]):
                number = int(number)
                at[0] = here = self._delta_where(session_id, number)
                if number != before + 1 or number > generation:
                    raise CorruptStore(
                        here,
                        f"commits generation {number} after {before}"
                        f" (the session is at {generation}, {count} deltas after its snapshot)",
                    )
                raw = bytes(raw)
                if crc32c(raw) != crc:
                    raise CorruptStore(
                        here, f"CRC32C mismatch (stored {crc:08x}, computed {crc32c(raw):08x})"
                    )
                try:
                    delta = decoded_at(decoded, index, functools.partial(bytes, raw))
                except InvalidDelta as exc:
                    raise CorruptStore(
                        here, f"checksum matches but the delta is invalid: {exc}"
                    ) from None
                if delta.base_generation != before:
                    detail = f"the delta applies to generation {delta.base_generation} not {before}"
                    raise CorruptStore(here, detail)
                yield delta
                before = number
            if before != generation:
                at[0] = where
                raise CorruptStore(
                    where, f"is at generation {generation} but its delta rows end at {before}"
                )

        try:
            state.checkpoint = replay(cp, deltas())
        except InvalidDelta as exc:
            raise CorruptStore(at[0], f"the delta does not apply: {exc}") from None
        except InvalidCheckpoint as exc:
            raise CorruptStore(where, f"the checkpoint its deltas make is invalid: {exc}") from None
        return state

    def _checked(
        self,
        session_id: str,
        body: bytes,
        crc: int,
        meanwhile: Callable[[], None] | None = None,
    ) -> Checkpoint:
        """The checkpoint of a row's body, after its CRC32C; ``CorruptStore`` naming the row.

        ``meanwhile`` is work done while the body is checked (``decode_stored``).
        """
        where = self._where(session_id)
        if crc32c(body) != crc:
            raise CorruptStore(
                where, f"CRC32C mismatch (stored {crc:08x}, computed {crc32c(body):08x})"
            )
        return decode_stored(body, session_id, where, meanwhile=meanwhile)

    def _take(self, session_id: str, generation: int, xmin: str) -> _State | None:
        """The remembered state of the session (forgotten now) if the row is still the one of it."""
        with self._states_lock:
            state = self._states.pop(session_id, None)
        if state is None or state.generation != generation or state.xmin != xmin:
            return None
        return state

    def _take_at(self, session_id: str, generation: int) -> _State | None:
        """The remembered state of the session (forgotten now) if it is at ``generation``."""
        with self._states_lock:
            state = self._states.pop(session_id, None)
        return state if state is not None and state.generation == generation else None

    def _remember(self, session_id: str, state: _State) -> None:
        with self._states_lock:
            self._states.pop(session_id, None)
            self._states[session_id] = state
            while len(self._states) > REMEMBERED_SESSIONS:
                del self._states[next(iter(self._states))]

    def _forget(self, session_id: str) -> None:
        with self._states_lock:
            self._states.pop(session_id, None)

    def list(
        self,
        *,
        status: str | None = None,
        optimizer: str | None = None,
        updated_since: _dt.datetime | None = None,
        on_damage: OnDamage | None = None,
    ) -> list[Listing]:
        """Summaries of the matching sessions, by session id; reads no checkpoint.

        Summaries live in columns, so no listing is ever damaged: ``on_damage``
        is never called. An ``optimizer`` filter holding NUL is refused
        (``ValueError``): no stored name can hold one.
        """
        return self.list_page(status=status, optimizer=optimizer, updated_since=updated_since)

    def delete(self, session_id: str) -> None:
        """Remove a session, its delta rows and its lease; idempotent.

        One transaction: the session row goes first (waiting for a commit in
        progress to end), then the delta rows, in a statement that sees the
        rows such a commit added; a commit that comes later finds no session
        row and writes nothing.
        """
        check_session_id(session_id)
        self._forget(session_id)
        params = {"session_id": session_id, "payload": f"d {session_id}"}
        with self._connection() as conn, conn.transaction():
            conn.execute(self._queries.delete, params)
            conn.execute(self._queries.delete_deltas, params)

    def acquire_lease(self, session_id: str, holder: str, *, ttl: float) -> Lease:
        """Hold ``session_id`` for ``ttl`` seconds of the database clock, or ``LeaseHeld``."""
        check_session_id(session_id)
        holder = leases.check_holder(holder)
        token = leases.new_token()
        params = {
            "session_id": session_id,
            "holder": holder,
            "token": token,
            "ttl_us": leases.ttl_us(leases.check_ttl(ttl)),
            "max_ttl_us": leases.ttl_us(leases.MAX_LEASE_TTL),
        }
        with self._connection() as conn:
            for _ in range(3):
                row = conn.execute(self._queries.acquire, params).fetchone()
                if row is not None:
                    return Lease(session_id, holder, token, _utc(row[0]))
                held = conn.execute(self._queries.lease, params).fetchone()
                if held is not None:
                    raise LeaseHeld(session_id, held[0], _utc(held[1]))
                # released between the two statements: try again
        raise StoreUnavailable(f"{self!r}: the lease of {session_id!r} keeps changing hands")

    def renew_lease(self, lease: Lease, *, ttl: float) -> Lease:
        """Extend a held lease to now + ``ttl`` seconds of the database clock, or ``LeaseLost``."""
        lease = leases.check_lease(lease)
        params = {
            "session_id": lease.session_id,
            "token": lease.token,
            "ttl_us": leases.ttl_us(leases.check_ttl(ttl)),
        }
        with self._connection() as conn:
            if leases.is_token(lease.token):  # others (NUL, surrogates) never match a row
                row = conn.execute(self._queries.renew, params).fetchone()
                if row is not None:
                    return Lease(lease.session_id, row[0], lease.token, _utc(row[1]))
            held = conn.execute(self._queries.lease, params).fetchone()
        raise leases.lost(lease, None if held is None else held[0])

    def release_lease(self, lease: Lease) -> None:
        """Give a lease up; nothing happens when it is no longer the session's."""
        lease = leases.check_lease(lease)
        if not leases.is_token(lease.token):
            return  # never a token of this store (NUL or a surrogate cannot even be sent)
        with self._connection() as conn:
            conn.execute(
                self._queries.release, {"session_id": lease.session_id, "token": lease.token}
            )

    def get_lease(self, session_id: str) -> Lease | None:
        """The session's lease (expired or not) without its token, or ``None``."""
        check_session_id(session_id)
        with self._connection() as conn:
            row = conn.execute(self._queries.lease, {"session_id": session_id}).fetchone()
        return None if row is None else Lease(session_id, row[0], "", _utc(row[1]))

    # --- beyond the interface ---------------------------------------------------

    def list_page(
        self,
        *,
        status: str | None = None,
        optimizer: str | None = None,
        updated_since: _dt.datetime | None = None,
        after: str | None = None,
        limit: int | None = None,
        on_damage: OnDamage | None = None,
    ) -> builtins.list[Listing]:
        """Like ``list``, only sessions whose id sorts after ``after``, at most ``limit``.

        Ids sort by their UTF-8 bytes (``COLLATE "C"``). ``after`` may hold
        NUL: no id does, so the sessions after it are the ones after its
        part before the first NUL. ``on_damage`` is never called.
        """
        where = ListFilter.of(status, optimizer, updated_since)
        after, limit = check_page(after, limit)
        if where.optimizer is not None:
            if "\x00" in where.optimizer:
                raise ValueError(f"optimizer filter {where.optimizer!r}: {_NUL_DETAIL}")
            _check_utf8("optimizer filter", where.optimizer)
        if after is not None:
            _check_utf8("after", after)
            after = after.partition("\x00")[0]
        conditions = []
        params: dict[str, Any] = {}
        for column, value in (
            ("status", where.status),
            ("optimizer", where.optimizer),
            ("session_id", after),
            ("updated_at", where.updated_since),
        ):
            if value is None:
                continue
            op = {"session_id": ">", "updated_at": ">="}.get(column, "=")
            conditions.append(sql.SQL(f"{column} {op} %({column})s"))
            params[column] = value
        query = sql.SQL("SELECT {} FROM {}").format(sql.SQL(_SUMMARY_COLUMNS), self._table)
        if conditions:
            query = query + sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions)
        query = query + sql.SQL(" ORDER BY session_id")
        if limit is not None:
            query = query + sql.SQL(" LIMIT {}").format(sql.Literal(int(limit)))
        with self._connection() as conn:
            rows = conn.cursor(binary=True).execute(query, params).fetchall()
        return [_listing(row) for row in rows]

    def summary(self, session_id: str) -> Listing | None:
        """The listing of one session, or None when it does not exist."""
        check_session_id(session_id)
        with self._connection() as conn:
            row = (
                conn.cursor(binary=True)
                .execute(self._queries.summary, {"session_id": session_id})
                .fetchone()
            )
        return None if row is None else _listing(row)

    def subscribe_commits(
        self,
        on_event: Callable[[CommitEvent], None],
        on_gap: Callable[[str], None],
    ) -> Callable[[], None]:
        """Call ``on_event`` for every commit and delete, by anyone (LISTEN/NOTIFY)."""
        self._ensure_schema()
        with self._open_lock:
            if self._listener is None:
                self._listener = Listener(self._conninfo, self.channel, self.summary)
            listener = self._listener
        return listener.subscribe(on_event, on_gap)

    def close(self) -> None:
        """Close the pool and the notification connection."""
        if self._listener is not None:
            self._listener.close()
        self._pool.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals --------------------------------------------------------------

    def _ensure_schema(self) -> None:
        if self._ready:
            return
        with self._open_lock:
            if self._ready:
                return
            self._pool.open(wait=False)
            try:
                with self._pool.connection() as conn:
                    migrate(conn, self.schema)
            except psycopg.OperationalError as exc:
                raise StoreUnavailable(f"{self!r}: {_first_line(exc)}") from exc
            self._ready = True

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        self._ensure_schema()
        try:
            with self._pool.connection() as conn:
                yield conn
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"{self!r}: {_first_line(exc)}") from exc

    def _where(self, session_id: str) -> str:
        return f"postgresql {self.schema}.dsxir_checkpoints[{session_id!r}]"

    def _delta_where(self, session_id: str, generation: int) -> str:
        return f"postgresql {self.schema}.dsxir_deltas[{session_id!r}, {generation}]"


class _Queries:
    """The statements of a store, built once."""

    def __init__(
        self, table: sql.Composable, deltas: sql.Composable, leases: sql.Composable, channel: str
    ) -> None:
        values = (
            "%(session_id)s, 1, %(body)s, %(crc)s, %(status)s, %(optimizer)s, %(updated_at)s,"
            " %(best_score)s, %(completed)s, %(errors)s, %(attempts)s, %(trials)s"
        )
        chan = sql.Literal(channel)
        self.insert = sql.SQL(
            "WITH done AS (INSERT INTO {t} (session_id, generation, body, crc32c, status,"
            " optimizer, updated_at, best_score, completed, errors, attempts, trials)"
            " VALUES (" + values + ") ON CONFLICT (session_id) DO NOTHING RETURNING 1)"
            " SELECT pg_notify({c}, %(payload)s) FROM done"
        ).format(t=table, c=chan)
        # A new snapshot (an update by put, or a compaction): the deltas go.
        self.update = sql.SQL(
            "WITH gone AS (DELETE FROM {d} WHERE session_id = %(session_id)s),"
            " done AS (UPDATE {t} SET " + _SET_SUMMARY + ", body = %(body)s,"
            " crc32c = %(crc)s, delta_count = 0, delta_bytes = 0"
            " WHERE session_id = %(session_id)s AND generation = %(expected)s"
            " RETURNING xmin::text AS written)"
            " SELECT written, pg_notify({c}, %(payload)s) FROM done"
        ).format(t=table, d=deltas, c=chan)
        # A delta row; the session row keeps its snapshot.
        self.append = sql.SQL(
            "WITH added AS (INSERT INTO {d} (session_id, generation, delta, crc32c)"
            " VALUES (%(session_id)s, %(generation)s, %(delta)s, %(crc)s)),"
            " done AS (UPDATE {t} SET " + _SET_SUMMARY + ", delta_count = delta_count + 1,"
            " delta_bytes = delta_bytes + %(length)s"
            " WHERE session_id = %(session_id)s AND generation = %(expected)s"
            " RETURNING xmin::text AS written)"
            " SELECT written, pg_notify({c}, %(payload)s) FROM done"
        ).format(t=table, d=deltas, c=chan)
        # The same over the row as a store last wrote or read it (its xmin), with no lock
        # taken first: nothing is written when the row changed.
        self.append_unlocked = sql.SQL(
            "WITH done AS (UPDATE {t} SET " + _SET_SUMMARY + ", delta_count = delta_count + 1,"
            " delta_bytes = delta_bytes + %(length)s"
            " WHERE session_id = %(session_id)s AND generation = %(expected)s"
            " AND xmin::text = %(xmin)s RETURNING xmin::text AS written),"
            " added AS (INSERT INTO {d} (session_id, generation, delta, crc32c)"
            " SELECT %(session_id)s, %(generation)s, %(delta)s, %(crc)s FROM done)"
            " SELECT written, pg_notify({c}, %(payload)s) FROM done"
        ).format(t=table, d=deltas, c=chan)
        self.generation = sql.SQL(
            "SELECT generation FROM {t} WHERE session_id = %(session_id)s"
        ).format(t=table)
        self.get = sql.SQL(
            "SELECT 0 AS part, generation, body, crc32c, delta_count, delta_bytes, xmin::text"
            " FROM {t} WHERE session_id = %(session_id)s"
            " UNION ALL SELECT 1, generation, delta, crc32c, NULL, NULL, NULL"
            " FROM {d} WHERE session_id = %(session_id)s ORDER BY 1, 2"
        ).format(t=table, d=deltas)
        self.delta = sql.SQL(
            "SELECT delta, crc32c FROM {d} WHERE session_id = %(session_id)s"
            " AND generation = %(generation)s"
        ).format(d=deltas)
        self.locked = sql.SQL(
            "SELECT generation, xmin::text FROM {t} WHERE session_id = %(session_id)s FOR UPDATE"
        ).format(t=table)
        self.summary = sql.SQL(
            "SELECT " + _SUMMARY_COLUMNS + " FROM {t} WHERE session_id = %(session_id)s"
        ).format(t=table)
        self.delete = sql.SQL(
            "WITH lease AS (DELETE FROM {l} WHERE session_id = %(session_id)s),"
            " done AS (DELETE FROM {t} WHERE session_id = %(session_id)s RETURNING 1)"
            " SELECT pg_notify({c}, %(payload)s) FROM done"
        ).format(t=table, l=leases, c=chan)
        # After the session row, in the same transaction: a new snapshot sees every delta row.
        self.delete_deltas = sql.SQL("DELETE FROM {d} WHERE session_id = %(session_id)s").format(
            d=deltas
        )
        expiry = "now() + %(ttl_us)s * interval '1 microsecond'"
        self.acquire = sql.SQL(
            "INSERT INTO {l} AS held (session_id, holder, token, expires_at)"
            " VALUES (%(session_id)s, %(holder)s, %(token)s, " + expiry + ")"
            " ON CONFLICT (session_id) DO UPDATE SET holder = excluded.holder,"
            " token = excluded.token, expires_at = excluded.expires_at"
            " WHERE held.expires_at <= now()"
            " OR held.expires_at > now() + %(max_ttl_us)s * interval '1 microsecond'"
            " RETURNING expires_at"
        ).format(l=leases)
        self.renew = sql.SQL(
            "UPDATE {l} SET expires_at = " + expiry + " WHERE session_id = %(session_id)s"
            " AND token = %(token)s RETURNING holder, expires_at"
        ).format(l=leases)
        self.release = sql.SQL(
            "DELETE FROM {l} WHERE session_id = %(session_id)s AND token = %(token)s"
        ).format(l=leases)
        self.lease = sql.SQL(
            "SELECT holder, expires_at FROM {l} WHERE session_id = %(session_id)s"
        ).format(l=leases)


def _utc(value: _dt.datetime) -> _dt.datetime:
    return value.astimezone(_dt.timezone.utc)


def _check_utf8(what: str, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{what} {value!r} is not valid Unicode (lone surrogate)") from None


def _summary_params(cp: Checkpoint, generation: int) -> dict[str, Any]:
    """The summary columns and NOTIFY payload of committing ``cp`` as ``generation``."""
    listing = listing_of(cp, generation)
    return {
        "status": listing.status,
        "optimizer": listing.optimizer,
        "updated_at": listing.updated_at,
        "best_score": listing.best_score,
        "completed": Decimal(listing.completed),
        "errors": Decimal(listing.errors),
        "attempts": Decimal(listing.attempts),
        "trials": listing.trials,
        "payload": _commit_payload(cp, generation),
    }


def _commit_payload(cp: Checkpoint, generation: int) -> str:
    payload = f"c {generation} {encode_summary(cp).decode()}"
    if len(payload.encode()) <= _MAX_NOTIFY_BYTES:
        return payload
    return f"C {generation} {cp.session_id}"


def _listing(row: tuple[Any, ...]) -> Listing:
    session_id, status, optimizer, updated_at, best, completed, errors, attempts, trials, gen = row
    return Listing(
        session_id=session_id,
        status=status,
        optimizer=optimizer,
        updated_at=updated_at.astimezone(_dt.timezone.utc),
        best_score=None if best is None else float(best),
        completed=int(completed),
        errors=int(errors),
        attempts=int(attempts),
        trials=int(trials),
        generation=int(gen),
    )


def _check_connection(conn: psycopg.Connection[Any]) -> None:
    """Before lending a pooled connection: a readable idle socket means the server spoke.

    An idle connection has nothing to read unless the server is closing it
    (shutdown, restart, idle timeout), so only then is a round trip spent
    to find out; a dead connection raises and the pool replaces it.
    """
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("connection is closed")
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    if readable:
        conn.execute("SELECT 1")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def open_url(url: str) -> PostgresStore:
    """The store of a ``postgresql://`` or ``postgres://`` URL (:meth:`PostgresStore.from_url`)."""
    return PostgresStore.from_url(url)


def _intact(raw: Any, crc: Any) -> bytes | None:
    """A delta row's bytes when their CRC32C matches, else ``None`` (reported when applied)."""
    data = bytes(raw)
    return data if crc32c(data) == crc else None
