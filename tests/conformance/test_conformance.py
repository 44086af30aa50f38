"""Every language reads and writes the same bytes, and refuses the same input the same way.

Each language has an executable ``tests/conformance/testee-<lang>`` (see
README.md beside this file). This suite feeds it every golden vector through
the one-shot commands and through its ``serve`` loop (the protocol of
``proto/dsxir/conformance/v1/testee.proto``, spoken by ``protocol.py``),
every prefix and every single-bit flip of every valid vector, thousands of
random checkpoints and trainsets, corrupted checkpoints, every store-file
vector and random, damaged store files, the trainsets-as-JSON cases and
random JSON text (FORMAT.md §6.1). The hostile corpus is in
``test_hostile.py``, the differential fuzz in ``test_fuzz.py``. Expected
answers are the ones recorded in the vector files; random input is held to
the reference (``tests/vectors/reference.py``) and to every other language.
A missing or broken testee fails the suite: nothing is skipped.
"""

from __future__ import annotations

import json
import random
import re
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol import (
    HASH_TRAINSET,
    HASH_TRAINSET_JSON,
    HASH_TRAINSET_JSONL,
    LANGS,
    READ_STORE_FILE,
    REENCODE,
    Answer,
    Server,
)

from dsxir.errors import CorruptStore, InvalidCheckpoint, InvalidDelta
from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session import delta as dl
from dsxir.optimizer_session.terms import term_bytes
from dsxir.store import framing, records
from dsxir.store.summary import encode_summary
from strategies import checkpoints, terms
from vectors import reference

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
    "input.malformed": "a rule of hash-trainset's input (one Term), never of a checkpoint",
}
"""Rules no invalid vector breaks, and why none can."""

OK, REFUSED, DAMAGED = 0, 3, 4


def run_once(lang: str, command: str, data: bytes) -> subprocess.CompletedProcess[bytes]:
    launcher = HERE / f"testee-{lang}"
    assert launcher.is_file(), f"{launcher} is missing"
    return subprocess.run(
        [str(launcher), command], input=data, capture_output=True, timeout=120, check=False
    )


def field_of(refusal: bytes) -> str:
    """The field path of a refusal line ``checkpoint_shape: <field>: <message> (rule <id>)``."""
    line = refusal.decode(errors="replace")
    assert line.startswith("checkpoint_shape: "), line
    return line[len("checkpoint_shape: ") :].split(": ", 1)[0]


_RULE = re.compile(r" \(rule ([a-z_0-9]+(?:\.[a-z_0-9]+)+)\)$")


def rule_of(refusal: bytes) -> str | None:
    """The rule id a refusal line ends with (``(rule <id>)``); None when it names none."""
    found = _RULE.search(refusal.decode(errors="replace").rstrip("\r\n"))
    return found.group(1) if found else None


def expect_refusal(answer: Answer, rule: str | None, path: str, what: str) -> None:
    assert not answer.accepted, (what, "accepted", answer)
    assert (answer.exit_code, answer.kind) == (REFUSED, "checkpoint_shape"), (what, str(answer))
    assert (answer.rule or None, answer.path) == (rule, path), (what, str(answer))


def test_every_rule_is_broken_by_an_invalid_vector() -> None:
    ids = {rule["id"] for rule in RULES}
    named = {vector["rule"] for vector in MANIFEST["invalid"]}
    assert named <= ids, named - ids
    assert set(UNVECTORED_RULES) <= ids
    assert ids - named == set(UNVECTORED_RULES)


def test_vectors_are_sealed() -> None:
    """Every valid and unknown-field vector ends with a right trailer (FORMAT.md §2.1)."""
    for section in ("valid", "unknown"):
        for vector in MANIFEST[section]:
            raw = (VECTORS / vector["binpb"]).read_bytes()
            assert reference.seal(raw[:-9]) == raw, vector["name"]


# --- golden vectors through the one-shot commands -----------------------------------


