"""The differential fuzz of ``fuzz.py``: 20,000 inputs through every language's serve loop.

Every input gets the same answer from every language and from the reference
(the bytes written back, or the refusal's rule and path); any disagreement
is printed with the input in hex and each answer, and fails the test.
``make fuzz`` runs the same fuzz with 1,000,000 inputs.
"""

from __future__ import annotations

import io

import fuzz

INPUTS = 20_000


def test_every_language_gives_the_same_answer_to_every_fuzz_input() -> None:
    out = io.StringIO()
    report = fuzz.run(INPUTS, seed=2026, langs=fuzz.LANGS, use_reference=True, out=out)
    print(report.summary())
    assert report.inputs == INPUTS
    assert report.accepted > INPUTS // 20, report.summary()
    assert len(report.by_rule) >= 15, report.summary()
    assert not report.disagreements, report.summary() + "\n" + "".join(report.examples[:5])
