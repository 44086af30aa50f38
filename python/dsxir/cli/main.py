"""``dsxir-checkpoint``: look at checkpoints and stores from a terminal.

Every command reads checkpoints without the optimizer that wrote them;
``pause``, ``cancel`` and ``delete`` (:mod:`.manage`) change a session in its
store, ``fork`` copies one to a new session, ``export`` (:mod:`.export`)
writes its trial log as CSV or JSON Lines. ``ls`` and ``show`` show a running
session whose lease expired as stale (:mod:`.leases`).
No command but ``serve`` creates a store. Bad
input is reported as one line on stderr (``dsxir-checkpoint: error: …``) with
a documented exit code (:class:`dsxir.cli.exits.Exit`), never a traceback.

Output for people prints every stored string (session ids, optimizer names,
candidate ids, Terms) as plain text, never as Rich markup, with control and
format characters escaped (:func:`dsxir.cli.views.printable`); ``--json``
output holds the exact values, Terms in plain JSON (:mod:`dsxir.cli.plain`).
Store URLs are shown with their secrets hidden.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import re
import sys
import warnings
from collections.abc import Sequence
from typing import Any, TextIO

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dsxir.cli.diffing import (
    DETAILED_TRIALS,
    Difference,
    Ignore,
    TrialLogDiff,
    diff_checkpoints,
    time_fields,
)
from dsxir.cli.exits import EXIT_CODES_HELP, CliError, Exit
from dsxir.cli.export import export_command
from dsxir.cli.leases import is_stale, lease_json, lease_text, read_lease, shown_status
from dsxir.cli.manage import cancel_command, delete_command, fork_command, pause_command
from dsxir.cli.serve import serve_command
from dsxir.cli.targets import damage, load, opened_store, read_input, store_name, write_output
from dsxir.cli.views import (
    best_so_far,
    compact_map,
    json_float,
    json_text,
    printable,
    render_score,
    render_term,
    show_json,
    term_tree,
    timestamp_text,
    trial_status,
)
from dsxir.errors import (
    CheckpointError,
    CorruptStore,
    IllegalHistory,
    InvalidCheckpoint,
    LeaseHeld,
    LeaseLost,
    ResumeMismatch,
)
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session.checkpoint import direction_name
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.store import STATUSES, Lease, Listing
from dsxir.store.redact import redact_text

__all__ = ["cli", "main"]

PROG = "dsxir-checkpoint"

_STORE_HELP = (
    "Read TARGET as a session id in this store (file:PATH, file:///PATH, memory:, "
    "postgresql://... or grpc://HOST:PORT). "
    "Without it, TARGET is a file, or - for stdin."
)


_PIPED_WIDTH = 160
"""The width of tables written to a pipe or a file (a terminal uses its own width)."""


def _console() -> Console:
    # Stored strings are data, never markup or emoji codes.
    return Console(
        highlight=False,
        markup=False,
        emoji=False,
        soft_wrap=False,
        width=None if sys.stdout.isatty() else _PIPED_WIDTH,
    )


def _print_json(value: Any) -> None:
    click.echo(json_text(value))


def _echo(line: str) -> None:
    """One line for people: control and format characters escaped."""
    click.echo(printable(line))


def _cell(text: str) -> Text:
    """A table cell (or title) holding ``text`` as plain text."""
    return Text(printable(text))


store_option = click.option("--store", "store_url", metavar="URL", default=None, help=_STORE_HELP)
json_option = click.option("--json", "as_json", is_flag=True, help="Write JSON for scripts.")


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_CODES_HELP,
)
@click.version_option(package_name="dsxir-checkpoint", prog_name=PROG)
def cli() -> None:
    """Inspect, validate, convert and compare dsxir optimizer-session checkpoints.

    A TARGET is a checkpoint file (binary, proto3 JSON or a store file), - for
    stdin, or, with --store URL, a session id in a store.
    """


# --- show -----------------------------------------------------------------------


_STATS_WIDTH = 60
"""``show``: the stats of a trial are cut to this many characters unless ``--full``."""
_PROGRAM_LINES = 30
"""``show``: the best program is cut to this many lines unless ``--full``."""


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("target")
@store_option
@json_option
@click.option(
    "--last", default=10, show_default=True, type=click.IntRange(min=0), help="Trials to list."
)
@click.option(
    "--full",
    is_flag=True,
    help=f"Show every trial's stats whole (not cut to {_STATS_WIDTH} characters) "
    f"and the whole best program (not cut to {_PROGRAM_LINES} lines).",
)
def show(target: str, store_url: str | None, as_json: bool, last: int, full: bool) -> int:
    """Show a checkpoint: header, status (stale when its lease expired), direction, sampler
    format, counters, best trial, best program and the last trials with their stats."""
    loaded = load(target, store_url, with_lease=True)
    cp = loaded.checkpoint
    now = _dt.datetime.now(_dt.timezone.utc)
    status = checkpoint.status_name(cp)
    if as_json:
        document = show_json(cp, source=loaded.name, generation=loaded.generation, last=last)
        document["stale"] = is_stale(status, loaded.lease, now)
        document["lease"] = lease_json(loaded.lease, now)
        _print_json(document)
        return Exit.OK
    progress = cp.progress
    rows: list[tuple[str, str]] = [("session", cp.session_id), ("source", loaded.name)]
    if loaded.generation is not None:
        rows.append(("generation", str(loaded.generation)))
    rows += [("format", cp.format), ("optimizer", cp.optimizer)]
    if cp.HasField("program_module"):
        rows.append(("program", cp.program_module))
    rows.append(("status", _status_text(status, loaded.lease, now)))
    rows.append(("direction", f"{direction_name(cp)} is better"))
    if cp.HasField("terminal_reason"):
        rows.append(("reason", render_term(cp.terminal_reason)))
    rows += [
        (
            "sampler",
            f"{cp.sampler_format.module} v{cp.sampler_format.version} "
            f"({len(cp.sampler_blob)}-byte blob)",
        ),
        ("trainset", cp.trainset_hash.hex()),
        ("created", timestamp_text(cp.created_at)),
        ("started", timestamp_text(progress.started_at)),
        ("updated", timestamp_text(cp.updated_at)),
        (
            "trials",
            f"{len(progress.trial_log)} logged, attempts {progress.attempts}, "
            f"completed {progress.completed}, errors {progress.errors}",
        ),
        (
            "best",
            f"{render_score(progress.best_score)} at trial {progress.best_trial_idx}"
            if progress.HasField("best_score")
            else "-",
        ),
    ]
    rows += [("option", f"{o.key} = {render_term(o.value)}") for o in cp.optimizer_opts]
    for key, value in rows:
        _echo(f"{key:<11} {value}")
    _show_best_program(cp, full)
    _show_trials(cp, last, full)
    return Exit.OK


def _status_text(status: str, lease: Lease | None, now: _dt.datetime) -> str:
    """``show``'s status line: ``stale`` with the expired lease, or the status and its lease."""
    if lease is None:
        return status
    if is_stale(status, lease, now):
        return f"stale (running, but the lease {lease_text(lease, now)})"
    return f"{status} (lease {lease_text(lease, now)})"


