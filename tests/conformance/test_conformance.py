"""Every language reads and writes the same bytes as Python.

Each language has an executable ``tests/conformance/testee-<lang>`` (see
README.md beside this file). This suite feeds it every golden vector through
the one-shot commands, then thousands of random checkpoints, random
trainsets and corrupted checkpoints through its ``serve`` loop, and compares
the answers with the Python library's (the bytes, or a refusal's field path
and rule id); then every store-file vector and random, damaged store files
through ``read-store-file`` (docs/store-file.md); then the trainsets-as-JSON
cases and random JSON text (FORMAT.md §6.1).
A missing or broken testee fails the suite: nothing is skipped.
"""

from __future__ import annotations

import json
import random
import re
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dsxir.errors import CorruptStore, ResumeMismatch
from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session.terms import term_bytes
from dsxir.store import framing
from dsxir.store.summary import encode_summary
from strategies import checkpoints, terms

HERE = Path(__file__).resolve().parent
VECTORS = HERE.parent / "vectors"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text())
STORE_MANIFEST = [
    json.loads(line)
    for line in (VECTORS / "store" / "manifest.jsonl").read_text().splitlines()
    if line
]
RULES = json.loads((HERE.parents[1] / "spec" / "checkpoint-rules-v1.json").read_text())["rules"]
UNVECTORED_RULES = {
    "input.too_large": "a vector would be a file of more than 256 MiB, too big to keep "
    "in the repository or to pipe to every testee",
}
"""Rules no invalid vector breaks, and why none can."""


@dataclass(frozen=True)
class Lang:
    """What a language's testee implements."""

    name: str
    hashes: bool  # implements hash-trainset
    full: bool  # implements every rule of FORMAT.md §7 with the same field paths
    keeps_unknown: bool  # its runtime keeps unknown fields
    hashes_json: bool  # implements hash-trainset-json and hash-trainset-jsonl


LANGS = [
    Lang("python", hashes=True, full=True, keeps_unknown=True, hashes_json=True),
    Lang("go", hashes=True, full=True, keeps_unknown=True, hashes_json=True),
    Lang("typescript", hashes=True, full=True, keeps_unknown=True, hashes_json=True),
    Lang("java", hashes=True, full=True, keeps_unknown=True, hashes_json=True),
    Lang("rust", hashes=True, full=True, keeps_unknown=False, hashes_json=True),
]
FULL = [lang for lang in LANGS if lang.full]
HASHING = [lang for lang in LANGS if lang.hashes]
JSON_HASHING = [lang for lang in LANGS if lang.hashes_json]
OK, REFUSED, DAMAGED = 0, 3, 4


def _lang_ids(langs: list[Lang]) -> list[Any]:
    return [pytest.param(lang, id=lang.name) for lang in langs]


def run_once(lang: Lang, command: str, data: bytes) -> subprocess.CompletedProcess[bytes]:
    launcher = HERE / f"testee-{lang.name}"
    assert launcher.is_file(), f"{launcher} is missing"
    return subprocess.run(
        [str(launcher), command], input=data, capture_output=True, timeout=120, check=False
    )


class Server:
    """A testee's serve loop: length-framed requests and answers over pipes."""

    def __init__(self, lang: Lang) -> None:
        self.lang = lang
        self.proc = subprocess.Popen(
            [str(HERE / f"testee-{lang.name}"), "serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def ask(self, command: bytes, payload: bytes) -> tuple[int, bytes]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(command + struct.pack(">I", len(payload)) + payload)
        self.proc.stdin.flush()
        head = self.proc.stdout.read(5)
        assert len(head) == 5, f"testee-{self.lang.name} serve died (exit {self.proc.poll()})"
        (length,) = struct.unpack(">I", head[1:])
        return head[0], self.proc.stdout.read(length)

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        assert self.proc.wait(timeout=60) == 0, f"testee-{self.lang.name} serve exited badly"


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Server]]:
    started = {lang.name: Server(lang) for lang in LANGS}
    yield started
    for server in started.values():
        server.close()


