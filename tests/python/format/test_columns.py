"""The trial log as columns: lists, a pandas DataFrame and a pyarrow Table.

Every column read here runs twice, with the compiled reader of dsxir._accel
and with the pure-Python one, and both must give the same values of the same
types, or the same refusal. Importing dsxir._accel below fails this module
when the build silently fell back to pure Python.
"""

from __future__ import annotations

import importlib
import math
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsxir.errors import InvalidCheckpoint
from dsxir.optimizer_session import accel, columns
from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session.atom import Atom
from dsxir.optimizer_session.terms import term_bytes
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint, Progress
from dsxir.optimizer_session.v1.term_pb2 import Term
from strategies import checkpoints

ACCEL = importlib.import_module("dsxir._accel")
MODES = ("c", "pure")
FIXED = list(columns.FIXED_COLUMNS)


def make(direction: ck.Direction = "higher") -> Checkpoint:
    return ck.new(
        session_id="s1",
        optimizer="demo.Opt",
        trainset_hash=b"\x07" * 32,
        sampler_blob=b"",
        sampler_format=("demo.Sampler", 1),
        direction=direction,
    )


@pytest.fixture(autouse=True)
def _atom_type() -> None:
    ACCEL.set_atom_type(Atom)


def set_mode(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    monkeypatch.setattr(accel, "trial_columns", ACCEL.trial_columns if mode == "c" else None)


def typed(cols: dict[str, list[Any]]) -> dict[str, list[tuple[type, str]]]:
    """Values with their types, so that 1, 1.0, True and -0.0, 0.0 differ."""
    return {name: [(type(v), repr(v)) for v in values] for name, values in cols.items()}


def outcome(read: Callable[[], Any]) -> Any:
    try:
        return ("ok", typed(read()))
    except Exception as exc:  # the refusal itself is what is compared
        return ("raised", type(exc), str(exc))


def both(monkeypatch: pytest.MonkeyPatch, cp: Checkpoint) -> dict[str, list[Any]]:
    """trial_columns in both modes; they must agree, values and types."""
    results = []
    for mode in MODES:
        set_mode(monkeypatch, mode)
        results.append(columns.trial_columns(cp))
    assert typed(results[0]) == typed(results[1])
    return results[0]


def both_refuse(monkeypatch: pytest.MonkeyPatch, cp: Checkpoint, kind: type) -> str:
    messages = []
    for mode in MODES:
        set_mode(monkeypatch, mode)
        with pytest.raises(kind) as caught:
            columns.trial_columns(cp)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    return messages[0]


def test_the_accelerator_reads_columns_unless_disabled() -> None:
    assert (accel.trial_columns is not None) is accel.ACCELERATED


# --- the columns -----------------------------------------------------------------


def test_every_fixed_column_and_missing_values(monkeypatch: pytest.MonkeyPatch) -> None:
    cp = make()
    ck.record_trial(cp, score=0.5, candidate_id="a", stats={"tokens": 10}, duration_ms=7)
    ck.record_trial(
        cp,
        score=None,
        status="error",
        duration_ms=2**64 - 1,
        error={"message": "boom"},
        error_class="RateLimitError",
    )
    ck.record_trial(cp, score=0.0)
    ck.record_trial(cp, score=-0.0, candidate_id="", stats={"latency": 1.5})
    ck.record_trial(cp, score=math.inf, status="error", error_class="RateLimitError")
    cols = both(monkeypatch, cp)
    assert list(cols) == [*FIXED, "stats.latency", "stats.tokens"]
    assert cols["trial_idx"] == [0, 1, 2, 3, 4]
    assert cols["candidate_id"] == ["a", None, None, "", None]
    assert typed({"s": cols["score"]}) == typed({"s": [0.5, None, 0.0, -0.0, math.inf]})
    assert cols["status"] == ["ok", "error", "ok", "ok", "error"]
    assert cols["duration_ms"] == [7, 2**64 - 1, 0, 0, 0]
    assert cols["error_class"] == [None, "RateLimitError", None, None, "RateLimitError"]
    assert cols["stats.tokens"] == [10, None, None, None, None]
    assert cols["stats.latency"] == [None, None, None, 1.5, None]


def test_every_stats_value_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    stats = {
        "none": None,
        "bool": True,
        "int": -(2**63),
        "big": 2**64,
        "float": -2.5,
        "str": "héllo",
        "bytes": b"\x00\xff",
        "atom": Atom("ok"),
        "list": [1, "a", [None]],
        "tuple": (1, 2.0),
        "map": {"a": {1: (Atom("x"),)}},
    }
    cp = make()
    ck.record_trial(cp, score=1.0, stats=stats)
    cols = both(monkeypatch, cp)
    assert list(cols) == FIXED + [f"stats.{key}" for key in sorted(stats)]
    got = {name.removeprefix("stats."): values[0] for name, values in cols.items()}
    assert typed({k: [got[k]] for k in stats}) == typed({k: [v] for k, v in stats.items()})


def test_ints_and_floats_keep_their_own_types(monkeypatch: pytest.MonkeyPatch) -> None:
    cp = make()
    for value in (1, 1.0, True, 2.5, None):
        ck.record_trial(cp, score=0.1, stats={"x": value})
    cols = both(monkeypatch, cp)
    assert [type(v) for v in cols["stats.x"]] == [int, float, bool, float, type(None)]


def test_non_string_keys_make_no_column(monkeypatch: pytest.MonkeyPatch) -> None:
    cp = make()
    ck.record_trial(cp, score=0.1, stats={1: "one", Atom("a"): 2, b"k": 3, None: 4, "s": 5})
    cols = both(monkeypatch, cp)
    assert list(cols) == [*FIXED, "stats.s"]
    assert cols["stats.s"] == [5]


def test_error_trials(monkeypatch: pytest.MonkeyPatch) -> None:
    cp = make()
    ck.record_trial(cp, score=None, status="error", error=ValueError("bad input"))
    ck.record_trial(cp, score=0.3, status="error", error_class="Timeout", stats={"t": 1})
    cols = both(monkeypatch, cp)
    assert cols["status"] == ["error", "error"]
    assert cols["error_class"] == ["ValueError", "Timeout"]
    assert cols["score"] == [None, 0.3]
    assert "error" not in cols and not any(name.startswith("error.") for name in cols)


def test_direction_does_not_change_the_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    higher, lower = make(), make("lower")
    for cp in (higher, lower):
        for score in (0.5, 0.2, 0.9):
            ck.record_trial(cp, score=score, stats={"loss": score})
    assert lower.progress.best_trial_idx == 1 and higher.progress.best_trial_idx == 2
    assert typed(both(monkeypatch, lower)) == typed(both(monkeypatch, higher))
    assert both(monkeypatch, lower)["score"] == [0.5, 0.2, 0.9]


def test_empty_log(monkeypatch: pytest.MonkeyPatch) -> None:
    cols = both(monkeypatch, make())
    assert cols == {name: [] for name in FIXED}
    frame = columns.trials_dataframe(make())
    assert list(frame.columns) == FIXED and len(frame) == 0
    assert [str(t) for t in frame.dtypes] == ["int64", "str", "float64", "str", "uint64", "str"]
    table = columns.trials_arrow(make())
    assert table.num_rows == 0 and table.column_names == FIXED
    assert [str(t) for t in table.schema.types] == [
        "int64",
        "string",
        "double",
        "string",
        "uint64",
        "string",
    ]


def test_a_repeated_key_in_one_trial_keeps_the_last(monkeypatch: pytest.MonkeyPatch) -> None:
    cp = make()
    ck.record_trial(cp, score=0.1)
    stats = cp.progress.trial_log[0].stats
    for value in (1, 2):
        entry = stats.entries.add()
        entry.key.string_value = "k"
        entry.value.int_value = value
    assert both(monkeypatch, cp)["stats.k"] == [2]


def test_a_value_from_term_refuses_is_refused_in_both_modes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cp = make()
    ck.record_trial(cp, score=0.1, stats={"fine": 1})
    ck.record_trial(cp, score=0.2)
    entry = cp.progress.trial_log[1].stats.entries.add()
    entry.key.string_value = "m"
    for key in (Term(int_value=1), Term(float_value=1.0)):  # equal keys in Python
        pair = entry.value.map_value.entries.add()
        pair.key.CopyFrom(key)
        pair.value.null_value.SetInParent()
    message = both_refuse(monkeypatch, cp, InvalidCheckpoint)
    assert "progress.trial_log[1].stats['m']" in message


def test_an_unknown_trial_status_is_refused_in_both_modes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cp = make()
    ck.record_trial(cp, score=0.1)
    cp.progress.trial_log[0].status = 7  # type: ignore[assignment]
    assert ACCEL.trial_columns(cp.progress.SerializeToString(), 1 << 20, print) is None
    assert "progress.trial_log[0].status" in both_refuse(monkeypatch, cp, InvalidCheckpoint)


@pytest.mark.parametrize(("trials", "refused"), [(10, False), (11, True)])
def test_sparse_keys_over_the_cell_limit_are_refused(
    monkeypatch: pytest.MonkeyPatch, trials: int, refused: bool
) -> None:
    monkeypatch.setattr(columns, "MIN_CELL_LIMIT", 100)
    monkeypatch.setattr(columns, "CELLS_PER_BYTE", 0)
    cp = make()
    for i in range(trials):
        ck.record_trial(cp, score=0.1, stats={f"key{i}": i})
    if refused:  # 11 columns x 11 trials > 100
        assert "too many distinct keys" in both_refuse(monkeypatch, cp, ValueError)
    else:  # 10 x 10 cells: exactly the limit
        cols = both(monkeypatch, cp)
        assert cols["stats.key3"] == [None, None, None, 3, *[None] * 6]


def test_the_limit_grows_with_the_checkpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(columns, "MIN_CELL_LIMIT", 0)
    cp = make()
    for i in range(50):
        ck.record_trial(cp, score=0.1, stats={"a": i, "b": i, "c": i})
    assert len(both(monkeypatch, cp)) == len(FIXED) + 3


# --- the C reader against the Python one ----------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(checkpoints(max_trials=8))
def test_generated_checkpoints_give_the_same_columns(cp: Checkpoint) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        cols = both(monkeypatch, cp)
    log = cp.progress.trial_log
    assert cols["trial_idx"] == list(range(len(log)))
    for i, entry in enumerate(log):
        stats = ck.from_term(entry.stats) if entry.HasField("stats") else {}
        for key, value in stats.items():
            assert typed({"v": [cols[f"stats.{key}"][i]]}) == typed({"v": [value]})
        for name in cols:
            if name.startswith("stats.") and name[6:] not in stats:
                assert cols[name][i] is None


def parsed_outcome(data: bytes, fast: Any) -> None:
    """When upb parses `data` as Progress, C's columns are the Python reader's."""
    progress = Progress()
    try:
        progress.ParseFromString(data)
    except Exception:
        return
    cp = Checkpoint()
    cp.progress.CopyFrom(progress)
    if fast is None:
        return
    if fast is False:
        assert outcome(lambda: columns._read(cp))[1] is ValueError
        return
    *fixed, stats = fast
    assert outcome(lambda: columns._read(cp)) == ("ok", typed(columns._assembled(fixed, stats)))


def c_read(data: bytes) -> Any:
    try:
        return ACCEL.trial_columns(data, 1 << 16, columns._term_value)
    except Exception:  # a stats value from_term refuses, or not a Term at all
        return None


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    parsed_outcome(data, c_read(data))


def test_mutated_progress_bytes_never_crash() -> None:
    cp = make()
    rng = random.Random(7)
    for i in range(12):
        ck.record_trial(
            cp,
            score=i / 3 if i % 4 else None,
            status="ok" if i % 5 else "error",
            candidate_id=f"c{i}",
            stats={"n": i, "f": i / 2, "s": "x" * i, "l": [i, (Atom("a"),)], 7: i},
            error={"message": "m"} if i % 5 == 0 else None,
            error_class="E" if i % 5 == 0 else None,
        )
    raw = cp.progress.SerializeToString()
    assert c_read(raw) not in (None, False)
    for _ in range(3000):
        data = bytearray(raw)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(data))
            choice = rng.random()
            if choice < 0.5:
                data[at] = rng.randrange(256)
            elif choice < 0.75:
                del data[at : at + rng.randint(1, 8)]
            else:
                data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        parsed_outcome(bytes(data), c_read(bytes(data)))