def _show_best_program(cp: Checkpoint, full: bool) -> None:
    if not cp.HasField("best_program_artifact"):
        _echo("best program: - (none stored)")
        return
    artifact = cp.best_program_artifact
    _echo(f"best program ({len(artifact.entries)} keys):")
    limit = None if full else _PROGRAM_LINES
    shown = 0
    more = 0
    for line in term_tree(artifact, width=None if full else 100):
        if limit is not None and shown >= limit:
            more += 1
            continue
        _echo("  " + line)
        shown += 1
    if more:
        _echo(f"  … {more} more lines (--full shows the whole program)")


def _show_trials(cp: Checkpoint, last: int, full: bool) -> None:
    progress = cp.progress
    trials = list(progress.trial_log)[-last:] if last > 0 else []
    if not trials:
        return
    table = Table(title=f"last {len(trials)} of {len(progress.trial_log)} trials")
    for name, justify in (
        ("trial", "right"),
        ("status", "left"),
        ("score", "right"),
        ("candidate", "left"),
        ("ms", "right"),
        ("stats", "left"),
        ("error", "left"),
    ):
        # Only stats and errors wrap when the table is too wide, and are never cut.
        wraps = name in ("stats", "error")
        table.add_column(
            name,
            justify=justify,  # type: ignore[arg-type]
            no_wrap=not wraps,
            overflow="fold" if wraps else "ellipsis",
        )
    cut = 0
    for entry in trials:
        error = entry.error_class if entry.HasField("error_class") else ""
        if entry.HasField("error"):
            error = (error + " " + render_term(entry.error, 50)).strip()
        marker = (
            " *"
            if progress.HasField("best_trial_idx") and (entry.trial_idx == progress.best_trial_idx)
            else ""
        )
        stats = ""
        if entry.HasField("stats"):
            stats, was_cut = compact_map(entry.stats, None if full else _STATS_WIDTH)
            cut += was_cut
        table.add_row(
            str(entry.trial_idx),
            Text(trial_status(entry), style="green" if entry.status == 1 else "red"),
            render_score(entry.score if entry.HasField("score") else None) + marker,
            _cell(entry.candidate_id if entry.HasField("candidate_id") else ""),
            str(entry.duration_ms),
            _cell(stats),
            _cell(error),
        )
    _console().print(table)
    if cut:
        _echo(
            f"stats of {cut} trial{'' if cut == 1 else 's'} cut to {_STATS_WIDTH} characters "
            "(--full shows them whole)"
        )


