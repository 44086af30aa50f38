"""``export``: the trial log of a checkpoint as CSV or JSON Lines.

CSV: a header row, then one row per trial, with the columns
:data:`FIXED_COLUMNS` and then one column per stats key (in the order the
keys first appear), named ``stats.<key>``, nested maps flattened with dots
(``stats.eval.loss``). Cells: numbers as Python writes them (``inf``,
``-inf`` for infinite scores), ``true``/``false``, strings as they are,
an empty cell for a missing or null value, and lists, tuples, bytes, atoms
and maps with non-string keys as their plain JSON text
(:mod:`dsxir.cli.plain`). A text
cell from the checkpoint has its control and format characters escaped
(:func:`~dsxir.cli.views.printable`, so no stored string reaches a terminal
raw) and, when it then starts with ``=``, ``+``, ``-`` or ``@``, a leading
``'`` so that spreadsheets do not run it as a formula; JSON Lines keeps
every value exact.

JSON Lines: one JSON object per trial (as in ``show --json``), Terms in
their plain JSON form.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator

import click

from dsxir.cli.exits import EXIT_CODES_HELP, Exit
from dsxir.cli.plain import term_plain
from dsxir.cli.targets import load, write_output
from dsxir.cli.views import json_line, printable, trial_json, trial_status
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint, TrialLogEntry
from dsxir.optimizer_session.v1.term_pb2 import Term, TermMap

__all__ = ["FIXED_COLUMNS", "csv_rows", "export_command", "jsonl_lines"]

FIXED_COLUMNS = (
    "trial_idx",
    "status",
    "score",
    "candidate_id",
    "duration_ms",
)
"""The first columns of the CSV export, in order; the stats columns follow."""

_FORMULA_START = ("=", "+", "-", "@")
"""A text cell starting with one of these gets a leading ``'`` (tabs and carriage
returns are already escaped by :func:`~dsxir.cli.views.printable`)."""

_STORE_HELP = (
    "Read TARGET as a session id in this store (file:PATH, memory:, postgresql://... "
    "or grpc://HOST:PORT). Without it, TARGET is a file, or - for stdin."
)


def _safe_text(text: str) -> str:
    """A text cell from the checkpoint: control characters escaped, no formula."""
    text = printable(text)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _float_cell(value: float) -> str:
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def _cell(term: Term) -> str:
    kind = term.WhichOneof("kind")
    if kind == "null_value" or kind is None:
        return ""
    if kind == "bool_value":
        return "true" if term.bool_value else "false"
    if kind == "int_value":
        return str(term.int_value)
    if kind == "float_value":
        return _float_cell(term.float_value)
    if kind == "string_value":
        return _safe_text(term.string_value)
    plain = term_plain(term)
    if isinstance(plain, int):  # a big integer
        return str(plain)
    return _safe_text(json_line(plain))


def _key_name(key: Term) -> str:
    if key.WhichOneof("kind") == "string_value":
        return key.string_value
    return json_line(term_plain(key))


def _flatten(term_map: TermMap, prefix: str, out: dict[str, str]) -> None:
    for entry in term_map.entries:
        name = prefix + printable(_key_name(entry.key))
        value = entry.value
        if value.WhichOneof("kind") == "map_value" and value.map_value.entries:
            _flatten(value.map_value, name + ".", out)
            continue
        column, n = name, 2
        while column in out:  # two keys that flatten to one name ("a.b" and a: {b})
            column, n = f"{name} ({n})", n + 1
        out[column] = _cell(value)


def _stats_cells(entry: TrialLogEntry) -> dict[str, str]:
    cells: dict[str, str] = {}
    if entry.HasField("stats"):
        _flatten(entry.stats, "stats.", cells)
    return cells


def csv_rows(cp: Checkpoint) -> Iterator[list[str]]:
    """The CSV export as rows of text cells, the header first."""
    log = cp.progress.trial_log
    stats = [_stats_cells(entry) for entry in log]
    columns: dict[str, None] = {}
    for cells in stats:
        for name in cells:
            columns.setdefault(name, None)
    yield [*FIXED_COLUMNS, *columns]
    for entry, cells in zip(log, stats, strict=True):
        yield [
            str(entry.trial_idx),
            trial_status(entry),
            _float_cell(entry.score) if entry.HasField("score") else "",
            _safe_text(entry.candidate_id) if entry.HasField("candidate_id") else "",
            str(entry.duration_ms),
            *(cells.get(name, "") for name in columns),
        ]


def jsonl_lines(cp: Checkpoint) -> Iterator[str]:
    """The JSON Lines export, one line (without its newline) per trial."""
    for entry in cp.progress.trial_log:
        yield json_line(trial_json(entry))


@click.command(name="export", epilog=EXIT_CODES_HELP)
@click.argument("target")
@click.option("--store", "store_url", metavar="URL", default=None, help=_STORE_HELP)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl"]),
    default="csv",
    show_default=True,
    help="csv: one row per trial, stats as columns; jsonl: one JSON object per trial.",
)
@click.option("-o", "--output", default="-", metavar="PATH", help="Write here (default: stdout).")
def export_command(target: str, store_url: str | None, fmt: str, output: str) -> int:
    """Export the trial log of a checkpoint as CSV or JSON Lines (columns in docs/cli.md)."""
    cp = load(target, store_url).checkpoint
    if fmt == "jsonl":
        text = "".join(line + "\n" for line in jsonl_lines(cp))
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows(csv_rows(cp))
        text = buffer.getvalue()
    write_output(output, text.encode("utf-8"))
    return Exit.OK
