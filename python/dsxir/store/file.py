"""A crash-safe, durable file store: one framed file per session in one folder.

Layout of the store folder (session ids never start with a dot, so the
store's own files cannot clash with a session's)::

    <session_id>.dsxckpt        the committed checkpoint: a framed snapshot (:mod:`.framing`),
                                then commit records (:mod:`.records`)
    .lock.<session_id>          the session's lock file (empty), while the session exists
    .tmp.<session_id>           a commit in progress (or left behind by a killed writer)
    .lease.<session_id>         the session's lease, while it has one
    .lease-tmp.<session_id>     a lease being written (or left behind by a killed writer)

**Who may read it**: the store creates its folder ``0700`` and every file in
it ``0600`` (lock, lease and temporary files too), so other local users can neither
read a checkpoint nor open a lock file. A folder that already exists and is
open to others (any group or other bit) keeps working, but the store warns
once per process (:class:`FolderModeWarning`, naming the folder and the fix,
``chmod 700``). A lock file left ``0644`` by an older version is narrowed to
``0600`` the next time it is locked.

**Commit** (``put``, ``put_delta``): under the session's exclusive lock
(``fcntl.flock`` on its lock file, so commits of one session are serialized
across processes and threads on one machine, and commits of different
sessions do not wait for each other), the store reads the stored generation
(the header and the record headers), applies the CAS rule of
:mod:`.interface`, and refuses a checkpoint that is not a legal successor of
the stored one (:func:`~dsxir.optimizer_session.history.check_successor`; a
stored file that cannot be read whole blocks the update with
``CorruptStore``: a history that cannot be checked is not extended). The
stored checkpoint is read whole once, then kept in memory for the sessions
this store committed last (:data:`REMEMBERED_SESSIONS`) while the file is the
one it wrote. An update appends one commit record (docs/store-file.md §9:
the new checkpoint's summary and its delta, FORMAT.md §13) and syncs
the file, after cutting off a torn tail a killed writer left; a create, or
an update whose records would pass ``max(snapshot // COMPACT_SHARE,
COMPACT_MIN_BYTES)`` bytes, writes a whole snapshot to ``.tmp.<session_id>``
(``O_EXCL``, ``O_NOFOLLOW``), syncs it, renames it over
``<session_id>.dsxckpt`` and syncs the folder (a **compaction**). A
process killed at any moment leaves the old file (perhaps with a torn
record, never acknowledged, which readers ignore) or the new one; once a
commit returns, it survives a crash of the machine too.

**Leases** live in ``.lease.<session_id>``, a small JSON object (format
``dsxir.store.lease/v1``: session id, holder, token, expiry in microseconds
of the local clock since the Unix epoch), written ``0600`` to
``.lease-tmp.<session_id>`` and renamed over it under the session's lock, so
lease operations are serialized with each other and with commits across
processes. A lease file is never followed or blocked on, and never read
past :data:`MAX_LEASE_FILE_BYTES`: anything at its name that is not a
regular file, or a file that is too big or does not hold exactly that
object for its session, is **damaged and counts as no lease**: ``get_lease``
returns ``None``, ``acquire_lease`` replaces it, ``renew_lease`` raises
``LeaseLost``. Leases are advisory (every commit is still checked against
its generation), so a damaged lease costs at most a second worker that the
generation check then stops; a lease file is not ``fsync``\\ ed, since a
machine crash that could tear it also ends every process holding a lease.
``release_lease`` and ``delete`` remove it.

**Lock timeout**: ``put``, ``delete`` and the lease methods but ``get_lease``
wait at most ``lock_timeout`` seconds (:data:`DEFAULT_LOCK_TIMEOUT`, 30) for
the session's lock, then raise
:class:`LockTimeout` (a :class:`~dsxir.errors.StoreUnavailable`) naming the
lock file and, where the system tells (Linux ``/proc/locks``), the process
holding it; nothing was changed then. A lock held forever (a stuck process, a
hostile one that could open the lock file) therefore never hangs a caller.
Something at a lock file's name that is not a regular file (a planted
symbolic link, a FIFO) is removed, never followed, and a lock file is made in
its place; those removals are serialized by a lock on the folder itself.

**Reading** (``get``, ``list``) takes no lock: a rename is atomic and a
record is read whole or as a torn tail, so a reader sees whole commits.
Every ``get`` checks the frame and the records; a torn, truncated, bit-flipped
or foreign file raises :class:`~dsxir.errors.CorruptStore` naming the file
and is never decoded into wrong data. Anything at a session file's name
that is not a regular file (a symbolic link, a FIFO, a socket, a device, a
folder) is refused the same way, without blocking: files are opened
``O_NOFOLLOW | O_NONBLOCK`` and checked with ``fstat`` before any read. A file
whose header is damaged blocks ``put`` of its session too (the generation it
held cannot be known) until it is deleted; damage after the header fails
``get`` and every update (a history that cannot be read is not extended),
while a stale generation is still a ``Conflict``. ``delete`` always works.
``list`` reads only each file's header and summary (with records, the record
headers and the last record, whose summary it takes), never the trial logs;
:meth:`FileStore.list_page` reads the summaries of one page only.

**Stale files**: a writer killed mid-commit leaves its ``.tmp.`` file. The
next commit of that session replaces it, and opening a store removes every
stale temporary file whose session is not locked at that moment (with the
lock file of a session that no longer exists). Lock files are removed with
their session; a process that locked a lock file being removed notices (the
path no longer names the file it locked) and locks again.

Symbolic links are never followed inside the store folder, and every method
refuses a session id that :func:`.check_session_id` refuses before touching
the file system, so nothing is ever written outside the folder.
"""

from __future__ import annotations