# --- ls -------------------------------------------------------------------------


def _parse_since(value: str | None) -> _dt.datetime | None:
    if value is None:
        return None
    try:
        moment = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(Exit.USAGE, f"--updated-since: not an ISO 8601 time: {value!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=_dt.timezone.utc)


def _listing_json(item: Listing, lease: Lease | None, now: _dt.datetime) -> dict[str, Any]:
    return {
        "session_id": item.session_id,
        "status": item.status,
        "stale": is_stale(item.status, lease, now),
        "lease": lease_json(lease, now),
        "optimizer": item.optimizer,
        "updated_at": item.updated_at.isoformat().replace("+00:00", "Z"),
        "best_score": json_float(item.best_score),
        "trials": item.trials,
        "attempts": item.attempts,
        "completed": item.completed,
        "errors": item.errors,
        "generation": item.generation,
    }


@cli.command(name="ls", epilog=EXIT_CODES_HELP)
@click.option(
    "--store",
    "store_url",
    metavar="URL",
    default=None,
    help="The store to list (default: the file store in .dsxir/sessions).",
)
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only this status.")
@click.option("--optimizer", default=None, help="Only sessions of this optimizer.")
@click.option(
    "--updated-since",
    metavar="TIME",
    default=None,
    help="Only sessions updated at or after this ISO 8601 time (UTC when no offset).",
)
@json_option
def list_sessions(
    store_url: str | None,
    status: str | None,
    optimizer: str | None,
    updated_since: str | None,
    as_json: bool,
) -> int:
    """List the sessions of a store, one row each (reads summaries, and leases of running ones).

    A running session whose lease has expired (its worker died) is listed as
    stale, with its holder and when the lease expired.

    A damaged session file does not stop the listing: every readable session
    is listed, each damaged one is named in one line on stderr, and the exit
    code is 5.
    """
    since = _parse_since(updated_since)
    damaged: list[CorruptStore] = []
    with opened_store(store_url) as store:
        try:
            listings = store.list(
                status=status, optimizer=optimizer, updated_since=since, on_damage=damaged.append
            )
        except CorruptStore as exc:
            raise CliError(Exit.CORRUPT_STORE, redact_text(str(exc))) from None
        except OSError as exc:
            shown = store_name(store_url)
            raise CliError(
                Exit.IO_ERROR, f"store {shown} failed: {redact_text(str(exc))}"
            ) from None
        held = {
            item.session_id: read_lease(store, item.session_id)
            for item in listings
            if item.status == "running"
        }
    now = _dt.datetime.now(_dt.timezone.utc)
    if as_json:
        _print_json([_listing_json(i, held.get(i.session_id), now) for i in listings])
    else:
        title = f"{len(listings)} session{'' if len(listings) == 1 else 's'}"
        if damaged:
            title += f", {len(damaged)} damaged (named on stderr)"
        table = Table(title=_cell(title))
        for name, justify in (
            ("session", "left"),
            ("status", "left"),
            ("optimizer", "left"),
            ("trials", "right"),
            ("ok", "right"),
            ("errors", "right"),
            ("best", "right"),
            ("updated", "left"),
            ("gen", "right"),
            ("lease", "left"),
        ):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for item in listings:
            lease = held.get(item.session_id)
            table.add_row(
                _cell(item.session_id),
                _cell(shown_status(item.status, lease, now)),
                _cell(item.optimizer),
                str(item.trials),
                str(item.completed),
                str(item.errors),
                render_score(item.best_score),
                item.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
                str(item.generation),
                _cell("" if lease is None else "lease " + lease_text(lease, now)),
            )
        _console().print(table)
    for bad in damaged:
        _error(f"damaged session, not listed: {damage(bad)}")
    return Exit.CORRUPT_STORE if damaged else Exit.OK


# --- json / from-json -----------------------------------------------------------


@cli.command(name="json", epilog=EXIT_CODES_HELP)
@click.argument("target")
@store_option
@click.option("-o", "--output", default="-", metavar="OUT", help="Write here (default: stdout).")
def to_json(target: str, store_url: str | None, output: str) -> int:
    """Write a checkpoint as proto3 JSON."""
    cp = load(target, store_url).checkpoint
    write_output(output, (checkpoint.to_json(cp) + "\n").encode("utf-8"))
    return Exit.OK


@cli.command(name="from-json", epilog=EXIT_CODES_HELP)
@click.argument("file")
@click.option(
    "-o", "--output", required=True, metavar="OUT", help="The binary checkpoint (- for stdout)."
)
def from_json(file: str, output: str) -> int:
    """Read proto3 JSON (FILE, or - for stdin), validate it, write the canonical binary."""
    name, text = read_input(file)
    try:
        cp = checkpoint.from_json(text)
        data = checkpoint.encode(cp)
    except (ResumeMismatch, InvalidCheckpoint) as exc:
        raise CliError(Exit.INVALID_CHECKPOINT, f"{name}: {exc}") from None
    write_output(output, data)
    return Exit.OK


# --- canonicalize ---------------------------------------------------------------


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("file")
@click.option("-o", "--output", metavar="OUT", help="The canonical bytes (- for stdout).")
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; exit 1 when FILE is valid but not canonical.",
)
def canonicalize(file: str, output: str | None, check: bool) -> int:
    """Rewrite a checkpoint (FILE, or - for stdin) in its canonical bytes (FORMAT.md §2)."""
    if check == (output is not None):
        raise CliError(Exit.USAGE, "give -o OUT to write the canonical bytes, or --check")
    name, data = read_input(file)
    try:
        canonical = checkpoint.canonicalize(data)
    except (ResumeMismatch, InvalidCheckpoint) as exc:
        raise CliError(Exit.INVALID_CHECKPOINT, f"{name}: {exc}") from None
    if output is not None:
        write_output(output, canonical)
        return Exit.OK
    if canonical != data:
        _echo(f"{name}: valid, not canonical ({len(data)} bytes, canonical {len(canonical)})")
        return Exit.FOUND_PROBLEMS
    _echo(f"{name}: canonical")
    return Exit.OK


