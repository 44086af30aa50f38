"""``dsxir-checkpoint`` end to end, through the installed console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from dsxir.optimizer_session import checkpoint
from dsxir.store import FileStore
from store_util import make_cp

SCRIPT = Path(sys.executable).parent / "dsxir-checkpoint"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def run(
    *args: str, stdin: bytes | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.exists(), f"{SCRIPT} is not installed: run make setup"
    done = subprocess.run(
        [str(SCRIPT), *args],
        input=stdin.decode("latin-1") if stdin is not None else None,
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def run_bytes(*args: str, stdin: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([str(SCRIPT), *args], input=stdin, capture_output=True, check=False)


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("dsxir-checkpoint: error: ")
    return lines[0]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A store with two sessions, and checkpoint files in every form."""
    store = FileStore(tmp_path / "store")
    a = make_cp("alpha", trials=4, optimizer_opts={"seed": 7})
    checkpoint.record_trial(a, score=None, status="error", error=ValueError("boom"))
    generation = store.put(a)
    checkpoint.record_trial(a, score=2.5, candidate_id="best")
    store.put(a, expected_generation=generation)
    b = make_cp("beta", optimizer="other.Opt")
    checkpoint.complete(b, reason="done")
    store.put(b)
    out = {"store": tmp_path / "store", "binary": tmp_path / "alpha.binpb"}
    out["binary"].write_bytes(checkpoint.encode(a))
    out["json"] = tmp_path / "alpha.json"
    out["json"].write_text(checkpoint.to_json(a))
    out["framed"] = tmp_path / "store" / "alpha.dsxckpt"
    shorter = make_cp("alpha", trials=3, optimizer_opts={"seed": 8})
    out["other"] = tmp_path / "other.binpb"
    out["other"].write_bytes(checkpoint.encode(shorter))
    out["garbage"] = tmp_path / "garbage.binpb"
    out["garbage"].write_bytes(b"\x0a\x05hello\xff\xff")
    return out


def test_help_documents_the_exit_codes() -> None:
    done = run("--help")
    assert done.returncode == 0
    for word in (
        "show",
        "ls",
        "json",
        "from-json",
        "validate",
        "diff",
        "history",
        "export",
        "pause",
        "cancel",
        "delete",
        "Exit codes",
    ):
        assert word in done.stdout
    for code in range(10):
        assert f"  {code}  " in done.stdout
    assert "Exit codes" in run("show", "--help").stdout


def test_show_a_file(files: dict[str, Path]) -> None:
    done = run("show", str(files["binary"]))
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "alpha" in out and "running" in out and "test.Sampler v1" in out
    assert "best        2.5 at trial 5" in out
    assert "attempts 6, completed 5, errors 1" in out
    assert "seed = 7" in out


@pytest.mark.parametrize("form", ["binary", "json", "framed"])
def test_show_json_reads_every_form(files: dict[str, Path], form: str) -> None:
    done = run("show", str(files[form]), "--json", "--last", "2")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["session_id"] == "alpha"
    assert doc["status"] == "running"
    assert doc["sampler_format"] == {"module": "test.Sampler", "version": 1}
    assert doc["counters"] == {"trials": 6, "attempts": 6, "completed": 5, "errors": 1}
    assert doc["best"] == {"score": 2.5, "trial_idx": 5}
    assert [t["trial_idx"] for t in doc["last_trials"]] == [4, 5]
    assert doc["last_trials"][0]["status"] == "error"
    assert doc["last_trials"][0]["error_class"] == "ValueError"
    assert doc["generation"] == (2 if form == "framed" else None)


def test_show_from_stdin_and_from_a_store(files: dict[str, Path]) -> None:
    done = run_bytes("show", "-", "--json", stdin=files["binary"].read_bytes())
    assert done.returncode == 0 and json.loads(done.stdout)["session_id"] == "alpha"
    done_store = run("show", "--store", f"file:{files['store']}", "beta", "--json")
    doc = json.loads(done_store.stdout)
    assert doc["status"] == "completed" and doc["generation"] == 1
    assert doc["terminal_reason"] == "done"  # plain JSON, not proto3 JSON


