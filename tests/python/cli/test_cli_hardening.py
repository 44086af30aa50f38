"""``dsxir-checkpoint`` against hostile input: secrets, markup, damage, sizes, crashes.

Most tests run the installed console script in a subprocess (as a user
would); the matrix of hostile inputs and the FIFO timeout call the same entry
point (:func:`dsxir.cli.main.main`) in this process, which is faster and lets
a limit be shortened.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from dsxir.cli import main as cli_main
from dsxir.cli import targets
from dsxir.cli.exits import EXIT_CODES_HELP, Exit
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session.atom import Atom
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.store import FileStore, open_store
from store_util import make_cp

SCRIPT = Path(sys.executable).parent / "dsxir-checkpoint"
ROOT = Path(__file__).resolve().parents[3]
DOCUMENTED = {int(code) for code in Exit}

EVIL = "[/]x[bold]B\x1b[31mR\x07\u202eE\x9b\x7f:thumbs_up:$\\frac{$"
"""Rich markup, an emoji code, ESC/BEL/C1/DEL, a bidi override and TeX math."""
RAW_CONTROLS = ("\x1b", "\x07", "\u202e", "\x9b", "\x7f")


def run(
    *args: str, stdin: Any = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.exists(), f"{SCRIPT} is not installed: run make setup"
    done = subprocess.run(
        [str(SCRIPT), *args],
        stdin=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="strict",
        env=None if env is None else {**os.environ, **env},
        check=False,
        timeout=120,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode in DOCUMENTED, (done.returncode, done.stderr)
    assert done.returncode != 70, done.stderr  # an internal error
    return done


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("dsxir-checkpoint: error: "), stderr
    return lines[0]


def no_raw_controls(text: str) -> None:
    for char in RAW_CONTROLS:
        assert char not in text, (char, text)
    for char in text:
        if char not in "\n":
            assert unicodedata.category(char) not in ("Cc", "Cf", "Zl", "Zp"), repr(char)


def in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the entry point here; return its exit code, stdout and stderr."""
    with pytest.raises(SystemExit) as exited:
        cli_main.main(list(args))
    out, err = capsys.readouterr()
    code = exited.value.code
    assert isinstance(code, int)
    assert code in DOCUMENTED and code != 70, (args, code, err)  # 70: an internal error
    assert "Traceback" not in err
    return code, out, err


def evil_cp(session_id: str = "s" + EVIL, **kw: Any) -> Checkpoint:
    cp = make_cp(
        session_id,
        optimizer="opt" + EVIL,
        optimizer_opts={"k" + EVIL: Atom("a" + EVIL), "big": 10**5000},
        program_module="mod" + EVIL,
        **kw,
    )
    checkpoint.record_trial(
        cp, score=1.0, candidate_id="c" + EVIL, stats={"st" + EVIL: Atom("v" + EVIL)}
    )
    checkpoint.record_trial(
        cp, score=None, status="error", error={"m" + EVIL: "e" + EVIL}, error_class="E" + EVIL
    )
    checkpoint.complete(cp, reason=Atom("r" + EVIL))
    return cp


# --- finding 4: store URLs never show their secrets ------------------------------------

SECRETS = ("hunter2", "s3kr1t")


def _no_secret(done: subprocess.CompletedProcess[str]) -> None:
    for secret in SECRETS:
        assert secret not in done.stdout and secret not in done.stderr, done


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (
            [
                "show",
                "alpha",
                "--store",
                "postgresql://user:hunter2@127.0.0.1:1/db?pool_timeout=0.2",
            ],
            {6, 7},
        ),
        (
            [
                "show",
                "alpha",
                "--json",
                "--store",
                "postgresql://user:hunter2@127.0.0.1:1/db?sslpassword=s3kr1t&pool_timeout=0.2",
            ],
            {6, 7},
        ),
        (["ls", "--store", "postgresql://user:hunter2@127.0.0.1:1/db?pool_timeout=0.2"], {6, 7}),
        (
            ["ls", "--json", "--store", "postgres://u:hunter2@127.0.0.1:1/db?pool_timeout=0.2"],
            {6, 7},
        ),
        (["show", "alpha", "--store", "grpc://user:hunter2@127.0.0.1:1?token=s3kr1t"], {2}),
        (["show", "alpha", "--store", "ftp://user:hunter2@example.invalid/x"], {2}),
        (["show", "alpha", "--store", "memory:?token=s3kr1t"], {4}),
        (["diff", "a", "b", "--store", "memory:x?password=hunter2"], {4}),
        (["history", "a", "--store", "memory:x?api_key=hunter2"], {4}),
        (["json", "a", "--store", "memory:x?secret=hunter2"], {4}),
    ],
)
def test_error_lines_hide_store_secrets(args: list[str], code: set[int]) -> None:
    done = run(*args)
    assert done.returncode in code, done.stderr
    line = one_error_line(done.stderr)
    if done.returncode != Exit.MISSING_EXTRA:  # without psycopg only the scheme is named
        assert "***" in line
    _no_secret(done)