# --- validate -------------------------------------------------------------------


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("targets", nargs=-1, required=True, metavar="TARGET...")
@store_option
@json_option
def validate(targets: Sequence[str], store_url: str | None, as_json: bool) -> int:
    """Check checkpoints: exit 0 when all are valid, else one line per bad input and exit 1."""
    if store_url is not None:
        with opened_store(store_url):
            pass  # a store that does not exist fails once, not once per target
    results: list[tuple[str, bool, str]] = []
    for target in targets:
        try:
            load(target, store_url)
        except CliError as exc:
            if exc.code == Exit.USAGE:
                raise
            reason = exc.message
            prefix = f"{target}: "
            results.append(
                (target, False, reason[len(prefix) :] if reason.startswith(prefix) else reason)
            )
        else:
            results.append((target, True, "ok"))
    bad = [r for r in results if not r[1]]
    if as_json:
        _print_json(
            [
                {"target": t, "valid": ok, "reason": None if ok else redact_text(why)}
                for t, ok, why in results
            ]
        )
    else:
        for target, ok, why in results:
            _echo(f"{target}: {'ok' if ok else redact_text(why)}")
    return Exit.FOUND_PROBLEMS if bad else Exit.OK


# --- diff -----------------------------------------------------------------------


def _diff_json(fields: list[Difference], log: TrialLogDiff, ignore: Ignore) -> dict[str, Any]:
    return {
        "identical": not fields and log.identical,
        "ignored": list(ignore.texts),
        "fields": [d.json() for d in fields],
        "trial_log": {
            "ignored": log.ignored,
            "a_entries": log.a_entries,
            "b_entries": log.b_entries,
            "common_prefix": log.common_prefix,
            "differing": log.differing,
            "details": [
                {"trial_idx": i, "fields": [d.json() for d in diffs]}
                for i, diffs in log.details.items()
            ],
            "details_left_out": log.left_out,
        },
    }


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("a")
@click.argument("b")
@store_option
@json_option
@click.option(
    "--ignore",
    "ignored",
    metavar="FIELD",
    multiple=True,
    help="Leave this field (and all inside it) out; repeatable. A field path such as "
    "updated_at, optimizer_opts[2].value or progress.trial_log[].duration_ms "
    "([] or no index: every entry).",
)
@click.option(
    "--ignore-times",
    is_flag=True,
    help="Leave out every timestamp and duration: " + ", ".join(time_fields()) + ".",
)
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help=f"Detail every differing trial-log entry (default: the first {DETAILED_TRIALS}).",
)
def diff(
    a: str,
    b: str,
    store_url: str | None,
    as_json: bool,
    ignored: Sequence[str],
    ignore_times: bool,
    show_all: bool,
) -> int:
    """Field-level differences between checkpoints A and B, the trial log summarized.

    Exit 0 when they are identical (but for the ignored fields), 1 when they differ.
    """
    try:
        ignore = Ignore.of([*ignored, *(time_fields() if ignore_times else ())])
    except ValueError as exc:
        raise CliError(Exit.USAGE, f"--ignore: {exc}") from None
    left, right = load(a, store_url), load(b, store_url)
    fields, log = diff_checkpoints(
        left.checkpoint,
        right.checkpoint,
        ignore=ignore,
        detailed=None if show_all else DETAILED_TRIALS,
    )
    identical = not fields and log.identical
    if as_json:
        _print_json(_diff_json(fields, log, ignore))
        return Exit.OK if identical else Exit.FOUND_PROBLEMS
    _echo(f"--- a: {left.name}")
    _echo(f"+++ b: {right.name}")
    if ignore:
        _echo("ignoring: " + ", ".join(ignore.texts))
    for d in fields:
        _echo(f"{d.path}: {d.a} -> {d.b}")
    click.echo(_log_summary(log))
    for i, diffs in log.details.items():
        for d in diffs:
            _echo(f"  trial_log[{i}].{d.path}: {d.a} -> {d.b}")
    if log.left_out:
        click.echo(
            f"  … and {log.left_out} more differing "
            f"entr{'y' if log.left_out == 1 else 'ies'} (--all shows them)"
        )
    if identical:
        click.echo("identical" + (" (but for the ignored fields)" if ignore else ""))
    else:
        click.echo(f"{len(fields)} fields differ outside the trial log")
    return Exit.OK if identical else Exit.FOUND_PROBLEMS


