"""README.md's shortest resumable loop runs as printed, resumes, and refuses to run twice."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from dsxir.optimizer_session import checkpoint
from dsxir.store import FileStore

README = Path(__file__).resolve().parents[3] / "README.md"


def loop_snippet() -> str:
    """The first Python block of the README's Python section."""
    section = README.read_text().split("\n## Python\n", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found is not None
    return found.group(1)


def run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_the_readme_loop_runs_resumes_and_ends(tmp_path: Path) -> None:
    code = loop_snippet()
    assert "open_session" in code and "session.complete()" in code
    half = run(
        code.replace("session.trials < 20", "session.trials < 8").replace(
            "    session.complete()\n", "    pass\n"
        ),
        tmp_path,
    )  # a run that stops early: its session is paused
    assert half.returncode == 0, half.stderr
    store = FileStore(tmp_path / ".dsxir" / "sessions")
    paused = store.get("random-search-1").checkpoint
    assert checkpoint.status_name(paused) == "paused" and len(paused.progress.trial_log) == 8

    done = run(code, tmp_path)
    assert done.returncode == 0, done.stderr
    resumed = store.get("random-search-1").checkpoint
    assert checkpoint.status_name(resumed) == "completed"
    assert list(resumed.progress.trial_log)[:8] == list(paused.progress.trial_log)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    assert run(code, fresh).returncode == 0
    whole = FileStore(fresh / ".dsxir" / "sessions").get("random-search-1").checkpoint
    assert whole.progress.trial_log == resumed.progress.trial_log
    best = f"{resumed.progress.best_score} {resumed.progress.best_trial_idx}"
    assert done.stdout.strip() == best

    again = run(code, tmp_path)
    assert again.returncode == 1
    assert "AlreadyTerminal" in again.stderr
