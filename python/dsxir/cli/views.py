"""Checkpoint values as text for people and as JSON for scripts.

Terms are shown without converting them to Python (which could refuse valid
maps whose keys Python merges, such as ``1`` and ``True``): strings quoted,
atoms as ``:name``, bytes as ``0x…``, tuples in parentheses. In ``--json``
output, Term values appear in their plain JSON form (:mod:`dsxir.cli.plain`)
and scores that JSON cannot hold are the strings ``"Infinity"`` and
``"-Infinity"``.

Every stored string is untrusted: a checkpoint may hold Rich markup
(``[bold]``, ``[/]``) or terminal escape sequences in its session id,
optimizer name, candidate ids, option keys, stats or terminal reason.
:func:`printable` makes any text safe for a terminal: control and format
characters (Unicode categories Cc, Cf, Zl, Zp: C0 and C1 controls, ESC, DEL,
bidi controls such as U+202E, zero-width characters) are shown as Python-style
escapes (``\\x1b``, ``\\u202e``, ``\\U000e0001``); the command line prints every
such text as plain text, never as Rich markup. :func:`json_text` writes JSON
whose values are exact but whose bytes hold no such character raw (they
become ``\\uXXXX`` escapes, which every JSON reader decodes back).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterator
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from dsxir.cli.plain import map_plain, term_plain
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint, TrialLogEntry
from dsxir.optimizer_session.v1.term_pb2 import Term, TermMap

__all__ = [
    "best_so_far",
    "compact_map",
    "json_float",
    "json_line",
    "json_text",
    "printable",
    "render_score",
    "render_term",
    "show_json",
    "term_json",
    "term_tree",
    "timestamp_text",
    "trial_json",
    "trial_status",
]

_MAX_TEXT = 80
_MAX_DECIMAL_BIGINT_BYTES = 256
"""Larger big integers are shown by size and leading bytes: Python refuses to
turn integers of more than a few thousand digits into text."""

_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_NOT_PLAIN_ASCII = re.compile(r"[^\x20-\x7e]")
_NOT_ASCII = re.compile(r"[^\x00-\x7e]")


def _unsafe(char: str) -> bool:
    return unicodedata.category(char) in _UNSAFE_CATEGORIES


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _escape_unsafe(match: re.Match[str]) -> str:
    char = match.group(0)
    return _escape(char) if _unsafe(char) else char


def printable(text: str) -> str:
    """``text`` safe for a terminal: control and format characters as escapes.

    Everything else (letters of any script, emoji, ``[``, ``]``) is kept; the
    result is meant to be printed as plain text (never parsed as markup).
    """
    return _NOT_PLAIN_ASCII.sub(_escape_unsafe, text)


def _json_escape_unsafe(match: re.Match[str]) -> str:
    char = match.group(0)
    if not _unsafe(char):
        return char
    units = char.encode("utf-16-be", "surrogatepass")
    return "".join(
        f"\\u{int.from_bytes(units[i : i + 2], 'big'):04x}" for i in range(0, len(units), 2)
    )


def json_line(value: Any) -> str:
    """``value`` as JSON on one line, escaped as :func:`json_text` escapes it."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return _NOT_ASCII.sub(_json_escape_unsafe, text)


def json_text(value: Any) -> str:
    """``value`` as indented JSON, exact, with no control or format character raw.

    ``json.dumps`` already escapes C0 controls; DEL, C1 controls, bidi and
    other format characters are escaped here too (outside strings JSON text
    is plain ASCII, so only string contents change, and only in form).
    """
    text = json.dumps(value, indent=2, ensure_ascii=False, allow_nan=False)
    return _NOT_ASCII.sub(_json_escape_unsafe, text)


def render_score(score: float | None) -> str:
    """A score for people: six significant digits, ``-`` when absent."""
    if score is None:
        return "-"
    if math.isinf(score):
        return "inf" if score > 0 else "-inf"
    if score == 0:
        return "-0.0" if math.copysign(1.0, score) < 0 else "0.0"
    return f"{score:.6g}"