def test_show_errors_are_one_line_with_their_exit_code(
    files: dict[str, Path], tmp_path: Path
) -> None:
    store = f"file:{files['store']}"
    cases: list[tuple[list[str], int, str]] = [
        (["show", str(tmp_path / "missing.binpb")], 4, "no such file"),
        (["show", str(files["garbage"])], 3, "checkpoint_shape: <input>"),
        (["show", "--store", store, "nobody"], 4, 'no session "nobody"'),
        (["show", "--store", store, "../escape"], 2, "invalid session id"),
        (["show", "--store", "ftp://x", "alpha"], 2, "unknown store URL"),
        (["show", str(tmp_path)], 6, "is a directory"),
        (["show", "--no-such-option", "x"], 2, "No such option"),
        (["ls", "--status", "bogus"], 2, "bogus"),
    ]
    for args, code, needle in cases:
        done = run(*args)
        assert done.returncode == code, (args, done.stderr)
        assert needle in one_error_line(done)


def test_a_damaged_store_file_names_the_file(files: dict[str, Path]) -> None:
    data = bytearray(files["framed"].read_bytes())
    data[-1] ^= 0x01
    files["framed"].write_bytes(bytes(data))
    done = run("show", "--store", f"file:{files['store']}", "alpha")
    assert done.returncode == 5
    line = one_error_line(done)
    assert str(files["framed"]) in line and "checksum mismatch" in line
    direct = run("show", str(files["framed"]))
    assert direct.returncode == 5


def test_ls(files: dict[str, Path], tmp_path: Path) -> None:
    store = f"file:{files['store']}"
    done = run("ls", "--store", store)
    assert done.returncode == 0
    assert "alpha" in done.stdout and "beta" in done.stdout and "2 sessions" in done.stdout
    listed = json.loads(run("ls", "--store", store, "--json").stdout)
    assert [(i["session_id"], i["status"], i["generation"]) for i in listed] == [
        ("alpha", "running", 2),
        ("beta", "completed", 1),
    ]
    assert listed[0]["best_score"] == 2.5 and listed[0]["errors"] == 1
    only = json.loads(run("ls", "--store", store, "--status", "completed", "--json").stdout)
    assert [i["session_id"] for i in only] == ["beta"]
    other = json.loads(run("ls", "--store", store, "--optimizer", "other.Opt", "--json").stdout)
    assert [i["session_id"] for i in other] == ["beta"]
    later = run("ls", "--store", store, "--updated-since", "2999-01-01T00:00:00Z", "--json")
    assert json.loads(later.stdout) == []
    bad_time = run("ls", "--store", store, "--updated-since", "yesterday")
    assert bad_time.returncode == 2
    default = run("ls", "--json", cwd=tmp_path)  # the default store: .dsxir/sessions
    assert default.returncode == 4 and default.stdout == ""  # no such store, not "0 sessions"
    assert ".dsxir/sessions does not exist" in one_error_line(default)
    (tmp_path / ".dsxir" / "sessions").mkdir(parents=True)
    empty = run("ls", "--json", cwd=tmp_path)
    assert empty.returncode == 0 and json.loads(empty.stdout) == []


