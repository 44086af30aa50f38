"""``make demo``: crash an optimizer with SIGKILL, take its session over, prove nothing was lost.

The optimizer (``random_search.py``, run by ``child.py``) runs on the session
runner (:mod:`dsxir.session`). Steps (each printed as it happens; the demo
exits 1 when a check fails):

1. start a seeded random-search optimizer in a child process, checkpointing
   after every trial into the default file store (``.dsxir/sessions`` under
   the current directory) and holding the session's lease;
2. start a second optimizer on the same session: refused, the first holds it;
3. kill the first child with SIGKILL mid-run and show the committed progress
   with ``dsxir-checkpoint show``; its lease outlives it;
4. a new worker is refused until the dead worker's lease has expired, then
   takes the session over in a new child and finishes it; compare the final
   best score and trial log with an uninterrupted run of the same seed;
5. show the resume gate refusing a changed trainset, a bumped sampler version
   and a resume of the completed session, and the store refusing an illegal
   commit (completed back to running);
6. write the history plot with ``dsxir-checkpoint history --plot``.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from random_search import run

from dsxir.errors import IllegalHistory, LeaseHeld
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session.v1.checkpoint_pb2 import SESSION_STATUS_RUNNING
from dsxir.store import (
    DEFAULT_STORE_PATH,
    FileStore,
    MemoryStore,
    Stored,
)

SEED = 20260101
TRIALS = 40
DELAY = 0.05
TTL = 2.0
SESSION = "demo"
GATE_SESSION = "demo-gate"
STORE_URL = f"file:{DEFAULT_STORE_PATH}"
HERE = Path(__file__).resolve().parent
PLOT = Path(".dsxir") / "demo" / "history.png"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class DemoFailed(Exception):
    """A check of the demo failed."""


def say(text: str = "") -> None:
    print(text, flush=True)


def indent(text: str) -> str:
    return "\n".join("      " + line for line in text.rstrip("\n").splitlines())


def cli_command() -> list[str]:
    script = Path(sys.executable).parent / "dsxir-checkpoint"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "dsxir.cli"]


def child(*extra: str, session: str = SESSION) -> list[str]:
    return [
        sys.executable,
        str(HERE / "child.py"),
        "--store",
        STORE_URL,
        "--session",
        session,
        "--seed",
        str(SEED),
        "--trials",
        str(TRIALS),
        *extra,
    ]


def run_cli(*args: str) -> str:
    command = [*cli_command(), *args]
    say("      $ dsxir-checkpoint " + " ".join(args))
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise DemoFailed(f"dsxir-checkpoint exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def same_run(resumed: Stored, reference: Stored) -> list[str]:
    """What differs between two finished runs (empty when they are the same)."""
    a, b = resumed.checkpoint, reference.checkpoint
    problems = []
    log_a = [e.SerializeToString(deterministic=True) for e in a.progress.trial_log]
    log_b = [e.SerializeToString(deterministic=True) for e in b.progress.trial_log]
    if log_a != log_b:
        first = next(
            (i for i, (x, y) in enumerate(zip(log_a, log_b, strict=False)) if x != y), None
        )
        problems.append(f"trial logs differ ({len(log_a)} vs {len(log_b)} entries, first {first})")
    for name in ("best_score", "best_trial_idx", "attempts", "completed", "errors"):
        if getattr(a.progress, name) != getattr(b.progress, name):
            problems.append(f"{name}: {getattr(a.progress, name)} != {getattr(b.progress, name)}")
    if a.sampler_blob != b.sampler_blob:
        problems.append("sampler blobs differ")
    if a.best_program_artifact != b.best_program_artifact:
        problems.append("best program artifacts differ")
    if a.status != b.status:
        problems.append("statuses differ")
    return problems


def wait_for_trials(store: FileStore, process: subprocess.Popen[bytes], count: int) -> int:
    """Wait until the child has committed ``count`` trials; the number committed."""
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise DemoFailed(f"the child ended (exit {process.returncode}) before it was killed")
        if time.monotonic() > deadline:
            process.kill()
            raise DemoFailed("the child made no progress within 30 seconds")
        listed = {item.session_id: item for item in store.list()}
        if SESSION in listed and listed[SESSION].trials >= count:
            return listed[SESSION].trials
        time.sleep(0.005)


def steps_1_to_3(store: FileStore) -> Stored:
    say(f"[1/6] starting the optimizer in a child process ({TRIALS} trials, seed {SEED}),")
    say(f"      checkpointing after every trial into {STORE_URL}; it holds a {TTL:g} s lease")
    process = subprocess.Popen(
        child("--delay", str(DELAY), "--ttl", str(TTL)), stdout=subprocess.DEVNULL
    )
    try:
        wait_for_trials(store, process, 3)
        lease = store.get_lease(SESSION)
        if lease is None:
            raise DemoFailed("the running child holds no lease")
        say(f"      lease held by {lease.holder}, renewed every {TTL / 3:.2f} s")
        say("[2/6] a second optimizer on the same session while the first runs")
        expect_refusal("second worker", child(), 5, f"is held by '{lease.holder}' until")
        kill_after = wait_for_trials(store, process, 1) + random.randint(2, 6)
        if kill_after >= TRIALS - 2:
            raise DemoFailed("the child ran too far ahead to be killed mid-run")
        wait_for_trials(store, process, kill_after)
        time.sleep(random.uniform(0, DELAY))  # land anywhere inside a trial or a commit
        os.kill(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    killed = store.get(SESSION)
    trials = len(killed.checkpoint.progress.trial_log)
    say(f"[3/6] killed child pid {process.pid} with SIGKILL (exit {process.returncode})")
    say(
        f"      committed before the kill: {trials} of {TRIALS} trials, "
        f"generation {killed.generation}"
    )
    if not 0 < trials < TRIALS or process.returncode != -signal.SIGKILL:
        raise DemoFailed("the child was not killed mid-run")
    stale = store.get_lease(SESSION)
    if stale is None or not stale.holder.endswith(f":{process.pid}"):
        raise DemoFailed("the killed child's lease is gone")
    if stale.expires_at.timestamp() - time.time() > 0.3:  # a new worker waits for it to end
        try:
            run(store, SESSION, seed=SEED, trials=TRIALS)
        except LeaseHeld as exc:
            say(f"      a new worker right away is refused: {exc}")
        else:
            raise DemoFailed("a new worker ran the session while the dead worker's lease held")
    say(indent(run_cli("show", "--store", STORE_URL, SESSION, "--last", "5")))
    return killed


def step_4(store: FileStore, killed: Stored) -> Stored:
    stale = store.get_lease(SESSION)
    if stale is not None and not stale.expired():
        time.sleep(max(0.0, stale.expires_at.timestamp() - time.time()) + 0.01)
    say("[4/6] the dead worker's lease has expired: a new child takes the session over")
    done = subprocess.run(child(), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise DemoFailed(f"the resumed child exited {done.returncode}: {done.stderr.strip()}")
    say(indent(done.stdout))
    resumed = store.get(SESSION)
    reference = run(MemoryStore(), SESSION, seed=SEED, trials=TRIALS)
    progress = resumed.checkpoint.progress
    say(
        f"      resumed run: {len(progress.trial_log)} trials, {progress.errors} errors, "
        f"best {progress.best_score:.6f} at trial {progress.best_trial_idx}"
    )
    ref = reference.checkpoint.progress
    say(
        f"      uninterrupted run (same seed, in memory): {len(ref.trial_log)} trials, "
        f"best {ref.best_score:.6f} at trial {ref.best_trial_idx}"
    )
    problems = same_run(resumed, reference)
    if problems:
        raise DemoFailed(
            "the resumed run differs from the uninterrupted one: " + "; ".join(problems)
        )
    if store.get_lease(SESSION) is not None:
        raise DemoFailed("the finished session's lease was not released")
    kept = len(killed.checkpoint.progress.trial_log)
    say(
        f"      OK: identical trial log, best score and sampler state; the {kept} trials "
        "committed before the kill were kept, none was repeated"
    )
    return resumed


def expect_refusal(label: str, command: list[str], code: int, needle: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    line = done.stderr.strip()
    say(f"      {label:<24} exit {done.returncode}: {line}")
    if done.returncode != code or needle not in line:
        raise DemoFailed(f"expected exit {code} mentioning {needle!r} for {label}")


def step_5(store: FileStore) -> None:
    say("[5/6] the resume gate, and the store refusing an illegal history")
    paused = subprocess.run(
        child("--stop-after", "3", session=GATE_SESSION),
        capture_output=True,
        text=True,
        check=False,
    )
    if paused.returncode != 0:
        raise DemoFailed(f"could not prepare {GATE_SESSION}: {paused.stderr.strip()}")
    say(f"      prepared a paused session: {paused.stdout.strip()}")
    expect_refusal(
        "changed trainset",
        child("--trainset", "changed", session=GATE_SESSION),
        3,
        "trainset_hash: the checkpoint was made on the trainset with hash",
    )
    expect_refusal(
        "bumped sampler version",
        child("--sampler-version", "2", session=GATE_SESSION),
        3,
        "holds sampler state version 1; this run accepts 2",
    )
    expect_refusal("completed session", child(), 4, "status=completed")
    if store.get_lease(GATE_SESSION) is not None or store.get_lease(SESSION) is not None:
        raise DemoFailed("a refused worker kept its lease")
    stored = store.get(SESSION)
    cp = stored.checkpoint
    cp.status = SESSION_STATUS_RUNNING  # completed back to running, by hand
    cp.ClearField("terminal_reason")
    try:
        store.put(cp, expected_generation=stored.generation)
    except IllegalHistory as exc:
        say(f"      {'completed -> running':<24} refused: {exc.rule}: {exc.detail}")
        if exc.rule != "history.terminal":
            raise DemoFailed(f"expected rule history.terminal, got {exc.rule}") from None
    else:
        raise DemoFailed("the store accepted a completed session going back to running")
    if checkpoint.status_name(store.get(SESSION).checkpoint) != "completed":
        raise DemoFailed("the completed session changed")


def step_6() -> None:
    say("[6/6] the history plot")
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    say(indent(run_cli("history", "--store", STORE_URL, SESSION, "--plot", str(PLOT))))
    if PLOT.read_bytes()[:8] != PNG_SIGNATURE:
        raise DemoFailed(f"{PLOT} is not a PNG file")
    say(f"      plot written to {PLOT.resolve()}")


def main() -> int:
    started = time.monotonic()
    store = FileStore(DEFAULT_STORE_PATH)
    for session in (SESSION, GATE_SESSION):
        store.delete(session)
    if PLOT.exists():
        PLOT.unlink()
    say("dsxir-checkpoint demo: crash an optimizer, take its session over, check nothing was lost")
    say()
    try:
        killed = steps_1_to_3(store)
        step_4(store, killed)
        step_5(store)
        step_6()
    except DemoFailed as exc:
        say(f"demo FAILED: {exc}")
        return 1
    say()
    say(
        f"demo OK in {time.monotonic() - started:.1f}s; the sessions stay in {DEFAULT_STORE_PATH}/:"
    )
    command = cli_command()
    say(f"  {' '.join([os.path.relpath(command[0]), *command[1:]])} ls --store {STORE_URL}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
