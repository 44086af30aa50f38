"""The PostgreSQL checkpoint store: many processes and machines, one database.

- :class:`PostgresStore` (:mod:`.store`): one row per session, CAS with
  ``UPDATE … WHERE generation = expected``, summaries in columns,
  LISTEN/NOTIFY commit events, a pooled psycopg 3 connection;
- :mod:`.migrations`: the versioned schema, applied on first use;
- :mod:`.listener`: the LISTEN thread;
- :mod:`.cluster`: a throwaway local cluster (``initdb`` + ``pg_ctl``) for
  tests and benchmarks.
"""

from __future__ import annotations

from dsxir.optimizer_session.postgres.migrations import LATEST_VERSION, SchemaTooNew
from dsxir.optimizer_session.postgres.store import PostgresStore

__all__ = ["LATEST_VERSION", "PostgresStore", "SchemaTooNew"]
