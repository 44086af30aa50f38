"""Run one optimizer session against a store: lease, resume gate, commits, pause on exit.

:func:`open_session` takes the session's lease first, then creates the session
or passes the stored one through the resume gate; the :class:`Session` it
returns commits every transition with compare-and-swap, keeps the lease with
a heartbeat thread and commits a pause when it is closed while still running
(also on an exception or SIGINT/SIGTERM leaving its ``with`` block).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Callable, Collection, Iterable, Mapping
from types import TracebackType
from typing import Any, Literal, TypeVar

from dsxir.errors import LeaseLost, NotFound
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session.delta import Baseline
from dsxir.optimizer_session.v1.checkpoint_pb2 import (
    SESSION_STATUS_PAUSED,
    SESSION_STATUS_RUNNING,
    Checkpoint,
)
from dsxir.session.heartbeat import Heartbeat
from dsxir.session.rollback import Committed
from dsxir.session.signals import SignalGuard
from dsxir.store.interface import Lease, Store
from dsxir.store.registry import close_store, open_store

__all__ = ["MIN_LEASE_TTL", "Session", "default_holder", "open_session"]

_T = TypeVar("_T")

MIN_LEASE_TTL = 0.1
"""The shortest ``lease_ttl`` :func:`open_session` takes, in seconds: the heartbeat
renews every third of it, and a shorter one would only keep the store busy."""


def default_holder() -> str:
    """The holder name a worker gives itself by default: ``"<hostname>:<pid>"``."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Session:
    """A session held by this worker; made by :func:`open_session`, not directly.

    ``checkpoint`` is the live message (callers must not change it) and
    ``generation`` the generation it was committed as. ``created`` says this
    worker created the session, ``resumed`` that it was stored already (paused,
    or running after its worker died). Every transition commits with
    compare-and-swap; on any failure the in-memory checkpoint goes back to
    the last committed state and the error is raised. After ``pause``,
    ``complete``, ``fail``, ``cancel`` or ``close`` the session is closed:
    the lease is released and further transitions raise ``LeaseLost``.
    """

    def __init__(
        self,
        store: Store,
        cp: Checkpoint,
        generation: int,
        heartbeat: Heartbeat,
        *,
        created: bool,
        resumed: bool,
        owns_store: bool,
        handle_signals: bool,
        redact_secrets: bool,
    ) -> None:
        """Take over a held lease and a committed checkpoint; start the heartbeat."""
        self.store = store
        self.session_id = cp.session_id
        self.checkpoint = cp
        self.generation = generation
        self.created = created
        self.resumed = resumed
        self._committed = Committed(cp)
        # what the next delta is written against, for a store that appends deltas
        appends = getattr(store, "put_delta", None) is not None
        self._baseline = Baseline.of(cp) if appends else None
        self._heartbeat = heartbeat
        self._owns_store = owns_store
        self._redact = redact_secrets
        self._closed = False
        self._signals = SignalGuard()
        heartbeat.start()
        if handle_signals:
            self._signals.install()

    def __repr__(self) -> str:
        return (
            f"Session({self.session_id!r}, {self.status}, trials={self.trials}, "
            f"generation={self.generation})"
        )

    # --- what the session holds ------------------------------------------------

    @property
    def lease(self) -> Lease:
        """The lease as last granted or renewed."""
        return self._heartbeat.lease

    @property
    def trials(self) -> int:
        """The length of the trial log: the index of the next trial."""
        return len(self.checkpoint.progress.trial_log)

    @property
    def best_score(self) -> float | None:
        """The best score so far (by ``direction``), ``None`` before any scored ok trial."""
        progress = self.checkpoint.progress
        return progress.best_score if progress.HasField("best_score") else None

    @property
    def best_trial_idx(self) -> int | None:
        """The index of the best trial, ``None`` before any scored ok trial."""
        progress = self.checkpoint.progress
        return progress.best_trial_idx if progress.HasField("best_trial_idx") else None

    @property
    def sampler_blob(self) -> bytes:
        """The optimizer's sampler state as last recorded."""
        return self.checkpoint.sampler_blob

    @property
    def direction(self) -> Literal["higher", "lower"]:
        """Which scores are better: ``"higher"`` or ``"lower"``."""
        return checkpoint.direction_name(self.checkpoint)

    @property
    def status(self) -> str:
        """running, paused, completed, failed or cancelled."""
        return checkpoint.status_name(self.checkpoint)

    # --- transitions -----------------------------------------------------------

    def record_trial(
        self,
        *,
        score: float | None,
        status: Literal["ok", "error"] = "ok",
        candidate_id: str | None = None,
        stats: Mapping[str, Any] | None = None,
        duration_ms: int = 0,
        error: Mapping[str, Any] | BaseException | None = None,
        error_class: str | None = None,
        sampler_blob: bytes | None = None,
        best_program_artifact: Mapping[str, Any] | None = None,
    ) -> int:
        """Append the next trial (``checkpoint.record_trial``) and commit it; its index.

        Raises ``LeaseLost`` without committing when the heartbeat found the
        lease lost or the session is closed.
        """
        cp = self.checkpoint
        return self._transition(
            lambda: checkpoint.record_trial(
                cp,
                score=score,
                status=status,
                candidate_id=candidate_id,
                stats=stats,
                duration_ms=duration_ms,
                error=error,
                error_class=error_class,
                sampler_blob=sampler_blob,
                best_program_artifact=best_program_artifact,
                redact_secrets=self._redact,
            )
        )

    def pause(self) -> None:
        """Commit running → paused, then close."""
        self._transition(lambda: checkpoint.pause(self.checkpoint))
        self.close()

    def complete(self, reason: Any = None) -> None:
        """Commit running → completed (with an optional reason, any Term value), then close."""
        cp = self.checkpoint
        self._transition(lambda: checkpoint.complete(cp, reason, redact_secrets=self._redact))
        self.close()

    def fail(self, reason: Any = None) -> None:
        """Commit running → failed (with an optional reason), then close."""
        cp = self.checkpoint
        self._transition(lambda: checkpoint.fail(cp, reason, redact_secrets=self._redact))
        self.close()

    def cancel(self, reason: Any = None) -> None:
        """Commit running or paused → cancelled (with an optional reason), then close."""
        cp = self.checkpoint
        self._transition(lambda: checkpoint.cancel(cp, reason, redact_secrets=self._redact))
        self.close()

    def close(self) -> None:
        """Pause and commit a still-running session, stop the heartbeat, release the lease.

        Idempotent. Nothing is committed when the lease was lost. The lease
        is released and the signal handlers restored even when the pause
        fails; its error is raised afterwards. SIGINT/SIGTERM arriving
        meanwhile are held back until all of this is done, then raised as
        :class:`~dsxir.session.Interrupted` (in place of the pause's error,
        which becomes its ``__context__``).
        """
        if self._closed:
            return
        self._signals.hold()  # the pause and the cleanup run whole; a signal is raised after
        try:
            try:
                if (
                    self._heartbeat.lost is None
                    and self.checkpoint.status == SESSION_STATUS_RUNNING
                ):
                    self._transition(lambda: checkpoint.pause(self.checkpoint))
            finally:
                self._closed = True
                self._heartbeat.stop()
                with contextlib.suppress(Exception):  # an unreleased lease ends by itself
                    self.store.release_lease(self._heartbeat.lease)
                self._signals.restore()
                if self._owns_store:
                    close_store(self.store)
        finally:
            self._signals.deliver()

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _transition(self, change: Callable[[], _T]) -> _T:
        """Apply ``change`` to the checkpoint and commit it; undo both on any failure."""
        if self._closed:
            raise LeaseLost(self.session_id, "the session is closed; its lease was released")
        lost = self._heartbeat.lost
        if lost is not None:
            raise LeaseLost(self.session_id, lost.detail or "the heartbeat could not renew it")
        cp = self.checkpoint
        self._signals.hold()
        try:
            result = change()
            put_delta = getattr(self.store, "put_delta", None)
            if put_delta is None or self._baseline is None:
                self.generation = self.store.put(cp, expected_generation=self.generation)
            else:  # a store that appends deltas: a commit writes what changed
                delta, baseline = self._baseline.step(cp, base_generation=self.generation)
                self.generation = put_delta(delta)
                self._baseline = baseline  # Baseline.of(cp), computed once
        except BaseException:
            self._committed.restore(cp)
            self._signals.deliver()
            raise
        self._committed = Committed(cp)
        self._signals.deliver()
        return result