def python_verdict(data: bytes, *, keep_unknown: bool = True) -> tuple[int, bytes]:
    """Python's answer; for a runtime that drops unknown fields, without them."""
    try:
        cp = ck.decode(data)
    except ResumeMismatch as exc:
        return REFUSED, str(exc).encode()
    if not keep_unknown:
        cp.DiscardUnknownFields()
    return OK, ck.encode(cp)


def field_of(refusal: bytes) -> str:
    """The field path of a refusal line ``checkpoint_shape: <field>: <message> (rule <id>)``."""
    line = refusal.decode(errors="replace")
    assert line.startswith("checkpoint_shape: "), line
    return line[len("checkpoint_shape: ") :].split(": ", 1)[0]


_RULE = re.compile(r" \(rule ([a-z_]+(?:\.[a-z_]+)+)\)$")


def rule_of(refusal: bytes) -> str | None:
    """The rule id a refusal line ends with (``(rule <id>)``); None when it names none."""
    found = _RULE.search(refusal.decode(errors="replace").rstrip("\r\n"))
    return found.group(1) if found else None


def test_every_rule_is_broken_by_an_invalid_vector() -> None:
    ids = {rule["id"] for rule in RULES}
    named = {vector["rule"] for vector in MANIFEST["invalid"]}
    assert named <= ids, named - ids
    assert set(UNVECTORED_RULES) <= ids
    assert ids - named == set(UNVECTORED_RULES)


# --- golden vectors through the one-shot commands -----------------------------------


@pytest.mark.parametrize("lang", _lang_ids(LANGS))
def test_valid_vectors_reencode_identically(lang: Lang) -> None:
    for vector in MANIFEST["valid"]:
        raw = (VECTORS / vector["binpb"]).read_bytes()
        result = run_once(lang, "reencode", raw)
        assert result.returncode == OK, (vector["name"], result.stderr)
        assert result.stdout == raw, vector["name"]


@pytest.mark.parametrize("lang", _lang_ids(LANGS))
def test_noncanonical_vectors_reencode_canonically(lang: Lang) -> None:
    for vector in MANIFEST["noncanonical"]:
        raw = (VECTORS / vector["binpb"]).read_bytes()
        result = run_once(lang, "reencode", raw)
        assert result.returncode == OK, (vector["name"], result.stderr)
        assert result.stdout == (VECTORS / vector["canonical"]).read_bytes(), vector["name"]


@pytest.mark.parametrize("lang", _lang_ids(LANGS))
def test_unknown_field_vectors(lang: Lang) -> None:
    for vector in MANIFEST["unknown"]:
        raw = (VECTORS / vector["binpb"]).read_bytes()
        expected = raw if lang.keeps_unknown else (VECTORS / vector["known_only"]).read_bytes()
        result = run_once(lang, "reencode", raw)
        assert result.returncode == OK, (vector["name"], result.stderr)
        assert result.stdout == expected, vector["name"]


@pytest.mark.parametrize("lang", _lang_ids(LANGS))
def test_invalid_vectors_are_refused(lang: Lang) -> None:
    for vector in MANIFEST["invalid"]:
        if not (lang.full or vector["protobuf_level"]):
            continue
        result = run_once(lang, "reencode", (VECTORS / vector["binpb"]).read_bytes())
        assert result.returncode == REFUSED, (vector["name"], result.returncode, result.stderr)
        assert result.stdout == b"", vector["name"]
        lines = result.stderr.decode(errors="replace").splitlines()
        assert len(lines) == 1, (vector["name"], lines)
        if lang.full:
            line = lines[0].encode()
            assert field_of(line) == vector["field"], (vector["name"], lines[0])
            assert rule_of(line) == vector["rule"], (vector["name"], lines[0])


@pytest.mark.parametrize("lang", _lang_ids(HASHING))
def test_trainset_vectors(lang: Lang) -> None:
    for vector in MANIFEST["trainset"]:
        result = run_once(lang, "hash-trainset", (VECTORS / vector["input"]).read_bytes())
        assert result.returncode == OK, (vector["name"], result.stderr)
        assert result.stdout.decode().strip() == vector["sha256"], vector["name"]


@pytest.mark.parametrize("lang", _lang_ids(LANGS))
def test_usage_errors_exit_2(lang: Lang) -> None:
    assert run_once(lang, "no-such-command", b"").returncode == 2