def test_deep_and_odd_wire_structures() -> None:
    deep_group = b"\x0b" * 5000 + b"\x0c" * 5000
    for data in (
        deep_group,
        b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
        b"\x0a\x05\x2a\x03\x0a\x01",
        b"\x0a" + b"\xff" * 12,
        b"\x0a\x02\x08\x01" * 3,
    ):
        assert c_read(data) in (None, False) or isinstance(c_read(data), tuple)
    with pytest.raises(TypeError):
        ACCEL.trial_columns("text", 1, print)


def test_bytes_the_reader_does_not_read_as_upb_are_declined() -> None:
    cp = make()
    ck.record_trial(cp, score=0.1, candidate_id="a")
    trial = cp.progress.trial_log[0].SerializeToString() + b"\x12\x01b"  # candidate_id twice
    data = b"\x0a" + bytes([len(trial)]) + trial
    assert ACCEL.trial_columns(data, 1 << 20, print) is None
    progress = Progress.FromString(data)
    assert progress.trial_log[0].candidate_id == "b"  # upb: the last one wins


# --- DataFrame and Table ---------------------------------------------------------


def rich_checkpoint() -> Checkpoint:
    cp = make()
    for i in range(6):
        stats: dict[str, Any] = {
            "always_int": i,
            "sometimes_int": i,
            "mixed": i if i % 2 else i + 0.5,
            "flag": i % 3 == 0,
            "text": f"t{i}",
            "listed": [i],
            "kinds": True if i % 2 else 1,
        }
        if i % 2:
            del stats["sometimes_int"]
        if i == 4:
            stats["big"] = 2**70
        ck.record_trial(
            cp,
            score=None if i == 2 else i / 10,
            status="error" if i == 3 else "ok",
            candidate_id=None if i == 1 else f"c{i}",
            stats=stats,
            duration_ms=100 + i,
            error_class="E" if i == 3 else None,
        )
    return cp


