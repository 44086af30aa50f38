"""The versioned schema of the PostgreSQL store, applied on first use.

Each migration is ``(version, name, statements)``; versions are consecutive
from 1 and a migration, once released, never changes (a change is a new
migration). :func:`migrate` applies the missing ones in one transaction,
under a transaction-level advisory lock, so several processes opening the
same database at once apply each migration exactly once. The table
``dsxir_schema_migrations`` records what was applied. A database whose schema
is newer than this library knows is refused (:class:`SchemaTooNew`) rather
than written with an older layout.

Statements use ``{schema}`` for the quoted schema name.
"""

from __future__ import annotations

import zlib

import psycopg
from psycopg import sql

from dsxir.errors import CheckpointError

__all__ = ["LATEST_VERSION", "MIGRATIONS", "SchemaTooNew", "migrate"]


class SchemaTooNew(CheckpointError):
    """The database holds a schema version this library does not know."""


MIGRATIONS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (
        1,
        "checkpoints table",
        (
            # One row per session: the canonical bytes, their CRC32C, the
            # generation, and the summary columns `list` reads (never the body).
            """
            CREATE TABLE {schema}.dsxir_checkpoints (
                session_id  text COLLATE "C" PRIMARY KEY,
                generation  bigint NOT NULL CHECK (generation >= 1),
                body        bytea NOT NULL,
                crc32c      bigint NOT NULL CHECK (crc32c BETWEEN 0 AND 4294967295),
                status      text NOT NULL CHECK (
                    status IN ('running', 'paused', 'completed', 'failed', 'cancelled')),
                optimizer   text NOT NULL,
                updated_at  timestamptz NOT NULL,
                best_score  double precision,
                completed   numeric(20, 0) NOT NULL CHECK (completed >= 0),
                errors      numeric(20, 0) NOT NULL CHECK (errors >= 0),
                attempts    numeric(20, 0) NOT NULL CHECK (attempts >= 0),
                trials      bigint NOT NULL CHECK (trials >= 0),
                committed_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            # Checkpoint bytes are mostly incompressible blobs and protobuf:
            # store them out of line without spending CPU on compression.
            "ALTER TABLE {schema}.dsxir_checkpoints ALTER COLUMN body SET STORAGE EXTERNAL",
            "CREATE INDEX ON {schema}.dsxir_checkpoints (status, session_id)",
            "CREATE INDEX ON {schema}.dsxir_checkpoints (optimizer, session_id)",
            "CREATE INDEX ON {schema}.dsxir_checkpoints (updated_at)",
        ),
    ),
    (
        2,
        "leases table",
        (
            # One row per held (or expired, not yet taken) lease, on the
            # database clock; a session need not exist to be leased.
            """
            CREATE TABLE {schema}.dsxir_leases (
                session_id  text COLLATE "C" PRIMARY KEY,
                holder      text NOT NULL CHECK (holder <> ''),
                token       text NOT NULL CHECK (token <> ''),
                expires_at  timestamptz NOT NULL
            )
            """,
        ),
    ),
    (
        3,
        "delta rows",
        (
            # One row per delta committed since the session's snapshot (the
            # body of its dsxir_checkpoints row): generation g holds the
            # delta (FORMAT.md §13) from g - 1 to g and its CRC32C.
            """
            CREATE TABLE {schema}.dsxir_deltas (
                session_id  text COLLATE "C" NOT NULL,
                generation  bigint NOT NULL CHECK (generation >= 2),
                delta       bytea NOT NULL,
                crc32c      bigint NOT NULL CHECK (crc32c BETWEEN 0 AND 4294967295),
                PRIMARY KEY (session_id, generation)
            )
            """,
            # The session row keeps the snapshot, the current generation and
            # summary: the snapshot is generation - delta_count, and
            # delta_bytes the length of the deltas since (when to compact).
            # Rows written before hold no deltas: the defaults describe them.
            "ALTER TABLE {schema}.dsxir_checkpoints"
            " ADD COLUMN delta_count bigint NOT NULL DEFAULT 0"
            " CHECK (delta_count >= 0 AND delta_count < generation),"
            " ADD COLUMN delta_bytes bigint NOT NULL DEFAULT 0 CHECK (delta_bytes >= 0)",
        ),
    ),
)
"""Every migration, in order."""

LATEST_VERSION = MIGRATIONS[-1][0]
"""The schema version this library writes."""


def migrate(conn: psycopg.Connection[object], schema: str) -> int:
    """Bring ``schema`` up to :data:`LATEST_VERSION`; return how many migrations ran.

    ``conn`` must be in autocommit mode; the work happens in one transaction.
    """
    ident = sql.Identifier(schema)
    lock_key = zlib.crc32(f"dsxir-checkpoint:{schema}".encode())
    applied = 0
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {}.dsxir_schema_migrations ("
                " version integer PRIMARY KEY,"
                " name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            ).format(ident)
        )
        row = conn.execute(
            sql.SQL("SELECT coalesce(max(version), 0) FROM {}.dsxir_schema_migrations").format(
                ident
            )
        ).fetchone()
        current = int(row[0]) if row else 0  # type: ignore[index]
        if current > LATEST_VERSION:
            raise SchemaTooNew(
                f"schema {schema!r} is at version {current}; this library knows up to "
                f"{LATEST_VERSION}: upgrade dsxir-checkpoint"
            )
        for version, name, statements in MIGRATIONS:
            if version <= current:
                continue
            for statement in statements:
                conn.execute(sql.SQL(statement).format(schema=ident))
            conn.execute(
                sql.SQL(
                    "INSERT INTO {}.dsxir_schema_migrations (version, name) VALUES (%s, %s)"
                ).format(ident),
                (version, name),
            )
            applied += 1
    return applied
