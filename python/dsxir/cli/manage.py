"""Commands that change a session in its store: ``pause``, ``cancel``, ``delete``, ``fork``.

``pause`` and ``cancel`` read the session with its generation, apply the
transition (:func:`dsxir.optimizer_session.checkpoint.pause` /
:func:`~dsxir.optimizer_session.checkpoint.cancel`) and commit with
compare-and-swap on the generation read: when another writer (the optimizer
itself) committed in between, nothing is written and the command exits 8
(:attr:`Exit.CONFLICT`). A transition the session's status does not allow is
refused with exit 9 (:attr:`Exit.NOT_ALLOWED`), in one line.

``delete`` names the session (status, trials, generation) and asks before
deleting, unless ``--yes``; with stdin not a terminal it refuses without
``--yes`` (exit 2) instead of waiting for an answer. After the answer it
reads the generation again and deletes only when it is unchanged (else exit
8); a damaged session can be deleted.

``fork STORE SOURCE TARGET`` creates session TARGET from the latest
checkpoint of SOURCE (:func:`dsxir.store.fork_session`): running, with
SOURCE's trials, best trial, counters and sampler, so a session that has
ended can go on under a new name. SOURCE is left as it is; a TARGET that
exists is never overwritten (exit 8).

A commit the store refuses as illegal history (FORMAT.md §9.1) exits 9.
None of these commands creates a store: a file store whose folder does not
exist is refused (exit 4).
"""

from __future__ import annotations

import sys
from typing import Any

import click

from dsxir.cli.exits import EXIT_CODES_HELP, CliError, Exit
from dsxir.cli.targets import opened_store, store_name
from dsxir.cli.views import printable
from dsxir.errors import (
    AlreadyTerminal,
    Conflict,
    CorruptStore,
    IllegalHistory,
    InvalidCheckpoint,
    InvalidSessionId,
    InvalidTransition,
    NotFound,
)
from dsxir.optimizer_session import checkpoint
from dsxir.store import Store, Stored, fork_session
from dsxir.store.redact import redact_text

__all__ = ["cancel_command", "delete_command", "fork_command", "pause_command"]

_STORE_HELP = "The store holding SESSION (default: the file store in .dsxir/sessions)."

store_option = click.option("--store", "store_url", metavar="URL", default=None, help=_STORE_HELP)


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):
        return False


def _quoted(session_id: str) -> str:
    return f'"{session_id}"'


def _read(store: Store, session_id: str, url: str | None) -> Stored:
    """The stored session, every failure turned into its exit code."""
    try:
        return store.get(session_id)
    except InvalidSessionId as exc:
        raise CliError(Exit.USAGE, redact_text(str(exc))) from None
    except NotFound:
        message = f"no session {_quoted(session_id)} in the store {store_name(url)}"
        raise CliError(Exit.NOT_FOUND, message) from None
    except CorruptStore as exc:
        raise CliError(Exit.CORRUPT_STORE, redact_text(str(exc))) from None
    except OSError as exc:
        raise _store_failed(url, exc) from None


def _store_failed(url: str | None, exc: OSError) -> CliError:
    return CliError(Exit.IO_ERROR, f"store {store_name(url)} failed: {redact_text(str(exc))}")


def _commit(store: Store, stored: Stored, url: str | None, doing: str) -> int:
    cp = stored.checkpoint
    if stored.generation < 1:  # a store file may hold generation 0, which no commit follows
        raise CliError(
            Exit.CORRUPT_STORE,
            f"session {_quoted(cp.session_id)} is at generation 0, which no store writes; "
            "nothing was written",
        )
    try:
        return store.put(cp, expected_generation=stored.generation)
    except Conflict as exc:
        now = "deleted" if exc.actual is None else f"now at generation {exc.actual}"
        raise CliError(
            Exit.CONFLICT,
            f"session {_quoted(cp.session_id)} changed while {doing} it (read at generation "
            f"{stored.generation}, {now}); nothing was written, run the command again",
        ) from None
    except IllegalHistory as exc:
        raise CliError(Exit.NOT_ALLOWED, f"{exc}; nothing was written") from None
    except CorruptStore as exc:
        raise CliError(Exit.CORRUPT_STORE, redact_text(str(exc))) from None
    except InvalidCheckpoint as exc:
        raise CliError(Exit.INVALID_CHECKPOINT, f"{cp.session_id}: {exc}") from None
    except OSError as exc:
        raise _store_failed(url, exc) from None


def _not_allowed(session_id: str, status: str, action: str, done: str, allowed: str) -> CliError:
    return CliError(
        Exit.NOT_ALLOWED,
        f"cannot {action} session {_quoted(session_id)}: it is {status} "
        f"(only a {allowed} session can be {done}); nothing was written",
    )


@click.command(name="pause", epilog=EXIT_CODES_HELP)
@click.argument("session")
@store_option
def pause_command(session: str, store_url: str | None) -> int:
    """Pause a running SESSION (committed with compare-and-swap on its generation).

    The optimizer running it, if any, sees the pause as a conflict on its next
    commit. Exit 8 when the session changed meanwhile, 9 when it is not running.
    """
    with opened_store(store_url) as store:
        stored = _read(store, session, store_url)
        cp = stored.checkpoint
        try:
            checkpoint.pause(cp)
        except (AlreadyTerminal, InvalidTransition):
            raise _not_allowed(
                cp.session_id, checkpoint.status_name(cp), "pause", "paused", "running"
            ) from None
        generation = _commit(store, stored, store_url, "pausing")
    _say(f"paused session {_quoted(session)}: generation {stored.generation} -> {generation}")
    return Exit.OK