# --- random input through the serve loops ---------------------------------------------

# Derandomized: the same examples on every run of the same code, so a
# disagreement found once is found again (and CI is not a lottery).
RANDOM = settings(
    max_examples=1000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@RANDOM
@given(cp=checkpoints())
def test_random_checkpoints_are_byte_identical(servers: dict[str, Server], cp: Any) -> None:
    raw = ck.encode(cp)
    for name, server in servers.items():
        assert server.ask(b"r", raw) == (OK, raw), name


@settings(RANDOM, max_examples=300)
@given(examples=st.lists(terms, max_size=6))
def test_random_trainsets_hash_identically(servers: dict[str, Server], examples: Any) -> None:
    expected = (ck.hash_trainset(examples).hex() + "\n").encode()
    payload = term_bytes(examples)
    for lang in HASHING:
        assert servers[lang.name].ask(b"h", payload) == (OK, expected), lang.name


@settings(RANDOM, max_examples=400)
@given(cp=checkpoints(max_trials=3), seed=st.integers(0, 2**32))
def test_corrupted_checkpoints_get_the_same_verdict(
    servers: dict[str, Server], cp: Any, seed: int
) -> None:
    rng = random.Random(seed)
    data = bytearray(ck.encode(cp))
    for _ in range(rng.randint(1, 3)):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    for lang in FULL:
        status, answer = python_verdict(bytes(data), keep_unknown=lang.keeps_unknown)
        got_status, got = servers[lang.name].ask(b"r", bytes(data))
        assert got_status == status, (lang.name, bytes(data).hex(), answer, got)
        if status == OK:
            assert got == answer, lang.name
        else:
            assert field_of(got) == field_of(answer), (lang.name, answer, got)
            assert rule_of(got) == rule_of(answer), (lang.name, answer, got)


# --- trainsets as JSON text (FORMAT.md §6.1) ------------------------------------------

TRAINSET_JSON_CASES = json.loads((VECTORS / "trainset-json" / "cases.json").read_text())["cases"]
JSON_COMMANDS = {"json": (b"j", "hash-trainset-json"), "jsonl": (b"l", "hash-trainset-jsonl")}
JSON_QA_CASES = {"json": "qa_examples", "jsonl": "jsonl_qa"}


def case_input(case: dict[str, Any]) -> bytes:
    return bytes.fromhex(case["text_hex"]) if "text_hex" in case else case["text"].encode()


def json_refusal_line(answer: bytes) -> int | None:
    """The line a ``trainset_json: [line N, ]byte M: …`` refusal names (None: no line)."""
    text = answer.decode(errors="replace")
    assert text.startswith("trainset_json: "), text
    where = text[len("trainset_json: ") :].split(": ", 1)[0]
    line, _, offset = where.rpartition(", ")
    assert offset.startswith("byte ") and offset[5:].isdigit(), text
    if not line:
        return None
    assert line.startswith("line ") and line[5:].isdigit(), text
    return int(line[5:])


@pytest.mark.parametrize("lang", _lang_ids(JSON_HASHING))
def test_trainset_json_cases(servers: dict[str, Server], lang: Lang) -> None:
    for case in TRAINSET_JSON_CASES:
        frame, _ = JSON_COMMANDS[case["format"]]
        status, answer = servers[lang.name].ask(frame, case_input(case))
        if case.get("error"):
            assert status == REFUSED, (case["name"], status, answer)
            assert json_refusal_line(answer) == case.get("line"), (case["name"], answer)
        else:
            assert (status, answer) == (OK, (case["digest"] + "\n").encode()), case["name"]


@pytest.mark.parametrize("lang", _lang_ids(JSON_HASHING))
def test_trainset_json_one_shot_commands(lang: Lang) -> None:
    for fmt, (_, command) in JSON_COMMANDS.items():
        cases = [case for case in TRAINSET_JSON_CASES if case["format"] == fmt]
        good = next(case for case in cases if case["name"] == JSON_QA_CASES[fmt])
        result = run_once(lang, command, case_input(good))
        assert (result.returncode, result.stdout) == (OK, (good["digest"] + "\n").encode())
        bad = next(case for case in cases if case.get("error") and "text_hex" in case)
        result = run_once(lang, command, case_input(bad))
        assert (result.returncode, result.stdout) == (REFUSED, b""), result.stderr
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and json_refusal_line(lines[0]) == bad.get("line"), lines


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=12,
)
JSON_BYTES = b'[]{}",:-.0123456789eE+\\u \n\r\tnull'


