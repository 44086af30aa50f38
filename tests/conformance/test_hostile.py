"""Every language's verdict on the hostile corpus is the recorded one.

``tests/vectors/hostile`` holds non-canonical and damaged checkpoint
encodings (padded tags, varints and lengths, groups, field number 0, wrong
wire types, fields out of order or repeated, deep nesting, every prefix and
every single-bit flip of a small vector; ``generate.py`` there writes them).
``verdicts.json`` records, for every case and language, the verdict of that
language's ``reencode`` today: accept (with the sha256 of the bytes written)
or refuse (with the field path and rule id). This suite runs every case
through every testee's ``serve`` loop and fails on any change of verdict,
so a reader that becomes stricter or looser changes ``verdicts.json``
(``record_hostile.py --record``) in the same commit.

The languages do not agree on every case today: README.md beside this file
lists the cases ("Hostile corpus"), and a test checks the count given there.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest
import record_hostile as rh

HERE = Path(__file__).resolve().parent
RECORDED: dict[str, dict[str, dict[str, Any]]] = json.loads(rh.VERDICTS.read_text())


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("hostile_generate", rh.HOSTILE / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_corpus_is_what_the_generator_writes() -> None:
    files = _generator().build()
    on_disk = {p.name: p.read_bytes() for p in rh.HOSTILE.glob("*.binpb")}
    on_disk["manifest.json"] = (rh.HOSTILE / "manifest.json").read_bytes()
    assert sorted(on_disk) == sorted(files)
    assert [name for name in files if on_disk[name] != files[name]] == []
    assert len(files) - 1 <= 3000
    assert sum(map(len, on_disk.values())) + rh.VERDICTS.stat().st_size < 2_000_000


def test_every_case_has_a_verdict_for_every_language() -> None:
    names = [name for name, _ in rh.cases()]
    assert sorted(RECORDED) == sorted(names)
    for name in names:
        assert sorted(RECORDED[name]) == sorted(rh.LANGS), name
        for verdict in RECORDED[name].values():
            assert verdict["verdict"] in ("accept", "refuse"), (name, verdict)


@pytest.mark.parametrize("lang", rh.LANGS)
def test_verdicts_are_the_recorded_ones(lang: str) -> None:
    server = rh.Server(lang)
    try:
        changed = [
            (name, got, RECORDED[name][lang])
            for name, data in rh.cases()
            if (got := rh.verdict(*server.reencode(data))) != RECORDED[name][lang]
        ]
    finally:
        server.close()
    assert changed == [], f"{len(changed)} verdicts changed; first: {changed[:3]}"


def test_readme_lists_every_disagreement() -> None:
    readme = (HERE / "README.md").read_text()
    count = re.search(r"^(\d+) cases where not all five agree", readme, re.M)
    assert count, "README.md gives no count of disagreements"
    disagreeing = [name for name, by_lang in RECORDED.items() if not rh.agree(by_lang)]
    assert int(count.group(1)) == len(disagreeing)
    for name in disagreeing:
        assert f"`{name}`" in readme, name
    held = re.search(r"`tests/vectors/hostile/` holds ([\d,]+) ", readme)
    assert held, "README.md gives no number of cases"
    assert int(held.group(1).replace(",", "")) == len(RECORDED)