import bisect
import builtins
import contextlib
import datetime as _dt
import errno
import fcntl
import itertools
import json
import math
import os
import stat
import threading
import time
import urllib.parse
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from dsxir.errors import (
    CorruptStore,
    InvalidCheckpoint,
    InvalidDelta,
    InvalidSessionId,
    LeaseHeld,
    NotFound,
    StoreUnavailable,
)
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session import delta as dl
from dsxir.optimizer_session.grammar import GrammarError, sealed
from dsxir.optimizer_session.history import check_successor
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint, CheckpointDelta
from dsxir.store import framing, leases, records
from dsxir.store.interface import (
    Lease,
    ListFilter,
    Listing,
    OnDamage,
    Stored,
    check_expected_generation,
    check_page,
    listing_of,
    next_generation,
)
from dsxir.store.session_ids import check_session_id
from dsxir.store.successor import check_put
from dsxir.store.summary import encode_summary, parse_summary

__all__ = [
    "COMPACT_MIN_BYTES",
    "COMPACT_SHARE",
    "DEFAULT_LOCK_TIMEOUT",
    "FILE_MODE",
    "FOLDER_MODE",
    "LAST_GENERATION",
    "MAX_APPENDED_BYTES",
    "MAX_LEASE_FILE_BYTES",
    "REMEMBERED_SESSIONS",
    "SUFFIX",
    "FileStore",
    "FolderModeWarning",
    "LockTimeout",
    "open_url",
]

SUFFIX = ".dsxckpt"
"""The file name suffix of a committed checkpoint."""
DEFAULT_LOCK_TIMEOUT = 30.0
"""How long ``put`` and ``delete`` wait for a session's lock by default, in seconds."""
FILE_MODE = 0o600
"""The mode of every file the store creates (committed, lock and temporary files)."""
FOLDER_MODE = 0o700
"""The mode of the store folder when the store creates it."""

LAST_GENERATION = (1 << 64) - 1
"""The largest generation of the frame and of a record (docs/store-file.md §1, §9.1)."""
COMPACT_SHARE = 6
COMPACT_MIN_BYTES = 8192
"""A commit writes a new snapshot instead of a record when the records would pass
``max(snapshot // COMPACT_SHARE, COMPACT_MIN_BYTES)`` bytes (docs/store-file.md §9)."""
MAX_APPENDED_BYTES = 128 * 1024 * 1024
"""A commit writes a new snapshot when snapshot and records would pass this many bytes,
so that the checkpoint's size limit is checked on the whole again."""
REMEMBERED_SESSIONS = 8
"""How many sessions' committed state a store keeps in memory (the ones it wrote last)."""

MAX_LEASE_FILE_BYTES = 4096
"""The largest lease file the store reads; a bigger one is damaged (no lease)."""
LEASE_FORMAT = "dsxir.store.lease/v1"
"""The ``format`` of a lease file."""

_LOCK_PREFIX = ".lock."
_TEMP_PREFIX = ".tmp."
_LEASE_PREFIX = ".lease."
_LEASE_TEMP_PREFIX = ".lease-tmp."
_LEASE_KEYS = frozenset({"format", "session_id", "holder", "token", "expires_at_us"})
_MAX_EXPIRY_US = 253402300799999999  # 9999-12-31T23:59:59.999999Z
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_LOCK_FLAGS = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_APPEND_FLAGS = os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_FIRST_POLL = 0.0005
_LAST_POLL = 0.02
_REPAIRS = 8
_URL_OPTIONS = ("lock_timeout",)


class LockTimeout(StoreUnavailable):
    """A session's lock was not acquired within the store's ``lock_timeout``.

    Unlike other ``StoreUnavailable`` errors the outcome is known: the
    operation changed nothing. ``path`` is the lock file, ``timeout`` the
    seconds waited, ``holder`` the id of the process holding the lock when
    the system tells (Linux), else ``None``.
    """

    def __init__(self, path: str, timeout: float, holder: int | None) -> None:
        held = f"held by process {holder}" if holder is not None else "holder unknown"
        super().__init__(
            f"{path}: lock not acquired within {timeout:g} s ({held}); nothing was changed"
        )
        self.path = path
        self.timeout = timeout
        self.holder = holder


class FolderModeWarning(UserWarning):
    """A store folder that other local users may read (its mode has group or other bits)."""


@dataclass
class _State:
    """A session file as the store last wrote or read it, under the session's lock."""

    file: tuple[int, int, int, int]  # device, inode, size, change time (ns)
    generation: int
    checkpoint: Checkpoint
    snapshot: int  # the body's length
    records_bytes: int
    end: int  # where the intact records end
    listing: Listing  # of the checkpoint at this generation
    log: bytes | None = None  # the bytes of its trial entries, when a put left them