def json_float(value: float | None) -> float | str | None:
    """A float for JSON output (infinities as strings)."""
    if value is not None and math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def timestamp_text(stamp: Timestamp) -> str:
    """An RFC 3339 timestamp in UTC."""
    return stamp.ToJsonString()


def render_term(term: Term | TermMap, limit: int = _MAX_TEXT) -> str:
    """A compact one-line form of a Term (or TermMap), cut to ``limit`` characters."""
    text = _term_text(term) if isinstance(term, Term) else _map_text(term)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _term_text(term: Term) -> str:
    kind = term.WhichOneof("kind")
    if kind == "null_value":
        return "null"
    if kind == "bool_value":
        return "true" if term.bool_value else "false"
    if kind == "int_value":
        return str(term.int_value)
    if kind == "bigint_value":
        return _bigint_text(term.bigint_value)
    if kind == "float_value":
        value = term.float_value
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if kind == "string_value":
        return json.dumps(term.string_value, ensure_ascii=False)
    if kind == "bytes_value":
        return "0x" + term.bytes_value.hex()
    if kind == "atom_value":
        return ":" + term.atom_value
    if kind == "list_value":
        return "[" + ", ".join(_term_text(item) for item in term.list_value.items) + "]"
    if kind == "tuple_value":
        return "(" + ", ".join(_term_text(item) for item in term.tuple_value.items) + ")"
    if kind == "map_value":
        return _map_text(term.map_value)
    return "?"


def _bigint_text(raw: bytes) -> str:
    if len(raw) <= _MAX_DECIMAL_BIGINT_BYTES:
        return str(int.from_bytes(raw, "big", signed=True))
    return f"<{len(raw)}-byte integer 0x{raw[:8].hex()}…>"


def _map_text(term_map: TermMap) -> str:
    pairs = (f"{_term_text(e.key)}: {_term_text(e.value)}" for e in term_map.entries)
    return "{" + ", ".join(pairs) + "}"


def term_json(message: Term | TermMap) -> Any:
    """The plain JSON value of a Term or TermMap (:mod:`dsxir.cli.plain`)."""
    return term_plain(message) if isinstance(message, Term) else map_plain(message)


def trial_status(entry: TrialLogEntry) -> str:
    """``ok`` or ``error``."""
    return "ok" if entry.status == 1 else "error"


def trial_json(entry: TrialLogEntry) -> dict[str, Any]:
    """One trial for ``--json`` output (and ``export --format jsonl``)."""
    return {
        "trial_idx": entry.trial_idx,
        "status": trial_status(entry),
        "score": json_float(entry.score) if entry.HasField("score") else None,
        "candidate_id": entry.candidate_id if entry.HasField("candidate_id") else None,
        "duration_ms": entry.duration_ms,
        "error_class": entry.error_class if entry.HasField("error_class") else None,
        "stats": term_json(entry.stats) if entry.HasField("stats") else None,
        "error": term_json(entry.error) if entry.HasField("error") else None,
    }


def compact_map(term_map: TermMap, limit: int | None) -> tuple[str, bool]:
    """A map in one line, ``key=value key=value``, cut to ``limit`` characters.

    Returns the text and whether it was cut. String keys are shown bare,
    other keys and every value as :func:`render_term` shows them.
    """
    parts: list[str] = []
    size = 0
    for entry in term_map.entries:
        key = entry.key
        name = key.string_value if key.WhichOneof("kind") == "string_value" else _term_text(key)
        parts.append(f"{name}={_term_text(entry.value)}")
        size += len(parts[-1]) + 1
        if limit is not None and size > limit:
            break
    text = " ".join(parts)
    if limit is not None and (len(text) > limit or len(parts) < len(term_map.entries)):
        return text[: max(limit - 1, 0)] + "…", True
    return text, False


def term_tree(term_map: TermMap, *, width: int | None = 100) -> Iterator[str]:
    """A map as an indented tree, one line per value (for ``show``'s best program).

    Map entries are ``key: value``, list and tuple items ``- value``; a
    nested map, list or tuple opens an indented block. A value longer than
    ``width`` characters is cut.
    """
    yield from _tree_map(term_map, "", width)


def _cut(text: str, width: int | None) -> str:
    return text if width is None or len(text) <= width else text[: width - 1] + "…"