def test_validate_hides_store_secrets_in_its_report() -> None:
    url = "memory:x?token=s3kr1t"
    text = run("validate", "nobody", "--store", url)
    assert text.returncode == 1 and "memory:x?token=***" in text.stdout
    _no_secret(text)
    doc = run("validate", "nobody", "--json", "--store", url)
    assert (
        json.loads(doc.stdout)[0]["reason"] == 'no session "nobody" in the store memory:x?token=***'
    )
    _no_secret(doc)


def test_headers_and_json_hide_store_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    url = "memory:cli-redact?token=s3kr1t"
    store = open_store(url)  # the same named store the command line opens in this process
    store.put(make_cp("alpha", trials=2))
    store.put(make_cp("beta", trials=1))
    outputs = [
        in_process(capsys, "show", "alpha", "--store", url),
        in_process(capsys, "show", "alpha", "--json", "--store", url),
        in_process(capsys, "diff", "alpha", "beta", "--store", url),
        in_process(capsys, "validate", "alpha", "--store", url),
    ]
    assert "alpha (in memory:cli-redact?token=***)" in outputs[0][1]
    assert json.loads(outputs[1][1])["source"] == "alpha (in memory:cli-redact?token=***)"
    assert "--- a: alpha (in memory:cli-redact?token=***)" in outputs[2][1]
    for _, out, err in outputs:
        assert "s3kr1t" not in out and "s3kr1t" not in err


# --- finding 7: stored strings are text, never markup or escape sequences ---------------


@pytest.fixture
def evil(tmp_path: Path) -> dict[str, Path]:
    a = evil_cp()
    b = evil_cp()
    b.optimizer = "other" + EVIL
    b.progress.trial_log[0].candidate_id = "d" + EVIL
    out = {"a": tmp_path / "a.binpb", "b": tmp_path / "b.binpb"}
    out["a"].write_bytes(checkpoint.encode(a))
    out["b"].write_bytes(checkpoint.encode(b))
    return out


def test_show_prints_stored_strings_as_escaped_text(evil: dict[str, Path]) -> None:
    done = run("show", str(evil["a"]))
    assert done.returncode == 0, done.stderr
    no_raw_controls(done.stdout)
    shown = "[/]x[bold]B\\x1b[31mR\\x07\\u202eE\\x9b\\x7f:thumbs_up:$\\frac{$"
    for prefix in ("s", "opt", "mod", "c"):
        assert prefix + shown in done.stdout, prefix
    # The error trial alone, so that its column is wide enough for the class in one line.
    last = run("show", str(evil["a"]), "--last", "1")
    no_raw_controls(last.stdout)
    assert "E" + shown in last.stdout
    full = run("show", str(evil["a"]), "--full")
    no_raw_controls(full.stdout)
    assert "st" + shown in full.stdout.replace("│", "").replace("\n", "").replace(" ", "")
    assert "k" + shown + " = :a" + shown in done.stdout
    assert "reason      :r" + shown in done.stdout
    assert "<2077-byte integer 0x" in done.stdout  # too long for decimal text


def test_history_and_diff_print_stored_strings_as_escaped_text(evil: dict[str, Path]) -> None:
    history = run("history", str(evil["a"]))
    assert history.returncode == 0, history.stderr
    no_raw_controls(history.stdout)
    assert "[bold]" in history.stdout.replace("\n", "").replace(" ", "")
    differ = run("diff", str(evil["a"]), str(evil["b"]))
    assert differ.returncode == 1, differ.stderr
    no_raw_controls(differ.stdout)
    assert "optimizer: 'opt[/]x[bold]B\\x1b[31m" in differ.stdout
    assert "trial_log[0].candidate_id: 'c[/]" in differ.stdout
    same = run("diff", str(evil["a"]), str(evil["a"]))
    assert same.returncode == 0 and "identical" in same.stdout