def test_json_and_from_json_round_trip(files: dict[str, Path], tmp_path: Path) -> None:
    text = run("json", str(files["binary"]))
    assert text.returncode == 0
    assert json.loads(text.stdout)["sessionId"] == "alpha"
    (tmp_path / "x.json").write_text(text.stdout)
    done = run("from-json", str(tmp_path / "x.json"), "-o", str(tmp_path / "x.binpb"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "x.binpb").read_bytes() == files["binary"].read_bytes()
    to_file = run(
        "json",
        "--store",
        f"file:{files['store']}",
        "alpha",
        "-o",
        str(tmp_path / "y.json"),
    )
    assert to_file.returncode == 0
    assert json.loads((tmp_path / "y.json").read_text()) == json.loads(text.stdout)


def test_from_json_refuses_invalid_json(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"format": "dsxir.optimizer_session.checkpoint/v1.0"}')
    done = run("from-json", str(tmp_path / "bad.json"), "-o", str(tmp_path / "out.binpb"))
    assert done.returncode == 3
    assert "checkpoint_shape: session_id" in one_error_line(done)
    assert not (tmp_path / "out.binpb").exists()
    assert run("from-json", str(tmp_path / "bad.json")).returncode == 2  # -o is required


def test_validate(files: dict[str, Path], tmp_path: Path) -> None:
    good = [str(files[k]) for k in ("binary", "json", "framed")]
    done = run("validate", *good)
    assert done.returncode == 0
    assert done.stdout.splitlines() == [f"{g}: ok" for g in good]
    missing = str(tmp_path / "missing")
    bad = run("validate", *good, str(files["garbage"]), missing)
    assert bad.returncode == 1
    lines = bad.stdout.splitlines()
    assert lines[3].startswith(f"{files['garbage']}: checkpoint_shape: <input>")
    assert lines[3].endswith(" (rule input.trailer)")
    assert lines[4] == f"{missing}: no such file"
    report = json.loads(
        run("validate", str(files["binary"]), str(files["garbage"]), "--json").stdout
    )
    assert [(r["valid"], r["reason"] is None) for r in report] == [
        (True, True),
        (False, False),
    ]
    in_store = run("validate", "--store", f"file:{files['store']}", "alpha", "beta", "nobody")
    assert in_store.returncode == 1 and in_store.stdout.count(": ok") == 2


def test_diff(files: dict[str, Path]) -> None:
    same = run("diff", str(files["binary"]), str(files["json"]))
    assert same.returncode == 0 and "identical" in same.stdout
    differ = run("diff", str(files["binary"]), str(files["other"]))
    assert differ.returncode == 1
    assert "optimizer_opts[0].value: 7 -> 8" in differ.stdout
    assert "trial_log: a has 6 entries, b has 3" in differ.stdout
    doc: dict[str, Any] = json.loads(
        run("diff", str(files["binary"]), str(files["other"]), "--json").stdout
    )
    assert doc["identical"] is False
    paths = {f["path"] for f in doc["fields"]}
    assert {
        "optimizer_opts[0].value",
        "progress.attempts",
        "progress.best_score",
    } <= paths
    assert doc["trial_log"]["common_prefix"] == 3 and doc["trial_log"]["a_entries"] == 6


def test_diff_tells_negative_zero_apart(tmp_path: Path) -> None:
    a, b = make_cp("z"), make_cp("z")
    checkpoint.record_trial(a, score=0.0)
    checkpoint.record_trial(b, score=-0.0)
    b.created_at.CopyFrom(a.created_at)
    b.updated_at.CopyFrom(a.updated_at)
    b.progress.started_at.CopyFrom(a.progress.started_at)
    (tmp_path / "a").write_bytes(checkpoint.encode(a))
    (tmp_path / "b").write_bytes(checkpoint.encode(b))
    doc = json.loads(run("diff", str(tmp_path / "a"), str(tmp_path / "b"), "--json").stdout)
    assert [f["path"] for f in doc["fields"]] == ["progress.best_score"]
    assert doc["trial_log"]["differing"] == [0]
    assert doc["trial_log"]["details"][0]["fields"][0]["path"] == "score"


def test_history_plot_is_a_real_png(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "history.png"
    done = run("history", "--store", f"file:{files['store']}", "alpha", "--plot", str(out))
    assert done.returncode == 0, done.stderr
    assert f"wrote {out}: 6 trials, 1 errors" in done.stdout
    data = out.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import image

    pixels = image.imread(str(out))
    assert pixels.shape[0] >= 300 and pixels.shape[1] >= 600
    assert float(pixels[..., :3].std()) > 0.01  # something is drawn, not a blank page


def test_history_json_and_table(files: dict[str, Path]) -> None:
    doc = json.loads(run("history", str(files["binary"]), "--json").stdout)
    assert [row["best_so_far"] for row in doc] == [0.0, 0.1, 0.2, 0.3, 0.3, 2.5]
    assert doc[4]["status"] == "error" and doc[4]["score"] is None
    table = run("history", str(files["binary"]))
    assert table.returncode == 0 and "best so far" in table.stdout
    unwritable = run("history", str(files["binary"]), "--plot", "/nonexistent-dir/x.png")
    assert unwritable.returncode == 6
    one_error_line(unwritable)