def open_session(
    store: Store | str,
    session_id: str,
    *,
    optimizer: str,
    sampler_format: tuple[str, int],
    accept_sampler_versions: int | Collection[int] | None = None,
    trainset: Iterable[Any] | None = None,
    trainset_hash: bytes | None = None,
    optimizer_opts: Mapping[str, Any] | Iterable[tuple[str, Any]] = (),
    program_module: str | None = None,
    direction: Literal["higher", "lower"] = "higher",
    sampler_blob: bytes = b"",
    lease_ttl: float = 30.0,
    holder: str | None = None,
    handle_signals: bool = True,
    redact_secrets: bool = False,
) -> Session:
    """Hold a session and start or resume it; the session is ready for its next trial.

    ``store`` is a store or a URL for :func:`dsxir.store.open_store` (that
    store is closed with the session). Exactly one of ``trainset`` and
    ``trainset_hash`` is given. In order:

    1. the lease is taken (``lease_ttl`` seconds, at least
       :data:`MIN_LEASE_TTL`, renewed every third of it, as ``holder``,
       default ``"<hostname>:<pid>"``): ``LeaseHeld`` naming
       the holder and the end of its lease, before anything is read;
    2. a session not stored is created (``checkpoint.new`` with the
       arguments of a new session) and committed;
    3. a stored one passes the resume gate (``check_resume``: sampler module
       of ``sampler_format``, versions ``accept_sampler_versions``, default
       ``sampler_format``'s, trainset hash and ``direction``), raising
       ``AlreadyTerminal`` or ``ResumeMismatch``; a paused session is resumed
       and that is committed, a running one (its worker died) goes on as is.

    Any refusal or failure releases the lease before the error is raised.
    With ``handle_signals`` (and in the main thread), SIGINT and SIGTERM raise
    :class:`~dsxir.session.Interrupted` until the session is closed.
    """
    if (trainset is None) == (trainset_hash is None):
        raise TypeError("give exactly one of trainset and trainset_hash")
    if not isinstance(direction, str):
        raise TypeError(f"direction must be 'higher' or 'lower', not {type(direction).__name__}")
    if direction not in checkpoint.DIRECTIONS:
        raise ValueError(f"direction must be 'higher' or 'lower', got {direction[:80]!r}")
    if not (isinstance(sampler_format, tuple) and len(sampler_format) == 2):
        raise TypeError("sampler_format must be a (module, version) pair")
    if (
        isinstance(lease_ttl, (int, float))
        and not isinstance(lease_ttl, bool)
        and lease_ttl < MIN_LEASE_TTL
    ):
        raise ValueError(f"lease_ttl must be at least {MIN_LEASE_TTL} seconds, got {lease_ttl}")
    accepted = sampler_format[1] if accept_sampler_versions is None else accept_sampler_versions

    owns_store = isinstance(store, str)
    held: Store = open_store(store) if isinstance(store, str) else store
    lease: Lease | None = None
    try:
        lease = held.acquire_lease(
            session_id, default_holder() if holder is None else holder, ttl=lease_ttl
        )
        ttl = float(lease_ttl)
        if trainset is not None:
            trainset_hash = checkpoint.hash_trainset(trainset)
        assert trainset_hash is not None
        try:
            stored = held.get(session_id)
        except NotFound:
            cp = checkpoint.new(
                session_id=session_id,
                optimizer=optimizer,
                trainset_hash=trainset_hash,
                sampler_blob=sampler_blob,
                sampler_format=sampler_format,
                optimizer_opts=optimizer_opts,
                program_module=program_module,
                direction=direction,
                redact_secrets=redact_secrets,
            )
            generation = held.put(cp)
            created = True
        else:
            cp, generation, created = stored.checkpoint, stored.generation, False
            checkpoint.check_resume(
                cp,
                optimizer=optimizer,
                sampler_format=(sampler_format[0], accepted),
                trainset_hash=trainset_hash,
                direction=direction,
            )
            if cp.status == SESSION_STATUS_PAUSED:
                checkpoint.resume(cp)
                generation = held.put(cp, expected_generation=generation)
        return Session(
            held,
            cp,
            generation,
            Heartbeat(held, lease, ttl),
            created=created,
            resumed=not created,
            owns_store=owns_store,
            handle_signals=handle_signals,
            redact_secrets=redact_secrets,
        )
    except BaseException:
        if lease is not None:
            with contextlib.suppress(Exception):  # the refusal matters more; the lease ends
                held.release_lease(lease)
        if owns_store:
            close_store(held)
        raise
