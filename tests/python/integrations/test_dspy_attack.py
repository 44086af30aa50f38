"""dsxir.integrations.dspy attacked: a stored program may not reconfigure the model it calls.

A predictor's ``load_state`` sets every attribute its state names and
builds the language model the state describes, so an artifact from a
checkpoint of another machine could point the restored program's model
calls (with the caller's API key) at another host. Such artifacts are
refused; the restored program calls the model the caller configures.
"""

from __future__ import annotations

import copy
import http.server
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("DSPY_CACHEDIR", str(Path(tempfile.gettempdir()) / "dsxir-tests-dspy-cache"))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import dspy
import dspy_task

from dsxir.errors import ResumeMismatch
from dsxir.integrations.dspy import (
    ResumableRandomSearch,
    load_best_program,
    program_artifact,
    restore_program,
)
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session.terms import map_body
from dsxir.optimizer_session.v1.checkpoint_pb2 import SESSION_STATUS_PAUSED
from dsxir.store import MemoryStore, Store


@pytest.fixture(autouse=True)
def dummy_lm() -> Iterator[None]:
    with dspy.context(lm=dspy_task.make_lm()):
        yield


@pytest.fixture
def listener() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A local HTTP server standing for another host: its URL and the headers it received."""
    seen: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(dict(self.headers))
            self.send_response(500)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1", seen
    server.shutdown()
    thread.join()


def answer(change: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    return lambda artifact: change(artifact["state"]["answer"])


HOSTILE = {
    "config": answer(lambda s: s.update(config={"api_base": "http://127.0.0.1:9/v1"})),
    "lm": answer(lambda s: s.update(lm={"model": "openai/x", "extra_headers": {"X": "1"}})),
    "lm-base": answer(lambda s: s.update(lm={"model": "openai/x", "api_base": "http://e"})),
    "__dict__": answer(lambda s: s.update(__dict__={})),
    "callbacks": answer(lambda s: s.update(callbacks=[{"x": 1}])),
    "forward": answer(lambda s: s.update(forward="x")),
    "extra-predictor": lambda a: a["state"].update(other={"demos": []}),
    "missing-predictor": lambda a: a["state"].pop("answer"),
    "predictor-not-a-map": lambda a: a["state"].update(answer=[1]),
}


@pytest.mark.parametrize("change", HOSTILE.values(), ids=HOSTILE.keys())
def test_restore_refuses_a_state_dump_state_does_not_write(change: Any) -> None:
    artifact = program_artifact(dspy_task.Lookup(), seed=-3)
    change(artifact)
    with pytest.raises(ResumeMismatch) as refused:
        restore_program(dspy_task.Lookup(), artifact)
    assert (refused.value.reason, refused.value.field) == (
        "checkpoint_shape",
        "best_program_artifact",
    )


def test_a_planted_model_endpoint_never_receives_the_api_key(
    listener: tuple[str, list[dict[str, str]]],
) -> None:
    url, seen = listener
    artifact = program_artifact(dspy_task.Lookup(), seed=-3)
    artifact["state"]["answer"]["config"] = {"api_base": url}
    with pytest.raises(ResumeMismatch, match="config"):
        restore_program(dspy_task.Lookup(), artifact)
    # what the refusal prevents: dspy passes a predictor's config to the model call
    program = dspy_task.Lookup()
    program.answer.config = {"api_base": url}
    secret = "sk-" + "T3st" * 6
    model = dspy.LM("openai/gpt-4o-mini", api_key=secret, cache=False, num_retries=0)
    with dspy.context(lm=model), pytest.raises(Exception):  # noqa: B017 - the listener fails it
        program(question="1 + 1?")
    assert [headers.get("Authorization") for headers in seen] == [f"Bearer {secret}"]


def completed_session(store: Store) -> None:
    """Session "s": the search restricted to seed -3, completed."""
    ResumableRandomSearch(**dspy_task.KNOBS).compile(
        dspy_task.Lookup(),
        trainset=dspy_task.trainset(),
        store=store,
        session_id="s",
        restrict=[-3],
        handle_signals=False,
    )


def plant(store: Store, change: Any) -> None:
    """Session "d": "s" paused again, its artifact changed by ``change``."""
    cp = store.get("s").checkpoint
    cp.status = SESSION_STATUS_PAUSED
    cp.ClearField("terminal_reason")
    artifact = checkpoint.from_term(cp.best_program_artifact)
    change(artifact)
    cp.ClearField("best_program_artifact")
    cp.best_program_artifact.MergeFromString(map_body(artifact))
    cp.session_id = "d"
    store.put(cp)


@pytest.mark.parametrize("name", ["config", "lm", "__dict__"])
def test_a_planted_artifact_is_refused_on_resume_and_on_load(name: str) -> None:
    store = MemoryStore()
    completed_session(store)
    plant(store, HOSTILE[name])
    with pytest.raises(ResumeMismatch, match=name.strip("_")):
        load_best_program(store, "d", dspy_task.Lookup())
    with pytest.raises(ResumeMismatch, match=name.strip("_")):
        ResumableRandomSearch(**dspy_task.KNOBS).compile(
            dspy_task.Lookup(),
            trainset=dspy_task.trainset(),
            store=store,
            session_id="d",
            restrict=[-3],
            handle_signals=False,
        )
    stored = store.get("d")
    assert checkpoint.status_name(stored.checkpoint) == "paused"
    assert store.get_lease("d") is None


def test_a_stored_program_with_demos_still_restores() -> None:
    store = MemoryStore()
    completed_session(store)
    plant(store, answer(lambda s: s.update(demos=[{"question": "q", "answer": "a"}])))
    program = load_best_program(store, "d", dspy_task.Lookup())
    assert program.answer.demos == [{"question": "q", "answer": "a"}]
    assert program.answer.lm is None and program.answer.config == {}
    state = copy.deepcopy(program_artifact(program, seed=-3))
    assert restore_program(dspy_task.Lookup(), state).answer.demos == program.answer.demos


def test_a_lone_predictor_is_checked_the_same_way() -> None:
    student = dspy.Predict("question -> answer")
    student.demos = [{"question": "q", "answer": "a"}]
    artifact = program_artifact(student, seed=-2)
    restored = restore_program(dspy.Predict("question -> answer"), artifact)
    assert restored.dump_state() == student.dump_state()
    artifact["state"]["config"] = {"api_base": "http://127.0.0.1:9/v1"}
    with pytest.raises(ResumeMismatch, match="config"):
        restore_program(dspy.Predict("question -> answer"), artifact)


def compile_with(**options: Any) -> Any:
    store = MemoryStore()
    knobs = options.pop("knobs", {})
    search = ResumableRandomSearch(**{**dspy_task.KNOBS, **knobs})
    args = {"trainset": dspy_task.trainset(), "store": store, "session_id": "s", **options}
    try:
        return search.compile(dspy_task.Lookup(), handle_signals=False, **args)
    finally:
        assert store.list() == []  # refused before the session was opened


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"trainset": [], "valset": dspy_task.trainset()}, ValueError, "trainset is empty"),
        ({"knobs": {"stop_at_score": float("nan")}}, ValueError, "stop_at_score must not be NaN"),
        ({"knobs": {"metric_threshold": float("nan")}}, ValueError, "metric_threshold"),
        ({"restrict": [-3.7]}, TypeError, "restrict"),
        ({"restrict": ["a"]}, TypeError, "restrict"),
        ({"restrict": [True]}, TypeError, "restrict"),
    ],
)
def test_arguments_that_would_fail_later_are_refused_first(
    options: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        compile_with(**options)


def test_an_empty_trainset_is_taken_for_the_seeds_that_need_none() -> None:
    store = MemoryStore()
    program = ResumableRandomSearch(**dspy_task.KNOBS).compile(
        dspy_task.Lookup(),
        trainset=[],
        valset=dspy_task.trainset(),
        store=store,
        session_id="s",
        restrict=[-3, -2],
        handle_signals=False,
    )
    assert [c["seed"] for c in program.candidate_programs] == [-3, -2]
