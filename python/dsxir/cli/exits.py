"""The exit codes of ``dsxir-checkpoint`` and the error that carries one."""

from __future__ import annotations

import enum

__all__ = ["EXIT_CODES_HELP", "CliError", "Exit"]


class Exit(enum.IntEnum):
    """Every exit code the command line uses."""

    OK = 0
    """Success (``diff``: the checkpoints are identical)."""
    FOUND_PROBLEMS = 1
    """``validate``: at least one input is invalid; ``diff``: the checkpoints differ."""
    USAGE = 2
    """Bad usage: unknown option, bad store URL, a session id the store refuses."""
    INVALID_CHECKPOINT = 3
    """The input is not a valid checkpoint (or checkpoint JSON)."""
    NOT_FOUND = 4
    """No such file, or no such session in the store."""
    CORRUPT_STORE = 5
    """A store file is torn, truncated or damaged (its checksums do not match)."""
    IO_ERROR = 6
    """Reading or writing failed (permissions, disk full, a folder given as a file)."""
    MISSING_EXTRA = 7
    """A missing pip extra: ``[plot]`` for ``history --plot``, ``[service]`` for
    ``serve`` and ``grpc://`` stores, ``[postgres]`` for ``postgresql://`` stores."""


EXIT_CODES_HELP = "\n".join(
    [
        "Exit codes:",
        "",
        "\b",
        "  0  success (diff: identical)",
        "  1  validate: some input is invalid; diff: the checkpoints differ",
        "  2  usage error (bad option, store URL or session id)",
        "  3  the input is not a valid checkpoint",
        "  4  no such file or session",
        "  5  a store file is damaged (checksum mismatch, truncated)",
        "  6  an I/O error while reading or writing",
        "  7  a pip extra is missing ([plot], [service] or [postgres])",
    ]
)


class CliError(Exception):
    """A failure reported as one line on stderr with its exit code (never a traceback)."""

    def __init__(self, code: Exit, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
