"""``make help`` is generated from the ``##`` comments and lists every public target."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _phony_targets() -> set[str]:
    targets: set[str] = set()
    for path in [ROOT / "Makefile", *sorted((ROOT / "mk").glob("*.mk"))]:
        text = path.read_text().replace("\\\n", " ")
        for line in text.splitlines():
            if line.startswith(".PHONY:"):
                targets.update(line.removeprefix(".PHONY:").split())
    return targets


def test_make_help_lists_every_phony_target_with_its_text() -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    listed = dict(re.findall(r"^  make (\S+)\s+(.+)$", result.stdout, re.M))
    phony = _phony_targets()
    assert {"demo", "test", "setup", "generate", "bench", "bench-service", "soak"} <= phony
    assert phony == set(listed), phony ^ set(listed)
    assert all(text.strip() for text in listed.values())
    assert "warning" not in result.stderr
