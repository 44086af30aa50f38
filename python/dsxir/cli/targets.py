"""Reading a TARGET: a file, ``-`` (stdin), or a session id in a store.

Without ``--store``, TARGET is a file (``-`` reads stdin) holding one of:

- a store file (it starts with the frame magic): its frame is checked, then
  its checkpoint is read;
- proto3 JSON (its first non-blank byte is ``{``), as ``dsxir-checkpoint json``
  writes;
- the binary encoding of a checkpoint (anything else).

With ``--store URL``, TARGET is a session id in that store. Every failure
becomes a :class:`CliError` with the exit code of its kind.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass

from dsxir.cli.exits import CliError, Exit
from dsxir.errors import CorruptStore, InvalidSessionId, NotFound, ResumeMismatch
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.store import MissingExtra, Store, framing, open_store

__all__ = ["Loaded", "load", "open_store_or_fail", "read_input"]


@dataclass(frozen=True)
class Loaded:
    """A checkpoint read from a TARGET; ``generation`` only when it came from a store file."""

    name: str
    checkpoint: Checkpoint
    generation: int | None


def open_store_or_fail(url: str | None) -> Store:
    """Open a store URL; a bad URL is a usage error."""
    try:
        return open_store(url)
    except MissingExtra as exc:
        raise CliError(Exit.MISSING_EXTRA, str(exc)) from None
    except ValueError as exc:
        raise CliError(Exit.USAGE, str(exc)) from None


def read_input(target: str) -> tuple[str, bytes]:
    """The bytes of a file or of stdin (``-``), with the name to report."""
    if target == "-":
        return "<stdin>", sys.stdin.buffer.read()
    try:
        with open(target, "rb") as handle:
            return target, handle.read()
    except FileNotFoundError:
        raise CliError(Exit.NOT_FOUND, f"{target}: no such file") from None
    except IsADirectoryError:
        raise CliError(Exit.IO_ERROR, f"{target}: is a directory") from None
    except OSError as exc:
        raise CliError(Exit.IO_ERROR, f"{target}: {exc.strerror or exc}") from None


def load(target: str, store_url: str | None) -> Loaded:
    """Read and validate one TARGET (see the module text)."""
    if store_url is not None:
        return _load_from_store(target, store_url)
    name, data = read_input(target)
    return parse_bytes(name, data)


def parse_bytes(name: str, data: bytes) -> Loaded:
    """Read a checkpoint from the bytes of a store file, JSON or binary checkpoint."""
    generation = None
    try:
        if data.startswith(framing.MAGIC):
            header, _, body = framing.unframe(data, name)
            generation = header.generation
            cp = checkpoint.decode(body)
        elif data.lstrip()[:1] == b"{":
            cp = checkpoint.from_json(data)
        else:
            cp = checkpoint.decode(data)
    except CorruptStore as exc:
        raise CliError(Exit.CORRUPT_STORE, str(exc)) from None
    except ResumeMismatch as exc:
        raise CliError(Exit.INVALID_CHECKPOINT, f"{name}: {exc}") from None
    return Loaded(name, cp, generation)


def _load_from_store(session_id: str, store_url: str) -> Loaded:
    store = open_store_or_fail(store_url)
    try:
        stored = store.get(session_id)
    except InvalidSessionId as exc:
        raise CliError(Exit.USAGE, str(exc)) from None
    except NotFound:
        raise CliError(
            Exit.NOT_FOUND, f'no session "{session_id}" in the store {store_url}'
        ) from None
    except CorruptStore as exc:
        raise CliError(Exit.CORRUPT_STORE, str(exc)) from None
    except OSError as exc:
        raise CliError(Exit.IO_ERROR, f"{store_url}: {exc}") from None
    return Loaded(f"{session_id} (in {store_url})", stored.checkpoint, stored.generation)


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
