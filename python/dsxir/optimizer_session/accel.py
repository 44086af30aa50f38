"""The optional compiled accelerator ``dsxir._accel``, loaded once on import.

When the C extension is built, :mod:`~dsxir.optimizer_session.terms` encodes
values of the exact built-in types with :data:`term_bytes`, :data:`map_body`
and :data:`frame_terms`, and :mod:`~dsxir.optimizer_session.validate` checks
canonical bytes with :data:`check_canonical` and trial entries with
:data:`check_trials`, and
:mod:`~dsxir.optimizer_session.columns` reads the trial log as columns with
:data:`trial_columns`, and :mod:`~dsxir.optimizer_session.grammar` checks and
seals checkpoint bytes (FORMAT.md §2) with :data:`grammar_check`,
:data:`grammar_scan`, :data:`read_checkpoint`, :data:`seal` and
:data:`crc32c`. Each gives the same bytes and
verdicts as the pure-Python code, which stays the reference: it handles
whatever C declines (the function returns ``None``) and reports every
refusal with its path. Each name is ``None`` when the extension is not in
use; :data:`ACCELERATED` says which. The environment variable
``DSXIR_PURE_PYTHON`` set to anything but empty or ``0`` when the package is
imported turns the extension off.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any, cast

from dsxir.optimizer_session.atom import Atom

__all__ = [
    "ACCELERATED",
    "check_canonical",
    "check_trials",
    "crc32c",
    "frame_terms",
    "grammar_check",
    "grammar_scan",
    "map_body",
    "read_checkpoint",
    "seal",
    "set_grammar_table",
    "term_bytes",
    "trial_columns",
]

_Encoder = Callable[[Any], "bytes | None"]

term_bytes: _Encoder | None = None
"""The canonical Term bytes of a value, or ``None`` when C declines it."""
map_body: _Encoder | None = None
"""The canonical TermMap bytes of a ``dict``, or ``None`` when C declines it."""
frame_terms: _Encoder | None = None
"""The FORMAT.md §6 framing of a sequence of values, or ``None`` when C declines it."""
check_canonical: Callable[[bytes], bool] | None = None
"""Whether bytes are a canonical checkpoint that keeps every rule of FORMAT.md."""
check_trials: Callable[[bytes, int], tuple[int, int, int] | None] | None = None
"""``(progress, start)``: ``(count, ok, errors)`` of the trial entries of Progress bytes
numbered from ``start`` when each keeps the rules of FORMAT.md, else ``None``."""
_Refusal = tuple[str, str, str]
grammar_check: Callable[..., bytes | _Refusal] | None = None
"""``(data, root=0)``: the body of bytes that pass FORMAT.md §2 (the message at index
``root`` of the field table on top), else ``(rule, path, detail)``."""
grammar_scan: Callable[..., _Refusal | None] | None = None
"""``None`` when a body passes §2.2 and the weight limit for the given input size,
else ``(rule, path, detail)``."""
read_checkpoint: Callable[[bytes], bool | _Refusal] | None = None
"""``grammar_check`` of a Checkpoint, then ``check_canonical`` of its body in the
same call: the refusal of the grammar, else whether the body keeps every rule
``validate.check`` enforces."""
crc32c: Callable[[bytes], int] | None = None
"""The CRC-32C of bytes (FORMAT.md §2.1)."""
seal: Callable[[bytes], bytes] | None = None
"""A body followed by its trailer (FORMAT.md §2.1), with no check."""
set_grammar_table: Callable[..., None] | None = None
"""Hands C the field table built from the descriptors (``grammar._flat_table``)."""
trial_columns: Callable[[bytes, int, Callable[[bytes, int, str], Any]], Any] | None = None
"""The trial log of Progress bytes as columns (a tuple), ``False`` over the
cell limit, or ``None`` when C declines the bytes (see ``dsxir/_accel.c``)."""


def _load() -> bool:
    """Bind the compiled functions unless disabled or not built; True when bound."""
    global term_bytes, map_body, frame_terms, check_canonical, check_trials, trial_columns
    global grammar_check, grammar_scan, read_checkpoint, crc32c, seal, set_grammar_table
    if os.environ.get("DSXIR_PURE_PYTHON", "") not in ("", "0"):
        return False
    try:
        module = importlib.import_module("dsxir._accel")
    except ImportError:
        return False
    module.set_atom_type(Atom)
    term_bytes = cast(_Encoder, module.term_bytes)
    map_body = cast(_Encoder, module.map_body)
    frame_terms = cast(_Encoder, module.frame_terms)
    check_canonical = cast(Callable[[bytes], bool], module.check_canonical)
    check_trials = module.check_trials
    trial_columns = module.trial_columns
    grammar_check = module.grammar_check
    grammar_scan = module.grammar_scan
    read_checkpoint = module.read_checkpoint
    crc32c = module.crc32c
    seal = module.seal
    set_grammar_table = module.set_grammar_table
    return True


ACCELERATED = _load()
"""True when the compiled module ``dsxir._accel`` is in use."""