@pytest.mark.parametrize("lang", LANGS)
def test_valid_vectors_reencode_identically(lang: str) -> None:
    for vector in MANIFEST["valid"]:
        raw = (VECTORS / vector["binpb"]).read_bytes()
        result = run_once(lang, "reencode", raw)
        assert result.returncode == OK, (vector["name"], result.stderr)
        assert result.stdout == raw, vector["name"]


@pytest.mark.parametrize("lang", LANGS)
def test_unknown_field_vectors_reencode_identically(lang: str) -> None:
    """Every language keeps unknown fields and writes them back where they stood (§5)."""
    for vector in MANIFEST["unknown"]:
        raw = (VECTORS / vector["binpb"]).read_bytes()
        result = run_once(lang, "reencode", raw)
        assert result.returncode == OK, (vector["name"], result.stderr)
        assert result.stdout == raw, vector["name"]


@pytest.mark.parametrize("lang", LANGS)
def test_invalid_vectors_are_refused(lang: str) -> None:
    for vector in MANIFEST["invalid"]:
        result = run_once(lang, "reencode", (VECTORS / vector["binpb"]).read_bytes())
        assert result.returncode == REFUSED, (vector["name"], result.returncode, result.stderr)
        assert result.stdout == b"", vector["name"]
        lines = result.stderr.decode(errors="replace").splitlines()
        assert len(lines) == 1, (vector["name"], lines)
        line = lines[0].encode()
        assert field_of(line) == vector["field"], (vector["name"], lines[0])
        assert rule_of(line) == vector["rule"], (vector["name"], lines[0])


@pytest.mark.parametrize("lang", LANGS)
def test_trainset_vectors(lang: str) -> None:
    for vector in MANIFEST["trainset"]:
        result = run_once(lang, "hash-trainset", (VECTORS / vector["input"]).read_bytes())
        assert result.returncode == OK, (vector["name"], result.stderr)
        assert result.stdout.decode().strip() == vector["sha256"], vector["name"]


@pytest.mark.parametrize("lang", LANGS)
def test_usage_errors_exit_2(lang: str) -> None:
    assert run_once(lang, "no-such-command", b"").returncode == 2


# --- the vectors through the serve loops ----------------------------------------------


def test_vectors_through_serve(servers: dict[str, Server]) -> None:
    """The same vectors through every serve loop: the protocol's fields, not a text line."""
    requests, expected = [], []
    for vector in MANIFEST["valid"] + MANIFEST["unknown"]:
        raw = (VECTORS / vector["binpb"]).read_bytes()
        requests.append((REENCODE, raw))
        expected.append((vector["name"], raw, None, None))
    for vector in MANIFEST["invalid"]:
        requests.append((REENCODE, (VECTORS / vector["binpb"]).read_bytes()))
        expected.append((vector["name"], None, vector["rule"], vector["field"]))
    for lang, server in servers.items():
        for (name, output, rule, path), got in zip(
            expected, server.ask_many(requests), strict=True
        ):
            if output is not None:
                assert got.output == output, (lang, name, str(got))
            else:
                expect_refusal(got, rule, path, f"{lang}: {name}")


def test_unknown_command_is_refused(servers: dict[str, Server]) -> None:
    for lang, server in servers.items():
        got = server.ask(0, b"")
        assert (got.accepted, got.kind) == (False, "command"), (lang, str(got))


def _damaged_copies(raw: bytes) -> Iterator[tuple[bytes, str, str]]:
    """Every prefix and every single-bit flip of sealed bytes, with the verdict §2.1 gives."""
    size = len(raw)
    for cut in range(size):
        prefix = raw[:cut]
        if cut >= 9 and prefix[-9:-4] == reference.grammar.TRAILER_TAG:
            found = reference.verdict(prefix, cross_check=False)
            yield prefix, f"prefix {cut}", f"{found.rule}@{found.path}"
        else:
            yield prefix, f"prefix {cut}", "input.trailer@<input>"
    for i in range(size):
        rule = "input.trailer" if size - 9 <= i < size - 4 else "input.checksum"
        for bit in range(8):
            flipped = bytearray(raw)
            flipped[i] ^= 1 << bit
            yield bytes(flipped), f"bit {bit} of byte {i}", f"{rule}@<input>"