def _log_summary(log: TrialLogDiff) -> str:
    if log.ignored:
        return f"trial_log: ignored (a has {log.a_entries} entries, b has {log.b_entries})"
    parts = [f"trial_log: a has {log.a_entries} entries, b has {log.b_entries}"]
    parts.append(f"the first {log.common_prefix} are identical")
    if log.differing:
        parts.append(f"{len(log.differing)} of the shared entries differ")
    if log.a_entries > log.b_entries:
        parts.append(f"{log.a_entries - log.b_entries} only in a")
    elif log.b_entries > log.a_entries:
        parts.append(f"{log.b_entries - log.a_entries} only in b")
    return "; ".join(parts)


# --- history --------------------------------------------------------------------


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("target")
@store_option
@click.option("--plot", "plot_path", metavar="OUT.png", default=None, help="Write a PNG plot.")
@json_option
def history(target: str, store_url: str | None, plot_path: str | None, as_json: bool) -> int:
    """Score per trial and best so far; --plot writes them as a PNG (needs the [plot] extra).

    The plot marks every trial (errors and infinite scores included) and
    stays readable for any number of trials (see docs/cli.md).
    """
    cp = load(target, store_url).checkpoint
    best = best_so_far(cp)
    rows = [(entry, best[i]) for i, entry in enumerate(cp.progress.trial_log)]
    if plot_path is not None:
        from dsxir.cli.plot import write_history_plot

        summary = write_history_plot(cp, plot_path)
        message = f"wrote {plot_path}: {summary.trials} trials, {summary.errors} errors"
        infinite = summary.positive_infinite + summary.negative_infinite
        if infinite:
            message += f", {infinite} infinite scores drawn on the axis edge"
        if summary.bucket_size > 1:
            message += f", in buckets of {summary.bucket_size} trials"
        click.echo(printable(message), err=as_json)
    if as_json:
        _print_json(
            [
                {
                    "trial_idx": entry.trial_idx,
                    "status": trial_status(entry),
                    "score": json_float(entry.score) if entry.HasField("score") else None,
                    "best_so_far": json_float(best_value),
                }
                for entry, best_value in rows
            ]
        )
    elif plot_path is None:
        table = Table(title=_cell(f"session {cp.session_id}: {len(rows)} trials"))
        for name in ("trial", "status", "score", "best so far"):
            table.add_column(name, justify="left" if name == "status" else "right")
        for entry, best_value in rows:
            table.add_row(
                str(entry.trial_idx),
                trial_status(entry),
                render_score(entry.score if entry.HasField("score") else None),
                render_score(best_value),
            )
        _console().print(table)
    return Exit.OK


