"""The exit codes of ``dsxir-checkpoint`` and the error that carries one."""

from __future__ import annotations

import enum

__all__ = ["EXIT_CODES_HELP", "CliError", "Exit"]


class Exit(enum.IntEnum):
    """Every exit code the command line uses."""

    OK = 0
    """Success (``diff``: the checkpoints are identical)."""
    FOUND_PROBLEMS = 1
    """``validate``: at least one input is invalid; ``diff``: the checkpoints differ;
    ``delete``: the answer to its question was not yes (nothing was deleted)."""
    USAGE = 2
    """Bad usage: unknown option, bad store URL, a session id the store refuses,
    ``delete`` without ``--yes`` when stdin is not a terminal."""
    INVALID_CHECKPOINT = 3
    """The input is not a valid checkpoint (or checkpoint JSON), or is over the input limit."""
    NOT_FOUND = 4
    """No such file, no such session in the store, or no such store (a file
    store whose folder does not exist)."""
    CORRUPT_STORE = 5
    """A store file is torn, truncated or damaged (its checksums do not match); ``ls``:
    at least one session was damaged (the readable ones are still listed)."""
    IO_ERROR = 6
    """Reading or writing failed (permissions, disk full, a folder given as a file)."""
    MISSING_EXTRA = 7
    """A missing pip extra: ``[plot]`` for ``history --plot``, ``[service]`` for
    ``serve`` and ``grpc://`` stores, ``[postgres]`` for ``postgresql://`` stores."""
    CONFLICT = 8
    """``pause``, ``cancel``, ``delete``: the session changed after it was read
    (another writer committed first); nothing was written. Run the command again.
    ``fork``: the target session exists. Also a lease another worker holds
    (``LeaseHeld``) or a lease lost (``LeaseLost``)."""
    NOT_ALLOWED = 9
    """``pause``, ``cancel``: the session's status does not allow it (pausing a
    session that is not running, cancelling one that has ended); nothing was written.
    Also a commit the store refuses as illegal history (``IllegalHistory``)."""
    INTERNAL_ERROR = 70
    """A bug in the command line itself, reported as one line (please report it)."""
    INTERRUPTED = 130
    """Interrupted (Ctrl-C)."""


EXIT_CODES_HELP = "\n".join(
    [
        "Exit codes:",
        "",
        "\b",
        "  0  success (diff: identical)",
        "  1  validate: some input is invalid; diff: the checkpoints differ; delete: not confirmed",
        "  2  usage error (bad option, store URL or session id; delete without --yes"
        " and no terminal)",
        "  3  the input is not a valid checkpoint, or is over the input limit",
        "  4  no such file, session or store",
        "  5  a store file is damaged (ls: some sessions were damaged, the rest listed)",
        "  6  an I/O error while reading or writing, or a store that cannot be reached",
        "  7  a pip extra is missing ([plot], [service] or [postgres])",
        "  8  pause/cancel/delete: the session changed meanwhile; fork: the target exists;"
        " a lease held by another worker, or lost; nothing was written",
        "  9  pause/cancel: the session's status does not allow it; a commit refused as"
        " illegal history",
        " 70  an internal error (a bug; please report it)",
        "130  interrupted",
    ]
)


class CliError(Exception):
    """A failure reported as one line on stderr with its exit code (never a traceback)."""

    def __init__(self, code: Exit, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