def test_json_outputs_stay_exact_and_valid(evil: dict[str, Path]) -> None:
    shown = run("show", str(evil["a"]), "--json")
    assert shown.returncode == 0
    no_raw_controls(shown.stdout)  # escaped as \\uXXXX inside the JSON strings
    doc = json.loads(shown.stdout)
    assert doc["session_id"] == "s" + EVIL and doc["optimizer"] == "opt" + EVIL
    assert doc["program_module"] == "mod" + EVIL
    assert doc["last_trials"][0]["candidate_id"] == "c" + EVIL
    assert doc["last_trials"][1]["error_class"] == "E" + EVIL
    assert doc["terminal_reason"] == {"$atom": "r" + EVIL}
    assert doc["last_trials"][0]["stats"] == {"st" + EVIL: {"$atom": "v" + EVIL}}
    as_json = run("json", str(evil["a"]))
    assert checkpoint.from_json(as_json.stdout) == checkpoint.decode(evil["a"].read_bytes())
    no_raw_controls(as_json.stdout)
    differ = json.loads(run("diff", str(evil["a"]), str(evil["b"]), "--json").stdout)
    assert {"path": "optimizer", "a": "opt" + EVIL, "b": "other" + EVIL} in differ["fields"]
    history = json.loads(run("history", str(evil["a"]), "--json").stdout)
    assert [row["status"] for row in history] == ["ok", "error"]