@pytest.mark.parametrize("mode", MODES)
def test_dataframe_shape_and_dtypes(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    set_mode(monkeypatch, mode)
    frame = columns.trials_dataframe(rich_checkpoint())
    assert frame.shape == (6, len(FIXED) + 8)
    assert list(frame.columns) == list(columns.trial_columns(rich_checkpoint()))
    assert list(frame.index) == list(frame["trial_idx"]) == list(range(6))
    dtypes = {name: str(dtype) for name, dtype in frame.dtypes.items()}
    assert dtypes == {
        "trial_idx": "int64",
        "candidate_id": "str",
        "score": "float64",
        "status": "str",
        "duration_ms": "uint64",
        "error_class": "str",
        "stats.always_int": "int64",
        "stats.big": "object",
        "stats.flag": "bool",
        "stats.kinds": "object",
        "stats.listed": "object",
        "stats.mixed": "float64",
        "stats.sometimes_int": "float64",
        "stats.text": "str",
    }
    assert math.isnan(frame["score"][2]) and frame["score"][5] == 0.5
    assert pd.isna(frame["candidate_id"][1]) and frame["candidate_id"][0] == "c0"
    assert list(frame["status"]) == ["ok", "ok", "ok", "error", "ok", "ok"]
    assert frame["error_class"][3] == "E" and pd.isna(frame["error_class"][0])
    assert list(frame["stats.mixed"]) == [0.5, 1.0, 2.5, 3.0, 4.5, 5.0]
    assert math.isnan(frame["stats.sometimes_int"][1]) and frame["stats.sometimes_int"][2] == 2
    assert frame["stats.big"][4] == 2**70 and frame["stats.big"][0] is None
    assert frame["stats.listed"][3] == [3]


@pytest.mark.parametrize("mode", MODES)
def test_arrow_shape_and_types(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    set_mode(monkeypatch, mode)
    table = columns.trials_arrow(rich_checkpoint())
    assert table.num_rows == 6 and table.column_names == list(
        columns.trial_columns(rich_checkpoint())
    )
    types = {name: str(table.schema.field(name).type) for name in table.column_names}
    assert types == {
        "trial_idx": "int64",
        "candidate_id": "string",
        "score": "double",
        "status": "string",
        "duration_ms": "uint64",
        "error_class": "string",
        "stats.always_int": "int64",
        "stats.big": "binary",
        "stats.flag": "bool",
        "stats.kinds": "binary",
        "stats.listed": "list<item: int64>",
        "stats.mixed": "double",
        "stats.sometimes_int": "int64",
        "stats.text": "string",
    }
    assert table["score"].to_pylist() == [0.0, 0.1, None, 0.3, 0.4, 0.5]
    assert table["candidate_id"].to_pylist()[:2] == ["c0", None]
    assert table["stats.sometimes_int"].to_pylist() == [0, None, 2, None, 4, None]
    kinds = [ck.from_term(Term.FromString(raw)) for raw in table["stats.kinds"].to_pylist()]
    assert typed({"k": kinds}) == typed({"k": [1, True, 1, True, 1, True]})
    assert table["stats.big"].to_pylist()[4] == term_bytes(2**70)
    assert table["stats.big"].to_pylist()[0] is None


def test_arrow_mixed_numbers_are_doubles_in_either_order() -> None:
    for values in ((2.5, 1), (1, 2.5)):
        cp = make()
        for value in values:
            ck.record_trial(cp, score=0.1, stats={"x": value})
        table = columns.trials_arrow(cp)
        assert table.schema.field("stats.x").type == pa.float64()
        assert table["stats.x"].to_pylist() == [float(v) for v in values]


def test_arrow_and_dataframe_agree() -> None:
    cp = rich_checkpoint()
    frame = columns.trials_dataframe(cp)
    table = columns.trials_arrow(cp)
    for name in ("trial_idx", "duration_ms", "stats.mixed", "stats.text", "status"):
        assert table[name].to_pylist() == list(frame[name])


# --- the extra -------------------------------------------------------------------


@pytest.fixture
def blocked() -> Iterator[Callable[[str], None]]:
    with pytest.MonkeyPatch.context() as monkeypatch:

        def block(name: str) -> None:
            monkeypatch.setitem(sys.modules, name, None)  # import raises ImportError

        yield block


@pytest.mark.parametrize(
    ("module", "reader"),
    [("pandas", columns.trials_dataframe), ("pyarrow", columns.trials_arrow)],
)
def test_a_missing_extra_is_named(
    blocked: Callable[[str], None], module: str, reader: Callable[[Checkpoint], Any]
) -> None:
    blocked(module)
    with pytest.raises(ImportError, match=r"\[dataframe\]") as caught:
        reader(make())
    assert module in str(caught.value)
    assert "dsxir-checkpoint[dataframe]" in str(caught.value)


def test_the_module_imports_without_the_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['pandas'] = sys.modules['pyarrow'] = None\n"
        "from dsxir.optimizer_session import checkpoint as ck, columns\n"
        "cp = ck.new(session_id='s', optimizer='o', trainset_hash=bytes(32),\n"
        "            sampler_blob=b'', sampler_format=('m', 1))\n"
        "ck.record_trial(cp, score=1.0, stats={'a': 1})\n"
        "print(columns.trial_columns(cp)['stats.a'])\n"
        "try:\n"
        "    columns.trials_dataframe(cp)\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == "[1]"
    assert "pip install 'dsxir-checkpoint[dataframe]'" in out[1]
