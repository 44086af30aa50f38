"""Leases: one worker at a time per session, on every backend of conftest.py."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest

from dsxir.errors import InvalidSessionId, LeaseHeld, LeaseLost
from dsxir.optimizer_session import checkpoint
from dsxir.store import MAX_HOLDER_BYTES, MAX_LEASE_TTL, Lease, Store
from store_util import make_cp

SHORT = 0.3  # seconds: a lease that ends within a test
_SLACK = dt.timedelta(seconds=2)  # between the test's clock and the store's


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _close(a: dt.datetime, b: dt.datetime) -> bool:
    return abs(a - b) <= dt.timedelta(milliseconds=1)


def _wait_out(lease: Lease) -> None:
    time.sleep(max(0.0, (lease.expires_at - _now()).total_seconds()) + 0.05)


def test_acquire_grants_a_lease_even_without_a_session(store: Store) -> None:
    before = _now()
    lease = store.acquire_lease("s1", "host:1", ttl=30)
    assert (lease.session_id, lease.holder) == ("s1", "host:1")
    assert re.fullmatch("[0-9a-f]{32}", lease.token)
    assert lease.expires_at.utcoffset() == dt.timedelta(0)
    expected = before + dt.timedelta(seconds=30)
    assert expected - _SLACK <= lease.expires_at <= expected + _SLACK
    assert not lease.expired()


def test_a_held_lease_refuses_another_worker_naming_the_holder(store: Store) -> None:
    lease = store.acquire_lease("s1", "host:1", ttl=30)
    for holder in ("host:2", "host:1"):  # the same name is another worker too
        with pytest.raises(LeaseHeld) as info:
            store.acquire_lease("s1", holder, ttl=30)
        assert info.value.session_id == "s1"
        assert info.value.holder == "host:1"
        assert _close(info.value.expires_at, lease.expires_at)
        assert "host:1" in str(info.value)
    other = store.acquire_lease("s2", "host:2", ttl=30)  # another session is free
    assert other.token != lease.token


def test_get_lease_shows_the_lease_without_its_token(store: Store) -> None:
    assert store.get_lease("s1") is None
    lease = store.acquire_lease("s1", "host:1", ttl=30)
    shown = store.get_lease("s1")
    assert shown is not None
    assert (shown.session_id, shown.holder, shown.token) == ("s1", "host:1", "")
    assert _close(shown.expires_at, lease.expires_at)


def test_an_expired_lease_is_taken_over_and_the_old_holder_has_lost_it(store: Store) -> None:
    old = store.acquire_lease("s1", "old", ttl=SHORT)
    _wait_out(old)
    shown = store.get_lease("s1")
    assert shown is not None and shown.holder == "old" and shown.expired()
    new = store.acquire_lease("s1", "new", ttl=30)
    assert new.token != old.token
    with pytest.raises(LeaseLost) as info:
        store.renew_lease(old, ttl=30)
    assert info.value.session_id == "s1"
    assert "new" in str(info.value)
    store.release_lease(old)  # no longer the session's: left alone, no error
    shown = store.get_lease("s1")
    assert shown is not None and shown.holder == "new"


def test_renew_extends_the_lease_and_keeps_its_token(store: Store) -> None:
    lease = store.acquire_lease("s1", "host:1", ttl=5)
    renewed = store.renew_lease(lease, ttl=60)
    assert (renewed.token, renewed.holder) == (lease.token, "host:1")
    assert renewed.expires_at - lease.expires_at >= dt.timedelta(seconds=50)
    shown = store.get_lease("s1")
    assert shown is not None and _close(shown.expires_at, renewed.expires_at)
    with pytest.raises(LeaseHeld):
        store.acquire_lease("s1", "host:2", ttl=1)


def test_an_expired_lease_nobody_took_can_still_be_renewed(store: Store) -> None:
    lease = store.acquire_lease("s1", "host:1", ttl=SHORT)
    _wait_out(lease)
    renewed = store.renew_lease(lease, ttl=30)
    assert not renewed.expired()
    with pytest.raises(LeaseHeld):
        store.acquire_lease("s1", "host:2", ttl=1)


def test_release_frees_the_session_and_a_released_lease_is_lost(store: Store) -> None:
    lease = store.acquire_lease("s1", "host:1", ttl=30)
    store.release_lease(lease)
    assert store.get_lease("s1") is None
    store.release_lease(lease)  # again: nothing happens
    with pytest.raises(LeaseLost, match="released"):
        store.renew_lease(lease, ttl=30)
    assert store.acquire_lease("s1", "host:2", ttl=30).holder == "host:2"


def test_a_shown_lease_renews_or_releases_nothing(store: Store) -> None:
    store.acquire_lease("s1", "host:1", ttl=30)
    shown = store.get_lease("s1")
    assert shown is not None
    with pytest.raises(LeaseLost):
        store.renew_lease(shown, ttl=30)
    store.release_lease(shown)
    forged = Lease("s1", "host:1", "0" * 32, shown.expires_at)
    store.release_lease(forged)
    with pytest.raises(LeaseLost):
        store.renew_lease(forged, ttl=30)
    assert store.get_lease("s1") is not None


def test_delete_drops_the_lease(store: Store) -> None:
    store.put(make_cp())
    lease = store.acquire_lease("s1", "host:1", ttl=30)
    store.delete("s1")
    assert store.get_lease("s1") is None
    with pytest.raises(LeaseLost):
        store.renew_lease(lease, ttl=30)
    store.acquire_lease("s1", "host:2", ttl=30)
    store.delete("s1")  # a lease without a session goes too
    assert store.get_lease("s1") is None


def test_leases_are_advisory_puts_do_not_look_at_them(store: Store) -> None:
    store.acquire_lease("s1", "someone else", ttl=30)
    cp = make_cp()
    assert store.put(cp) == 1
    checkpoint.record_trial(cp, score=1.0)
    assert store.put(cp, expected_generation=1) == 2
    shown = store.get_lease("s1")
    assert shown is not None and shown.holder == "someone else"


def test_the_limits_are_accepted(store: Store) -> None:
    holder = "é" * (MAX_HOLDER_BYTES // 2)
    lease = store.acquire_lease("s1", holder, ttl=MAX_LEASE_TTL)
    assert lease.holder == holder
    assert lease.expires_at - _now() > dt.timedelta(hours=23)
    assert store.renew_lease(lease, ttl=0.001).holder == holder


@pytest.mark.parametrize(
    ("ttl", "error"),
    [
        (0, ValueError),
        (-1, ValueError),
        (MAX_LEASE_TTL + 1, ValueError),
        (float("inf"), ValueError),
        (float("nan"), ValueError),
        (True, TypeError),
        ("30", TypeError),
        (None, TypeError),
    ],
)
def test_bad_ttls_are_refused(store: Store, ttl: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="ttl"):
        store.acquire_lease("s1", "host:1", ttl=ttl)  # type: ignore[arg-type]
    lease = store.acquire_lease("s1", "host:1", ttl=30)
    with pytest.raises(error, match="ttl"):
        store.renew_lease(lease, ttl=ttl)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("holder", "error"),
    [
        ("", ValueError),
        ("a" * (MAX_HOLDER_BYTES + 1), ValueError),
        ("é" * (MAX_HOLDER_BYTES // 2 + 1), ValueError),
        ("host\n1", ValueError),
        ("host\x00", ValueError),
        ("host\x9b", ValueError),
        ("\ud800", ValueError),
        (b"host", TypeError),
        (None, TypeError),
    ],
)
def test_bad_holders_are_refused(store: Store, holder: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="holder"):
        store.acquire_lease("s1", holder, ttl=30)  # type: ignore[arg-type]
    assert store.get_lease("s1") is None


@pytest.mark.parametrize(
    "holder",
    ["worker password=hunter2hunter2", "sk-proj-abcdefghijklmnopqrstuvwx1234"],
)
def test_holders_holding_a_credential_are_refused_without_quoting_it(
    store: Store, holder: str
) -> None:
    with pytest.raises(ValueError, match="credential") as refused:
        store.acquire_lease("s1", holder, ttl=30)
    assert "hunter2" not in str(refused.value) and "abcdefghij" not in str(refused.value)
    assert store.get_lease("s1") is None


def test_bad_session_ids_and_leases_are_refused(store: Store) -> None:
    with pytest.raises(InvalidSessionId):
        store.acquire_lease("../x", "host:1", ttl=30)
    with pytest.raises(InvalidSessionId):
        store.get_lease(".lock.x")
    with pytest.raises(InvalidSessionId):
        store.release_lease(Lease("a/b", "h", "0" * 32, _now()))
    with pytest.raises(TypeError):
        store.renew_lease("s1", ttl=30)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        store.release_lease(Lease("s1", "h", None, _now()))  # type: ignore[arg-type]