class FileStore:
    """Sessions as framed files in one folder (created ``0700`` on the first commit)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        """Open the store in folder ``path`` and clean stale temporary files (best effort).

        ``lock_timeout`` (seconds, finite, ``>= 0``) bounds how long ``put``
        and ``delete`` wait for a session's lock before :class:`LockTimeout`.
        """
        self.path = os.path.abspath(os.fspath(path))
        self.lock_timeout = _check_lock_timeout(lock_timeout)
        self._folder_checked = False
        self._states: dict[str, _State] = {}
        self._states_lock = threading.Lock()
        self._check_folder_mode()
        with contextlib.suppress(OSError, StoreUnavailable, CorruptStore):
            self.clean_stale_files()

    def __repr__(self) -> str:
        return f"FileStore({self.path!r})"

    # --- paths ------------------------------------------------------------------

    def file_path(self, session_id: str) -> str:
        """The path of a session's committed file (whether it exists or not)."""
        return os.path.join(self.path, check_session_id(session_id) + SUFFIX)

    def _lock_path(self, session_id: str) -> str:
        return os.path.join(self.path, _LOCK_PREFIX + session_id)

    def _temp_path(self, session_id: str) -> str:
        return os.path.join(self.path, _TEMP_PREFIX + session_id)

    def _lease_path(self, session_id: str) -> str:
        return os.path.join(self.path, _LEASE_PREFIX + session_id)

    # --- the interface ----------------------------------------------------------

    def put(self, cp: Checkpoint, *, expected_generation: int | None = None) -> int:
        """Commit ``cp`` durably under the CAS rule; return the new generation.

        Raises ``InvalidSessionId`` for an id that could escape the folder,
        ``InvalidCheckpoint`` for an invalid checkpoint (nothing is written),
        ``Conflict`` when the stored generation is not the expected one (and
        when creating a session that exists), ``IllegalHistory`` when ``cp``
        is not a legal successor of the stored checkpoint, ``CorruptStore``
        when the stored file is damaged (for an update, anywhere in it; for a
        create, in its header), :class:`LockTimeout` when the session's lock stays
        busy for ``lock_timeout`` seconds (nothing is written), ``OSError``
        when the file system fails (the stored file is then unchanged).
        """
        session_id = check_session_id(cp.session_id)
        expected = check_expected_generation(expected_generation)
        body = checkpoint.encode(cp)
        self._make_folder()
        with self._locked(session_id):
            if expected is None:
                generation = next_generation(session_id, self._generation(session_id), None)
                frame = framing.frame(generation, encode_summary(cp), body, appendable=True)
                self._forget(session_id)
                self._commit(session_id, frame)
                return generation
            state = self._state(session_id, expected)
            generation = expected + 1
            log = check_put(state.checkpoint, state.log, cp, body)
            delta = dl.diff(state.checkpoint, cp, base_generation=state.generation)
            data = _diff_bytes(delta)
            summary = encode_summary(cp)
            self._write(session_id, state, delta, delta.head, data, summary, body, log)
        return generation

    def put_delta(self, delta: CheckpointDelta) -> int:
        """Commit what ``delta`` adds to the stored checkpoint (FORMAT.md §13); the new generation.

        ``delta.base_generation`` is the expected generation (the CAS rule of
        :mod:`.interface`; a session that does not exist is a ``Conflict``).
        Refuses with ``InvalidDelta`` a delta that cannot be read or is not
        the stored checkpoint's (§13.1, §13.2), with ``InvalidCheckpoint``
        one whose result breaks a rule of FORMAT.md or holds a credential,
        with ``IllegalHistory`` a result that is not a legal successor; the
        other errors are :meth:`put`'s. Nothing is written then. The work and
        the bytes written grow with the delta, not with the session, apart
        from a compaction now and then (docs/store-file.md §9).
        """
        session_id = _delta_session("put_delta", delta)
        data = dl.encode_delta(delta)
        self._make_folder()
        with self._locked(session_id):
            state = self._state(session_id, delta.base_generation)
            self._write_delta(session_id, state, delta, data, may_compact=True)
        return delta.base_generation + 1

    def try_put_delta(self, delta: CheckpointDelta) -> int | None:
        """:meth:`put_delta` when it commits without waiting; else None, with nothing written.

        It commits only by appending one record (no compaction) to the file
        of a session this store remembers (:data:`REMEMBERED_SESSIONS`),
        while that file is the one it wrote and the session's lock is free.
        When one of these does not hold it returns None, having written and
        changed nothing, and :meth:`put_delta` commits the delta (it may
        wait for the lock, read the file or compact it). Its refusals are
        :meth:`put_delta`'s. For callers that must not wait, such as the
        server's event loop: the one wait left is the append's ``fsync``.
        """
        session_id = _delta_session("try_put_delta", delta)
        with self._states_lock:
            if session_id not in self._states:
                return None
        data = dl.encode_delta(delta)
        self._make_folder()
        with self._locked(session_id, blocking=False) as held:
            if not held:
                return None
            state = self._known_state(session_id, delta.base_generation)
            if state is None:
                return None
            if not self._write_delta(session_id, state, delta, data, may_compact=False):
                return None
        return delta.base_generation + 1

    def _write_delta(
        self,
        session_id: str,
        state: _State,
        delta: CheckpointDelta,
        data: bytes,
        *,
        may_compact: bool,
    ) -> bool:
        """Check ``delta`` on ``state`` and commit it (see :meth:`_write`)."""
        probe = dl.checked_probe(state.checkpoint, delta)
        check_successor(state.checkpoint, probe, appended=True)
        # The summary of the checkpoint merge will make: the probe's fields, its
        # trial entries after the stored ones (a probe without progress has none).
        earlier = len(state.checkpoint.progress.trial_log) if probe.HasField("progress") else 0
        summary = encode_summary(probe, earlier_trials=earlier)
        return self._write(
            session_id, state, delta, probe, data, summary, None, None, may_compact=may_compact
        )

    def get(self, session_id: str) -> Stored:
        """The latest committed checkpoint; ``NotFound``, or ``CorruptStore`` naming the file."""
        path = self.file_path(session_id)
        opened = _open_store_file(path)
        if opened is None:
            raise NotFound(session_id)
        handle, size = opened
        with handle:
            stored = _read_file(handle, size, session_id, path)
        return Stored(stored.checkpoint, stored.generation)

    def list(
        self,
        *,
        status: str | None = None,
        optimizer: str | None = None,
        updated_since: _dt.datetime | None = None,
        on_damage: OnDamage | None = None,
    ) -> builtins.list[Listing]:
        """Summaries of the matching sessions, by session id; reads no trial log.

        Files that are not session files (other names, hidden files) are
        ignored; a damaged session file (or anything at a session file's name
        that is not a regular file) raises ``CorruptStore`` naming it, or with
        ``on_damage`` is reported to it and skipped.
        """
        return self.list_page(
            status=status, optimizer=optimizer, updated_since=updated_since, on_damage=on_damage
        )

    def delete(self, session_id: str) -> None:
        """Remove a session (its file, lease, stale temporary files and lock file); idempotent.

        A folder holding files at a temporary or lease file's name is left
        there (it is not the store's); ``CorruptStore`` only when one sits at
        the session file's name.

        Raises :class:`LockTimeout` when the session's lock stays busy for
        ``lock_timeout`` seconds (nothing is removed then).
        """
        check_session_id(session_id)
        if not os.path.isdir(self.path):
            return
        with self._locked(session_id):
            removed = _unlink(os.path.join(self.path, session_id + SUFFIX))
            removed = _discard(self._temp_path(session_id)) or removed
            removed = self._remove_lease(session_id) or removed
            if removed:
                self._sync_folder()

    def acquire_lease(self, session_id: str, holder: str, *, ttl: float) -> Lease:
        """Hold ``session_id`` for ``ttl`` seconds, or ``LeaseHeld`` (see :mod:`.interface`).

        Raises :class:`LockTimeout` when the session's lock stays busy;
        ``CorruptStore`` when something that cannot be removed (a folder
        holding files) sits at the lease file's name.
        """
        check_session_id(session_id)
        holder = leases.check_holder(holder)
        length = leases.ttl_us(leases.check_ttl(ttl))
        self._make_folder()
        with self._locked(session_id):
            now = leases.now_us()
            held = self._read_lease(session_id)
            if held is not None and leases.holds(held[2], now):
                raise LeaseHeld(session_id, held[0], leases.datetime_of_us(held[2]))
            token = leases.new_token()
            self._write_lease(session_id, holder, token, now + length)
        return Lease(session_id, holder, token, leases.datetime_of_us(now + length))

    def renew_lease(self, lease: Lease, *, ttl: float) -> Lease:
        """Extend a held lease to now + ``ttl`` seconds, or ``LeaseLost``."""
        lease = leases.check_lease(lease)
        length = leases.ttl_us(leases.check_ttl(ttl))
        if not os.path.isdir(self.path):
            raise leases.lost(lease, None)
        with self._locked(lease.session_id):
            held = self._read_lease(lease.session_id)
            if held is None or not leases.same_token(held[1], lease.token):
                raise leases.lost(lease, None if held is None else held[0])
            expires = leases.now_us() + length
            self._write_lease(lease.session_id, held[0], held[1], expires)
        return Lease(lease.session_id, held[0], held[1], leases.datetime_of_us(expires))

    def release_lease(self, lease: Lease) -> None:
        """Give a lease up (remove its file); nothing happens when it is no longer the session's."""
        lease = leases.check_lease(lease)
        if not os.path.isdir(self.path):
            return
        with self._locked(lease.session_id):
            held = self._read_lease(lease.session_id)
            if held is not None and leases.same_token(held[1], lease.token):
                self._remove_lease(lease.session_id)

    def get_lease(self, session_id: str) -> Lease | None:
        """The session's lease (expired or not) without its token, or ``None``.

        Takes no lock: the lease file is replaced by a rename. A damaged lease
        file is no lease (see the module text).
        """
        check_session_id(session_id)
        held = self._read_lease(session_id)
        if held is None:
            return None
        return Lease(session_id, held[0], "", leases.datetime_of_us(held[2]))

    # --- beyond the interface ---------------------------------------------------

    def listing(self, session_id: str) -> Listing:
        """The listing of one session, from its summary (no trial log is read).

        A session this store committed last (while the file is the one it
        wrote) is answered from memory, without reading the file.

        ``NotFound`` when there is none; ``CorruptStore`` when its file is
        damaged (a header, summary or record that fails its checks).
        """
        check_session_id(session_id)
        path = os.path.join(self.path, session_id + SUFFIX)
        with self._states_lock:
            known = self._states.get(session_id)
        if known is not None:  # the state this store committed last, while the file is its
            with contextlib.suppress(OSError):
                if _identity(os.stat(path, follow_symlinks=False)) == known.file:
                    return known.listing
        found = self._read_listing(session_id, path)
        if found is None:
            raise NotFound(session_id)
        return found

    def list_page(
        self,
        *,
        status: str | None = None,
        optimizer: str | None = None,
        updated_since: _dt.datetime | None = None,
        after: str | None = None,
        limit: int | None = None,
        on_damage: OnDamage | None = None,
    ) -> builtins.list[Listing]:
        """Like ``list``, only sessions whose id sorts after ``after``, at most ``limit``.

        Ids sort by their UTF-8 bytes (the same order as ``list``). The
        folder's names are listed and sorted (no file is opened for that),
        then summaries are read from the first id after ``after`` on, only
        until ``limit`` sessions match: an unfiltered page reads about
        ``limit`` summaries, whatever the number of sessions. Damage is
        handled as in ``list``, for the files read.
        """
        where = ListFilter.of(status, optimizer, updated_since)
        after, limit = check_page(after, limit)
        ids = self._session_names()
        start = 0 if after is None else bisect.bisect_right(ids, after)
        found: builtins.list[Listing] = []
        for session_id in itertools.islice(ids, start, None):
            if limit is not None and len(found) >= limit:
                break
            try:
                check_session_id(session_id)
            except InvalidSessionId:
                continue  # not a session's file (hidden, or an id no store accepts)
            try:
                listing = self._read_listing(
                    session_id, os.path.join(self.path, session_id + SUFFIX)
                )
            except CorruptStore as exc:
                if on_damage is None:
                    raise
                on_damage(exc)
                continue
            if listing is not None and where.matches(listing):
                found.append(listing)
        return found

    # --- maintenance ------------------------------------------------------------

    def clean_stale_files(self) -> int:
        """Remove temporary files left by killed writers, and orphaned lock files.

        A file is removed only while its session's lock is free and taken
        here, so a commit in progress is never disturbed (a session whose lock
        is busy is skipped, never waited for). Returns how many temporary
        files were removed.
        """
        try:
            names = set(os.listdir(self.path))
        except FileNotFoundError:
            return 0
        removed = 0
        for name in sorted(names):
            for prefix in (_TEMP_PREFIX, _LEASE_TEMP_PREFIX, _LOCK_PREFIX):
                if not name.startswith(prefix):
                    continue
                session_id = name[len(prefix) :]
                if prefix == _LOCK_PREFIX and (
                    session_id + SUFFIX in names
                    or _TEMP_PREFIX + session_id in names
                    or _LEASE_TEMP_PREFIX + session_id in names
                ):
                    continue  # the lock file of a live session (or seen with a temp file)
                try:
                    check_session_id(session_id)
                except InvalidSessionId:
                    continue
                try:
                    with self._locked(session_id, blocking=False) as held:
                        if held:
                            removed += _unlink(self._temp_path(session_id))
                            removed += _unlink(
                                os.path.join(self.path, _LEASE_TEMP_PREFIX + session_id)
                            )
                except CorruptStore:
                    continue  # something at the lock's name that cannot be removed: left alone
        return removed

    # --- internals --------------------------------------------------------------

    def _session_names(self) -> builtins.list[str]:
        """The would-be ids of the folder's ``*.dsxckpt`` files, sorted by code point.

        Code point order is UTF-8 byte order. The ids are not checked here
        (that costs as much as the listing): :meth:`list_page` checks the ones
        it reaches and skips the files that are no session's.
        """
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return []
        ids = [name[: -len(SUFFIX)] for name in names if name.endswith(SUFFIX)]
        ids.sort()
        return ids

    @contextlib.contextmanager
    def _locked(self, session_id: str, *, blocking: bool = True) -> Iterator[bool]:
        """Hold the session's exclusive lock; yields False when not ``blocking`` and busy.

        Waits at most ``lock_timeout`` seconds, then raises :class:`LockTimeout`.
        On leaving, the lock file is removed when the session has no
        committed file (so lock files live exactly as long as their session).
        """
        lock_path = self._lock_path(session_id)
        deadline = time.monotonic() + (self.lock_timeout if blocking else 0.0)
        while True:
            fd = self._open_lock_file(lock_path, deadline, blocking)
            if fd is None:
                yield False
                return
            try:
                acquired = _flock_until(fd, deadline)
                if not acquired and blocking:
                    raise LockTimeout(lock_path, self.lock_timeout, _lock_holder(fd))
            except BaseException:
                os.close(fd)
                raise
            if not acquired:
                os.close(fd)
                yield False
                return
            if _names_same_file(lock_path, fd):
                break
            os.close(fd)  # the file was removed (and maybe re-created) meanwhile: lock again
        try:
            yield True
        finally:
            try:
                if not os.path.lexists(os.path.join(self.path, session_id + SUFFIX)):
                    _unlink(lock_path)
            finally:
                os.close(fd)

    def _open_lock_file(self, lock_path: str, deadline: float, blocking: bool) -> int | None:
        """Open (creating ``0600``) the regular lock file at ``lock_path``.

        Anything else found there (a symbolic link, a FIFO, ...) is removed
        first, never followed or opened. Returns None when not ``blocking``
        and the folder lock that such a removal needs is busy.
        """
        for _ in range(_REPAIRS):
            with contextlib.suppress(FileNotFoundError):
                if not stat.S_ISREG(os.lstat(lock_path).st_mode):
                    if not self._remove_foreign(lock_path, deadline):
                        if not blocking:
                            return None
                        raise LockTimeout(self.path, self.lock_timeout, None)
                    continue
            try:
                fd = os.open(lock_path, _LOCK_FLAGS, FILE_MODE)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.ENODEV):
                    continue  # replaced by something else meanwhile: look again
                raise
            try:
                info = os.fstat(fd)
                if stat.S_ISREG(info.st_mode):
                    if info.st_mode & 0o077 and info.st_uid == os.geteuid():
                        os.fchmod(fd, FILE_MODE)  # left wider by an older version
                    return fd
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        raise CorruptStore(lock_path, "keeps being replaced by something that is not a lock file")

    def _remove_foreign(self, path: str, deadline: float) -> bool:
        """Remove what is at ``path`` unless it is a regular file, under the folder lock.

        Only regular files are ever lock files; the folder lock makes the
        look and the removal one step for every process of the store, so a
        lock file made meanwhile by another process is never removed.
        Returns False when the folder lock was not acquired by ``deadline``.
        """
        folder = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            if not _flock_until(folder, deadline):
                return False
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                return True
            if stat.S_ISREG(info.st_mode):
                return True
            try:
                if stat.S_ISDIR(info.st_mode):
                    os.rmdir(path)
                else:
                    os.unlink(path)  # a link itself, never what it points to
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise CorruptStore(
                    path, f"is {_kind(info.st_mode)}, not a lock file, and cannot be removed"
                ) from exc
            return True
        finally:
            os.close(folder)  # releases the folder lock

    def _check_folder_mode(self) -> None:
        """Warn once per process when the folder exists and is open to other users."""
        if self._folder_checked:
            return
        try:
            mode = os.stat(self.path).st_mode
        except OSError:
            return  # not there yet: it is created 0700
        self._folder_checked = True
        if not stat.S_ISDIR(mode) or not mode & 0o077:
            return
        with _warned_lock:
            if self.path in _warned_folders:
                return
            _warned_folders.add(self.path)
        warnings.warn(
            FolderModeWarning(
                f"store folder {self.path} has mode {stat.S_IMODE(mode):04o}: other local"
                " users may read its checkpoints or hold its locks; restrict it with:"
                f" chmod 700 {self.path}"
            ),
            stacklevel=3,
        )

    def _make_folder(self) -> None:
        if os.path.isdir(self.path):
            self._check_folder_mode()
            return
        missing = []
        folder = self.path
        while not os.path.isdir(folder):
            missing.append(folder)
            folder = os.path.dirname(folder)
        os.makedirs(self.path, mode=FOLDER_MODE, exist_ok=True)
        for created in reversed(missing):
            _sync_dir(os.path.dirname(created))
        self._check_folder_mode()

    def _generation(self, session_id: str) -> int | None:
        """The stored generation (header and records, no body); None when no file."""
        path = os.path.join(self.path, session_id + SUFFIX)
        opened = _open_store_file(path)
        if opened is None:
            return None
        handle, size = opened
        with handle:
            return _generation_of(handle, size, path)

    def _state(self, session_id: str, expected: int) -> _State:
        """The stored state an update at ``expected`` goes on from, or ``Conflict``.

        The caller holds the session's lock. A state this store remembers is
        used while the file is the one it wrote (same device, inode and
        size); otherwise the generation is read first (header and record
        headers: the CAS rule comes before any damage further in), then the
        file is read and checked whole.
        """
        known = self._known_state(session_id, expected)
        if known is not None:
            return known
        path = os.path.join(self.path, session_id + SUFFIX)
        opened = _open_store_file(path)
        if opened is None:
            self._forget(session_id)
            next_generation(session_id, None, expected)
        assert opened is not None  # next_generation refused the missing session
        handle, size = opened
        with handle:
            info = os.fstat(handle.fileno())
            next_generation(session_id, _generation_of(handle, size, path), expected)
            _not_last(path, expected)
            stored = _read_file(handle, size, session_id, path)
        state = _State(
            _identity(info),
            stored.generation,
            stored.checkpoint,
            stored.snapshot,
            stored.records_bytes,
            stored.end,
            listing_of(stored.checkpoint, stored.generation),
        )
        self._remember(session_id, state)
        return state

    def _known_state(self, session_id: str, expected: int) -> _State | None:
        """The state this store remembers while the file is the one it wrote, else None.

        The caller holds the session's lock. ``Conflict`` when that state's
        generation is not ``expected``.
        """
        with self._states_lock:
            known = self._states.get(session_id)
        if known is None:
            return None
        path = os.path.join(self.path, session_id + SUFFIX)
        try:
            named = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(named.st_mode) or _identity(named) != known.file:
            return None
        next_generation(session_id, known.generation, expected)
        _not_last(path, expected)
        return known

    def _write(
        self,
        session_id: str,
        state: _State,
        delta: CheckpointDelta,
        head: Checkpoint,
        data: bytes,
        summary: bytes,
        body: bytes | None,
        log: bytes | None,
        *,
        may_compact: bool = True,
    ) -> bool:
        """Commit ``delta``: one record appended, or a new snapshot when it is due.

        ``state`` becomes the new checkpoint (``head`` merged with the kept
        fields of ``delta``); ``data`` is the delta's bytes, ``summary``
        the new checkpoint's, ``body`` its bytes when the caller has them
        and ``log`` the bytes of its trial entries
        (:func:`.successor.trial_log_bytes`) or ``None``. Returns False,
        having changed nothing, when a new snapshot is due and
        ``may_compact`` is false. Any failure forgets the state, so the
        next commit reads the file again.
        """
        generation = delta.base_generation + 1
        record = records.record(generation, summary, data)
        spent = state.records_bytes + len(record)
        due = spent > max(state.snapshot // COMPACT_SHARE, COMPACT_MIN_BYTES) or (
            state.snapshot + spent > MAX_APPENDED_BYTES
        )
        if due and not may_compact:
            return False
        try:
            state.log = None
            dl.merge(state.checkpoint, head, delta.kept)
            if due:
                if body is None:
                    body = checkpoint.encode(state.checkpoint)
                self._compact(session_id, state, generation, summary, body)
            else:
                self._append(session_id, state, record)
            state.generation = generation
            state.listing = listing_of(state.checkpoint, generation)
            state.log = log
        except BaseException:
            self._forget(session_id)
            raise
        self._remember(session_id, state)  # the latest committed: evicted last
        return True

    def _append(self, session_id: str, state: _State, record: bytes) -> None:
        """Append one record after the intact ones (a torn tail cut off first), then fsync."""
        path = os.path.join(self.path, session_id + SUFFIX)
        _unlink(self._temp_path(session_id))  # left by a writer killed mid-compaction
        try:  # O_NONBLOCK: a FIFO swapped in meanwhile is refused, never waited on
            fd = os.open(path, _APPEND_FLAGS)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENXIO, errno.ENODEV, errno.EISDIR):
                raise CorruptStore(path, "is not the regular file it was") from None
            raise
        try:
            info = os.fstat(fd)
            if (info.st_dev, info.st_ino) != state.file[:2]:
                raise CorruptStore(path, "the file changed under the session's lock")
            if info.st_size != state.end:
                os.ftruncate(fd, state.end)  # a torn tail: never acknowledged
            if stat.S_IMODE(info.st_mode) != FILE_MODE:
                os.fchmod(fd, FILE_MODE)  # narrowed, as a rewrite would make it
            view = memoryview(record)
            at = state.end
            while view:
                written = os.pwrite(fd, view, at)
                view, at = view[written:], at + written
            os.fsync(fd)
            info = os.fstat(fd)
        finally:
            os.close(fd)
        state.end += len(record)
        state.records_bytes += len(record)
        state.file = _identity(info)

    def _compact(
        self, session_id: str, state: _State, generation: int, summary: bytes, body: bytes
    ) -> None:
        """Commit ``generation`` as a new snapshot with no records (crash-safe, by rename)."""
        frame = framing.frame(generation, summary, body, appendable=True)
        self._commit(session_id, frame)
        info = os.stat(os.path.join(self.path, session_id + SUFFIX), follow_symlinks=False)
        state.file = _identity(info)
        state.snapshot, state.records_bytes, state.end = len(body), 0, len(frame)

    def _remember(self, session_id: str, state: _State) -> None:
        with self._states_lock:
            self._states.pop(session_id, None)
            self._states[session_id] = state
            while len(self._states) > REMEMBERED_SESSIONS:
                del self._states[next(iter(self._states))]

    def _forget(self, session_id: str) -> None:
        with self._states_lock:
            self._states.pop(session_id, None)

    def _read_lease(self, session_id: str) -> tuple[str, str, int] | None:
        """The session's lease as ``(holder, token, expiry in us)``; None when none or damaged."""
        path = self._lease_path(session_id)
        try:
            fd = os.open(path, _READ_FLAGS)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENXIO, errno.ENODEV, errno.EISDIR, errno.EACCES):
                return None  # a link, a socket, a device, a folder...: damaged, no lease
            raise
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_LEASE_FILE_BYTES:
                return None
            os.set_blocking(fd, True)
            raw = os.read(fd, MAX_LEASE_FILE_BYTES + 1)
        finally:
            os.close(fd)
        return _parse_lease(raw, session_id)

    def _write_lease(self, session_id: str, holder: str, token: str, expires_us: int) -> None:
        """Replace the session's lease file (the caller holds the session's lock)."""
        data = json.dumps(
            {
                "format": LEASE_FORMAT,
                "session_id": session_id,
                "holder": holder,
                "token": token,
                "expires_at_us": expires_us,
            },
            sort_keys=True,
        ).encode("ascii")
        temp = os.path.join(self.path, _LEASE_TEMP_PREFIX + session_id)
        target = self._lease_path(session_id)
        _unlink(temp)
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISDIR(os.lstat(target).st_mode):
                try:
                    os.rmdir(target)
                except OSError as exc:
                    raise CorruptStore(
                        target, "is a folder, not a lease file, and cannot be removed"
                    ) from exc
        fd = os.open(temp, _TEMP_FLAGS, FILE_MODE)
        try:
            try:
                os.write(fd, data)  # far below a pipe's or a page's size: one write
            finally:
                os.close(fd)
            os.replace(temp, target)  # over a link or a FIFO, the name itself is replaced
        except BaseException:
            _unlink(temp)
            raise

    def _remove_lease(self, session_id: str) -> bool:
        """Remove the lease file and a stale lease temporary file; True if any was there.

        A folder holding files at either name is left (it is no lease).
        """
        removed = _discard(os.path.join(self.path, _LEASE_TEMP_PREFIX + session_id))
        return _discard(self._lease_path(session_id)) or removed

    def _commit(self, session_id: str, data: bytes) -> None:
        temp = self._temp_path(session_id)
        target = os.path.join(self.path, session_id + SUFFIX)
        _unlink(temp)  # left by a writer killed mid-commit; the lock is ours
        fd = os.open(temp, _TEMP_FLAGS, FILE_MODE)
        try:
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, target)
        except BaseException:
            _unlink(temp)
            raise
        self._sync_folder()

    def _sync_folder(self) -> None:
        _sync_dir(self.path)

    def _read_listing(self, session_id: str, path: str) -> Listing | None:
        opened = _open_store_file(path)
        if opened is None:
            return None  # deleted meanwhile
        handle, size = opened
        with handle:
            read_at = _reader(handle)
            header = framing.parse_header(read_at(0, framing.HEADER_SIZE), path, file_size=size)
            summary = read_at(framing.HEADER_SIZE, header.summary_length)
            framing.check_summary(header, summary, path)
            generation = header.generation
            if header.appendable:  # the record headers, then the last record whole
                found = records.last(read_at, header.total_length, size, path)
                if found is not None:
                    summary, generation = found.summary, found.generation
        listing = parse_summary(summary, generation, path)
        if listing.session_id != session_id:
            raise CorruptStore(path, f"holds session {listing.session_id!r}, not {session_id!r}")
        return listing


