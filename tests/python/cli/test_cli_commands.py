"""``dsxir-checkpoint``: missing stores, plain JSON, diff filters, show's stats and best
program, pause/cancel/delete, export, and a history plot for 3 to 100,000 trials.

Most tests run the installed console script (as a user would); those that
need to change the process (a concurrent writer, a terminal on stdin) call
the entry point :func:`dsxir.cli.main.main` in this process.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from dsxir.cli import main as cli_main
from dsxir.cli import manage
from dsxir.cli.exits import Exit
from dsxir.cli.plain import from_plain, term_plain
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session.atom import Atom
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.store import FileStore, open_store
from store_util import make_cp

SCRIPT = Path(sys.executable).parent / "dsxir-checkpoint"
DOCUMENTED = {int(code) for code in Exit}


def run(
    *args: str, cwd: Path | None = None, stdin: Any = subprocess.DEVNULL
) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.exists(), f"{SCRIPT} is not installed: run make setup"
    done = subprocess.run(
        [str(SCRIPT), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=cwd,
        stdin=stdin,
        check=False,
        timeout=120,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode in DOCUMENTED and done.returncode != 70, done.stderr
    return done


def one_error_line(done: subprocess.CompletedProcess[str] | str) -> str:
    text = done if isinstance(done, str) else done.stderr
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert lines[0].startswith("dsxir-checkpoint: error: "), text
    return lines[0]


def in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        cli_main.main(list(args))
    out, err = capsys.readouterr()
    code = exited.value.code
    assert isinstance(code, int) and code in DOCUMENTED and code != 70, (code, err)
    assert "Traceback" not in err
    return code, out, err


# --- a store that does not exist is an error ------------------------------------------------


def test_a_missing_file_store_is_an_error_not_an_empty_store(tmp_path: Path) -> None:
    good = FileStore(tmp_path / "sessions")
    good.put(make_cp("alpha", trials=2))
    typo = tmp_path / "sesions"
    url = f"file:{typo}"
    for args in (
        ["ls", "--store", url],
        ["ls", "--store", url, "--json"],
        ["show", "alpha", "--store", url],
        ["json", "alpha", "--store", url],
        ["history", "alpha", "--store", url],
        ["diff", "alpha", "alpha", "--store", url],
        ["validate", "alpha", "beta", "--store", url],
        ["export", "alpha", "--store", url],
        ["pause", "alpha", "--store", url],
        ["cancel", "alpha", "--store", url],
        ["delete", "alpha", "--yes", "--store", url],
    ):
        done = run(*args)
        assert done.returncode == Exit.NOT_FOUND == 4, (args, done.stdout, done.stderr)
        line = one_error_line(done)
        assert f"no store at {url}" in line and str(typo) in line, line
        assert "0 sessions" not in done.stdout
    assert not typo.exists()  # nothing was created
    relative = run("ls", "--store", "file:sesions", cwd=tmp_path)
    assert relative.returncode == 4
    assert "file:sesions" in one_error_line(relative)
    assert run("ls", "--store", f"file:{tmp_path / 'sessions'}").returncode == 0


def test_a_store_path_that_is_a_file_is_an_io_error(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("x")
    done = run("ls", "--store", f"file:{tmp_path / 'plain'}")
    assert done.returncode == Exit.IO_ERROR
    assert "is not a folder" in one_error_line(done)


def test_memory_stores_are_not_refused() -> None:
    done = run("ls", "--store", "memory:", "--json")
    assert done.returncode == 0 and json.loads(done.stdout) == []


# --- plain JSON -----------------------------------------------------------------------------

VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    30,
    -7,
    2**63 - 1,
    -(2**63),
    2**70,
    -(2**70),
    10**5000,
    -(10**5000),
    0.0,
    -0.0,
    3.0,
    1e-07,
    1.5e300,
    math.inf,
    -math.inf,
    "",
    "seed",
    "$atom",
    "caf\u00e9 \x1b",
    b"",
    b"\x00\xff",
    Atom("fast"),
    [],
    [1, "a", [2.5]],
    (),
    (3, b"\x00\xff"),
    {},
    {"seed": 7, "nested": {"a": [1, 2]}},
    {1: 0.5, "b": 2.5},
    {"$atom": "x"},
    {"$bytes": 1, "plain": 2},
    {(1, 2): "tuple key", Atom("k"): None, b"k": True},
]


@pytest.mark.parametrize(
    "value", VALUES, ids=[f"{i}-{type(v).__name__}" for i, v in enumerate(VALUES)]
)
def test_plain_json_maps_back_to_the_exact_term(value: Any) -> None:
    term = checkpoint.to_term(value)
    text = json.dumps(term_plain(term), allow_nan=False)  # plain JSON: no NaN, no Infinity
    again = from_plain(json.loads(text))
    assert again.SerializeToString(deterministic=True) == term.SerializeToString(deterministic=True)


def test_plain_json_keeps_keys_python_would_merge() -> None:
    # true, 1 and 1.0 are three keys of one Term map (one key of a Python dict)
    plain = {"$map": [[True, "bool"], [1, "int"], [1.0, "float"], [[1], "list"]]}
    term = from_plain(plain)
    assert len(term.map_value.entries) == 4
    again = term_plain(term)
    assert sorted(map(json.dumps, again["$map"])) == sorted(map(json.dumps, plain["$map"]))
    assert from_plain(json.loads(json.dumps(again))) == term


def test_plain_json_refuses_unknown_wrappers() -> None:
    from dsxir.cli.plain import PlainError

    for bad in ({"$nope": 1}, {"$atom": "x", "y": 1}, {"$float": "inf"}, {"$bytes": "%%"}):
        with pytest.raises(PlainError):
            from_plain(bad)


def test_plain_json_forms() -> None:
    def plain(value: Any) -> Any:
        return term_plain(checkpoint.to_term(value))

    assert plain(30) == 30 and plain(2**70) == 2**70
    assert plain(10**5000) == {"$int": hex(10**5000)}
    assert plain(math.inf) == {"$float": "Infinity"}
    assert plain(-math.inf) == {"$float": "-Infinity"}
    assert plain(b"\x00\xff") == {"$bytes": "AP8="}
    assert plain(Atom("fast")) == {"$atom": "fast"}
    assert plain((1, "a")) == {"$tuple": [1, "a"]}
    assert plain({"seed": 7}) == {"seed": 7}
    assert plain({1: "a"}) == {"$map": [[1, "a"]]}
    assert plain({"$atom": "x"}) == {"$map": [["$atom", "x"]]}  # never read as an atom
    assert json.dumps(plain(3.0)) == "3.0"  # floats keep a fraction


def test_show_and_diff_json_are_plain(tmp_path: Path) -> None:
    options = [
        ("seed", 30),
        ("mode", Atom("fast")),
        ("shape", (3, b"\x00\xff")),
        ("weights", {1: 0.5, "b": 2.5}),
        ("limit", math.inf),
        ("huge", 10**5000),
    ]
    a = make_cp("p", optimizer_opts=options)
    checkpoint.record_trial(
        a, score=1.0, stats={"loss": 0.25, "tags": ["x"]}, best_program_artifact={"k": "v"}
    )
    checkpoint.complete(a, reason=Atom("done"))
    b = Checkpoint()
    b.CopyFrom(a)
    b.optimizer_opts[0].value.CopyFrom(checkpoint.to_term(31))
    b.optimizer = "other"
    (tmp_path / "a").write_bytes(checkpoint.encode(a))
    (tmp_path / "b").write_bytes(checkpoint.encode(b))

    doc = json.loads(run("show", str(tmp_path / "a"), "--json").stdout)
    opts = {o["key"]: o["value"] for o in doc["optimizer_opts"]}
    assert opts["seed"] == 30  # not {"intValue": "30"}
    assert opts["mode"] == {"$atom": "fast"}
    assert opts["shape"] == {"$tuple": [3, {"$bytes": "AP8="}]}
    assert opts["weights"] == {"$map": [[1, 0.5], ["b", 2.5]]}
    assert opts["limit"] == {"$float": "Infinity"}
    assert opts["huge"] == {"$int": hex(10**5000)}
    assert doc["terminal_reason"] == {"$atom": "done"}
    assert doc["last_trials"][0]["stats"] == {"loss": 0.25, "tags": ["x"]}
    assert doc["best_program_artifact"] == {"k": "v"}
    for key, value in options:
        original = checkpoint.to_term(value).SerializeToString(deterministic=True)
        assert from_plain(opts[key]).SerializeToString(deterministic=True) == original

    differ = json.loads(run("diff", str(tmp_path / "a"), str(tmp_path / "b"), "--json").stdout)
    fields = {f["path"]: f for f in differ["fields"]}
    assert fields["optimizer_opts[0].value"] == {
        "path": "optimizer_opts[0].value",
        "a": 30,
        "b": 31,
    }
    assert fields["optimizer"] == {"path": "optimizer", "a": "test.Opt", "b": "other"}

    proto = json.loads(run("json", str(tmp_path / "a")).stdout)  # unchanged: proto3 JSON
    assert proto["optimizerOpts"][0]["value"] == {"intValue": "30"}


def test_diff_json_leaves_out_an_absent_side(tmp_path: Path) -> None:
    a = make_cp("z")
    b = Checkpoint()
    b.CopyFrom(a)
    b.program_module = "mod.x"
    (tmp_path / "a").write_bytes(checkpoint.encode(a))
    (tmp_path / "b").write_bytes(checkpoint.encode(b))
    doc = json.loads(run("diff", str(tmp_path / "a"), str(tmp_path / "b"), "--json").stdout)
    assert doc["fields"] == [{"path": "program_module", "b": "mod.x"}]


# --- diff: --ignore, --ignore-times, --all ---------------------------------------------------


def _timed_pair(tmp_path: Path, trials: int = 12) -> tuple[str, str]:
    """Two runs that differ in their timestamps and durations only."""
    a = make_cp("d", optimizer_opts={"seed": 7})
    for i in range(trials):
        checkpoint.record_trial(a, score=i / 10, duration_ms=10 + i, stats={"k": i})
    b = Checkpoint()
    b.CopyFrom(a)
    for stamp in (b.created_at, b.updated_at, b.progress.started_at):
        stamp.seconds += 60
    for entry in b.progress.trial_log:
        entry.duration_ms += 100
    (tmp_path / "a").write_bytes(checkpoint.encode(a))
    (tmp_path / "b").write_bytes(checkpoint.encode(b))
    return str(tmp_path / "a"), str(tmp_path / "b")


def test_diff_ignore_times(tmp_path: Path) -> None:
    a, b = _timed_pair(tmp_path)
    plain = run("diff", a, b)
    assert plain.returncode == 1
    assert "updated_at:" in plain.stdout and "trial_log[0].duration_ms" in plain.stdout
    quiet = run("diff", a, b, "--ignore-times")
    assert quiet.returncode == 0, quiet.stdout
    assert "identical (but for the ignored fields)" in quiet.stdout
    assert "ignoring: created_at, updated_at, progress.trial_log[].duration_ms" in quiet.stdout
    assert "updated_at:" not in quiet.stdout.split("ignoring:", 1)[1].split("\n", 1)[1]
    doc = json.loads(run("diff", a, b, "--ignore-times", "--json").stdout)
    assert doc["identical"] is True and doc["fields"] == []
    assert "progress.started_at" in doc["ignored"]


def test_diff_ignore_fields_one_by_one(tmp_path: Path) -> None:
    a, b = _timed_pair(tmp_path)
    stamps = ["--ignore", "updated_at", "--ignore", "created_at", "--ignore", "progress.started_at"]
    some = run("diff", a, b, *stamps, "--json")
    assert some.returncode == 1
    doc = json.loads(some.stdout)
    assert doc["fields"] == [] and len(doc["trial_log"]["differing"]) == 12
    every = run("diff", a, b, *stamps, "--ignore", "progress.trial_log[].duration_ms")
    assert every.returncode == 0, every.stdout
    also = run("diff", a, b, *stamps, "--ignore", "progress.trial_log.duration_ms")
    assert also.returncode == 0  # no index: every entry
    one = json.loads(
        run("diff", a, b, *stamps, "--ignore", "progress.trial_log[3].duration_ms", "--json").stdout
    )
    assert 3 not in one["trial_log"]["differing"] and len(one["trial_log"]["differing"]) == 11
    whole = run("diff", a, b, *stamps, "--ignore", "progress.trial_log")
    assert whole.returncode == 0 and "trial_log: ignored" in whole.stdout


@pytest.mark.parametrize(
    ("field", "needle"),
    [
        ("updatd_at", "no field 'updatd_at'"),
        ("progress.trial_log[].durations", "TrialLogEntry has no field 'durations'"),
        ("created_at.seconds", "created_at is one value"),
        ("format[0]", "format is not a list"),
        ("progress..x", "is not a field path"),
    ],
)
def test_diff_refuses_a_field_the_schema_does_not_have(
    tmp_path: Path, field: str, needle: str
) -> None:
    a, b = _timed_pair(tmp_path, trials=1)
    done = run("diff", a, b, "--ignore", field)
    assert done.returncode == Exit.USAGE
    assert needle in one_error_line(done)


def test_diff_all_lists_every_differing_entry(tmp_path: Path) -> None:
    a, b = _timed_pair(tmp_path)
    short = run("diff", a, b)
    assert short.stdout.count("].duration_ms:") == 5
    assert "… and 7 more differing entries (--all shows them)" in short.stdout
    full = run("diff", a, b, "--all")
    assert full.stdout.count("].duration_ms:") == 12 and "more differing" not in full.stdout
    doc = json.loads(run("diff", a, b, "--json").stdout)["trial_log"]
    assert len(doc["details"]) == 5 and doc["details_left_out"] == 7
    assert len(doc["differing"]) == 12
    everything = json.loads(run("diff", a, b, "--json", "--all").stdout)["trial_log"]
    assert len(everything["details"]) == 12 and everything["details_left_out"] == 0
    assert everything["details"][11]["fields"] == [{"path": "duration_ms", "a": 21, "b": 121}]


# --- show: stats and the best program ------------------------------------------------------


def test_show_prints_stats_and_the_best_program(tmp_path: Path) -> None:
    cp = make_cp("s", trials=2)
    checkpoint.record_trial(
        cp,
        score=0.9,
        stats={"loss": 0.25, "eval": {"acc": 0.5}, "note": "n" * 200},
        best_program_artifact={
            "instructions": "Answer briefly",
            "demos": [{"q": "2+2", "a": "4"}, {"q": "x", "a": "y"}],
            "temperature": 0.7,
        },
    )
    path = tmp_path / "s.binpb"
    path.write_bytes(checkpoint.encode(cp))
    done = run("show", str(path))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "stats" in out and "i=0" in out and "i=1" in out
    assert 'eval={"acc": 0.5} loss=0.25 note="nnn' in out
    assert "n" * 100 not in out  # cut to 60 characters
    assert "stats of 1 trial cut to 60 characters (--full shows them whole)" in out
    assert "best program (3 keys):" in out
    for line in (
        "  demos:",
        '    - a: "4"',
        '      q: "2+2"',
        '    - a: "y"',
        "  temperature: 0.7",
        '  instructions: "Answer briefly"',
    ):
        assert line + "\n" in out, line
    full = run("show", str(path), "--full")
    assert "n" * 200 in full.stdout.replace("│", "").replace("\n", "").replace(" ", "")
    assert "cut to 60" not in full.stdout


def test_show_cuts_a_long_best_program(tmp_path: Path) -> None:
    cp = make_cp("s")
    checkpoint.record_trial(
        cp, score=1.0, best_program_artifact={f"k{i:03d}": i for i in range(100)}
    )
    path = tmp_path / "s.binpb"
    path.write_bytes(checkpoint.encode(cp))
    out = run("show", str(path)).stdout
    assert "  k029: 29\n" in out and "k030" not in out
    assert "… 70 more lines (--full shows the whole program)" in out
    full = run("show", str(path), "--full").stdout
    assert "  k099: 99\n" in full and "more lines" not in full
    none = tmp_path / "none.binpb"
    none.write_bytes(checkpoint.encode(make_cp("n", trials=1)))
    assert "best program: - (none stored)" in run("show", str(none)).stdout


# --- pause, cancel, delete --------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> tuple[FileStore, str]:
    folder = tmp_path / "store"
    files = FileStore(folder)
    files.put(make_cp("run", trials=3))
    done = make_cp("done", trials=1)
    checkpoint.complete(done)
    files.put(done)
    return files, f"file:{folder}"


def test_pause_and_cancel(store: tuple[FileStore, str]) -> None:
    files, url = store
    paused = run("pause", "run", "--store", url)
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout == 'paused session "run": generation 1 -> 2\n'
    stored = files.get("run")
    assert checkpoint.status_name(stored.checkpoint) == "paused" and stored.generation == 2
    assert len(stored.checkpoint.progress.trial_log) == 3

    again = run("pause", "run", "--store", url)
    assert again.returncode == Exit.NOT_ALLOWED == 9
    assert (
        'cannot pause session "run": it is paused (only a running session can be paused)'
        in one_error_line(again)
    )
    assert files.get("run").generation == 2

    cancelled = run("cancel", "run", "--store", url, "--reason", "superseded")
    assert cancelled.returncode == 0, cancelled.stderr
    stored = files.get("run")
    assert checkpoint.status_name(stored.checkpoint) == "cancelled"
    assert checkpoint.from_term(stored.checkpoint.terminal_reason) == "superseded"
    assert stored.generation == 3

    for args in (["cancel", "run"], ["pause", "done"], ["cancel", "done"]):
        refused = run(*args, "--store", url)
        assert refused.returncode == 9, args
        assert "nothing was written" in one_error_line(refused)
    missing = run("pause", "nobody", "--store", url)
    assert missing.returncode == 4
    assert 'no session "nobody"' in one_error_line(missing)
    bad_id = run("cancel", "../x", "--store", url)
    assert bad_id.returncode == 2
    one_error_line(bad_id)


def test_cancel_refuses_a_secret_reason(store: tuple[FileStore, str]) -> None:
    files, url = store
    done = run("cancel", "run", "--store", url, "--reason", "password=hunter2")
    assert done.returncode == Exit.USAGE
    line = one_error_line(done)
    assert "--reason" in line and "secret" in line and "hunter2" not in line
    assert "redact_secrets" not in line
    assert checkpoint.status_name(files.get("run").checkpoint) == "running"


@pytest.mark.parametrize("command", ["pause", "cancel"])
def test_pause_and_cancel_commit_with_compare_and_swap(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"memory:cli-cas-{command}"
    shared = open_store(url)
    shared.put(make_cp("run", trials=1))
    transition = getattr(checkpoint, command)

    def concurrent_commit(cp: Checkpoint, *args: Any, **kw: Any) -> None:
        other = shared.get("run")  # the optimizer commits a trial in between
        checkpoint.record_trial(other.checkpoint, score=5.0)
        shared.put(other.checkpoint, expected_generation=other.generation)
        transition(cp, *args, **kw)

    monkeypatch.setattr(manage.checkpoint, command, concurrent_commit)
    code, out, err = in_process(capsys, command, "run", "--store", url)
    assert code == Exit.CONFLICT == 8
    line = one_error_line(err)
    assert "read at generation 1, now at generation 2" in line
    assert "nothing was written" in line and out == ""
    kept = shared.get("run")
    assert kept.generation == 2 and checkpoint.status_name(kept.checkpoint) == "running"
    assert len(kept.checkpoint.progress.trial_log) == 2


def test_delete_needs_a_yes(store: tuple[FileStore, str]) -> None:
    files, url = store
    refused = run("delete", "run", "--store", url)  # stdin is not a terminal
    assert refused.returncode == Exit.USAGE
    assert "stdin is not a terminal (pass --yes to delete)" in one_error_line(refused)
    assert files.get("run").generation == 1
    with open(os.devnull) as devnull:
        assert run("delete", "run", "--store", url, stdin=devnull).returncode == 2
    done = run("delete", "run", "--store", url, "--yes")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith('deleted session "run" (running, 3 trials, generation 1)')
    assert files.list() and [item.session_id for item in files.list()] == ["done"]
    gone = run("delete", "run", "--store", url, "--yes")
    assert gone.returncode == 4
    assert 'no session "run"' in one_error_line(gone)


def test_delete_asks_on_a_terminal(
    store: tuple[FileStore, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files, url = store
    monkeypatch.setattr(manage, "_stdin_is_terminal", lambda: True)
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    code, out, err = in_process(capsys, "delete", "run", "--store", url)
    assert code == Exit.FOUND_PROBLEMS
    assert 'delete session "run" (running, 3 trials, generation 1) from file:' in err
    assert 'session "run" not deleted (not confirmed)' in err
    assert files.get("run").generation == 1
    monkeypatch.setattr(sys, "stdin", io.StringIO("y\n"))
    code, out, err = in_process(capsys, "delete", "run", "--store", url)
    assert code == 0, err
    assert 'deleted session "run"' in out
    assert [item.session_id for item in files.list()] == ["done"]


def test_delete_does_not_delete_a_session_that_changed_while_asking(
    store: tuple[FileStore, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files, url = store
    monkeypatch.setattr(manage, "_stdin_is_terminal", lambda: True)

    def answer_while_a_writer_commits(*args: Any, **kw: Any) -> bool:
        stored = files.get("run")
        checkpoint.record_trial(stored.checkpoint, score=9.0)
        files.put(stored.checkpoint, expected_generation=stored.generation)
        return True

    monkeypatch.setattr(manage.click, "confirm", answer_while_a_writer_commits)
    code, _, err = in_process(capsys, "delete", "run", "--store", url)
    assert code == Exit.CONFLICT
    assert "changed while asking (generation 1 -> 2)" in one_error_line(err)
    assert files.get("run").generation == 2


def test_delete_removes_a_damaged_session(store: tuple[FileStore, str]) -> None:
    files, url = store
    path = Path(files.file_path("run"))
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    assert run("show", "run", "--store", url).returncode == 5
    assert run("pause", "run", "--store", url).returncode == 5
    done = run("delete", "run", "--store", url, "--yes")
    assert done.returncode == 0, done.stderr
    assert "damaged" in done.stdout and not path.exists()


# --- export -------------------------------------------------------------------------------------


def _export_cp() -> Checkpoint:
    cp = make_cp("e")
    checkpoint.record_trial(
        cp,
        score=0.5,
        candidate_id="c0",
        duration_ms=12,
        stats={"loss": 0.25, "eval": {"acc": 0.5, "f1": 0.4}, "tags": ["a", "b"], "ok": True},
    )
    checkpoint.record_trial(cp, score=None, status="error", error=ValueError("boom"))
    checkpoint.record_trial(
        cp, score=math.inf, candidate_id="=HYPERLINK(1)", stats={"loss": 0.1, "n": None}
    )
    checkpoint.record_trial(cp, score=-1.5, stats={"big": 2**70, "who": Atom("me")})
    return cp


def test_export_csv(tmp_path: Path) -> None:
    path = tmp_path / "e.binpb"
    path.write_bytes(checkpoint.encode(_export_cp()))
    done = run("export", str(path), "--format", "csv")
    assert done.returncode == 0, done.stderr
    rows = list(csv.reader(io.StringIO(done.stdout)))
    assert rows[0] == [
        "trial_idx",
        "status",
        "score",
        "candidate_id",
        "duration_ms",
        "stats.ok",
        "stats.eval.f1",
        "stats.eval.acc",
        "stats.loss",
        "stats.tags",
        "stats.n",
        "stats.big",
        "stats.who",
    ]
    table = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert len(table) == 4
    assert table[0]["score"] == "0.5" and table[0]["stats.eval.acc"] == "0.5"
    assert table[0]["stats.ok"] == "true" and table[0]["stats.tags"] == '["a","b"]'
    assert table[0]["duration_ms"] == "12"
    assert table[1]["status"] == "error" and table[1]["score"] == ""
    assert table[2]["score"] == "inf" and table[2]["candidate_id"] == "'=HYPERLINK(1)"
    assert table[2]["stats.n"] == "" and table[2]["stats.eval.acc"] == ""
    assert table[3]["score"] == "-1.5" and table[3]["stats.big"] == str(2**70)
    assert table[3]["stats.who"] == '{"$atom":"me"}'


def test_export_csv_escapes_control_characters(tmp_path: Path) -> None:
    cp = make_cp("x")
    checkpoint.record_trial(
        cp, score=1.0, candidate_id="c\x1b[31mred", stats={"k\u202e": "line\nbreak", "f": "-1"}
    )
    path = tmp_path / "x.binpb"
    path.write_bytes(checkpoint.encode(cp))
    done = run("export", str(path))
    assert "\x1b" not in done.stdout and "\u202e" not in done.stdout
    rows = list(csv.reader(io.StringIO(done.stdout)))
    assert len(rows) == 2  # the newline inside the stat does not split the row
    table = dict(zip(rows[0], rows[1], strict=True))
    assert table["candidate_id"] == "c\\x1b[31mred"
    assert table["stats.k\\u202e"] == "line\\x0abreak"
    assert table["stats.f"] == "'-1"  # a string that a spreadsheet would read as a formula
    jsonl = json.loads(run("export", str(path), "--format", "jsonl").stdout)
    assert jsonl["candidate_id"] == "c\x1b[31mred"  # exact
    assert jsonl["stats"] == {"f": "-1", "k\u202e": "line\nbreak"}


def test_export_jsonl_to_a_file_and_from_a_store(tmp_path: Path) -> None:
    files = FileStore(tmp_path / "store")
    files.put(_export_cp())
    out = tmp_path / "e.jsonl"
    done = run(
        "export", "e", "--store", f"file:{tmp_path / 'store'}", "--format", "jsonl", "-o", str(out)
    )
    assert done.returncode == 0 and done.stdout == ""
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["trial_idx"] for line in lines] == [0, 1, 2, 3]
    assert lines[0]["stats"] == {
        "eval": {"acc": 0.5, "f1": 0.4},
        "loss": 0.25,
        "ok": True,
        "tags": ["a", "b"],
    }
    assert lines[1]["error"] == {"class": "ValueError", "message": "boom"}
    assert lines[1]["error_class"] == "ValueError"
    assert lines[2]["score"] == "Infinity" and lines[2]["candidate_id"] == "=HYPERLINK(1)"
    assert lines[3]["stats"] == {"big": 2**70, "who": {"$atom": "me"}}


def test_export_failures_are_one_line(tmp_path: Path) -> None:
    missing = run("export", str(tmp_path / "missing"))
    assert missing.returncode == 4
    one_error_line(missing)
    path = tmp_path / "e.binpb"
    path.write_bytes(checkpoint.encode(_export_cp()))
    bad_format = run("export", str(path), "--format", "xlsx")
    assert bad_format.returncode == 2
    one_error_line(bad_format)
    unwritable = run("export", str(path), "-o", str(tmp_path / "no" / "dir.csv"))
    assert unwritable.returncode == 6
    one_error_line(unwritable)


# --- history --plot -----------------------------------------------------------------------------


def _bulk_cp(count: int, score: Any, status: Any = lambda i: 1) -> Checkpoint:
    """A checkpoint of ``count`` trials, built without record_trial (fast)."""
    cp = make_cp("bulk")
    progress = cp.progress
    best: float | None = None
    for i in range(count):
        ok = status(i) == 1
        entry = progress.trial_log.add(trial_idx=i, status=1 if ok else 2, duration_ms=1)
        value = score(i) if ok else None
        if value is not None:
            entry.score = value
            if best is None or value > best:
                best = value
                progress.best_score = value
                progress.best_trial_idx = i
        progress.attempts += 1
        progress.completed += ok
        progress.errors += not ok
    return cp


def _collection(figure: Any, gid: str) -> Any:
    axes = figure.axes[0]
    found = [c for c in axes.collections if c.get_gid() == gid]
    assert len(found) == 1, [c.get_gid() for c in axes.collections]
    return found[0]


def _drawn(figure: Any) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return canvas.get_renderer()


def test_plot_shows_error_trials_before_the_first_ok_trial() -> None:
    pytest.importorskip("matplotlib")
    from dsxir.cli.plot import history_figure

    cp = make_cp("e4")
    for _ in range(4):
        checkpoint.record_trial(cp, score=None, status="error", error=ValueError("x"))
    for score in (0.1, 0.3, 0.2):
        checkpoint.record_trial(cp, score=score)
    figure, summary = history_figure(cp)
    axes = figure.axes[0]
    low, high = axes.get_xlim()
    assert low < 0 and high > 6
    errors = _collection(figure, "error").get_offsets()
    assert sorted(errors[:, 0].tolist()) == [0, 1, 2, 3]
    bottom, top = axes.get_ylim()
    assert all(bottom < y < top for y in errors[:, 1].tolist())
    assert max(errors[:, 1].tolist()) < 0.1  # under every score
    assert summary.errors == 4 and summary.trials == 7


def test_plot_legend_does_not_cover_the_data() -> None:
    pytest.importorskip("matplotlib")
    from dsxir.cli.plot import history_figure

    cp = make_cp("legend")
    for i in range(40):  # scores high at the right edge, where the legend used to sit
        checkpoint.record_trial(cp, score=float(i))
    checkpoint.record_trial(cp, score=None, status="error", error=ValueError("x"))
    figure, _ = history_figure(cp)
    renderer = _drawn(figure)
    axes = figure.axes[0]
    legend = axes.get_legend()
    assert legend is not None
    box = legend.get_window_extent(renderer)
    area = axes.get_window_extent(renderer)
    assert box.x0 >= area.x1 or box.y0 >= area.y1  # outside the data area
    assert box.x1 <= figure.bbox.x1 + 1  # and inside the image


def test_plot_draws_infinite_scores_on_the_edges(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from dsxir.cli.plot import history_figure

    cp = make_cp("inf")
    for score in (0.1, math.inf, 0.3, -math.inf, 0.2, math.inf):
        checkpoint.record_trial(cp, score=score)
    figure, summary = history_figure(cp)
    axes = figure.axes[0]
    bottom, top = axes.get_ylim()
    assert math.isfinite(bottom) and math.isfinite(top) and top > 0.3
    plus = _collection(figure, "+inf").get_offsets()
    minus = _collection(figure, "-inf").get_offsets()
    assert plus[:, 0].tolist() == [1, 5] and plus[:, 1].tolist() == [top, top]
    assert minus[:, 0].tolist() == [3] and minus[:, 1].tolist() == [bottom]
    assert summary.positive_infinite == 2 and summary.negative_infinite == 1
    assert "2 scored +inf (^ on the top edge); 1 scored -inf" in axes.get_title()
    labels = [text.get_text() for text in axes.get_legend().get_texts()]
    assert "score +inf (2, top edge)" in labels and "score -inf (1, bottom edge)" in labels
    path = tmp_path / "inf.binpb"
    path.write_bytes(checkpoint.encode(cp))
    done = run("history", str(path), "--plot", str(tmp_path / "inf.png"))
    assert done.returncode == 0, done.stderr
    assert "6 trials, 0 errors, 3 infinite scores drawn on the axis edge" in done.stdout


def test_plot_of_three_trials() -> None:
    pytest.importorskip("matplotlib")
    from dsxir.cli.plot import history_figure

    cp = make_cp("three", trials=3)
    figure, summary = history_figure(cp)
    assert summary.bucket_size == 1 and summary.notes == []
    assert _collection(figure, "score").get_offsets()[:, 0].tolist() == [0, 1, 2]


def test_plot_of_100000_trials_is_quick_and_keeps_each_buckets_extremes(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from dsxir.cli.plot import history_figure, write_history_plot

    def score(i: int) -> float:
        if i == 54_321:
            return 50.0  # a spike
        if i == 77_777:
            return -40.0  # a dip
        return 0.5 + 0.001 * ((i * 7919) % 101)

    def status(i: int) -> int:
        return 2 if i in (33_333, 99_999) or i < 4 else 1

    cp = _bulk_cp(100_000, score, status)
    out = tmp_path / "big.png"
    started = time.monotonic()
    summary = write_history_plot(cp, str(out))
    elapsed = time.monotonic() - started
    assert elapsed < 10, elapsed  # about one second on a laptop
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
    assert summary.trials == 100_000 and summary.errors == 6 and summary.bucket_size == 100
    figure, _ = history_figure(cp)
    points = {tuple(p) for p in _collection(figure, "score").get_offsets().tolist()}
    assert (54_321, 50.0) in points and (77_777, -40.0) in points
    assert len(points) <= 3 * 1000  # downsampled, not 100,000 points
    errors = sorted(_collection(figure, "error").get_offsets()[:, 0].tolist())
    assert errors == [0, 3, 33_333, 99_999]  # each bucket's first and last error
    low, high = figure.axes[0].get_xlim()
    assert low < 0 and high > 99_999
    bottom, top = figure.axes[0].get_ylim()
    assert bottom < -40 and top > 50
    assert "100000 trials in buckets of 100" in figure.axes[0].get_title()
