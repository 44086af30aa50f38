"""Each language's verdict on every case of the hostile corpus (tests/vectors/hostile).

``record_hostile.py --record`` runs every case of
``tests/vectors/hostile/manifest.json`` through the ``serve`` loop of every
testee and writes ``tests/vectors/hostile/verdicts.json``: for each case and
language, ``{"verdict": "accept", "sha256": <hex of the output bytes>}`` or
``{"verdict": "refuse", "field": <field path>, "rule": <rule id or null>}``.
Without ``--record`` it prints the cases on which not all languages agree.
``test_hostile.py`` holds every language to the recorded verdicts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import struct
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
HOSTILE = HERE.parent / "vectors" / "hostile"
VERDICTS = HOSTILE / "verdicts.json"
LANGS = ["python", "go", "typescript", "java", "rust"]
KEEPS_UNKNOWN = {"python", "go", "typescript", "java"}
"""Languages whose runtime keeps unknown fields (Rust's drops them, so its bytes differ)."""
OK, REFUSED = 0, 3
_REFUSAL = re.compile(r"^checkpoint_shape: (.*?): .*?(?: \(rule ([a-z_]+(?:\.[a-z_]+)+)\))?$", re.S)


def cases() -> list[tuple[str, bytes]]:
    """(name, bytes) of every case, in manifest order."""
    manifest = json.loads((HOSTILE / "manifest.json").read_text())
    return [(entry["name"], (HOSTILE / entry["binpb"]).read_bytes()) for entry in manifest]


class Server:
    """A testee's serve loop (tests/conformance/README.md): framed requests over pipes."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.proc = subprocess.Popen(
            [str(HERE / f"testee-{lang}"), "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )

    def reencode(self, payload: bytes) -> tuple[int, bytes]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(b"r" + struct.pack(">I", len(payload)) + payload)
        self.proc.stdin.flush()
        head = self.proc.stdout.read(5)
        assert len(head) == 5, f"testee-{self.lang} serve died (exit {self.proc.poll()})"
        (length,) = struct.unpack(">I", head[1:])
        return head[0], self.proc.stdout.read(length)

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        assert self.proc.wait(timeout=60) == 0, f"testee-{self.lang} serve exited badly"


@contextmanager
def servers() -> Iterator[dict[str, Server]]:
    started = {lang: Server(lang) for lang in LANGS}
    try:
        yield started
    finally:
        for server in started.values():
            server.close()


def verdict(status: int, answer: bytes) -> dict[str, Any]:
    """The recorded form of one answer of a serve loop."""
    if status == OK:
        return {"verdict": "accept", "sha256": hashlib.sha256(answer).hexdigest()}
    line = answer.decode(errors="replace").rstrip("\r\n")
    found = _REFUSAL.match(line)
    if status != REFUSED or not found:
        return {"verdict": "other", "status": status, "answer": line}
    return {"verdict": "refuse", "field": found.group(1), "rule": found.group(2)}


def run_all() -> dict[str, dict[str, dict[str, Any]]]:
    """Every language's verdict on every case: ``{case: {lang: verdict}}``."""
    got: dict[str, dict[str, dict[str, Any]]] = {}
    with servers() as running:
        for name, data in cases():
            got[name] = {lang: verdict(*running[lang].reencode(data)) for lang in LANGS}
    return got


def agree(by_lang: dict[str, dict[str, Any]]) -> bool:
    """Whether all five give the same verdict: the same bytes (among the languages that
    keep unknown fields; Rust need only accept too) or the same field and rule."""
    kinds = {v["verdict"] for v in by_lang.values()}
    if kinds != {"accept"}:
        return len({json.dumps(v, sort_keys=True) for v in by_lang.values()}) == 1
    return len({by_lang[lang]["sha256"] for lang in KEEPS_UNKNOWN}) == 1


def summary(verdicts: dict[str, dict[str, dict[str, Any]]]) -> str:
    """The cases where not all five agree, one line each, and their count."""
    lines = []
    for name, by_lang in verdicts.items():
        if agree(by_lang):
            continue
        parts = []
        shas = sorted({v["sha256"] for v in by_lang.values() if v["verdict"] == "accept"})
        for lang, v in by_lang.items():
            if v["verdict"] == "accept":
                parts.append(f"{lang}=accept(bytes {'ABCDE'[shas.index(v['sha256'])]})")
            elif v["verdict"] == "refuse":
                parts.append(f"{lang}=refuse({v['field']}; {v['rule']})")
            else:
                parts.append(f"{lang}=other({v['status']})")
        lines.append(f"{name}: " + ", ".join(parts))
    return "\n".join(lines) + f"\n{len(lines)} cases where not all five agree\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--record", action="store_true", help=f"write {VERDICTS.name}")
    args = parser.parse_args()
    verdicts = run_all()
    if args.record:
        lines = [f"{json.dumps(k)}: {json.dumps(v, sort_keys=True)}" for k, v in verdicts.items()]
        VERDICTS.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    sys.stdout.write(summary(verdicts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
