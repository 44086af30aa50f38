"""The PostgreSQL checkpoint store: many processes and machines, one database.

- :class:`PostgresStore` (:mod:`.store`): one row per session (a snapshot,
  the generation, summaries in columns) and one row per delta committed
  since the snapshot, CAS under ``SELECT … FOR UPDATE``, LISTEN/NOTIFY
  commit events, a pooled psycopg 3 connection;
- :mod:`.migrations`: the versioned schema, applied on first use;
- :mod:`.listener`: the LISTEN thread.

Needs the ``[postgres]`` extra (psycopg 3).
"""

from __future__ import annotations

from dsxir.store.postgres.migrations import LATEST_VERSION, SchemaTooNew
from dsxir.store.postgres.store import PostgresStore, open_url

__all__ = ["LATEST_VERSION", "PostgresStore", "SchemaTooNew", "open_url"]
