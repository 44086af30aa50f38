"""Rule ids (FORMAT.md §7.1): the constants, the spec file, FORMAT.md's table, refusals."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dsxir.errors import InvalidCheckpoint, ResumeMismatch
from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session import columns, rules
from dsxir.optimizer_session.v1.term_pb2 import Term

ROOT = Path(__file__).resolve().parents[3]
SPEC = json.loads((ROOT / "spec" / "checkpoint-rules-v1.json").read_text())["rules"]
FORMAT_MD = (ROOT / "FORMAT.md").read_text()
MANIFEST = json.loads((ROOT / "tests" / "vectors" / "manifest.json").read_text())


def test_the_constants_are_exactly_the_ids_of_the_spec_file() -> None:
    ids = [rule["id"] for rule in SPEC]
    constants = {name: getattr(rules, name) for name in rules.__all__ if name != "ALL"}
    defined = [value for name, value in vars(rules).items() if name in constants]
    assert defined == ids  # the same ids, in the order of the file
    assert frozenset(ids) == rules.ALL
    for name, value in constants.items():
        assert name == value.upper().replace(".", "_")


def test_the_spec_file_is_well_formed() -> None:
    ids = [rule["id"] for rule in SPEC]
    assert len(ids) == len(set(ids))
    headings = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)?)\.? ", FORMAT_MD, re.MULTILINE))
    for rule in SPEC:
        assert set(rule) == {"id", "path", "section", "text"}, rule
        assert re.fullmatch(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)+", rule["id"]), rule["id"]
        assert rule["section"] in headings, rule
        assert rule["path"] and rule["text"] and not rule["text"].endswith("."), rule


def rule_table() -> str:
    """FORMAT.md §7.1's table as the spec file gives it."""
    rows = ["| Rule | Path | § | Refused when |", "|---|---|---|---|"]
    for rule in SPEC:
        path = " or ".join(f"`{part}`" for part in rule["path"].split(" | "))
        text = rule["text"].replace("<", "\\<")
        rows.append(f"| `{rule['id']}` | {path} | {rule['section']} | {text} |")
    return "\n".join(rows) + "\n"


def test_format_md_lists_every_rule_as_the_spec_file_does() -> None:
    section = FORMAT_MD.split("### 7.1 Rule ids", 1)[1].split("\n## 8.", 1)[0]
    table = "".join(line + "\n" for line in section.splitlines() if line.startswith("|"))
    assert table == rule_table(), "FORMAT.md §7.1 should hold this table:\n" + rule_table()


def test_every_invalid_vector_names_a_rule_of_the_spec_file() -> None:
    for vector in MANIFEST["invalid"]:
        assert vector["rule"] in rules.ALL, vector["name"]


# --- messages -------------------------------------------------------------------


def test_a_refusal_message_ends_with_its_rule() -> None:
    named = InvalidCheckpoint("progress", "is required", rules.PROGRESS_REQUIRED)
    assert str(named) == "progress: is required (rule progress.required)"
    assert named.rule == "progress.required" and named.detail == "is required"
    assert str(InvalidCheckpoint("status", "must be 'ok' or 'error'")) == (
        "status: must be 'ok' or 'error'"
    )
    shape = ResumeMismatch(
        "s", "checkpoint_shape", field="format", detail="is odd", rule=rules.FORMAT_SHAPE
    )
    assert str(shape) == "checkpoint_shape: format: is odd (rule format.shape)"
    gate = ResumeMismatch("s", "optimizer", "a", "b")
    assert gate.rule is None and "(rule" not in str(gate)


# --- refusals outside decode ----------------------------------------------------


def _new(**kw: Any) -> Any:
    args: dict[str, Any] = {
        "session_id": "s1",
        "optimizer": "o",
        "trainset_hash": bytes(32),
        "sampler_blob": b"",
        "sampler_format": ("m", 1),
    }
    args.update(kw)
    return ck.new(**args)


def _record(**kw: Any) -> Callable[[], Any]:
    return lambda: ck.record_trial(_new(), **kw)


def _deep(depth: int) -> Any:
    value: Any = None
    for _ in range(depth):
        value = [value]
    return value


class _Pairs:
    """A mapping-like value whose items repeat a key."""

    def items(self) -> list[tuple[str, int]]:
        return [("a", 1), ("a", 2)]


