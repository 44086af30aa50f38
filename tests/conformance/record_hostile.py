"""Every language's answers on the hostile corpus (tests/vectors/hostile) against the one
verdict each case has.

``tests/vectors/hostile/manifest.json`` holds, for every case, the verdict the
reference computed when the corpus was written: accept (with the sha256 of the
bytes written back) or refuse (with the rule id and the path). This script
runs every case through every testee's ``serve`` loop and prints the cases
where a language answers otherwise. With ``--record`` it writes them to
``expected_failures/<lang>.json`` (a sorted list of case names), which
``test_hostile.py`` holds each language to exactly: a language's known
failures are data, and fixing one means deleting it from that file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from protocol import LANGS, REENCODE, Answer, Server

HERE = Path(__file__).resolve().parent
HOSTILE = HERE.parent / "vectors" / "hostile"
FAILURES = HERE / "expected_failures"


def cases() -> list[dict[str, Any]]:
    """The manifest's entries, in order, each with its bytes under ``data``."""
    manifest = json.loads((HOSTILE / "manifest.json").read_text())
    return [{**entry, "data": (HOSTILE / entry["binpb"]).read_bytes()} for entry in manifest]


def verdict(answer: Answer) -> dict[str, Any]:
    """An answer in the manifest's form."""
    if answer.output is not None:
        return {"verdict": "accept", "sha256": hashlib.sha256(answer.output).hexdigest()}
    if answer.kind != "checkpoint_shape":
        return {"verdict": "other", "kind": answer.kind, "exit_code": answer.exit_code}
    return {"verdict": "refuse", "rule": answer.rule or None, "path": answer.path}


def expected(entry: dict[str, Any]) -> dict[str, Any]:
    keys = ("verdict", "sha256") if entry["verdict"] == "accept" else ("verdict", "rule", "path")
    return {key: entry[key] for key in keys}


def wrong_answers(lang: str, entries: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The cases ``lang`` answers otherwise: ``{case: its verdict}``."""
    server = Server(lang)
    try:
        answers = server.ask_many([(REENCODE, entry["data"]) for entry in entries])
    finally:
        server.close()
    return {
        entry["name"]: got
        for entry, answer in zip(entries, answers, strict=True)
        if (got := verdict(answer)) != expected(entry)
    }


def known_failures(lang: str) -> list[str]:
    path = FAILURES / f"{lang}.json"
    return json.loads(path.read_text())["hostile"] if path.exists() else []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--record", action="store_true", help="write expected_failures/*.json")
    args = parser.parse_args()
    entries = cases()
    by_name = {entry["name"]: entry for entry in entries}
    for lang in LANGS:
        wrong = wrong_answers(lang, entries)
        for name, got in wrong.items():
            print(f"{lang}: {name}: {got}; expected {expected(by_name[name])}")
        print(f"{lang}: {len(wrong)} of {len(entries)} cases answered otherwise")
        if args.record:
            path = FAILURES / f"{lang}.json"
            if wrong:
                path.write_text(json.dumps({"hostile": sorted(wrong)}, indent=1) + "\n")
            elif path.exists():
                path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