_warned_lock = threading.Lock()
_warned_folders: set[str] = set()


def _check_lock_timeout(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"lock_timeout must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"lock_timeout must be a finite number of seconds >= 0, got {value!r}")
    return float(value)


def _reader(handle: BinaryIO) -> records.ReadAt:
    """``read_at(offset, size)`` over an open file (``pread``: no shared position)."""
    fd = handle.fileno()
    return lambda offset, size: os.pread(fd, size, offset) if size else b""


def _identity(info: os.stat_result) -> tuple[int, int, int, int]:
    """What tells a session file apart from any other version of it: a write changes it."""
    return (info.st_dev, info.st_ino, info.st_size, info.st_ctime_ns)


def _diff_bytes(delta: CheckpointDelta) -> bytes:
    """The bytes of a delta :func:`~dsxir.optimizer_session.delta.diff` wrote.

    ``encode_delta`` without what holds by construction: the new checkpoint
    passed ``checkpoint.encode`` (every rule, the credential screen), so
    its fields in the head need no second screen, and ``diff`` writes only
    deltas §13.1 accepts. The grammar and the limits of the delta's own
    bytes are still checked, refused as ``encode_delta`` refuses them.
    """
    try:
        return sealed(delta.SerializeToString(deterministic=True), delta=True)
    except GrammarError as exc:
        raise InvalidDelta(exc.path, exc.detail, exc.rule) from None


def _delta_session(method: str, delta: CheckpointDelta) -> str:
    """The session id of a delta to commit, checked; ``TypeError`` for another type."""
    if not isinstance(delta, CheckpointDelta):
        raise TypeError(f"{method} takes a CheckpointDelta, not {type(delta).__name__}")
    return check_session_id(delta.head.session_id)


def _not_last(path: str, generation: int) -> None:
    """``CorruptStore`` (``over_limits``) when no commit can follow ``generation``."""
    if generation >= LAST_GENERATION:
        raise CorruptStore(
            path, f"generation {generation} is the last a store file holds", "over_limits"
        )


def _generation_of(handle: BinaryIO, size: int, path: str) -> int:
    """The generation of a store file: its header's, or its last intact record's."""
    read_at = _reader(handle)
    header = framing.parse_header(read_at(0, framing.HEADER_SIZE), path, file_size=size)
    if not header.appendable:
        return header.generation
    found, _ = records.scan(read_at, header.total_length, size, path)
    return found[-1].generation if found else header.generation


def _read_file(handle: BinaryIO, size: int, session_id: str, path: str) -> records.Stored:
    """A whole store file checked and read (docs/store-file.md §5, §9); damage is CorruptStore."""
    try:
        return records.read(_reader(handle), size, path, session_id)
    except (InvalidDelta, InvalidCheckpoint) as exc:
        raise CorruptStore(path, f"checksum matches but a record is invalid: {exc}") from None


def _parse_lease(raw: bytes, session_id: str) -> tuple[str, str, int] | None:
    """The ``(holder, token, expiry)`` of a lease file's bytes, or None when they are not one."""
    if len(raw) > MAX_LEASE_FILE_BYTES:
        return None
    try:
        held = json.loads(raw.decode("ascii"))
    except (ValueError, RecursionError):
        return None
    if not isinstance(held, dict) or held.keys() != _LEASE_KEYS:
        return None
    holder, token, expires = held["holder"], held["token"], held["expires_at_us"]
    if held["format"] != LEASE_FORMAT or held["session_id"] != session_id:
        return None
    if not isinstance(token, str) or not leases.is_token(token):
        return None
    if isinstance(expires, bool) or not isinstance(expires, int):
        return None
    if not 0 <= expires <= _MAX_EXPIRY_US:
        return None
    try:
        leases.check_holder(holder)
    except (TypeError, ValueError):
        return None
    return holder, token, expires


def _flock_until(fd: int, deadline: float) -> bool:
    """Lock ``fd`` exclusively, trying until ``deadline`` (at least once); False if never."""
    delay = _FIRST_POLL
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, _LAST_POLL)


