"""The trial log as columns: plain lists, a pandas DataFrame, a pyarrow Table.

:func:`trial_columns` reads every entry of a checkpoint's trial log into one
list per column, all of the same length (one value per trial, in trial
order), at C speed when the accelerator is in use
(:mod:`~dsxir.optimizer_session.accel`; the pure-Python reader gives the same
values, types included). :func:`trials_dataframe` and :func:`trials_arrow`
build a ``pandas.DataFrame`` and a ``pyarrow.Table`` from those lists; they
need the extra ``[dataframe]`` (``pip install 'dsxir-checkpoint[dataframe]'``)
and raise ``ImportError`` naming it when pandas or pyarrow is missing. This
module itself imports neither.

Columns, in this order:

- ``trial_idx`` (int), ``candidate_id`` (str, ``None`` when absent),
  ``score`` (float, ``None`` when absent), ``status`` (``"ok"`` or
  ``"error"``), ``duration_ms`` (int) and ``error_class`` (str, ``None`` when
  absent). The ``error`` map of a trial is not a column.
- ``stats.<key>`` for every string key found in the ``stats`` of any trial,
  sorted by key; a trial without that key has ``None``, as has a trial whose
  value is the null Term (of a key written twice, the last). A stats value keeps
  its own Python type, as :func:`~dsxir.optimizer_session.terms.from_term`
  gives it: ``None``, ``bool``, ``int`` (of any size), ``float``, ``str``
  and ``bytes``, and for the other kinds (an Atom, a list, a tuple, a map)
  the value ``from_term`` returns, so a column may hold ``1`` in one trial
  and ``1.0`` in another. A value ``from_term`` refuses (a map whose keys
  collide in Python) raises its ``InvalidCheckpoint``, with the path
  ``progress.trial_log[i].stats['key']``.
- Stats entries whose key is not a string (an int, an Atom…) make no column;
  ``from_term(entry.stats)`` reads them.

Columns are dense, so a trial log whose stats keys are sparse (a new key in
every trial) would need trials x keys cells: :func:`trial_columns` refuses
with ``ValueError`` when the stats columns would hold more than
``max(MIN_CELL_LIMIT, CELLS_PER_BYTE * the Progress message's size)`` cells,
which keeps memory within a constant multiple of the checkpoint's size.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dsxir.errors import InvalidCheckpoint
from dsxir.optimizer_session import accel, rules
from dsxir.optimizer_session.terms import from_term, term_bytes
from dsxir.optimizer_session.v1.checkpoint_pb2 import (
    TRIAL_STATUS_ERROR,
    TRIAL_STATUS_OK,
    Checkpoint,
)
from dsxir.optimizer_session.v1.term_pb2 import Term

if TYPE_CHECKING:
    import pandas  # type: ignore[import-untyped]
    import pyarrow  # type: ignore[import-untyped]

__all__ = [
    "CELLS_PER_BYTE",
    "FIXED_COLUMNS",
    "MIN_CELL_LIMIT",
    "trial_columns",
    "trials_arrow",
    "trials_dataframe",
]

FIXED_COLUMNS = ("trial_idx", "candidate_id", "score", "status", "duration_ms", "error_class")
"""The columns every trial log has, before the ``stats.<key>`` columns."""

MIN_CELL_LIMIT = 1 << 22
"""Stats cells (trials x stats columns) always allowed."""
CELLS_PER_BYTE = 4
"""Stats cells allowed per byte of the Progress message, above :data:`MIN_CELL_LIMIT`."""

_STATUS = {TRIAL_STATUS_OK: "ok", TRIAL_STATUS_ERROR: "error"}
_SCALARS = frozenset(
    ("null_value", "bool_value", "int_value", "float_value", "string_value", "bytes_value")
)


def trial_columns(cp: Checkpoint) -> dict[str, list[Any]]:
    """The trial log of ``cp`` as columns: name → one value per trial.

    See the module text for the columns, their values and the cell limit
    (``ValueError``). ``cp`` is a valid checkpoint, as :func:`decode` returns.
    """
    progress = cp.progress
    if accel.trial_columns is not None:
        raw = progress.SerializeToString()
        fast = accel.trial_columns(raw, _cell_limit(len(raw)), _term_value)
        if fast is False:
            raise _too_many_cells(len(progress.trial_log))
        if fast is not None:
            *fixed, stats = fast
            return _assembled(fixed, stats)
    return _read(cp)


def _cell_limit(progress_size: int) -> int:
    return max(MIN_CELL_LIMIT, CELLS_PER_BYTE * progress_size)


def _too_many_cells(trials: int) -> ValueError:
    return ValueError(
        f"the stats of {trials} trials have too many distinct keys to be columns "
        "(see dsxir.optimizer_session.columns); read them per trial with from_term"
    )


def _stats_path(index: int, key: str) -> str:
    return f"progress.trial_log[{index}].stats[{key!r}]"


def _term_value(raw: bytes, index: int, key: str) -> Any:
    """The value of a stats Term that is not a scalar, as ``from_term`` reads it."""
    return from_term(Term.FromString(raw), root=_stats_path(index, key))


def _assembled(fixed: list[list[Any]], stats: dict[str, list[Any]]) -> dict[str, list[Any]]:
    columns = dict(zip(FIXED_COLUMNS, fixed, strict=True))
    for key in sorted(stats):
        columns[f"stats.{key}"] = stats[key]
    return columns


def _read(cp: Checkpoint) -> dict[str, list[Any]]:
    """The pure-Python reader: the same values as the accelerator's."""
    progress = cp.progress
    log = progress.trial_log
    n = len(log)
    limit = _cell_limit(progress.ByteSize())
    fixed: list[list[Any]] = [[None] * n for _ in FIXED_COLUMNS]
    trial_idx, candidate_id, score, status, duration_ms, error_class = fixed
    stats: dict[str, list[Any]] = {}
    for i, entry in enumerate(log):
        if entry.status not in _STATUS:
            raise InvalidCheckpoint(
                f"progress.trial_log[{i}].status",
                f"unknown trial status {entry.status}",
                rules.TRIAL_STATUS,
            )
        trial_idx[i] = entry.trial_idx
        status[i] = _STATUS[entry.status]
        duration_ms[i] = entry.duration_ms
        if entry.HasField("candidate_id"):
            candidate_id[i] = entry.candidate_id
        if entry.HasField("score"):
            score[i] = entry.score
        if entry.HasField("error_class"):
            error_class[i] = entry.error_class
        for item in entry.stats.entries:
            if item.key.WhichOneof("kind") != "string_value":
                continue
            key = item.key.string_value
            column = stats.get(key)
            if column is None:
                if (len(stats) + 1) * n > limit:
                    raise _too_many_cells(n)
                column = stats[key] = [None] * n
            value = item.value
            kind = value.WhichOneof("kind")
            if kind in _SCALARS:
                column[i] = None if kind == "null_value" else getattr(value, kind)
            else:
                column[i] = from_term(value, root=_stats_path(i, key))
    return _assembled(fixed, stats)


