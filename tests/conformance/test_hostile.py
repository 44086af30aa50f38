"""Every language gives the one recorded verdict on every case of the hostile corpus.

``tests/vectors/hostile`` holds non-canonical and damaged checkpoint
encodings (padded tags, varints and lengths, groups, field number 0, wrong
wire types, fields out of order or repeated, explicit defaults, deep
nesting, each body sealed with a right trailer; then unsealed, cut and
bit-flipped checkpoints; ``generate.py`` there writes them). Its
``manifest.json`` gives every case one verdict, computed by the reference
when the corpus was written: accept with the sha256 of the bytes written
back, or refuse with the rule id and the path. This suite runs every case
through every testee's ``serve`` loop and requires exactly that verdict.
A language's known failures, if any, are listed by name in
``expected_failures/<lang>.json`` (``record_hostile.py --record`` writes
them); the failures must be exactly those, so a fix also removes its entry.
"""

from __future__ import annotations

import importlib.util
import json
from typing import Any

import pytest
import record_hostile as rh


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("hostile_generate", rh.HOSTILE / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ENTRIES = rh.cases()


def test_corpus_is_what_the_generator_writes() -> None:
    files = _generator().build()
    on_disk = {p.name: p.read_bytes() for p in rh.HOSTILE.glob("*.binpb")}
    on_disk["manifest.json"] = (rh.HOSTILE / "manifest.json").read_bytes()
    assert sorted(on_disk) == sorted(files)
    assert [name for name in files if on_disk[name] != files[name]] == []
    assert len(files) - 1 <= 3000
    assert sum(map(len, on_disk.values())) < 2_000_000


def test_every_case_has_one_verdict() -> None:
    for entry in ENTRIES:
        if entry["verdict"] == "accept":
            assert len(entry["sha256"]) == 64, entry["name"]
        else:
            assert entry["verdict"] == "refuse", entry["name"]
            assert entry["rule"] and entry["path"], entry["name"]
    verdicts = {entry["verdict"] for entry in ENTRIES}
    assert verdicts == {"accept", "refuse"}


def test_expected_failures_name_cases() -> None:
    names = {entry["name"] for entry in ENTRIES}
    for path in rh.FAILURES.glob("*.json"):
        assert path.stem in rh.LANGS, path
        listed = json.loads(path.read_text())["hostile"]
        assert listed and set(listed) <= names, path


@pytest.mark.parametrize("lang", rh.LANGS)
def test_verdicts_are_the_expected_ones(lang: str) -> None:
    wrong = rh.wrong_answers(lang, ENTRIES)
    known = set(rh.known_failures(lang))
    unexpected = {name: got for name, got in wrong.items() if name not in known}
    fixed = sorted(known - set(wrong))
    assert unexpected == {}, (
        f"{len(unexpected)} cases answered otherwise: {list(unexpected.items())[:5]}"
    )
    assert fixed == [], f"listed in expected_failures/{lang}.json but answered right: {fixed}"
