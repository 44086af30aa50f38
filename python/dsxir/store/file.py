"""A crash-safe, durable file store: one framed file per session in one folder.

Layout of the store folder (session ids never start with a dot, so the
store's own files cannot clash with a session's)::

    <session_id>.dsxckpt   the committed checkpoint, framed (see :mod:`.framing`)
    .lock.<session_id>     the session's lock file (empty), while the session exists
    .tmp.<session_id>      a commit in progress (or left behind by a killed writer)

**Commit** (``put``): under the session's exclusive lock (``fcntl.flock`` on
its lock file, so commits of one session are serialized across processes and
threads on one machine, and commits of different sessions do not wait for
each other), the store reads the stored generation from the file's header,
applies the CAS rule of :mod:`.interface`, writes the new frame to
``.tmp.<session_id>`` (``O_EXCL``, ``O_NOFOLLOW``), ``fsync``\\ s it, renames
it over ``<session_id>.dsxckpt`` and ``fsync``\\ s the folder. A process
killed at any moment leaves either the old or the new file in place, never a
mix; once ``put`` returns, the commit survives a crash of the machine too.

**Reading** (``get``, ``list``) takes no lock: a rename is atomic, so a reader
sees a whole committed file. Every read checks the frame; a torn, truncated,
bit-flipped or foreign file raises :class:`~dsxir.errors.CorruptStore` naming
the file and is never decoded into wrong data. A file whose header is damaged
blocks ``put`` of its session too (the generation it held cannot be known)
until it is deleted; damage after the header fails ``get`` but not a ``put``
with the right generation, which replaces the file. ``delete`` always works.
``list`` reads only each file's header and summary, never the trial logs.

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

import contextlib
import datetime as _dt
import errno
import fcntl
import os
import stat
import urllib.parse
from collections.abc import Iterator
from dataclasses import replace
from typing import BinaryIO

from dsxir.errors import CorruptStore, InvalidSessionId, NotFound
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.store import framing
from dsxir.store.interface import (
    ListFilter,
    Listing,
    OnDamage,
    Stored,
    check_expected_generation,
    decode_stored,
    listing_of,
    next_generation,
    same_score,
)
from dsxir.store.session_ids import check_session_id
from dsxir.store.summary import encode_summary, parse_summary

__all__ = ["SUFFIX", "FileStore", "open_url"]

SUFFIX = ".dsxckpt"
"""The file name suffix of a committed checkpoint."""
_LOCK_PREFIX = ".lock."
_TEMP_PREFIX = ".tmp."
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC


class FileStore:
    """Sessions as framed files in one folder (created on the first commit)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Open the store in folder ``path`` and clean stale temporary files (best effort)."""
        self.path = os.path.abspath(os.fspath(path))
        with contextlib.suppress(OSError):
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

    # --- the interface ----------------------------------------------------------

    def put(self, cp: Checkpoint, *, expected_generation: int | None = None) -> int:
        """Commit ``cp`` durably under the CAS rule; return the new generation.

        Raises ``InvalidSessionId`` for an id that could escape the folder,
        ``InvalidCheckpoint`` for an invalid checkpoint (nothing is written),
        ``Conflict`` when the stored generation is not the expected one (and
        when creating a session that exists), ``CorruptStore`` when the stored
        file is damaged, ``OSError`` when the file system fails (the stored
        file is then unchanged).
        """
        session_id = check_session_id(cp.session_id)
        expected = check_expected_generation(expected_generation)
        body = checkpoint.encode(cp)
        summary = encode_summary(cp)
        self._make_folder()
        with self._locked(session_id):
            generation = next_generation(session_id, self._stored_generation(session_id), expected)
            self._commit(session_id, framing.frame(generation, summary, body))
        return generation

    def get(self, session_id: str) -> Stored:
        """The latest committed checkpoint; ``NotFound``, or ``CorruptStore`` naming the file."""
        path = self.file_path(session_id)
        opened = _open_store_file(path)
        if opened is None:
            raise NotFound(session_id)
        handle, size = opened
        with handle:
            header = framing.parse_header(handle.read(framing.HEADER_SIZE), path, file_size=size)
            summary = handle.read(header.summary_length)
            framing.check_summary(header, summary, path)
            body = handle.read(header.body_length)
            framing.check_body(header, body, path)
        cp = decode_stored(body, session_id, path)
        if not _same_listing(parse_summary(summary, header.generation, path), cp, header):
            raise CorruptStore(path, "summary does not match the checkpoint")
        return Stored(cp, header.generation)

    def list(
        self,
        *,
        status: str | None = None,
        optimizer: str | None = None,
        updated_since: _dt.datetime | None = None,
        on_damage: OnDamage | None = None,
    ) -> list[Listing]:
        """Summaries of the matching sessions, by session id; reads no trial log.

        Files that are not session files (other names, hidden files) are
        ignored; a damaged session file raises ``CorruptStore`` naming it, or
        with ``on_damage`` is reported to it and skipped.
        """
        where = ListFilter.of(status, optimizer, updated_since)
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return []
        found: list[Listing] = []
        for name in names:
            if not name.endswith(SUFFIX):
                continue
            session_id = name[: -len(SUFFIX)]
            try:
                check_session_id(session_id)
            except InvalidSessionId:
                continue
            try:
                listing = self._read_listing(session_id, os.path.join(self.path, name))
            except CorruptStore as exc:
                if on_damage is None:
                    raise
                on_damage(exc)
                continue
            if listing is not None:
                found.append(listing)
        return where.select(found)

    def delete(self, session_id: str) -> None:
        """Remove a session (its file, stale temporary file and lock file); idempotent."""
        check_session_id(session_id)
        if not os.path.isdir(self.path):
            return
        with self._locked(session_id):
            removed = _unlink(os.path.join(self.path, session_id + SUFFIX))
            removed = _unlink(self._temp_path(session_id)) or removed
            if removed:
                self._sync_folder()

    # --- maintenance ------------------------------------------------------------

    def clean_stale_files(self) -> int:
        """Remove temporary files left by killed writers, and orphaned lock files.

        A file is removed only while its session's lock is free and taken
        here, so a commit in progress is never disturbed. Returns how many
        temporary files were removed.
        """
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return 0
        removed = 0
        for name in names:
            for prefix in (_TEMP_PREFIX, _LOCK_PREFIX):
                if not name.startswith(prefix):
                    continue
                session_id = name[len(prefix) :]
                try:
                    check_session_id(session_id)
                except InvalidSessionId:
                    continue
                with self._locked(session_id, blocking=False) as held:
                    if held and _unlink(self._temp_path(session_id)):
                        removed += 1
        return removed

    # --- internals --------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self, session_id: str, *, blocking: bool = True) -> Iterator[bool]:
        """Hold the session's exclusive lock; yields False when not ``blocking`` and busy.

        On leaving, the lock file is removed when the session has no
        committed file (so lock files live exactly as long as their session).
        """
        lock_path = self._lock_path(session_id)
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        while True:
            fd = os.open(lock_path, flags, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                yield False
                return
            except BaseException:
                os.close(fd)
                raise
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

    def _make_folder(self) -> None:
        if os.path.isdir(self.path):
            return
        missing = []
        folder = self.path
        while not os.path.isdir(folder):
            missing.append(folder)
            folder = os.path.dirname(folder)
        os.makedirs(self.path, exist_ok=True)
        for created in reversed(missing):
            _sync_dir(os.path.dirname(created))

    def _stored_generation(self, session_id: str) -> int | None:
        path = os.path.join(self.path, session_id + SUFFIX)
        opened = _open_store_file(path)
        if opened is None:
            return None
        handle, size = opened
        with handle:
            header = framing.parse_header(handle.read(framing.HEADER_SIZE), path, file_size=size)
        return header.generation

    def _commit(self, session_id: str, data: bytes) -> None:
        temp = self._temp_path(session_id)
        target = os.path.join(self.path, session_id + SUFFIX)
        _unlink(temp)  # left by a writer killed mid-commit; the lock is ours
        fd = os.open(
            temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644
        )
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
            header = framing.parse_header(handle.read(framing.HEADER_SIZE), path, file_size=size)
            summary = handle.read(header.summary_length)
        framing.check_summary(header, summary, path)
        listing = parse_summary(summary, header.generation, path)
        if listing.session_id != session_id:
            raise CorruptStore(path, f"holds session {listing.session_id!r}, not {session_id!r}")
        return listing


def _open_store_file(path: str) -> tuple[BinaryIO, int] | None:
    """Open a committed file for reading, with its size; None when there is none.

    Refuses (``CorruptStore``) a symbolic link and anything but a regular file.
    """
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
            raise CorruptStore(path, "is not a regular file")
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
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def _sync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _same_listing(listed: Listing, cp: Checkpoint, header: framing.Header) -> bool:
    actual = listing_of(cp, header.generation)
    # Compare scores by their bits (-0.0 is not 0.0), everything else by value.
    return same_score(listed.best_score, actual.best_score) and listed == replace(
        actual, best_score=listed.best_score
    )


def open_url(url: str) -> FileStore:
    """The store of a ``file:PATH`` or ``file:///ABS/PATH`` URL (see :mod:`.registry`)."""
    if url.startswith("file://"):
        parsed = urllib.parse.urlsplit(url)
        if parsed.netloc not in ("", "localhost") or not parsed.path or parsed.query:
            raise ValueError(f"unsupported file URL {url!r}: use file:///absolute/path")
        return FileStore(urllib.parse.unquote(parsed.path))
    path = url[len("file:") :]
    if not path:
        raise ValueError(f"store URL {url!r} has no path: use file:PATH")
    return FileStore(path)
