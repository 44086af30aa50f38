"""A toy DSPy task for the ResumableRandomSearch tests, and a worker process running it.

The task: eight addition questions; the language model is ``DummyLM`` (no
network) answering by question, wrong ("0") for questions 3, 4 and 5. The
program, :class:`Lookup`, answers from its own demos when one holds the
question and asks the model otherwise, so a candidate's score depends on
its demos. With :data:`KNOBS` the candidates' scores are 62.5 for seeds -3
to 2 and 75.0 for seeds 3 and 4: the best is seed -3 until seed 3 beats it.

Run as a script, it runs (or resumes) the search as one worker::

    python dspy_task.py STORE_DIR SESSION_ID EVENTS OUT [--kill-after N]
        [--lease-ttl S] [--other-trainset]

and appends one line per event to EVENTS: ``evaluating <seed>``,
``committed <seed>``, ``skipped <seed>`` (the search's log records) and
``lm`` (each model call). With ``--kill-after N`` it kills itself with
SIGKILL at the first model call after N candidates were committed. At the
end it writes OUT: the best program's ``dump_state()``, the candidates and
whether litellm was imported. Any connection to a network address is
refused, so the run is shown to be offline.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import dspy
from dspy.utils.callback import BaseCallback
from dspy.utils.dummies import DummyLM

PAIRS = [(3, 4), (5, 1), (2, 2), (6, 7), (1, 8), (9, 9), (4, 3), (8, 2)]
WRONG = {3, 4, 5}
QUESTIONS = [
    (f"Question {i:02d}: what is {a} plus {b}?", str(a + b)) for i, (a, b) in enumerate(PAIRS)
]
SEEDS = list(range(-3, 5))
SCORES = {-3: 62.5, -2: 62.5, -1: 62.5, 0: 62.5, 1: 62.5, 2: 62.5, 3: 75.0, 4: 75.0}


def trainset(other: bool = False) -> list[Any]:
    """The eight examples; ``other`` swaps one answer (another trainset, another hash)."""
    examples = [dspy.Example(question=q, answer=a).with_inputs("question") for q, a in QUESTIONS]
    if other:
        examples[0] = dspy.Example(question=QUESTIONS[0][0], answer="8").with_inputs("question")
    return examples


def make_lm() -> Any:
    """DummyLM answering each question, wrongly for those in WRONG."""
    return DummyLM({q: {"answer": "0" if i in WRONG else a} for i, (q, a) in enumerate(QUESTIONS)})


class Lookup(dspy.Module):
    """Answers from a demo holding the question, else asks the model."""

    def __init__(self) -> None:
        super().__init__()
        self.answer = dspy.Predict("question -> answer")

    def forward(self, question: str) -> Any:
        for demo in self.answer.demos:
            if demo["question"] == question:
                return dspy.Prediction(answer=demo["answer"])
        return self.answer(question=question)


def exact_match(example: Any, prediction: Any, trace: Any = None) -> bool:
    """The metric: the predicted answer is the example's."""
    return bool(example.answer == prediction.answer)


KNOBS: dict[str, Any] = {
    "metric": exact_match,
    "max_bootstrapped_demos": 2,
    "max_labeled_demos": 2,
    "num_candidate_programs": 5,
    "num_threads": 1,
}


class LMCalls(BaseCallback):
    """Calls ``action`` at the start of every model call."""

    def __init__(self, action: Any) -> None:
        self.action = action

    def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        self.action()


def _refuse_network() -> None:
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            raise OSError(f"network access refused in this test: {address!r}")
        return real_connect(sock, address)

    socket.socket.connect = connect


def main(argv: list[str]) -> int:
    store_dir, session_id, events_path, out_path, *rest = argv
    kill_after = int(rest[rest.index("--kill-after") + 1]) if "--kill-after" in rest else None
    lease_ttl = float(rest[rest.index("--lease-ttl") + 1]) if "--lease-ttl" in rest else 30.0
    _refuse_network()
    # Line-buffered: each line reaches the file before the next step, SIGKILL or not.
    with open(events_path, "a", buffering=1) as events:
        best = _run(events, kill_after, store_dir, session_id, lease_ttl, rest)
    Path(out_path).write_text(
        json.dumps(
            {
                "state": best.dump_state(),
                "candidates": best.candidate_programs,
                "litellm_imported": "litellm" in sys.modules,
            }
        )
    )
    return 0


def _run(
    events: Any,
    kill_after: int | None,
    store_dir: str,
    session_id: str,
    lease_ttl: float,
    rest: list[str],
) -> Any:
    from dsxir.integrations.dspy import ResumableRandomSearch
    from dsxir.store import FileStore

    committed = 0

    class Events(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            nonlocal committed
            event = getattr(record, "event", None)
            if event is not None:
                events.write(f"{event} {record.seed}\n")
                committed += event == "committed"

    def on_lm() -> None:
        events.write("lm\n")
        if kill_after is not None and committed >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    log = logging.getLogger("dsxir.integrations.dspy")
    log.addHandler(Events())
    log.setLevel(logging.INFO)
    dspy.configure(lm=make_lm(), callbacks=[LMCalls(on_lm)])
    return ResumableRandomSearch(**KNOBS).compile(
        Lookup(),
        trainset=trainset(other="--other-trainset" in rest),
        store=FileStore(store_dir),
        session_id=session_id,
        lease_ttl=lease_ttl,
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