@pytest.mark.parametrize("vector", [v["name"] for v in MANIFEST["valid"] + MANIFEST["unknown"]])
def test_every_prefix_and_bit_flip_is_refused(servers: dict[str, Server], vector: str) -> None:
    """Every prefix and single-bit flip of every valid vector: refused by the trailer (§2.1)."""
    entry = next(v for v in MANIFEST["valid"] + MANIFEST["unknown"] if v["name"] == vector)
    cases = list(_damaged_copies((VECTORS / entry["binpb"]).read_bytes()))
    requests = [(REENCODE, data) for data, _, _ in cases]
    wrong: dict[str, list[str]] = {}
    for lang, server in servers.items():
        for (_, what, expected), got in zip(cases, server.ask_many(requests), strict=True):
            rule, _, path = expected.partition("@")
            if got.accepted or (got.rule, got.path, got.kind) != (rule, path, "checkpoint_shape"):
                wrong.setdefault(lang, []).append(f"{what}: {got} (expected {expected})")
    assert wrong == {}, {lang: (len(w), w[:3]) for lang, w in wrong.items()}


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
    assert reference.verdict(raw).output == raw
    for name, server in servers.items():
        assert server.ask(REENCODE, raw).output == raw, name


@settings(RANDOM, max_examples=300)
@given(examples=st.lists(terms, max_size=6))
def test_random_trainsets_hash_identically(servers: dict[str, Server], examples: Any) -> None:
    expected = (ck.hash_trainset(examples).hex() + "\n").encode()
    payload = term_bytes(examples)
    for lang, server in servers.items():
        assert server.ask(HASH_TRAINSET, payload).output == expected, lang


@settings(RANDOM, max_examples=400)
@given(cp=checkpoints(max_trials=3), seed=st.integers(0, 2**32))
def test_corrupted_checkpoints_get_the_same_verdict(
    servers: dict[str, Server], cp: Any, seed: int
) -> None:
    """Bits flipped in the body, the trailer made right again: the grammar and the rules
    refuse, not the checksum."""
    rng = random.Random(seed)
    body = bytearray(ck.encode(cp)[:-9])
    for _ in range(rng.randint(1, 3)):
        body[rng.randrange(len(body))] ^= 1 << rng.randrange(8)
    data = reference.seal(bytes(body))
    expected = reference.verdict(data)
    for lang, server in servers.items():
        got = server.ask(REENCODE, data)
        if expected.accepted:
            assert got.output == expected.output, (lang, data.hex(), str(got))
        else:
            expect_refusal(got, expected.rule, expected.path or "", f"{lang}: {data.hex()}")


# --- trainsets as JSON text (FORMAT.md §6.1) ------------------------------------------

TRAINSET_JSON_CASES = json.loads((VECTORS / "trainset-json" / "cases.json").read_text())["cases"]
JSON_COMMANDS = {
    "json": (HASH_TRAINSET_JSON, "hash-trainset-json"),
    "jsonl": (HASH_TRAINSET_JSONL, "hash-trainset-jsonl"),
}
JSON_QA_CASES = {"json": "qa_examples", "jsonl": "jsonl_qa"}


def case_input(case: dict[str, Any]) -> bytes:
    return bytes.fromhex(case["text_hex"]) if "text_hex" in case else case["text"].encode()


def json_refusal_line(where: str) -> int | None:
    """The line a trainset_json refusal's place names (``[line N, ]byte M``; None: no line)."""
    line, _, offset = where.rpartition(", ")
    assert offset.startswith("byte ") and offset[5:].isdigit(), where
    if not line:
        return None
    assert line.startswith("line ") and line[5:].isdigit(), where
    return int(line[5:])


def json_verdict(answer: Answer) -> Any:
    if answer.accepted:
        return answer.output
    assert (answer.exit_code, answer.kind) == (REFUSED, "trainset_json"), str(answer)
    return ("refused", json_refusal_line(answer.path))


