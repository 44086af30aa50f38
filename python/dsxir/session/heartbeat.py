"""The thread that keeps a session's lease while the session runs.

It renews the lease every ``ttl / 3`` seconds and does nothing else (it never
commits). A renewal that fails for any other reason than ``LeaseLost`` (the
store is unreachable for a moment, say) is tried again at the next beat; the
lease outlives two missed beats. ``LeaseLost`` ends the thread and is kept in
:attr:`Heartbeat.lost` for the session to raise at its next commit.
"""

from __future__ import annotations

import threading

from dsxir.errors import LeaseLost
from dsxir.store.interface import Lease, Store

__all__ = ["STOP_WAIT_SECONDS", "Heartbeat"]

STOP_WAIT_SECONDS = 10.0
"""The longest ``close()`` waits for a renewal in flight (a hung store, say)."""


class Heartbeat:
    """A daemon thread renewing ``lease`` in ``store`` for ``ttl`` seconds at a time."""

    def __init__(self, store: Store, lease: Lease, ttl: float) -> None:
        """A heartbeat for ``lease``, not started."""
        self.lease = lease
        self.lost: LeaseLost | None = None
        self._store = store
        self._ttl = ttl
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"dsxir-lease:{lease.session_id}", daemon=True
        )

    def start(self) -> None:
        """Start renewing."""
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing and wait for a renewal in flight, at most one ttl or 10 s.

        A renewal still running after that cannot outlive a release: each
        store renews atomically and only while the token is the session's
        lease, so it either ends before the release or fails.
        """
        self._stopping.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(min(self._ttl, STOP_WAIT_SECONDS))

    def _run(self) -> None:
        while not self._stopping.wait(self._ttl / 3):
            try:
                self.lease = self._store.renew_lease(self.lease, ttl=self._ttl)
            except LeaseLost as exc:
                self.lost = exc
                return
            except Exception:  # an unreachable store, say: try again at the next beat
                continue
