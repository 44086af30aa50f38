"""Reading a TARGET: a file, ``-`` (stdin), or a session id in a store.

Without ``--store``, TARGET is a file (``-`` reads stdin) holding one of:

- a store file (it starts with the frame magic): its frame is checked, then
  its checkpoint is read, with the commit records after it
  (docs/store-file.md §9);
- proto3 JSON (its first non-blank byte is ``{``), as ``dsxir-checkpoint json``
  writes;
- the binary encoding of a checkpoint (anything else).

Input is read up to :data:`MAX_INPUT_BYTES` (the checkpoint size limit plus
the largest store-file frame); longer input is refused after reading one
byte more, without reading the rest, so ``/dev/zero`` or a huge file cannot
exhaust memory. A FIFO or device given as a file is opened without blocking
and refused when it gives no byte for :data:`IDLE_SECONDS`.

With ``--store URL``, TARGET is a session id in that store. No command here
creates a store: a file store whose folder does not exist (a typo such as
``file:sesions``) is refused with exit code 4 naming the folder, rather than
read as an empty store (:func:`opened_store`). Every failure
becomes a :class:`CliError` with the exit code of its kind, and every message
that names a store shows its URL with passwords and secret parameters hidden
(:func:`dsxir.store.redact.redact_url`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import stat
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from dsxir.cli.exits import CliError, Exit
from dsxir.cli.leases import read_lease
from dsxir.errors import (
    CorruptStore,
    InvalidCheckpoint,
    InvalidDelta,
    InvalidSessionId,
    NotFound,
    ResumeMismatch,
)
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.optimizer_session.validate import MAX_CHECKPOINT_BYTES
from dsxir.store import (
    DEFAULT_STORE_PATH,
    FileStore,
    Lease,
    MissingExtra,
    Store,
    close_store,
    framing,
    open_store,
    records,
)
from dsxir.store.redact import redact_text, redact_url

__all__ = [
    "IDLE_SECONDS",
    "MAX_INPUT_BYTES",
    "Loaded",
    "load",
    "open_store_or_fail",
    "opened_store",
    "read_input",
    "require_existing",
    "store_name",
]

MAX_INPUT_BYTES = max(
    MAX_CHECKPOINT_BYTES,
    framing.HEADER_SIZE + framing.MAX_SUMMARY_BYTES + framing.MAX_BODY_BYTES,
)
"""The most bytes read from one input: a store file of the largest checkpoint
(256 MiB of body, up to 1 MiB of summary, a 44-byte header)."""

IDLE_SECONDS = 30.0
"""How long a FIFO or device given as a file may stay silent before it is refused."""

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Loaded:
    """A checkpoint read from a TARGET; ``generation`` only when it came from a store file.

    ``lease`` is the session's lease (without its token) when asked for and
    the TARGET is a session of a store that has one.
    """

    name: str
    checkpoint: Checkpoint
    generation: int | None
    lease: Lease | None = None


def store_name(url: str | None) -> str:
    """A store URL as it may be shown: passwords and secret parameters hidden."""
    return f"file:{DEFAULT_STORE_PATH}" if url is None else redact_url(url)


def open_store_or_fail(url: str | None) -> Store:
    """Open a store URL; a bad URL is a usage error (its secrets hidden in the message)."""
    try:
        return open_store(url)
    except MissingExtra as exc:
        raise CliError(Exit.MISSING_EXTRA, redact_text(str(exc))) from None
    except ValueError as exc:
        raise CliError(Exit.USAGE, redact_text(str(exc))) from None


@contextlib.contextmanager
def opened_store(url: str | None) -> Iterator[Store]:
    """A store for one command: its library's log records kept off the terminal, closed after.

    A database driver logs each failed connection attempt; with no logging set
    up, Python would print those records to stderr, breaking the one-line
    error rule. A handler that drops them is added only where none is set.

    A file store whose folder does not exist is refused (:func:`require_existing`):
    the commands that use this read or change existing sessions, never create a store.
    """
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.NullHandler())
    store = open_store_or_fail(url)
    try:
        require_existing(store, url)
        yield store
    finally:
        with contextlib.suppress(Exception):
            close_store(store)


def require_existing(store: Store, url: str | None) -> None:
    """Refuse a file store whose folder does not exist (exit 4) or is not a folder (exit 6)."""
    if not isinstance(store, FileStore):
        return  # other stores have no path that a typo could miss
    shown = store_name(url)
    try:
        mode = os.stat(store.path).st_mode
    except FileNotFoundError:
        raise CliError(
            Exit.NOT_FOUND, f"no store at {shown}: the folder {store.path} does not exist"
        ) from None
    except OSError as exc:
        raise CliError(
            Exit.IO_ERROR, f"store {shown}: {store.path}: {exc.strerror or exc}"
        ) from None
    if not stat.S_ISDIR(mode):
        raise CliError(Exit.IO_ERROR, f"store {shown}: {store.path} is not a folder")


def _too_long(name: str) -> CliError:
    return CliError(
        Exit.INVALID_CHECKPOINT,
        f"{name}: input over the limit of {MAX_INPUT_BYTES} bytes "
        f"(a checkpoint is at most {MAX_CHECKPOINT_BYTES} bytes)",
    )


def _read_limited(read: Callable[[int], bytes], name: str) -> bytes:
    """Read to the end, but never more than ``MAX_INPUT_BYTES + 1`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_INPUT_BYTES:
        chunk = read(min(_CHUNK, MAX_INPUT_BYTES + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if size > MAX_INPUT_BYTES:
        raise _too_long(name)
    return b"".join(chunks)


def _patient_reader(fd: int, name: str) -> Callable[[int], bytes]:
    """``os.read`` on a non-blocking FIFO or device that gives up after IDLE_SECONDS of silence."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)

    def read(count: int) -> bytes:
        deadline = time.monotonic() + IDLE_SECONDS
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CliError(
                    Exit.IO_ERROR,
                    f"{name}: no data for {IDLE_SECONDS:g} seconds "
                    "(a FIFO with no writer, or a device that gives nothing)",
                )
            if poller.poll(max(1, int(left * 1000))):
                try:
                    return os.read(fd, count)
                except BlockingIOError:
                    continue

    return read


def read_input(target: str) -> tuple[str, bytes]:
    """The bytes of a file or of stdin (``-``), with the name to report (see the module text)."""
    if target == "-":
        try:
            return "<stdin>", _read_limited(sys.stdin.buffer.read, "<stdin>")
        except OSError as exc:
            raise CliError(Exit.IO_ERROR, f"<stdin>: {exc.strerror or exc}") from None
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    flags |= getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(target, flags)
    except FileNotFoundError:
        raise CliError(Exit.NOT_FOUND, f"{target}: no such file") from None
    except IsADirectoryError:
        raise CliError(Exit.IO_ERROR, f"{target}: is a directory") from None
    except OSError as exc:
        raise CliError(Exit.IO_ERROR, f"{target}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise CliError(Exit.IO_ERROR, f"{target}: is a directory")
        if stat.S_ISREG(info.st_mode) and info.st_size > MAX_INPUT_BYTES:
            raise _too_long(target)
        special = not (stat.S_ISREG(info.st_mode) or stat.S_ISBLK(info.st_mode))
        if special and hasattr(select, "poll") and hasattr(os, "set_blocking"):
            return target, _read_limited(_patient_reader(fd, target), target)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return target, _read_limited(lambda count: os.read(fd, count), target)
    except OSError as exc:
        raise CliError(Exit.IO_ERROR, f"{target}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def load(target: str, store_url: str | None, *, with_lease: bool = False) -> Loaded:
    """Read and validate one TARGET (see the module text); its lease too when ``with_lease``."""
    if store_url is not None:
        return _load_from_store(target, store_url, with_lease)
    name, data = read_input(target)
    return parse_bytes(name, data)


def parse_bytes(name: str, data: bytes) -> Loaded:
    """Read a checkpoint from the bytes of a store file, JSON or binary checkpoint."""
    generation = None
    if not data:
        raise CliError(Exit.INVALID_CHECKPOINT, f"{name}: empty input, not a checkpoint")
    try:
        if data.startswith(framing.MAGIC):
            whole = records.read(lambda at, size: data[at : at + size], len(data), name)
            generation, cp = whole.generation, whole.checkpoint
        elif data.lstrip()[:1] == b"{":
            cp = checkpoint.from_json(data)
        else:
            cp = checkpoint.decode(data)
    except CorruptStore as exc:
        raise CliError(Exit.CORRUPT_STORE, damage(exc)) from None
    except (ResumeMismatch, InvalidDelta, InvalidCheckpoint) as exc:
        raise CliError(Exit.INVALID_CHECKPOINT, f"{name}: {exc}") from None
    return Loaded(name, cp, generation)


def damage(exc: CorruptStore) -> str:
    """The message of a damaged store: the place, the kind of docs/store-file.md §6 when known."""
    return str(exc) if exc.kind is None else f"{exc.path}: {exc.kind}: {exc.detail}"


def _load_from_store(session_id: str, store_url: str, with_lease: bool) -> Loaded:
    shown = store_name(store_url)
    with opened_store(store_url) as store:
        try:
            stored = store.get(session_id)
        except InvalidSessionId as exc:
            raise CliError(Exit.USAGE, redact_text(str(exc))) from None
        except NotFound:
            message = f'no session "{session_id}" in the store {shown}'
            raise CliError(Exit.NOT_FOUND, message) from None
        except CorruptStore as exc:
            raise CliError(Exit.CORRUPT_STORE, redact_text(damage(exc))) from None
        except OSError as exc:
            raise CliError(
                Exit.IO_ERROR, f"store {shown} failed: {redact_text(str(exc))}"
            ) from None
        lease = read_lease(store, session_id) if with_lease else None
    return Loaded(f"{session_id} (in {shown})", stored.checkpoint, stored.generation, lease)


def write_output(path: str, data: bytes) -> None:
    """Write bytes to a file (replaced atomically) or to stdout (``-``)."""
    if path == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return
    temp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
        os.replace(temp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise CliError(Exit.IO_ERROR, f"{path}: {exc.strerror or exc}") from None
