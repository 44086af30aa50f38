"""``dsxir-checkpoint``: fork, stale sessions in ``ls`` and ``show``, direction, new errors.

Stores are real (a file store, and the service over a memory store); the
commands run as the installed console script, except where a test needs a
store failure no real store gives on demand (then :func:`dsxir.cli.main.main`
runs in this process).
"""

from __future__ import annotations

import datetime as _dt
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dsxir.cli import main as cli_main
from dsxir.cli.exits import Exit
from dsxir.errors import IllegalHistory, LeaseHeld, LeaseLost
from dsxir.optimizer_session import checkpoint
from dsxir.store import FileStore, Store, close_store
from store_util import make_cp

SCRIPT = Path(sys.executable).parent / "dsxir-checkpoint"
DOCUMENTED = {int(code) for code in Exit}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    assert SCRIPT.exists(), f"{SCRIPT} is not installed: run make setup"
    done = subprocess.run(
        [str(SCRIPT), *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        stdin=subprocess.DEVNULL,
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


@pytest.fixture(params=["file", "grpc"])
def store_at(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, str]]:
    """A store to set up sessions in, and the URL the command line reaches it by."""
    if request.param == "file":
        store = FileStore(tmp_path / "store")
        yield store, f"file:{tmp_path / 'store'}"
        return
    from dsxir.store import MemoryStore
    from dsxir.store.grpc import GrpcStore
    from service_fixtures import serve_in_thread

    server = serve_in_thread(MemoryStore())
    client = GrpcStore(server.address, timeout=30)
    yield client, f"grpc://{server.address}"
    close_store(client)
    server.stop(1)


# --- fork -----------------------------------------------------------------------------


def _ended_lower_session(store: Store) -> Any:
    cp = make_cp("done", direction="lower")
    for score in (3.0, 1.0, 2.0):
        checkpoint.record_trial(cp, score=score)
    checkpoint.complete(cp, "budget spent")
    store.put(cp)
    return cp


def test_fork_goes_on_from_an_ended_session(store_at: tuple[Store, str]) -> None:
    store, url = store_at
    source = _ended_lower_session(store)
    done = run("fork", url, "done", "again")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f'forked session "done" into "again" in {url}: running, generation 1'
    )
    forked = store.get("again")
    assert forked.generation == 1
    cp = forked.checkpoint
    assert checkpoint.status_name(cp) == "running" and not cp.HasField("terminal_reason")
    assert [e.score for e in cp.progress.trial_log] == [3.0, 1.0, 2.0]
    assert (cp.progress.best_score, cp.progress.best_trial_idx) == (1.0, 1)
    assert checkpoint.direction_name(cp) == "lower"
    kept = store.get("done")
    assert kept.generation == 1 and kept.checkpoint == source

    again = run("fork", url, "done", "again")
    assert again.returncode == Exit.CONFLICT
    assert 'session "again" already exists' in one_error_line(again)
    assert store.get("again").generation == 1

    missing = run("fork", url, "nobody", "other")
    assert missing.returncode == Exit.NOT_FOUND
    assert 'no session "nobody"' in one_error_line(missing)


@pytest.mark.parametrize(
    ("source", "target", "code"),
    [
        ("done", "done", Exit.USAGE),
        ("../up", "x", Exit.USAGE),
        ("done", ".hidden", Exit.USAGE),
        ("done", "a\x1b[31mb", Exit.USAGE),
    ],
)
def test_fork_refuses_bad_ids(tmp_path: Path, source: str, target: str, code: int) -> None:
    store = FileStore(tmp_path / "store")
    _ended_lower_session(store)
    done = run("fork", f"file:{tmp_path / 'store'}", source, target)
    assert done.returncode == code
    line = one_error_line(done)
    assert "\x1b" not in line
    assert [item.session_id for item in store.list()] == ["done"]


def test_fork_of_a_missing_store_or_a_damaged_source(tmp_path: Path) -> None:
    missing = run("fork", f"file:{tmp_path / 'nowhere'}", "a", "b")
    assert missing.returncode == Exit.NOT_FOUND
    assert not (tmp_path / "nowhere").exists()
    store = FileStore(tmp_path / "store")
    store.put(make_cp("a", trials=2))
    (path,) = (tmp_path / "store").glob("a.*")
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))
    damaged = run("fork", f"file:{tmp_path / 'store'}", "a", "b")
    assert damaged.returncode == Exit.CORRUPT_STORE
    one_error_line(damaged)
    assert [item.session_id for item in store.list()] == ["a"]  # no b


# --- stale sessions -------------------------------------------------------------------

HOSTILE_HOLDER = "w\u202e1[bold]:7"


def _sessions_with_leases(store: Store) -> None:
    """dead (running, lease expired), alive (running, lease), bare (running, no lease), rest."""
    for name in ("dead", "alive", "bare", "rest"):
        cp = make_cp(name, trials=1)
        if name == "rest":
            checkpoint.pause(cp)
        store.put(cp)
    store.acquire_lease("dead", HOSTILE_HOLDER, ttl=0.05)
    store.acquire_lease("alive", "w:2", ttl=600)
    store.acquire_lease("rest", "w:3", ttl=0.05)
    time.sleep(0.1)