def damage_text(text: bytes, rng: random.Random) -> bytes:
    """One byte of ``text`` replaced, removed, or one inserted (mostly bytes JSON gives meaning)."""
    data = bytearray(text)
    at = rng.randrange(len(data) + 1)
    byte = rng.choice(JSON_BYTES) if rng.random() < 0.8 else rng.randrange(256)
    mode = rng.randrange(3) if at < len(data) else 0
    if mode == 0:
        data.insert(at, byte)
    elif mode == 1:
        data[at] = byte
    else:
        del data[at]
    return bytes(data)


@settings(RANDOM, max_examples=300)
@given(
    examples=st.lists(json_values, max_size=5),
    ascii_only=st.booleans(),
    seed=st.integers(0, 2**32),
)
def test_random_json_trainsets_hash_identically(
    servers: dict[str, Server], examples: list[Any], ascii_only: bool, seed: int
) -> None:
    text = json.dumps(examples, ensure_ascii=ascii_only).encode()
    lines = "\r\n".join(json.dumps(e, ensure_ascii=ascii_only) for e in examples).encode()
    expected = (OK, (ck.hash_trainset(examples).hex() + "\n").encode())
    rng = random.Random(seed)
    damaged = damage_text(text, rng), damage_text(lines, rng)
    for frame, good, bad in ((b"j", text, damaged[0]), (b"l", lines, damaged[1])):
        verdicts = set()
        for lang in JSON_HASHING:
            assert servers[lang.name].ask(frame, good) == expected, (lang.name, good)
            status, answer = servers[lang.name].ask(frame, bad)
            verdicts.add(answer if status == OK else (status, json_refusal_line(answer)))
        assert len(verdicts) == 1, (bad, verdicts)


# --- store files (docs/store-file.md) -------------------------------------------------

STATUS_OF_VERDICT = {"ok": OK, "checkpoint_refused": REFUSED, "damaged": DAMAGED}


def python_store_verdict(data: bytes, *, keep_unknown: bool = True) -> tuple[int, bytes]:
    """Python's reading of a whole store file: checkpoint bytes, or the refusal line."""
    try:
        _, summary, body = framing.unframe(data, "<input>")
    except CorruptStore as exc:
        return DAMAGED, f"store_file: {exc.kind}: {exc.detail}".encode()
    try:
        cp = ck.decode(body)
    except ResumeMismatch as exc:
        return REFUSED, str(exc).encode()
    if summary != encode_summary(cp):
        return DAMAGED, b"store_file: summary_mismatch: not the checkpoint's summary"
    if not keep_unknown:
        cp.DiscardUnknownFields()
    return OK, ck.encode(cp)


def kind_of(line: bytes) -> str:
    """The kind of a damage line ``store_file: <kind>: <detail>``."""
    text = line.decode(errors="replace")
    assert text.startswith("store_file: "), text
    return text[len("store_file: ") :].split(": ", 1)[0]


def test_store_manifest_covers_every_verdict_and_kind() -> None:
    verdicts = {vector["verdict"] for vector in STORE_MANIFEST}
    kinds = {vector["kind"] for vector in STORE_MANIFEST if vector["verdict"] == "damaged"}
    assert verdicts == set(STATUS_OF_VERDICT)
    assert kinds == {
        "truncated",
        "trailing_bytes",
        "bad_magic",
        "header_checksum",
        "unsupported_version",
        "unsupported_flags",
        "over_limits",
        "summary_checksum",
        "body_checksum",
        "summary_mismatch",
    }