def _key_text(key: Term) -> str:
    return key.string_value if key.WhichOneof("kind") == "string_value" else _term_text(key)


def _container(term: Term) -> tuple[str, list[tuple[str, Term]]] | None:
    """The items of a non-empty map, list or tuple (with their labels), else None."""
    kind = term.WhichOneof("kind")
    if kind == "map_value" and term.map_value.entries:
        return "", [(_key_text(e.key), e.value) for e in term.map_value.entries]
    if kind in ("list_value", "tuple_value"):
        items = getattr(term, kind).items
        if items:
            return ("" if kind == "list_value" else " (tuple)"), [("-", item) for item in items]
    return None


def _tree_map(term_map: TermMap, indent: str, width: int | None) -> Iterator[str]:
    for entry in term_map.entries:
        yield from _tree_item(f"{_key_text(entry.key)}:", entry.value, indent, width)


def _tree_item(label: str, value: Term, indent: str, width: int | None) -> Iterator[str]:
    inner = _container(value)
    if inner is None:
        yield _cut(f"{indent}{label} {_term_text(value)}", width)
        return
    note, items = inner
    if label != "-" or note:
        yield _cut(f"{indent}{label}{note}", width)
        for item_label, item in items:
            yield from _tree_item(_label(item_label), item, indent + "  ", width)
        return
    # A list item that is a map or a list starts on the dash's line, as in YAML.
    first = True
    for item_label, item in items:
        for line in _tree_item(_label(item_label), item, indent + "  ", width):
            if first:
                line = indent + "- " + line[len(indent) + 2 :]
                first = False
            yield line


def _label(item_label: str) -> str:
    return item_label if item_label == "-" else f"{item_label}:"


def best_so_far(cp: Checkpoint) -> list[float | None]:
    """For each trial, the best score up to and including it (the rule of record_trial).

    Best is the greatest score, or the least for a session whose direction
    is ``lower``; of equal scores the first stays best.
    """
    lower = checkpoint.direction_name(cp) == "lower"
    best: float | None = None
    out: list[float | None] = []
    for entry in cp.progress.trial_log:
        if entry.status == 1 and entry.HasField("score"):
            score = entry.score
            if best is None or (score < best if lower else score > best):
                best = score
        out.append(best)
    return out


def show_json(cp: Checkpoint, *, source: str, generation: int | None, last: int) -> dict[str, Any]:
    """The ``show --json`` document."""
    progress = cp.progress
    has_best = progress.HasField("best_score")
    trials = list(progress.trial_log)
    return {
        "source": source,
        "generation": generation,
        "session_id": cp.session_id,
        "format": cp.format,
        "optimizer": cp.optimizer,
        "program_module": cp.program_module if cp.HasField("program_module") else None,
        "status": checkpoint.status_name(cp),
        "direction": checkpoint.direction_name(cp),
        "sampler_format": {
            "module": cp.sampler_format.module,
            "version": cp.sampler_format.version,
        },
        "sampler_blob_bytes": len(cp.sampler_blob),
        "trainset_hash": cp.trainset_hash.hex(),
        "created_at": timestamp_text(cp.created_at),
        "updated_at": timestamp_text(cp.updated_at),
        "started_at": timestamp_text(progress.started_at),
        "optimizer_opts": [
            {"key": option.key, "value": term_json(option.value)} for option in cp.optimizer_opts
        ],
        "counters": {
            "trials": len(trials),
            "attempts": progress.attempts,
            "completed": progress.completed,
            "errors": progress.errors,
        },
        "best": (
            {"score": json_float(progress.best_score), "trial_idx": progress.best_trial_idx}
            if has_best
            else None
        ),
        "terminal_reason": (
            term_json(cp.terminal_reason) if cp.HasField("terminal_reason") else None
        ),
        "has_best_program_artifact": cp.HasField("best_program_artifact"),
        "best_program_artifact": (
            term_json(cp.best_program_artifact) if cp.HasField("best_program_artifact") else None
        ),
        "last_trials": [trial_json(entry) for entry in trials[-last:]] if last > 0 else [],
    }
