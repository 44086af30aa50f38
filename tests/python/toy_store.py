"""A store backend written the way CONTRIBUTING.md's recipe says: one module.

``toy-sqlite:PATH`` keeps each session in a row of a SQLite database at
PATH: its canonical bytes and its generation, and each lease in a row of
another table (on the local clock). It uses only what ``dsxir.store`` offers
every backend (the CAS decision, the history check, the list filter, the
session-id rule, listings, the lease rules), so it passes the same contract
suite as the
built-in stores (tests/python/conftest.py lists it once). It lives in the
tests because a backend for SQLite is not part of the library; a package
would register :func:`open_url` through the ``dsxir_checkpoint.stores``
entry-point group.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import sqlite3
import threading
from collections.abc import Iterator

from dsxir.errors import LeaseHeld, NotFound
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session.history import check_successor
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.store import (
    Lease,
    ListFilter,
    Listing,
    OnDamage,
    Stored,
    check_expected_generation,
    check_session_id,
    leases,
    listing_of,
    next_generation,
)

SCHEME = "toy-sqlite"


class ToySqliteStore:
    """Sessions in one SQLite table; commits are serialized by SQLite's write lock."""

    def __init__(self, path: str) -> None:
        """The store in the database file at ``path`` (created when missing)."""
        self.path = path
        self._local = threading.local()
        with self._write() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS sessions "
                "(session_id TEXT PRIMARY KEY, generation INTEGER NOT NULL, body BLOB NOT NULL)"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS leases (session_id TEXT PRIMARY KEY,"
                " holder TEXT NOT NULL, token TEXT NOT NULL, expires_us INTEGER NOT NULL)"
            )

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            self._local.db = db
        return db

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, begun before its first read (``BEGIN IMMEDIATE``)."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def put(self, cp: Checkpoint, *, expected_generation: int | None = None) -> int:
        """Commit ``cp`` under the CAS rule; return the new generation."""
        session_id = check_session_id(cp.session_id)
        expected = check_expected_generation(expected_generation)
        body = checkpoint.encode(cp)
        with self._write() as db:  # read, decide and write in one transaction
            row = db.execute(
                "SELECT generation, body FROM sessions WHERE session_id = ?", (session_id,)
            ).fetchone()
            generation = next_generation(session_id, None if row is None else row[0], expected)
            if row is not None:
                check_successor(checkpoint.decode(row[1]), cp)
            db.execute(
                "INSERT OR REPLACE INTO sessions VALUES (?, ?, ?)", (session_id, generation, body)
            )
        return generation

    def get(self, session_id: str) -> Stored:
        """The latest committed checkpoint; ``NotFound`` when there is none."""
        check_session_id(session_id)
        row = (
            self._db()
            .execute("SELECT generation, body FROM sessions WHERE session_id = ?", (session_id,))
            .fetchone()
        )
        if row is None:
            raise NotFound(session_id)
        return Stored(checkpoint.decode(row[1]), row[0])

    def list(
        self,
        *,
        status: str | None = None,
        optimizer: str | None = None,
        updated_since: _dt.datetime | None = None,
        on_damage: OnDamage | None = None,
    ) -> list[Listing]:
        """Summaries of the matching sessions, by session id (``on_damage`` is never called)."""
        where = ListFilter.of(status, optimizer, updated_since)
        rows = self._db().execute("SELECT generation, body FROM sessions").fetchall()
        return where.select(listing_of(checkpoint.decode(body), gen) for gen, body in rows)

    def delete(self, session_id: str) -> None:
        """Forget a session and its lease; nothing happens when there is none."""
        check_session_id(session_id)
        with self._write() as db:
            db.execute("DELETE FROM sessions WHERE session_id = ?", (session_id,))
            db.execute("DELETE FROM leases WHERE session_id = ?", (session_id,))

    def acquire_lease(self, session_id: str, holder: str, *, ttl: float) -> Lease:
        """Hold ``session_id`` for ``ttl`` seconds, or ``LeaseHeld``."""
        check_session_id(session_id)
        holder = leases.check_holder(holder)
        length = leases.ttl_us(leases.check_ttl(ttl))
        with self._write() as db:
            now = leases.now_us()
            row = db.execute(
                "SELECT holder, expires_us FROM leases WHERE session_id = ?", (session_id,)
            ).fetchone()
            if row is not None and leases.holds(row[1], now):
                raise LeaseHeld(session_id, row[0], leases.datetime_of_us(row[1]))
            token = leases.new_token()
            db.execute(
                "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?)",
                (session_id, holder, token, now + length),
            )
        return Lease(session_id, holder, token, leases.datetime_of_us(now + length))

    def renew_lease(self, lease: Lease, *, ttl: float) -> Lease:
        """Extend a held lease to now + ``ttl`` seconds, or ``LeaseLost``."""
        lease = leases.check_lease(lease)
        length = leases.ttl_us(leases.check_ttl(ttl))
        with self._write() as db:
            row = db.execute(
                "SELECT holder, token FROM leases WHERE session_id = ?", (lease.session_id,)
            ).fetchone()
            if row is None or not leases.same_token(row[1], lease.token):
                raise leases.lost(lease, None if row is None else row[0])
            expires = leases.now_us() + length
            db.execute(
                "UPDATE leases SET expires_us = ? WHERE session_id = ?",
                (expires, lease.session_id),
            )
        return Lease(lease.session_id, row[0], row[1], leases.datetime_of_us(expires))

    def release_lease(self, lease: Lease) -> None:
        """Give a lease up; nothing happens when it is no longer the session's."""
        lease = leases.check_lease(lease)
        with self._write() as db:
            row = db.execute(
                "SELECT token FROM leases WHERE session_id = ?", (lease.session_id,)
            ).fetchone()
            if row is not None and leases.same_token(row[0], lease.token):
                db.execute("DELETE FROM leases WHERE session_id = ?", (lease.session_id,))

    def get_lease(self, session_id: str) -> Lease | None:
        """The session's lease (expired or not) without its token, or ``None``."""
        check_session_id(session_id)
        row = (
            self._db()
            .execute("SELECT holder, expires_us FROM leases WHERE session_id = ?", (session_id,))
            .fetchone()
        )
        return None if row is None else Lease(session_id, row[0], "", leases.datetime_of_us(row[1]))

    def close(self) -> None:
        """Close this thread's connection."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


def open_url(url: str) -> ToySqliteStore:
    """The store of a ``toy-sqlite:PATH`` URL."""
    path = url.removeprefix(f"{SCHEME}:")
    if not path:
        raise ValueError(f"store URL {url!r} has no path: use {SCHEME}:PATH")
    return ToySqliteStore(path)
