"""The heartbeat stops promptly even when a renewal hangs in the store."""

from __future__ import annotations

import threading
import time

import pytest

from dsxir.session import heartbeat
from dsxir.store import MemoryStore
from dsxir.store.interface import Lease


class HangingRenewals(MemoryStore):
    """A memory store whose renewals block until released (a hung connection)."""

    def __init__(self) -> None:
        super().__init__()
        self.renewing = threading.Event()
        self.unblock = threading.Event()

    def renew_lease(self, lease: Lease, *, ttl: float) -> Lease:
        self.renewing.set()
        self.unblock.wait(30)
        return super().renew_lease(lease, ttl=ttl)


def test_stop_waits_at_most_the_cap_for_a_hung_renewal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(heartbeat, "STOP_WAIT_SECONDS", 0.5)
    store = HangingRenewals()
    lease = store.acquire_lease("s1", "host:1", ttl=3.0)
    beat = heartbeat.Heartbeat(store, lease, 3.0)
    beat.start()
    assert store.renewing.wait(5), "the heartbeat never renewed"
    started = time.monotonic()
    beat.stop()
    waited = time.monotonic() - started
    store.unblock.set()
    assert 0.4 <= waited < 2.5, waited  # the cap, not the 3 s ttl
    store.release_lease(lease)
    assert store.get_lease("s1") is None