def test_ls_shows_running_sessions_whose_lease_expired_as_stale(
    store_at: tuple[Store, str],
) -> None:
    store, url = store_at
    _sessions_with_leases(store)
    table = run("ls", "--store", url)
    assert table.returncode == 0, table.stderr
    rows = {line.split("│")[1].strip(): line for line in table.stdout.splitlines() if "│" in line}
    status = {name: row.split("│")[2].strip() for name, row in rows.items()}
    assert status == {"dead": "stale", "alive": "running", "bare": "running", "rest": "paused"}
    assert 'lease of "w\\u202e1[bold]:7" expired at ' in rows["dead"]
    assert 'lease held by "w:2" until ' in rows["alive"]
    assert "\u202e" not in table.stdout

    listed = {
        item["session_id"]: item for item in json.loads(run("ls", "--store", url, "--json").stdout)
    }
    assert {name: item["stale"] for name, item in listed.items()} == {
        "dead": True,
        "alive": False,
        "bare": False,
        "rest": False,
    }
    assert {name: item["status"] for name, item in listed.items()} == {
        "dead": "running",
        "alive": "running",
        "bare": "running",
        "rest": "paused",
    }
    dead = listed["dead"]["lease"]
    assert dead["holder"] == HOSTILE_HOLDER and dead["expired"] is True
    assert dead["expires_at"].endswith("Z")
    assert listed["alive"]["lease"]["expired"] is False
    assert listed["bare"]["lease"] is None
    assert "token" not in json.dumps(listed)


def test_show_shows_stale_with_holder_and_expiry(store_at: tuple[Store, str]) -> None:
    store, url = store_at
    _sessions_with_leases(store)
    lines = {
        name: next(line for line in run("show", "--store", url, name).stdout.splitlines()
                   if line.startswith("status"))
        for name in ("dead", "alive", "bare")
    }  # fmt: skip
    assert lines["dead"].startswith(
        'status      stale (running, but the lease of "w\\u202e1[bold]:7" expired at '
    )
    assert lines["alive"].startswith('status      running (lease held by "w:2" until ')
    assert lines["bare"] == "status      running"
    document = json.loads(run("show", "--store", url, "dead", "--json").stdout)
    assert document["status"] == "running" and document["stale"] is True
    assert document["lease"]["holder"] == HOSTILE_HOLDER
    assert set(document["lease"]) == {"holder", "expires_at", "expired"}


# --- direction ------------------------------------------------------------------------


@pytest.mark.parametrize("direction", ["higher", "lower"])
def test_show_prints_the_direction_and_history_follows_it(tmp_path: Path, direction: str) -> None:
    path = tmp_path / "run.binpb"
    cp = make_cp("d", direction=direction)
    for score in (2.0, 1.0, 3.0):
        checkpoint.record_trial(cp, score=score)
    path.write_bytes(checkpoint.encode(cp))
    shown = run("show", str(path)).stdout.splitlines()
    assert f"direction   {direction} is better" in shown
    assert json.loads(run("show", str(path), "--json").stdout)["direction"] == direction
    best = [row["best_so_far"] for row in json.loads(run("history", str(path), "--json").stdout)]
    assert best == ([2.0, 2.0, 3.0] if direction == "higher" else [2.0, 1.0, 1.0])


# --- the new errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code", "words"),
    [
        (
            IllegalHistory("s1", "history.trial_log_rewritten", "trial 0 differs"),
            Exit.NOT_ALLOWED,
            "history.trial_log_rewritten",
        ),
        (
            LeaseHeld("s1", "w\x1b]0;x\x07:1", _dt.datetime(2030, 1, 1, tzinfo=_dt.timezone.utc)),
            Exit.CONFLICT,
            "is held by",
        ),
        (LeaseLost("s1", "taken over"), Exit.CONFLICT, "lost"),
    ],
)
def test_store_refusals_are_one_line_with_their_exit_code(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    code: int,
    words: str,
) -> None:
    store = FileStore(tmp_path / "store")
    store.put(make_cp("s1", trials=1))

    def refuse(*args: object, **kwargs: object) -> int:
        raise error

    # A commit refused by the store: pause's put, and fork's create.
    monkeypatch.setattr(FileStore, "put", refuse)
    for args in (["pause", "s1"], ["fork", f"file:{tmp_path / 'store'}", "s1", "s2"]):
        if args[0] == "pause":
            args += ["--store", f"file:{tmp_path / 'store'}"]
        with pytest.raises(SystemExit) as exited:
            cli_main.main(args)
        err = capsys.readouterr().err
        assert exited.value.code == code, err
        line = one_error_line(err)
        assert words in line and "nothing was written" in line
        assert "\x1b" not in line and "\x07" not in line


def test_exit_codes_of_the_new_errors_are_in_the_help() -> None:
    text = run("--help").stdout
    assert "fork: the target exists" in text
    assert "illegal history" in text