@pytest.mark.parametrize("lang", _lang_ids(LANGS))
def test_store_vectors_are_read_as_python_reads_them(lang: Lang) -> None:
    for vector in STORE_MANIFEST:
        name, data = vector["name"], (VECTORS / vector["file"]).read_bytes()
        status = STATUS_OF_VERDICT[vector["verdict"]]
        expected = python_store_verdict(data, keep_unknown=lang.keeps_unknown)
        assert expected[0] == status, (name, expected)
        result = run_once(lang, "read-store-file", data)
        assert result.returncode == status, (name, result.returncode, result.stderr)
        if status == OK:
            key = "checkpoint" if lang.keeps_unknown else "known_only"
            assert result.stdout == (VECTORS / vector[key]).read_bytes() == expected[1], name
            assert result.stderr == b"", name
            continue
        assert result.stdout == b"", name
        lines = result.stderr.decode(errors="replace").splitlines()
        assert len(lines) == 1, (name, lines)
        if status == REFUSED:
            assert field_of(lines[0].encode()) == vector["field"] == field_of(expected[1]), (
                name,
                lines[0],
            )
            assert rule_of(lines[0].encode()) == rule_of(expected[1]) is not None, (
                name,
                lines[0],
            )
        else:
            assert kind_of(lines[0].encode()) == vector["kind"] == kind_of(expected[1]), (
                name,
                lines[0],
            )


def _reframe(data: bytearray) -> None:
    """Make the summary and body CRCs, then the header CRC, right again (when they can be)."""
    if len(data) < framing.HEADER_SIZE:
        return
    summary_length, body_length = struct.unpack_from(">IQ", data, 20)
    if framing.HEADER_SIZE + summary_length + body_length == len(data):
        summary_end = framing.HEADER_SIZE + summary_length
        struct.pack_into(
            ">I", data, 32, framing.crc32c(bytes(data[framing.HEADER_SIZE : summary_end]))
        )
        struct.pack_into(">I", data, 36, framing.crc32c(bytes(data[summary_end:])))
    struct.pack_into(">I", data, 40, framing.crc32c(bytes(data[:40])))


def damage(good: bytes, rng: random.Random) -> bytes:
    """One of: intact, bits flipped, cut or extended, bits flipped with every CRC made
    right (to reach the checkpoint and summary checks), a header field changed with
    the header CRC made right."""
    data = bytearray(good)
    mode = rng.randrange(5)
    if mode == 1:
        for _ in range(rng.randint(1, 3)):
            anywhere = rng.random() < 0.7
            data[rng.randrange(len(data) if anywhere else 44)] ^= 1 << rng.randrange(8)
    elif mode == 2:
        if rng.random() < 0.8:
            del data[rng.randrange(len(data)) :]
        else:
            data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
    elif mode == 3:
        for _ in range(rng.randint(1, 2)):
            data[rng.randrange(framing.HEADER_SIZE, len(data))] ^= 1 << rng.randrange(8)
        _reframe(data)
    elif mode == 4:
        offset, fmt = rng.choice([(8, ">H"), (10, ">H"), (12, ">Q"), (20, ">I"), (24, ">Q")])
        value = rng.choice([0, 1, 2, rng.randrange(1 << (8 * struct.calcsize(fmt)))])
        struct.pack_into(fmt, data, offset, value)
        _reframe(data)
    return bytes(data)


@settings(RANDOM, max_examples=400)
@given(
    cp=checkpoints(max_trials=3),
    generation=st.integers(0, 2**64 - 1),
    seed=st.integers(0, 2**32),
)
def test_random_store_files_get_the_same_verdict(
    servers: dict[str, Server], cp: Any, generation: int, seed: int
) -> None:
    good = framing.frame(generation, encode_summary(cp), ck.encode(cp))
    data = damage(good, random.Random(seed))
    for lang in LANGS:
        status, answer = python_store_verdict(data, keep_unknown=lang.keeps_unknown)
        got_status, got = servers[lang.name].ask(b"s", data)
        assert got_status == status, (lang.name, data.hex(), answer, got)
        if status == OK:
            assert got == answer, lang.name
        elif status == REFUSED:
            assert field_of(got) == field_of(answer), (lang.name, answer, got)
            assert rule_of(got) == rule_of(answer), (lang.name, answer, got)
        else:
            assert kind_of(got) == kind_of(answer), (lang.name, data.hex(), answer, got)