def _columns_of_unknown_status() -> Any:
    cp = _new()
    ck.record_trial(cp, score=1.0)
    cp.progress.trial_log[0].status = 7  # type: ignore[assignment]
    return columns.trial_columns(cp)


def _direction_name_of(number: int) -> Any:
    cp = _new()
    cp.direction = number  # type: ignore[assignment]
    return ck.direction_name(cp)


def _encode_without_progress() -> Any:
    cp = _new()
    cp.ClearField("progress")
    return ck.encode(cp)


def _collide() -> Any:
    term = ck.to_term({1: "a"})
    entry = term.map_value.entries.add()
    entry.key.float_value = 1.0
    entry.value.string_value = "b"
    return ck.from_term(term)


@pytest.mark.parametrize(
    ("call", "path", "rule"),
    [
        pytest.param(_record(score=math.nan), "score", rules.FLOAT_NAN, id="score-nan"),
        pytest.param(
            _record(score=1.0, stats={"x": math.nan}),
            "stats['x']",
            rules.FLOAT_NAN,
            id="stats-nan",
        ),
        pytest.param(
            _record(score=1.0, stats={"d": _deep(30)}),
            "stats['d']" + "[0]" * 23,
            rules.TERM_DEPTH,
            id="stats-deep",
        ),
        pytest.param(
            lambda: _new(optimizer_opts=[("o", _Pairs())]),
            "optimizer_opts[0].value",
            rules.TERM_MAP_ORDER,
            id="duplicate-key",
        ),
        pytest.param(lambda: _new(session_id=""), "session_id", rules.SESSION_ID_REQUIRED),
        pytest.param(
            lambda: _new(sampler_format=("m", 0)),
            "sampler_format.version",
            rules.SAMPLER_FORMAT_VERSION_MIN,
            id="sampler-version-0",
        ),
        pytest.param(lambda: ck.from_term(Term()), "term", rules.TERM_KIND, id="no-kind"),
        pytest.param(
            _columns_of_unknown_status,
            "progress.trial_log[0].status",
            rules.TRIAL_STATUS,
            id="columns",
        ),
        pytest.param(
            lambda: _direction_name_of(5), "direction", rules.DIRECTION_KNOWN, id="direction-5"
        ),
        pytest.param(_encode_without_progress, "progress", rules.PROGRESS_REQUIRED, id="encode"),
        # Refusals that break no rule of the format name none.
        pytest.param(_record(score=1.0, status="maybe"), "status", None, id="status-maybe"),
        pytest.param(_record(score=1.0, duration_ms=-1), "duration_ms", None, id="duration"),
        pytest.param(
            lambda: _new(sampler_format=("m", 1 << 32)),
            "sampler_format.version",
            None,
            id="sampler-version-too-big",
        ),
        pytest.param(lambda: _new(direction="sideways"), "direction", None, id="direction-word"),
        pytest.param(
            lambda: _new(optimizer_opts={"api_key": "x"}),
            "optimizer_opts[0].key",
            None,
            id="credential",
        ),
        pytest.param(lambda: ck.to_term("\ud800"), "value", None, id="lone-surrogate"),
        pytest.param(_collide, "term.map_value.entries[1]", None, id="python-key-collision"),
    ],
)
def test_refusals_outside_decode_name_their_rule(
    call: Callable[[], Any], path: str, rule: str | None
) -> None:
    with pytest.raises(InvalidCheckpoint) as info:
        call()
    assert (info.value.path, info.value.rule) == (path, rule)
    assert str(info.value).endswith(f" (rule {rule})") is (rule is not None)


@pytest.mark.parametrize(
    ("text", "field", "rule"),
    [
        ("{", "<input>", None),  # not JSON: no rule of the format (FORMAT.md §7.1)
        ('{"sessionId": 3', "<input>", None),
        ('{"format": "dsxir.optimizer_session.checkpoint/v2.0"}', "format", rules.FORMAT_MAJOR),
    ],
)
def test_json_refusals_name_their_rule(text: str, field: str, rule: str | None) -> None:
    with pytest.raises(ResumeMismatch) as info:
        ck.from_json(text)
    assert (info.value.field, info.value.rule) == (field, rule)