def test_ls_shows_markup_names_as_text(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    store.put(make_cp("[bold]x", optimizer="[/]\u202e", trials=1))
    store.put(make_cp("plain", optimizer="\x1b[31m[red]red\x07", trials=1))
    done = run("ls", "--store", f"file:{tmp_path / 'store'}")
    assert done.returncode == 0, done.stderr
    no_raw_controls(done.stdout)
    assert "│ [bold]x " in done.stdout and "│ [/]\\u202e " in done.stdout
    assert "\\x1b[31m[red]red\\x07" in done.stdout
    listed = json.loads(run("ls", "--store", f"file:{tmp_path / 'store'}", "--json").stdout)
    assert [(i["session_id"], i["optimizer"]) for i in listed] == [
        ("[bold]x", "[/]\u202e"),
        ("plain", "\x1b[31m[red]red\x07"),
    ]


def test_history_plot_draws_dollar_signs_as_text(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    (tmp_path / "a").write_bytes(checkpoint.encode(evil_cp()))
    out = tmp_path / "plot.png"
    done = run("history", str(tmp_path / "a"), "--plot", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no matplotlib warning about missing glyphs
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_output_to_an_ascii_terminal_never_fails(evil: dict[str, Path]) -> None:
    for args in (
        ["show", str(evil["a"])],
        ["history", str(evil["a"])],
        ["show", "/nonexistent/\u00e9"],
    ):
        done = run(*args, env={"PYTHONIOENCODING": "ascii"})
        assert done.returncode in (0, 4), done.stderr


# --- finding 7: a damaged session does not hide the others --------------------------------


def test_ls_lists_every_readable_session_when_one_is_damaged(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    store = FileStore(folder)
    for i in range(100):
        store.put(make_cp(f"s{i:03d}", trials=1))
    damaged = folder / "s042.dsxckpt"
    data = bytearray(damaged.read_bytes())
    data[50] ^= 0xFF
    damaged.write_bytes(bytes(data))
    url = f"file:{folder}"

    table = run("ls", "--store", url)
    assert table.returncode == Exit.CORRUPT_STORE == 5
    line = one_error_line(table.stderr)
    assert str(damaged) in line and "damaged session, not listed" in line
    assert f"{damaged}: summary_checksum: " in line  # the kind of docs/store-file.md §6, as show
    assert "99 sessions, 1 damaged" in table.stdout
    assert "s000" in table.stdout and "s099" in table.stdout and "s042" not in table.stdout

    listed = run("ls", "--store", url, "--json")
    assert listed.returncode == 5
    one_error_line(listed.stderr)
    ids = [item["session_id"] for item in json.loads(listed.stdout)]
    assert ids == [f"s{i:03d}" for i in range(100) if i != 42]

    damaged.unlink()
    assert run("ls", "--store", url).returncode == 0


def test_library_warnings_are_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "open"
    FileStore(folder).put(make_cp("a"))
    folder.chmod(0o755)  # the file store warns about a folder others can read
    done = run("ls", "--store", f"file:{folder}")
    assert done.returncode == 0
    for line in done.stderr.strip().splitlines():
        assert line.startswith("dsxir-checkpoint: warning: "), done.stderr


# --- finding 7: input is read up to a limit ------------------------------------------------


def _over_limit(line: str) -> None:
    assert f"input over the limit of {targets.MAX_INPUT_BYTES} bytes" in line


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize("command", [["show"], ["json"], ["from-json", "-o", "-"], ["history"]])
def test_dev_zero_is_refused_after_the_limit(command: list[str]) -> None:
    done = run(command[0], "/dev/zero", *command[1:])
    assert done.returncode == Exit.INVALID_CHECKPOINT
    _over_limit(one_error_line(done.stderr))
    with open("/dev/zero", "rb") as zero:
        piped = run(command[0], "-", *command[1:], stdin=zero)
    assert piped.returncode == Exit.INVALID_CHECKPOINT
    assert "<stdin>: input over the limit" in one_error_line(piped.stderr)


def test_a_large_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    big = tmp_path / "big.binpb"
    with open(big, "wb") as handle:
        handle.truncate(targets.MAX_INPUT_BYTES + 1)  # sparse: no disk used
    done = run("show", str(big))
    assert done.returncode == 3
    _over_limit(one_error_line(done.stderr))
    report = run("validate", str(big), "--json")
    assert report.returncode == 1 and "over the limit" in json.loads(report.stdout)[0]["reason"]


def test_the_input_limit_leaves_room_for_the_largest_store_file() -> None:
    from dsxir.optimizer_session.validate import MAX_CHECKPOINT_BYTES
    from dsxir.store import framing

    assert targets.MAX_INPUT_BYTES == (
        framing.HEADER_SIZE + framing.MAX_SUMMARY_BYTES + framing.MAX_BODY_BYTES
    )
    assert targets.MAX_INPUT_BYTES >= MAX_CHECKPOINT_BYTES


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_without_a_writer_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    monkeypatch.setattr(targets, "IDLE_SECONDS", 0.3)
    code, _, err = in_process(capsys, "show", str(fifo))
    assert code == Exit.IO_ERROR
    assert "no data for 0.3 seconds" in one_error_line(err)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_with_a_writer_is_read(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    data = checkpoint.encode(make_cp("piped", trials=2))
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import time; time.sleep(0.5); open({str(fifo)!r}, 'wb').write({data!r})",
        ]
    )
    try:
        done = run("show", str(fifo), "--json")
    finally:
        writer.wait(timeout=30)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["session_id"] == "piped"
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


# --- every failure is one line: hostile input through every subcommand -------------------


def _hostile_inputs(tmp_path: Path) -> dict[str, Path]:
    good = checkpoint.encode(make_cp("good", trials=3))
    framed = FileStore(tmp_path / "store")
    framed.put(make_cp("framed", trials=1))
    frame = (tmp_path / "store" / "framed.dsxckpt").read_bytes()
    cases: dict[str, bytes] = {
        "empty": b"",
        "garbage": b"\x0a\x05hello\xff\xff",
        "whitespace": b" \n\t ",
        "truncated": good[: len(good) // 2],
        "bad utf-8": b"\x0a\x02\xff\xfe" + good,
        "frame truncated": frame[:-3],
        "frame flipped": frame[:-1] + bytes([frame[-1] ^ 1]),
        "frame only": frame[:44],
        "frame trailing": frame + b"x",
        "json brace": b"{",
        "json nested": b"{" + b'"a":[' * 50_000,
        "json wrong types": b'{"sessionId": 5, "progress": []}',
        "json huge number": b'{"progress": {"attempts": 1e999999}}',
        "proto nested": b"\x2a" + b"\x0a\x80\x01" * 200,
        "evil": checkpoint.encode(evil_cp()),
        "deep term": checkpoint.encode(make_cp("d", optimizer_opts={"x": _deep(23)})),
    }
    out: dict[str, Path] = {}
    for name, data in cases.items():
        path = tmp_path / (re.sub(r"\W", "_", name) + ".in")
        path.write_bytes(data)
        out[name] = path
    out["directory"] = tmp_path
    out["missing"] = tmp_path / "missing.binpb"
    out["good"] = tmp_path / "good.binpb"
    out["good"].write_bytes(good)
    return out


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth - 1):
        value = [value]
    return value


def test_hostile_inputs_never_crash_any_subcommand(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = _hostile_inputs(tmp_path)
    good = str(inputs["good"])
    out_file = str(tmp_path / "out.bin")
    for name, path in inputs.items():
        target = str(path)
        commands = [
            ["show", target],
            ["show", target, "--json", "--last", "1000"],
            ["json", target],
            ["from-json", target, "-o", out_file],
            ["validate", target],
            ["validate", target, "--json"],
            ["diff", target, good],
            ["diff", good, target, "--json"],
            ["history", target],
            ["history", target, "--json"],
            ["export", target],
            ["export", target, "--format", "jsonl"],
        ]
        for args in commands:
            code, out, err = in_process(capsys, *args)
            if err:
                lines = err.strip().splitlines()
                assert len(lines) == 1 and lines[0].startswith("dsxir-checkpoint: error: "), (
                    name,
                    args,
                    err,
                )
                assert code not in (Exit.OK, Exit.FOUND_PROBLEMS), (name, args, err)
            if "--json" in args and out:
                json.loads(out)
            no_raw_controls(err)
            no_raw_controls(out)


def test_hostile_store_sessions_never_crash(tmp_path: Path) -> None:
    folder = tmp_path / "store"
    store = FileStore(folder)
    store.put(evil_cp(session_id="[bold]y"))
    store.put(make_cp("torn", trials=1))
    (folder / "torn.dsxckpt").write_bytes((folder / "torn.dsxckpt").read_bytes()[:-5])
    (folder / "junk.dsxckpt").write_bytes(b"not a frame")
    url = f"file:{folder}"
    for args in (
        ["ls"],
        ["ls", "--json"],
        ["show", "[bold]y"],
        ["show", "torn"],
        ["show", "junk", "--json"],
        ["json", "torn"],
        ["history", "junk"],
        ["diff", "[bold]y", "torn"],
        ["validate", "[bold]y", "torn", "junk", "../x"],
        ["export", "[bold]y"],
        ["export", "torn", "--format", "jsonl"],
        ["pause", "torn"],
        ["cancel", "[bold]y", "--reason", "r" + EVIL],
        ["pause", "[bold]y"],
        ["delete", "junk"],
    ):
        done = run(*args, "--store", url)
        no_raw_controls(done.stdout + done.stderr)
        for line in done.stderr.strip().splitlines():
            assert line.startswith("dsxir-checkpoint: "), (args, done.stderr)
    assert run("ls", "--store", url).returncode == 5
    assert run("show", "torn", "--store", url).returncode == 5
    assert run("validate", "[bold]y", "torn", "--store", url).returncode == 1
    assert run("validate", "../x", "--store", url).returncode == 2
    assert run("pause", "torn", "--store", url).returncode == 5
    assert run("delete", "torn", "--yes", "--store", url).returncode == 0


# --- diff compares values, not their shortened text ----------------------------------------


def test_diff_sees_differences_past_the_shown_text(tmp_path: Path) -> None:
    a = make_cp("z", blob=b"x" * 40 + b"a", optimizer_opts={"long": "y" * 300 + "a"})
    b = Checkpoint()
    b.CopyFrom(a)
    b.sampler_blob = b"x" * 40 + b"b"
    b.optimizer_opts[0].value.string_value = "y" * 300 + "b"
    (tmp_path / "a").write_bytes(checkpoint.encode(a))
    (tmp_path / "b").write_bytes(checkpoint.encode(b))
    done = run("diff", str(tmp_path / "a"), str(tmp_path / "b"))
    assert done.returncode == 1, done.stdout
    assert "sampler_blob:" in done.stdout and "optimizer_opts[0].value:" in done.stdout
    assert done.stdout.count("[sha256 ") == 4  # the shown texts agree, so digests tell apart
    doc = json.loads(run("diff", str(tmp_path / "a"), str(tmp_path / "b"), "--json").stdout)
    assert [f["path"] for f in doc["fields"]] == ["optimizer_opts[0].value", "sampler_blob"]


# --- exit codes: one list in the code, the help and the docs -------------------------------


def test_exit_codes_agree_across_code_help_and_docs() -> None:
    helped = {int(m) for m in re.findall(r"^\s*(\d+)  ", EXIT_CODES_HELP, re.MULTILINE)}
    assert helped == DOCUMENTED
    cli_md = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    table = cli_md.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    documented = {int(m) for m in re.findall(r"^\| (\d+) \|", table, re.MULTILINE)}
    assert documented == DOCUMENTED
    security = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    section = security.split("<!-- section: command line", 1)[1].split("<!-- end: command line")[0]
    assert str(targets.MAX_INPUT_BYTES) in section and str(targets.MAX_INPUT_BYTES) in cli_md
    assert f"{targets.IDLE_SECONDS:g} s" in section