@pytest.mark.parametrize("lang", LANGS)
def test_trainset_json_cases(servers: dict[str, Server], lang: str) -> None:
    requests = [
        (JSON_COMMANDS[case["format"]][0], case_input(case)) for case in TRAINSET_JSON_CASES
    ]
    for case, got in zip(TRAINSET_JSON_CASES, servers[lang].ask_many(requests), strict=True):
        if case.get("error"):
            assert json_verdict(got) == ("refused", case.get("line")), (case["name"], str(got))
        else:
            assert got.output == (case["digest"] + "\n").encode(), (case["name"], str(got))


@pytest.mark.parametrize("lang", LANGS)
def test_trainset_json_one_shot_commands(lang: str) -> None:
    for fmt, (_, command) in JSON_COMMANDS.items():
        cases = [case for case in TRAINSET_JSON_CASES if case["format"] == fmt]
        good = next(case for case in cases if case["name"] == JSON_QA_CASES[fmt])
        result = run_once(lang, command, case_input(good))
        assert (result.returncode, result.stdout) == (OK, (good["digest"] + "\n").encode())
        bad = next(case for case in cases if case.get("error") and "text_hex" in case)
        result = run_once(lang, command, case_input(bad))
        assert (result.returncode, result.stdout) == (REFUSED, b""), result.stderr
        lines = result.stderr.decode(errors="replace").splitlines()
        assert len(lines) == 1 and lines[0].startswith("trainset_json: "), lines
        where = lines[0][len("trainset_json: ") :].split(": ", 1)[0]
        assert json_refusal_line(where) == bad.get("line"), lines


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
    expected = (ck.hash_trainset(examples).hex() + "\n").encode()
    rng = random.Random(seed)
    damaged = damage_text(text, rng), damage_text(lines, rng)
    for command, good, bad in (
        (HASH_TRAINSET_JSON, text, damaged[0]),
        (HASH_TRAINSET_JSONL, lines, damaged[1]),
    ):
        verdicts = set()
        for lang, server in servers.items():
            got_good, got_bad = server.ask_many([(command, good), (command, bad)])
            assert got_good.output == expected, (lang, good, str(got_good))
            verdicts.add(json_verdict(got_bad))
        assert len(verdicts) == 1, (bad, verdicts)


# --- store files (docs/store-file.md) -------------------------------------------------

STATUS_OF_VERDICT = {
    "ok": OK,
    "checkpoint_refused": REFUSED,
    "delta_refused": REFUSED,
    "damaged": DAMAGED,
}


def store_verdict(data: bytes) -> Answer:
    """The reference's reading of a whole store file: the checkpoint bytes, or the refusal."""
    try:
        header, summary, body = framing.unframe(data, "<input>")
    except CorruptStore as exc:
        return Answer(exit_code=DAMAGED, kind="store_file", path=exc.kind or "")
    read = reference.verdict(body)
    if read.output is None:
        return Answer(
            exit_code=REFUSED, kind="checkpoint_shape", rule=read.rule or "", path=read.path or ""
        )
    if summary != encode_summary(ck.decode(read.output)):
        return Answer(exit_code=DAMAGED, kind="store_file", path="summary_mismatch")
    if not header.appendable:
        return Answer(output=read.output)
    try:  # the records (docs/store-file.md §9), read by the library's reader
        whole = records.read(lambda at, size: data[at : at + size], len(data), "<input>")
    except CorruptStore as exc:
        return Answer(exit_code=DAMAGED, kind="store_file", path=exc.kind or "")
    except InvalidDelta as exc:
        return Answer(exit_code=REFUSED, kind="delta_shape", rule=exc.rule, path=exc.path)
    except InvalidCheckpoint as exc:
        return Answer(
            exit_code=REFUSED, kind="checkpoint_shape", rule=exc.rule or "", path=exc.path
        )
    return Answer(output=ck.encode(whole.checkpoint))


def assert_same(got: Answer, want: Answer, what: object) -> None:
    """The same bytes, or the same refusal (exit code, kind, rule and path)."""
    if want.accepted:
        assert got.output == want.output, (what, str(want), str(got))
    else:
        seen = (got.exit_code, got.kind, got.rule, got.path)
        assert seen == (want.exit_code, want.kind, want.rule, want.path), (
            what,
            str(want),
            str(got),
        )


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
        "record_checksum",
        "record_generation",
    }


