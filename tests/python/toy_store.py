"""A store backend written the way CONTRIBUTING.md's recipe says: one module.

``toy-sqlite:PATH`` keeps each session in a row of a SQLite database at
PATH: its canonical bytes, its generation and its listing. It uses only what
``dsxir.store`` offers every backend (the CAS decision, the list filter, the
session-id rule, listings), so it passes the same contract suite as the
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

from dsxir.errors import NotFound
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.store import (
    ListFilter,
    Listing,
    OnDamage,
    Stored,
    check_expected_generation,
    check_session_id,
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
                "SELECT generation FROM sessions WHERE session_id = ?", (session_id,)
            ).fetchone()
            generation = next_generation(session_id, None if row is None else row[0], expected)
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
        """Forget a session; nothing happens when there is none."""
        check_session_id(session_id)
        with self._write() as db:
            db.execute("DELETE FROM sessions WHERE session_id = ?", (session_id,))

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