def _lock_holder(fd: int) -> int | None:
    """The id of a process holding a ``flock`` on ``fd``'s file, from ``/proc/locks`` (Linux)."""
    try:
        info = os.fstat(fd)
        with open("/proc/locks", encoding="ascii", errors="replace") as table:
            lines = table.read().splitlines()
    except OSError:
        return None
    device = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; waiters have "->" after "1:"
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == device:
            with contextlib.suppress(ValueError):
                pid = int(fields[4])
                if pid > 0:
                    return pid
    return None


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _open_store_file(path: str) -> tuple[BinaryIO, int] | None:
    """Open a committed file for reading, with its size; None when there is none.

    Refuses (``CorruptStore``) a symbolic link and anything but a regular
    file, without opening it or (when it is swapped in meanwhile) blocking on
    it: the open is ``O_NOFOLLOW | O_NONBLOCK`` and ``fstat`` is checked
    before anything is read.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(mode):
        raise CorruptStore(path, "is a symbolic link, not a store file")
    if not stat.S_ISREG(mode):
        raise CorruptStore(path, f"is not a regular file ({_kind(mode)})")
    try:
        fd = os.open(path, _READ_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CorruptStore(path, "is a symbolic link, not a store file") from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CorruptStore(path, f"is not a regular file ({_kind(info.st_mode)})")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb"), info.st_size
    except BaseException:
        os.close(fd)
        raise


def _names_same_file(path: str, fd: int) -> bool:
    try:
        named = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)


def _unlink(path: str) -> bool:
    """Remove the name ``path``; False when nothing was there. Never follows a link.

    An empty folder there (the store never makes one) is removed too; a folder
    holding files is ``CorruptStore``: what it holds is not the store's.
    """
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    except OSError:  # EISDIR (Linux) or EPERM (POSIX) for a folder
        try:
            folder = stat.S_ISDIR(os.lstat(path).st_mode)
        except FileNotFoundError:
            return False
        if not folder:
            raise
        try:
            os.rmdir(path)
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise CorruptStore(
                path, "is a folder holding files, not a store file, and cannot be removed"
            ) from exc
    return True


def _discard(path: str) -> bool:
    """:func:`_unlink` for a file the store can do without: what cannot be removed is left."""
    try:
        return _unlink(path)
    except CorruptStore:
        return False


def _sync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_url(url: str) -> FileStore:
    """The store of a ``file:PATH`` or ``file:///ABS/PATH`` URL (see :mod:`.registry`).

    Either form takes the query ``?lock_timeout=SECONDS``; any other query
    is refused. A PATH holding ``?`` needs the ``file:///`` form with ``%3F``.
    """
    if url[: len("file://")].lower() == "file://":
        parsed = urllib.parse.urlsplit(url)
        if parsed.netloc not in ("", "localhost") or not parsed.path:
            raise ValueError(f"unsupported file URL {url!r}: use file:///absolute/path")
        return FileStore(urllib.parse.unquote(parsed.path), **_url_options(parsed.query, url))
    path, _, query = url[len("file:") :].partition("?")
    if not path:
        raise ValueError(f"store URL {url!r} has no path: use file:PATH")
    return FileStore(path, **_url_options(query, url))


def _url_options(query: str, url: str) -> dict[str, float]:
    if not query:
        return {}
    try:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise ValueError(f"store URL {url!r}: malformed query {query!r}") from None
    options: dict[str, float] = {}
    for key, value in pairs:
        if key not in _URL_OPTIONS:
            known = ", ".join(_URL_OPTIONS)
            raise ValueError(
                f"store URL {url!r}: unknown option {key!r} (file stores take {known})"
            )
        if key in options:
            raise ValueError(f"store URL {url!r}: option {key!r} given twice")
        try:
            options[key] = _check_lock_timeout(float(value))
        except ValueError:
            raise ValueError(
                f"store URL {url!r}: {key} must be a finite number of seconds >= 0, got {value!r}"
            ) from None
    return options