def kind_of(line: bytes) -> str:
    """The kind of a damage line ``store_file: <kind>: <detail>``."""
    text = line.decode(errors="replace")
    assert text.startswith("store_file: "), text
    return text[len("store_file: ") :].split(": ", 1)[0]


@pytest.mark.parametrize("lang", LANGS)
def test_store_vectors_are_read_as_recorded(lang: str) -> None:
    for vector in STORE_MANIFEST:
        name, data = vector["name"], (VECTORS / vector["file"]).read_bytes()
        status = STATUS_OF_VERDICT[vector["verdict"]]
        result = run_once(lang, "read-store-file", data)
        assert result.returncode == status, (name, result.returncode, result.stderr)
        if status == OK:
            assert result.stdout == (VECTORS / vector["checkpoint"]).read_bytes(), name
            assert result.stderr == b"", name
            continue
        assert result.stdout == b"", name
        lines = result.stderr.decode(errors="replace").splitlines()
        assert len(lines) == 1, (name, lines)
        line = lines[0].encode()
        if vector["verdict"] == "delta_refused":
            prefix = f"delta_shape: {vector['field']}: "
            assert lines[0].startswith(prefix), (name, lines[0])
            assert rule_of(line) == vector["rule"], (name, lines[0])
        elif status == REFUSED:
            assert (field_of(line), rule_of(line)) == (vector["field"], vector["rule"]), (
                name,
                lines[0],
            )
        else:
            assert kind_of(line) == vector["kind"], (name, lines[0])


def test_store_vectors_through_serve(servers: dict[str, Server]) -> None:
    requests = [(READ_STORE_FILE, (VECTORS / v["file"]).read_bytes()) for v in STORE_MANIFEST]
    for lang, server in servers.items():
        for vector, got in zip(STORE_MANIFEST, server.ask_many(requests), strict=True):
            what = (lang, vector["name"], str(got))
            if vector["verdict"] == "ok":
                assert got.output == (VECTORS / vector["checkpoint"]).read_bytes(), what
            elif vector["verdict"] == "damaged":
                assert (got.exit_code, got.kind, got.path) == (
                    DAMAGED,
                    "store_file",
                    vector["kind"],
                ), what
            elif vector["verdict"] == "delta_refused":
                assert (got.exit_code, got.kind, got.rule, got.path) == (
                    REFUSED,
                    "delta_shape",
                    vector["rule"],
                    vector["field"],
                ), what
            else:
                expect_refusal(got, vector["rule"], vector["field"], f"{what}")


def test_damaged_records_get_the_same_verdict(servers: dict[str, Server]) -> None:
    """Cuts and bit flips after the snapshot of every file with records (docs/store-file.md §9)."""
    inputs: list[bytes] = []
    for vector in STORE_MANIFEST:
        data = (VECTORS / vector["file"]).read_bytes()
        try:
            header = framing.parse_header(data[: framing.HEADER_SIZE], "<v>", file_size=len(data))
        except CorruptStore:
            continue
        if not header.appendable:
            continue
        start = header.total_length
        inputs += [data[:cut] for cut in range(start, len(data))]
        inputs += [
            data[:i] + bytes([data[i] ^ 1 << (i % 8)]) + data[i + 1 :]
            for i in range(start, len(data))
        ]
    assert len(inputs) > 5000
    expected = [store_verdict(data) for data in inputs]
    for lang, server in servers.items():
        for data, want, got in zip(
            inputs,
            expected,
            server.ask_many((READ_STORE_FILE, data) for data in inputs),
            strict=True,
        ):
            assert_same(got, want, (lang, data.hex()[-80:]))


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