@click.command(name="cancel", epilog=EXIT_CODES_HELP)
@click.argument("session")
@store_option
@click.option(
    "--reason",
    metavar="TEXT",
    default=None,
    help="Why, stored as the session's terminal reason (a string).",
)
def cancel_command(session: str, store_url: str | None, reason: str | None) -> int:
    """Cancel a running or paused SESSION, for good (compare-and-swap on its generation).

    Exit 8 when the session changed meanwhile, 9 when it has already ended.
    """
    with opened_store(store_url) as store:
        stored = _read(store, session, store_url)
        cp = stored.checkpoint
        try:
            checkpoint.cancel(cp, reason)
        except (AlreadyTerminal, InvalidTransition):
            raise _not_allowed(
                cp.session_id,
                checkpoint.status_name(cp),
                "cancel",
                "cancelled",
                "running or paused",
            ) from None
        except InvalidCheckpoint as exc:
            detail = exc.detail.split("; pass redact_secrets", 1)[0]
            raise CliError(
                Exit.USAGE, f"--reason: {detail}; nothing was written (leave the secret out)"
            ) from None
        generation = _commit(store, stored, store_url, "cancelling")
    _say(f"cancelled session {_quoted(session)}: generation {stored.generation} -> {generation}")
    return Exit.OK


@click.command(name="delete", epilog=EXIT_CODES_HELP)
@click.argument("session")
@store_option
@click.option("-y", "--yes", is_flag=True, help="Delete without asking.")
def delete_command(session: str, store_url: str | None, yes: bool) -> int:
    """Delete SESSION from its store, for good (asks first unless --yes).

    Without --yes, stdin must be a terminal to answer the question; otherwise
    the command refuses (exit 2). Exit 1 when the answer is not yes, 8 when
    the session changed while the question was asked.
    """
    shown = store_name(store_url)
    with opened_store(store_url) as store:
        generation, what = _describe(store, session, store_url)
        if not yes:
            if not _stdin_is_terminal():
                raise CliError(
                    Exit.USAGE,
                    f"not deleting session {_quoted(session)} without confirmation: "
                    "stdin is not a terminal (pass --yes to delete)",
                )
            question = printable(f"delete session {_quoted(session)} ({what}) from {shown}?")
            if not click.confirm(question, default=False, err=True):
                raise CliError(
                    Exit.FOUND_PROBLEMS, f"session {_quoted(session)} not deleted (not confirmed)"
                )
            again, _ = _describe(store, session, store_url)
            if again != generation:
                raise CliError(
                    Exit.CONFLICT,
                    f"session {_quoted(session)} changed while asking (generation "
                    f"{generation} -> {again}); nothing was deleted, run the command again",
                )
        try:
            store.delete(session)
        except InvalidSessionId as exc:
            raise CliError(Exit.USAGE, redact_text(str(exc))) from None
        except CorruptStore as exc:  # something at the session's name the store cannot remove
            raise CliError(Exit.CORRUPT_STORE, redact_text(str(exc))) from None
        except OSError as exc:
            raise _store_failed(store_url, exc) from None
    _say(f"deleted session {_quoted(session)} ({what}) from {shown}")
    return Exit.OK


@click.command(name="fork", epilog=EXIT_CODES_HELP)
@click.argument("store_url", metavar="STORE")
@click.argument("source")
@click.argument("target")
def fork_command(store_url: str, source: str, target: str) -> int:
    """Create session TARGET in STORE (a store URL) from the latest checkpoint of SOURCE.

    TARGET starts running with SOURCE's trials, best trial, counters and
    sampler, so a session that has ended can go on under a new name; SOURCE
    is left as it is. Exit 4 when SOURCE does not exist, 8 when TARGET does
    (it is never overwritten).
    """
    shown = store_name(store_url)
    if source == target:
        raise CliError(Exit.USAGE, f"SOURCE and TARGET are the same session ({_quoted(source)})")
    with opened_store(store_url) as store:
        try:
            generation = fork_session(store, source, target)
        except InvalidSessionId as exc:
            raise CliError(Exit.USAGE, redact_text(str(exc))) from None
        except NotFound:
            raise CliError(
                Exit.NOT_FOUND, f"no session {_quoted(source)} in the store {shown}"
            ) from None
        except Conflict:
            raise CliError(
                Exit.CONFLICT,
                f"session {_quoted(target)} already exists in the store {shown}; nothing was "
                "written (choose another TARGET, or delete that session first)",
            ) from None
        except CorruptStore as exc:
            raise CliError(Exit.CORRUPT_STORE, redact_text(str(exc))) from None
        except InvalidCheckpoint as exc:
            raise CliError(Exit.INVALID_CHECKPOINT, f"{source}: {exc}") from None
        except OSError as exc:
            raise _store_failed(store_url, exc) from None
    _say(
        f"forked session {_quoted(source)} into {_quoted(target)} in {shown}: "
        f"running, generation {generation}"
    )
    return Exit.OK


def _describe(store: Store, session: str, url: str | None) -> tuple[Any, str]:
    """The session's generation (``"damaged"`` when unreadable) and a short description."""
    try:
        stored = _read(store, session, url)
    except CliError as exc:
        if exc.code != Exit.CORRUPT_STORE:
            raise
        return "damaged", "damaged: " + exc.message
    cp = stored.checkpoint
    trials = len(cp.progress.trial_log)
    return stored.generation, (
        f"{checkpoint.status_name(cp)}, {trials} trial{'' if trials == 1 else 's'}, "
        f"generation {stored.generation}"
    )


def _say(line: str) -> None:
    click.echo(printable(line))