def _need(module: str, caller: str) -> Any:
    """Import ``module`` of the extra ``[dataframe]``, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as missing:
        raise ImportError(
            f"{caller} needs {module}, of the extra [dataframe]: "
            "pip install 'dsxir-checkpoint[dataframe]'"
        ) from missing


def trials_dataframe(cp: Checkpoint) -> pandas.DataFrame:
    """The trial log of ``cp`` as a ``pandas.DataFrame``, one row per trial.

    Columns and order as :func:`trial_columns`; the index is the default
    ``RangeIndex``, equal to ``trial_idx``. Dtypes: ``trial_idx`` int64,
    ``duration_ms`` uint64, ``score`` float64 with NaN where absent (a
    score is never NaN), ``candidate_id``, ``status`` and ``error_class``
    pandas' ``str`` with NaN where absent; each ``stats.<key>`` column the
    dtype pandas infers from its values: float64 (NaN where missing) for
    numbers, ints and floats mixed, or ints with a trial missing; int64 for
    ints present in every trial; bool for bools present in every trial; ``str``
    for strings; object otherwise. Needs the extra ``[dataframe]``
    (``ImportError`` naming it).
    """
    pd = _need("pandas", "trials_dataframe")
    np = _need("numpy", "trials_dataframe")
    columns = trial_columns(cp)
    data: dict[str, Any] = {
        "trial_idx": np.array(columns["trial_idx"], dtype=np.int64),
        "candidate_id": pd.array(columns["candidate_id"], dtype="str"),
        "score": np.array(columns["score"], dtype=np.float64),
        "status": pd.array(columns["status"], dtype="str"),
        "duration_ms": np.array(columns["duration_ms"], dtype=np.uint64),
        "error_class": pd.array(columns["error_class"], dtype="str"),
    }
    for name in columns.keys() - data.keys():
        data[name] = pd.Series(columns[name])
    return pd.DataFrame({name: data[name] for name in columns}, copy=False)


def trials_arrow(cp: Checkpoint) -> pyarrow.Table:
    """The trial log of ``cp`` as a ``pyarrow.Table``, one row per trial.

    Columns and order as :func:`trial_columns`, absent values null. Types:
    ``trial_idx`` int64, ``duration_ms`` uint64, ``score`` float64,
    ``candidate_id``, ``status`` and ``error_class`` string; each
    ``stats.<key>`` column the type pyarrow infers from its values (double
    for ints and floats mixed, int64 for ints, bool, string, binary, list,
    struct; null when every trial misses it). A column pyarrow cannot type
    (bools and ints mixed, ints beyond int64, an Atom…) holds each value's
    canonical Term bytes (FORMAT.md) as binary, null where missing, which
    :func:`~dsxir.optimizer_session.terms.from_term` reads back with
    ``Term.FromString``. Needs the extra ``[dataframe]`` (``ImportError``
    naming it).
    """
    pa = _need("pyarrow", "trials_arrow")
    columns = trial_columns(cp)
    types = {
        "trial_idx": pa.int64(),
        "candidate_id": pa.string(),
        "score": pa.float64(),
        "status": pa.string(),
        "duration_ms": pa.uint64(),
        "error_class": pa.string(),
    }
    arrays = [
        pa.array(values, type=types[name]) if name in types else _arrow_stats(pa, values)
        for name, values in columns.items()
    ]
    return pa.table(arrays, names=list(columns))


def _arrow_stats(pa: Any, values: list[Any]) -> Any:
    """A stats column as pyarrow types it, or as binary Term bytes when it cannot."""
    try:
        return pa.array(values)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        encoded = [None if v is None else term_bytes(v) for v in values]
        return pa.array(encoded, type=pa.binary())