def _with_records(cp: Any, generation: int, rng: random.Random) -> bytes:
    """An appendable file of ``cp`` followed by 1-3 records of commits of 0-2 trials each."""
    data = framing.frame(generation, encode_summary(cp), ck.encode(cp), appendable=True)
    for step in range(rng.randint(1, 3)):
        new = ck.decode(ck.encode(cp))
        for _ in range(rng.randrange(3)):
            ck.record_trial(new, score=rng.choice([None, rng.random()]), sampler_blob=b"s")
        delta = dl.diff(cp, new, base_generation=generation + step)
        data += records.record(generation + step + 1, encode_summary(new), dl.encode_delta(delta))
        cp = new
    return data


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
    rng = random.Random(seed)
    good = framing.frame(generation, encode_summary(cp), ck.encode(cp))
    if rng.random() < 0.5 and cp.status == 1 and 1 <= generation < 2**64 - 8:  # records
        good = _with_records(cp, generation, rng)
    data = damage(good, rng)
    expected = store_verdict(data)
    for lang, server in servers.items():
        assert_same(server.ask(READ_STORE_FILE, data), expected, (lang, data.hex()))


# --- damaged trainset Terms (hash-trainset) ---------------------------------------------

TRAINSET_INPUTS = sorted((VECTORS / "trainset").glob("*.binpb"))


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _len(data: bytes) -> bytes:
    return _varint(len(data))


def _field(tag: int, payload: bytes) -> bytes:
    """A length-delimited field of one-byte tag ``tag``."""
    return bytes([tag]) + _len(payload) + payload


def _list(*items: bytes, tag: int = 0x4A) -> bytes:
    """A list (or, with tag 0x52, a tuple) Term of the given item Terms."""
    return _field(tag, b"".join(_field(0x0A, item) for item in items))


def _map(*entries: tuple[bytes | None, bytes | None]) -> bytes:
    """A map Term of (key, value) Terms as given (None: left out), in that order."""
    body = b""
    for key, value in entries:
        entry = (b"" if key is None else _field(0x0A, key)) + (
            b"" if value is None else _field(0x12, value)
        )
        body += _field(0x0A, entry)
    return _field(0x5A, body)


def _double(bits: int) -> bytes:
    return b"\x29" + struct.pack("<Q", bits)


NULL, TRUE, ZERO, ONE = b"\x0a\x00", b"\x10\x01", b"\x18\x00", b"\x18\x02"
UNKNOWN = b"\x80\x01\x01"  # field 16, varint 1: a field a v1 Term does not know
DAMAGED_TRAINSETS = [
    _list(_field(0x22, b"\x01")),  # bigint 1: fits in int64
    _list(_field(0x22, b"\x00\x01")),  # not minimal
    _list(_field(0x22, b"")),  # empty
    _list(_field(0x22, b"\x00\x80" + bytes(8))),  # not minimal, outside int64
    _list(_field(0x22, b"\x00\x80" + bytes(7))),  # 2^63: valid
    # distinct Terms that are one key in some languages: accepted
    _list(_map((TRUE, ZERO), (ONE, ZERO))),
    _list(_map((ZERO, ZERO), (_double(1 << 63), ZERO))),
    _list(_map((_double(0), ZERO), (_double(1 << 63), ZERO))),
    _list(_map((_double(0x3FF0000000000000), ZERO), (ONE, ZERO), (b"\x32\x011", ZERO))),
    _list(_map((_list(ONE), ZERO), (_list(ONE, tag=0x52), ZERO), (_map((ONE, ONE)), ZERO))),
    _list(_map((_map(), ZERO), (_list(), ZERO), (NULL, ZERO))),
    # not a list Term: an int, a tuple, nothing, bytes that are no Term, no kind
    ONE,
    _list(ONE, tag=0x52),
    b"",
    b"\xff",
    b"\x4a",
    b"\x4a\x05\x0a\x03",
    UNKNOWN,
    _list(ONE) + TRUE,  # two kinds
    # NaN, a Term with no kind, an entry without key or value
    _list(_double(0x7FF0000000000001)),
    _list(ONE, _list(ONE, _double(0xFFF8000000000000))),
    _list(UNKNOWN),
    _list(b""),
    _list(_map((None, ZERO))),
    _list(_map((ZERO, None))),
    _list(_map((b"", ZERO))),
    _list(_map((ZERO, _double(0x7FF8000000000000)))),
    # keys out of order, duplicates, keys differing only by an unknown field
    _list(_map((ONE, ZERO), (ZERO, ZERO))),
    _list(_map((ONE, ZERO), (ONE, ZERO))),
    _list(_map((ONE, ZERO), (ZERO, ZERO), (ONE, TRUE), (ZERO, NULL))),
    _list(_map((ONE + UNKNOWN, ZERO), (ONE, ZERO))),
    _list(_map((ONE, ZERO), (ONE + UNKNOWN, ZERO))),
    _list(ONE + UNKNOWN, _map((ONE, ZERO + UNKNOWN))),
    _list(_map((ONE, _double(0x7FF8000000000000)), (ONE, ZERO))),
    # a duplicate before a later entry's own refusal: every entry is checked first
    _list(_map((ONE, ZERO), (ONE, ZERO), (ZERO, _double(0x7FF8000000000000)))),
    _list(_map((ONE, ZERO), (ONE, ZERO), (None, ZERO))),
    _list(_map((ONE, ZERO), (ONE + UNKNOWN, ZERO), (ZERO, _field(0x22, b"")))),
    _list(_map((ONE, ZERO), (ZERO, ZERO), (ONE, ZERO), (ZERO, ZERO))),
    # varints the runtimes read in their own ways: overlong (value past 64 bits), padded
    _list(b"\x18" + b"\xff" * 9 + b"\x7f"),
    _list(b"\x18\x82\x80\x00"),
    _list(b"\x18\x82\x00", _map((b"\x18\x82\x00", ZERO), (ONE, ZERO))),
]


