"""Hypothesis strategies for Term values and valid checkpoints, shared by the test suites."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st

from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session.terms import Atom
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint

EDGE_INTS = [
    0,
    1,
    -1,
    2**63 - 1,
    -(2**63),
    2**63,
    -(2**63) - 1,
    2**64,
    -(2**64),
    2**200,
]
EDGE_FLOATS = [
    0.0,
    -0.0,
    math.inf,
    -math.inf,
    5e-324,
    -5e-324,
    1.7976931348623157e308,
    1.0,
]

ints = st.one_of(st.sampled_from(EDGE_INTS), st.integers(), st.integers(-(2**300), 2**300))
floats = st.one_of(st.sampled_from(EDGE_FLOATS), st.floats(allow_nan=False))
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    ints,
    floats,
    texts,
    st.binary(max_size=12),
    texts.map(Atom),
)
hashable_keys = st.one_of(
    st.none(),
    st.booleans(),
    ints,
    floats.filter(lambda f: f != 0 or math.copysign(1, f) > 0),
    texts,
    st.binary(max_size=6),
    texts.map(Atom),
)


def _python_dict_keys_unique(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for key, value in pairs:
        if key not in out:
            out[key] = value
    return out


terms: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.lists(st.tuples(hashable_keys, children), max_size=4).map(_python_dict_keys_unique),
    ),
    max_leaves=20,
)
"""Any Python value with a Term form (depth well inside the limit)."""

term_maps = st.lists(st.tuples(texts, terms), max_size=4).map(_python_dict_keys_unique)
scores = st.one_of(st.none(), floats)
timestamps = st.tuples(st.integers(-62_135_596_800, 253_402_300_799), st.integers(0, 999_999_999))


@st.composite
def checkpoints(draw: st.DrawFn, max_trials: int = 6) -> Checkpoint:
    """A valid checkpoint reached through the library's own transitions."""
    cp = ck.new(
        session_id=draw(texts.filter(bool)),
        optimizer=draw(st.sampled_from(["dspy.teleprompt.MIPROv2", "Dsxir.Optimizer.GEPA"])),
        trainset_hash=draw(st.binary(min_size=32, max_size=32)),
        sampler_blob=draw(st.binary(max_size=16)),
        sampler_format=(draw(texts.filter(bool)), draw(st.integers(1, 2**32 - 1))),
        optimizer_opts=draw(
            st.lists(
                st.tuples(st.sampled_from(["lr", "n", "model", "seed"]), terms),
                max_size=4,
            )
        ),
        program_module=draw(st.one_of(st.none(), texts.filter(bool))),
        direction=draw(st.sampled_from(["higher", "lower"])),
        redact_secrets=True,  # random keys may look like credentials
    )
    for _ in range(draw(st.integers(0, max_trials))):
        ok = draw(st.booleans())
        ck.record_trial(
            cp,
            score=draw(scores),
            status="ok" if ok else "error",
            candidate_id=draw(st.one_of(st.none(), texts)),
            stats=draw(st.one_of(st.none(), term_maps)),
            duration_ms=draw(st.integers(0, 2**64 - 1)),
            error=None if ok else draw(st.one_of(st.none(), term_maps)),
            error_class=None if ok else draw(st.one_of(st.none(), texts)),
            sampler_blob=draw(st.one_of(st.none(), st.binary(max_size=16))),
            best_program_artifact=draw(st.one_of(st.none(), term_maps)),
            redact_secrets=True,
        )
    end = draw(st.sampled_from(["running", "paused", "completed", "failed", "cancelled"]))
    reason = draw(st.one_of(st.none(), terms))
    if end == "paused":
        ck.pause(cp)
    elif end == "cancelled":
        ck.cancel(cp, reason, redact_secrets=True)
    elif end == "completed":
        ck.complete(cp, reason, redact_secrets=True)
    elif end == "failed":
        ck.fail(cp, reason, redact_secrets=True)
    for stamp in (cp.created_at, cp.updated_at, cp.progress.started_at):
        stamp.seconds, stamp.nanos = draw(timestamps)
    return cp