cli.add_command(pause_command)
cli.add_command(cancel_command)
cli.add_command(delete_command)
cli.add_command(fork_command)
cli.add_command(export_command)
cli.add_command(serve_command)


# --- entry point ------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line and exit with its documented exit code."""
    _tolerant_streams()
    warnings.showwarning = _show_warning
    code: int
    try:
        result = cli.main(args=argv, prog_name=PROG, standalone_mode=False)
        code = int(result) if isinstance(result, int) else Exit.OK
    except CliError as exc:
        _error(exc.message)
        code = exc.code
    except IllegalHistory as exc:
        _error(f"{exc}; nothing was written")
        code = Exit.NOT_ALLOWED
    except (LeaseHeld, LeaseLost) as exc:
        _error(f"{exc}; nothing was written")
        code = Exit.CONFLICT
    except CheckpointError as exc:  # a store that cannot be reached or refused the call
        _error(str(exc))
        code = Exit.IO_ERROR
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.format_message(), err=True)
        code = exc.exit_code
    except click.ClickException as exc:
        _error(
            exc.format_message() + (" (see --help)" if isinstance(exc, click.UsageError) else "")
        )
        code = exc.exit_code
    except (click.Abort, KeyboardInterrupt):
        _error("interrupted")
        code = Exit.INTERRUPTED
    except BrokenPipeError:
        code = Exit.OK  # the reader went away (`| head`): not an error
    except MemoryError:
        _error("out of memory")
        code = Exit.IO_ERROR
    except Exception as exc:  # a bug: still one line, never a traceback
        _error(f"internal error ({type(exc).__name__}: {exc}); please report it")
        code = Exit.INTERNAL_ERROR
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(code)


def _tolerant_streams() -> None:
    """Let stdout and stderr show any text, whatever their encoding (as backslash escapes)."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if callable(reconfigure):
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="backslashreplace")


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """A library's warning as one line on stderr (no source file, no code line)."""
    text = printable(_LINE_BREAKS.sub(" ", redact_text(str(message))).strip())
    with contextlib.suppress(OSError, ValueError):
        click.echo(f"{PROG}: warning: {text}", err=True)


_LINE_BREAKS = re.compile(r"[\t\r\n]+")


def _error(message: str) -> None:
    """One line on stderr: secrets of store URLs hidden, control characters escaped."""
    first_line = printable(_LINE_BREAKS.sub(" ", redact_text(message)).strip())
    click.echo(f"{PROG}: error: {first_line}", err=True)