def _deep_trainsets() -> list[bytes]:
    """Items nested 23 to 26 deep (24 is the limit), alone and after another item, and
    far deeper (past the nesting a protobuf runtime parses)."""
    out = []
    for depth in (23, 24, 25, 26, 40, 60):
        term = deep_map = NULL
        for _ in range(depth - 1):
            term = _list(term)
            deep_map = _map((ONE, deep_map))
        out += [_list(term), _list(ONE, term), _list(_map((ONE, term))), _list(deep_map)]
    return out


def _mutate(data: bytes, rng: random.Random) -> bytes:
    """One seeded damage: bit flips, a byte changed, inserted or dropped, a cut, or a
    splice of another input's bytes."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        how = rng.randrange(6)
        if how == 0 and out:
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        elif how == 1 and out:
            out[rng.randrange(len(out))] = rng.choice([0x00, 0x01, 0x7F, 0x80, 0xFF, 0x29, 0x22])
        elif how == 2:
            out.insert(rng.randrange(len(out) + 1), rng.randrange(256))
        elif how == 3 and out:
            del out[rng.randrange(len(out))]
        elif how == 4 and out:
            del out[rng.randrange(len(out)) :]
        else:
            other = TRAINSET_INPUTS[rng.randrange(len(TRAINSET_INPUTS))].read_bytes()
            a = rng.randrange(len(other) + 1)
            piece = other[a : a + rng.randint(1, 12)]
            at = rng.randrange(len(out) + 1)
            out[at:at] = piece
    return bytes(out)


# A parsed Term, for damage at the Term level: a list of fields [number, wire type, value,
# message kind], the value a nested list for the message fields of Term, TermList, TermMap
# and TermMapEntry (their kind "term", "list", "map", "entry"), else the field's raw bytes
# after its tag (kind None).
_MESSAGE_FIELDS = {"term": {9: "list", 10: "list", 11: "map"}, "list": {1: "term"},
                   "map": {1: "entry"}, "entry": {1: "term", 2: "term"}}  # fmt: skip


def _varint_at(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if byte < 0x80:
            return value, at


def _parse(data: bytes, kind: str) -> list[list[Any]]:
    fields, at = [], 0
    while at < len(data):
        tag, at = _varint_at(data, at)
        number, wire = tag >> 3, tag & 7
        start = at
        if wire == 0:
            _, at = _varint_at(data, at)
        elif wire in (1, 5):
            at += 8 if wire == 1 else 4
        else:
            size, at = _varint_at(data, at)
            start, at = at, at + size
        sub = _MESSAGE_FIELDS[kind].get(number) if wire == 2 else None
        value = _parse(data[start:at], sub) if sub else data[start:at]
        fields.append([number, wire, value, sub])
    return fields


def _unparse(fields: list[list[Any]]) -> bytes:
    out = b""
    for number, wire, value, sub in fields:
        out += bytes(_varint(number << 3 | wire))
        if sub:
            value = _unparse(value)
        out += _len(value) + value if wire == 2 else value
    return out


def _messages(fields: list[list[Any]], kind: str, found: list[Any]) -> list[Any]:
    """Every message below (and including) ``fields``, as (kind, fields)."""
    found.append((kind, fields))
    for field in fields:
        if field[3]:
            _messages(field[2], field[3], found)
    return found


_BAD_TERMS = [
    _double(0x7FF8000000000000),
    _double(0xFFF0000000000001),
    _field(0x22, b"\x01"),
    _field(0x22, b"\xff\xff"),
    _field(0x22, b""),
    b"",
    UNKNOWN,
    ONE + UNKNOWN,
    ONE + TRUE,
    _field(0x5A, _field(0x0A, _field(0x0A, ONE))),
]


def _damage_term(data: bytes, rng: random.Random) -> bytes:
    """One seeded damage at the Term level: a Term replaced by a bad or deep one, map
    entries repeated, swapped or cut short, list items repeated or swapped."""
    fields = _parse(data, "term")
    kind, target = rng.choice(_messages(fields, "term", []))
    how = rng.randrange(4)
    if kind == "term" and how < 2:
        bad = rng.choice(_BAD_TERMS)
        if how == 1:
            for _ in range(rng.randint(20, 26)):
                bad = _list(bad)
        target[:] = _parse(bad, "term")
    elif kind in ("map", "list") and target:
        i = rng.randrange(len(target))
        if how == 0:
            target.insert(rng.randrange(len(target) + 1), target[i])
        elif how == 1:
            j = rng.randrange(len(target))
            target[i], target[j] = target[j], target[i]
        else:
            target.reverse()
    elif kind == "entry" and target:
        del target[rng.randrange(len(target))]
    else:
        target.append([16, 0, b"\x01", None])  # an unknown field
    return _unparse(fields)


def _brief(answer: Answer) -> str:
    """An answer in a few words: the digest's start, or the rule and the path's ends."""
    if answer.output is not None:
        return f"digest {answer.output[:12].decode(errors='replace')}"
    path = answer.path if len(answer.path) <= 70 else answer.path[:30] + "…" + answer.path[-30:]
    return f"{answer.rule or '(no rule)'} at {path}"


def test_damaged_trainsets_get_the_same_answer(servers: dict[str, Server]) -> None:
    """Damaged trainset Terms: every language gives the same digest, or the same refusal
    (rule and path, from ``items[i]``, ``<input>`` for bytes that are not a list Term)."""
    cases = DAMAGED_TRAINSETS + _deep_trainsets()
    rng = random.Random(20261202)
    inputs = [path.read_bytes() for path in TRAINSET_INPUTS]
    for i in range(600):
        damage = _damage_term if i % 3 else _mutate
        cases.append(damage(inputs[i % len(inputs)], rng))
    answers = {
        lang: server.ask_many((HASH_TRAINSET, case) for case in cases)
        for lang, server in servers.items()
    }
    problems = []
    for n, case in enumerate(cases):
        got = {lang: answers[lang][n] for lang in answers}
        if len({answer.key() for answer in got.values()}) != 1:
            problems.append(
                f"{case.hex()[:120]}: " + "; ".join(f"{k} {_brief(v)}" for k, v in got.items())
            )
        for lang, answer in got.items():
            if not answer.accepted and not (
                answer.rule and (answer.path == "<input>" or answer.path.startswith("items["))
            ):
                problems.append(
                    f"{case.hex()[:120]}: {lang} names no rule or no items[i]: {answer}"
                )
    assert not problems, "\n".join(problems[:60]) + f"\n({len(problems)} problems)"
