"""The server's defaults and limits, importable without gRPC (the command line reads them).

docs/security.md lists each of them with what happens at the limit.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_GRACE_SECONDS",
    "DEFAULT_LISTEN",
    "DEFAULT_MAX_CALLS",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_MEMORY_BUDGET_BYTES",
    "DEFAULT_READ_TIMEOUT_SECONDS",
    "DEFAULT_WATCHERS_PER_CLIENT",
    "DEFAULT_WATCH_IDLE_SECONDS",
    "DEFAULT_WATCH_WRITE_TIMEOUT_SECONDS",
    "DEFAULT_WORKERS",
    "KEEPALIVE_TIMEOUT_MS",
    "KEEPALIVE_TIME_MS",
    "MAX_CONNECTION_AGE_GRACE_MS",
    "MAX_CONNECTION_AGE_MS",
    "MAX_CONNECTION_IDLE_MS",
    "MAX_MESSAGE_LIMIT",
    "MAX_STREAMS_PER_CONNECTION",
    "MIN_CLIENT_PING_INTERVAL_MS",
    "PUT_COST_CANONICAL",
    "PUT_COST_OTHER",
    "REQUEST_COST",
]

DEFAULT_LISTEN = "127.0.0.1:50051"
"""Loopback only: other hosts reach the server only when asked for."""
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""The default limit on a request or response; over it, RESOURCE_EXHAUSTED."""
MAX_MESSAGE_LIMIT = 256 * 1024 * 1024 + 64 * 1024
"""The highest limit accepted: the largest checkpoint (256 MiB) plus room for the envelope."""

DEFAULT_WORKERS = 32
"""Threads that run store operations (parsing, checking, reading and writing)."""
DEFAULT_GRACE_SECONDS = 30.0
"""Seconds calls in flight get to finish on SIGTERM."""

DEFAULT_MAX_CALLS = 256
"""Calls handled at once (waiting for their request, queued or running), health checks
and established watch streams aside; one more is answered RESOURCE_EXHAUSTED at once."""
DEFAULT_READ_TIMEOUT_SECONDS = 30.0
"""A call whose request message has not fully arrived by then is ended (DEADLINE_EXCEEDED)."""

DEFAULT_MEMORY_BUDGET_BYTES = 2 * 1024 * 1024 * 1024
"""Memory the requests in flight may take, charged before a request is parsed."""
PUT_COST_CANONICAL = 24
"""Bytes charged per request byte of a PutCheckpoint whose checkpoint passes the compiled
canonical check before parsing (the densest valid checkpoints measured take about 20)."""
PUT_COST_OTHER = 64
"""Bytes charged per request byte of any other PutCheckpoint (a hostile message of empty
nested entries measured about 54)."""
REQUEST_COST = 4
"""Bytes charged per request byte of the other methods (they hold ids and filters)."""

DEFAULT_WATCHERS_PER_CLIENT = 8
"""Watch streams one client (one IP address) may hold open at once."""
DEFAULT_WATCH_IDLE_SECONDS = 900.0
"""A watch stream with no event for this long ends (UNAVAILABLE, WATCH_IDLE): the
client watches again and gets the current state first."""
DEFAULT_WATCH_WRITE_TIMEOUT_SECONDS = 30.0
"""A watcher that does not take an event within this ends (ABORTED, WATCH_OVERFLOW)."""

MAX_STREAMS_PER_CONNECTION = 128
"""HTTP/2 streams one connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS)."""
KEEPALIVE_TIME_MS = 60_000
"""The server pings a connection with calls open after this long without data..."""
KEEPALIVE_TIMEOUT_MS = 20_000
"""...and closes it (ending its calls) when the ping is not answered within this."""
MIN_CLIENT_PING_INTERVAL_MS = 10_000
"""Clients may ping at most this often without data; two more strikes close the connection."""
MAX_CONNECTION_IDLE_MS = 600_000
"""A connection without calls for this long is closed (GOAWAY; clients reconnect)."""
MAX_CONNECTION_AGE_MS = 24 * 3600 * 1000
"""A connection is asked to go away after this long (GOAWAY)..."""
MAX_CONNECTION_AGE_GRACE_MS = 300_000
"""...and closed this long later, ending the calls still open on it."""
