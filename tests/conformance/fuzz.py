"""Differential fuzz: seeded, structure-aware mutations through every language's serve loop.

Inputs start from the valid and unknown-field vectors and from random valid
checkpoints built here, and are mutated on their wire structure (the body is
parsed into fields, LEN values that parse as messages into nested fields):
padded tags, varints and lengths, fields swapped, duplicated or removed,
unknown fields and groups inserted, wrong wire types, field number 0, edge
varint values, invalid UTF-8, changed lengths; then bytes flipped, inserted
or deleted, or two inputs spliced. Most are sealed with a right trailer
(FORMAT.md §2.1) so that the grammar and the rules are what answers; the
rest are left unsealed, cut, or have their trailer damaged.

Every input goes to every language's ``reencode``; a disagreement is any
difference between two languages' answers (the bytes written back, or the
refusal's rule and path). Each is printed with the input in hex and every
language's answer. ``make fuzz`` runs 1,000,000 inputs; ``test_fuzz.py``
runs 20,000 in ``make test``. With ``--reference`` the pure-Python reference
(``tests/vectors/reference.py``) answers too, as one more column.

    python tests/conformance/fuzz.py --inputs 100000 --seed 7 [--langs python,go]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from protocol import LANGS, REENCODE, Answer, Server  # noqa: E402

from dsxir.optimizer_session import checkpoint as ck  # noqa: E402
from dsxir.optimizer_session.atom import Atom  # noqa: E402
from vectors import reference  # noqa: E402

VECTORS = HERE.parent / "vectors"
VARINT, I64, LEN, SGROUP, EGROUP, I32 = 0, 1, 2, 3, 4, 5
EDGE_VALUES = [0, 1, 2, 7, 127, 128, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63, 2**64 - 1]


# --- a lossless wire tree ---------------------------------------------------------------


@dataclass
class Field:
    """One field: number, wire type, its value bytes, nested fields when the value of a
    LEN field parses as a message, and the widths its tag and length were written with."""

    number: int
    wire: int
    value: bytes
    children: list[Field] | None = None
    tag_width: int = 0
    len_width: int = 0
    raw_tag: bytes | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def varint(value: int, width: int = 0) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        out.append(value & 0x7F)
        value >>= 7
        if not value:
            break
    while len(out) < width:
        out.append(0)
    for i in range(len(out) - 1):
        out[i] |= 0x80
    return bytes(out)


def _read_varint(data: bytes, pos: int, end: int) -> tuple[int, int] | None:
    value = 0
    for i in range(10):
        if pos >= end:
            return None
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            return value, pos
    return None


def parse(data: bytes, depth: int = 0) -> list[Field] | None:
    """The fields of ``data`` when it is a well-formed sequence of fields (no groups), else
    None. Parsing then emitting gives ``data`` back exactly."""
    fields: list[Field] = []
    pos, end = 0, len(data)
    while pos < end:
        start = pos
        got = _read_varint(data, pos, end)
        if got is None:
            return None
        key, pos = got
        number, wire = key >> 3, key & 7
        raw_tag = data[start:pos]
        if number == 0 or wire not in (VARINT, I64, LEN, I32) or raw_tag != varint(key):
            return None
        if wire == VARINT:
            got = _read_varint(data, pos, end)
            if got is None:
                return None
            fields.append(Field(number, wire, data[pos : got[1]]))
            pos = got[1]
        elif wire == LEN:
            got = _read_varint(data, pos, end)
            if got is None or got[0] > end - got[1] or data[pos : got[1]] != varint(got[0]):
                return None
            value = data[got[1] : got[1] + got[0]]
            children = parse(value, depth + 1) if value and depth < 40 else None
            fields.append(Field(number, wire, value, children))
            pos = got[1] + got[0]
        else:
            size = 8 if wire == I64 else 4
            if end - pos < size:
                return None
            fields.append(Field(number, wire, data[pos : pos + size]))
            pos += size
    return fields


def emit(fields: list[Field]) -> bytes:
    out = bytearray()
    for f in fields:
        out += f.raw_tag if f.raw_tag is not None else varint(f.number << 3 | f.wire, f.tag_width)
        if f.wire == LEN:
            value = emit(f.children) if f.children is not None else f.value
            out += varint(len(value) + f.extra.get("length_delta", 0), f.len_width) + value
        else:
            out += f.value
    return bytes(out)


def messages(fields: list[Field]) -> Iterator[list[Field]]:
    """Every field list of the tree: the top one and every nested message."""
    yield fields
    for f in fields:
        if f.children is not None:
            yield from messages(f.children)


# --- seeds ----------------------------------------------------------------------------


def _random_term(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(12 if depth < 4 else 8)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice([0, 1, -1, 2**63 - 1, -(2**63), rng.randrange(-(10**6), 10**6)])
    if kind == 3:
        return rng.choice([2**63, -(2**63) - 1, 2**100 + rng.randrange(1000), -(2**80)])
    if kind == 4:
        return rng.choice([0.0, -0.0, 1.5, float("inf"), float("-inf"), 5e-324, rng.random()])
    if kind == 5:
        return rng.choice(["", "a", "naïve", "𝄞", "x" * rng.randrange(40)])
    if kind == 6:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(6)))
    if kind == 7:
        return Atom(rng.choice(["ok", "error", "a"]))
    items = [_random_term(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind in (8, 9):
        return items if kind == 8 else tuple(items)
    return {f"k{i}": v for i, v in enumerate(items)}


def random_checkpoint(rng: random.Random) -> bytes:
    """A random valid checkpoint, sealed."""
    cp = ck.new(
        session_id=rng.choice(["s", "session-1", "ü" * 3]),
        optimizer=rng.choice(["o", "dspy.teleprompt.MIPROv2"]),
        trainset_hash=bytes(rng.randrange(256) for _ in range(32)),
        sampler_blob=bytes(rng.randrange(256) for _ in range(rng.randrange(5))),
        sampler_format=("m", rng.randrange(1, 300)),
        optimizer_opts=[(f"o{i}", _random_term(rng)) for i in range(rng.randrange(3))],
        direction=rng.choice(["higher", "lower"]),
    )
    for i in range(rng.randrange(5)):
        if rng.random() < 0.25:
            ck.record_trial(cp, score=None, status="error", error={"e": i}, error_class="E")
        else:
            ck.record_trial(
                cp,
                score=rng.choice([None, 0.0, -0.0, rng.random(), float("inf")]),
                candidate_id=rng.choice([None, f"c{i}"]),
                stats={f"s{j}": _random_term(rng, 2) for j in range(rng.randrange(3))},
                duration_ms=rng.randrange(3000),
            )
    move = rng.randrange(5)
    if move == 1:
        ck.pause(cp)
    elif move == 2:
        ck.complete(cp, _random_term(rng, 2))
    elif move == 3:
        ck.cancel(cp)
    return ck.encode(cp)


def vector_seeds() -> list[bytes]:
    manifest = json.loads((VECTORS / "manifest.json").read_text())
    return [
        (VECTORS / vector["binpb"]).read_bytes()
        for vector in manifest["valid"] + manifest["unknown"]
        if vector["name"] != "long_log"
    ]


# --- mutations ------------------------------------------------------------------------


def _mutate_tree(fields: list[Field], rng: random.Random) -> None:
    targets = list(messages(fields))
    node = rng.choice(targets)
    op = rng.randrange(14)
    if not node:
        op = 4
    i = rng.randrange(len(node)) if node else 0
    if op == 0:  # pad a tag
        node[i].tag_width = rng.choice([2, 3, 5, 6, 10])
    elif op == 1:  # pad a length
        if node[i].wire == LEN:
            node[i].len_width = rng.choice([2, 3, 5, 10])
        else:
            node[i].tag_width = 2
    elif op == 2:  # pad a varint value, or make it an edge value
        if node[i].wire == VARINT:
            value = _read_varint(node[i].value, 0, len(node[i].value))
            number = value[0] if value else 0
            if rng.random() < 0.5:
                node[i].value = varint(number, rng.choice([2, 5, 10]))
            else:
                node[i].value = varint(rng.choice(EDGE_VALUES))
    elif op == 3:  # swap two neighbours
        if len(node) > 1:
            j = min(i + 1, len(node) - 1) if i + 1 < len(node) else i - 1
            node[i], node[j] = node[j], node[i]
    elif op == 4:  # insert an unknown (or known) field
        number = rng.choice([1, 2, 5, 9, 15, 16, 99, 1000, 19000, 2**29 - 2, 2**29 - 1])
        wire = rng.choice([VARINT, I64, LEN, I32, SGROUP, EGROUP, 6, 7])
        value = {
            VARINT: varint(rng.choice(EDGE_VALUES)),
            I64: bytes(8),
            LEN: b"\x08\x01"[: rng.randrange(3)],
            I32: bytes(4),
        }.get(wire, b"")
        new = Field(number, wire, value)
        if wire == SGROUP:
            new.value = b"\x08\x01" + varint(number << 3 | EGROUP)
        node.insert(rng.randrange(len(node) + 1), new)
    elif op == 5:  # duplicate
        node.insert(i, Field(**{**node[i].__dict__, "extra": dict(node[i].extra)}))
    elif op == 6:  # remove
        del node[i]
    elif op == 7:  # another wire type
        node[i].raw_tag = varint(node[i].number << 3 | rng.choice([0, 1, 2, 3, 4, 5, 6, 7]))
    elif op == 8:  # field number 0
        node[i].raw_tag = varint(node[i].wire)
    elif op == 9:  # a length changed
        if node[i].wire == LEN:
            node[i].extra["length_delta"] = rng.choice([-2, -1, 1, 2, 100])
    elif op == 10:  # invalid UTF-8 in a LEN value
        if node[i].wire == LEN and node[i].children is None:
            value = bytearray(node[i].value)
            at = rng.randrange(len(value) + 1)
            value[at:at] = rng.choice([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80"])
            node[i].value = bytes(value)
    elif op == 11:  # empty a LEN value (a default, or an empty message)
        if node[i].wire == LEN:
            node[i].children, node[i].value = None, b""
    elif op == 12:  # reverse a message
        node.reverse()
    else:  # move a field to the end
        node.append(node.pop(i))


def _bytes_mutation(data: bytearray, rng: random.Random, other: bytes) -> bytearray:
    op = rng.randrange(4)
    if not data:
        op = 1
    if op == 0:
        for _ in range(rng.randint(1, 3)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif op == 1:
        at = rng.randrange(len(data) + 1)
        data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 3)))
    elif op == 2:
        at = rng.randrange(len(data))
        del data[at : at + rng.randint(1, 3)]
    else:
        cut, cut_other = rng.randrange(len(data) + 1), rng.randrange(len(other) + 1)
        data = data[:cut] + bytearray(other[cut_other:])
    return data


def mutate(seed: bytes, rng: random.Random, other: bytes) -> bytes:
    """One input derived from the sealed ``seed``."""
    body = seed[:-9]
    r = rng.random()
    if r < 0.7:
        tree = parse(body) or []
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            _mutate_tree(tree, rng)
        out = bytearray(emit(tree))
        if rng.random() < 0.15:
            out = _bytes_mutation(out, rng, other[:-9])
    elif r < 0.9:
        out = _bytes_mutation(bytearray(body), rng, other[:-9])
    else:
        out = bytearray(body)
    finish = rng.random()
    if finish < 0.85:
        return reference.seal(bytes(out))
    sealed = bytearray(reference.seal(bytes(out)))
    if finish < 0.9:
        return bytes(out)  # no trailer
    if finish < 0.95:
        return bytes(sealed[: rng.randrange(len(sealed))])  # cut
    sealed[rng.randrange(len(sealed))] ^= 1 << rng.randrange(8)
    return bytes(sealed)


def inputs(count: int, seed: int) -> Iterator[bytes]:
    """``count`` fuzz inputs, the same ones for the same ``count`` and ``seed``."""
    rng = random.Random(seed)
    seeds = vector_seeds() + [random_checkpoint(rng) for _ in range(40)]
    for n in range(count):
        if n % 500 == 499:
            seeds[len(seeds) - 1 - rng.randrange(40)] = random_checkpoint(rng)
        yield mutate(rng.choice(seeds), rng, rng.choice(seeds))


# --- the differential run ----------------------------------------------------------------


@dataclass
class Report:
    inputs: int = 0
    accepted: int = 0
    by_rule: Counter[str] = field(default_factory=Counter)
    disagreements: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [
            f"{self.inputs} inputs: {self.accepted} accepted, "
            f"{self.inputs - self.accepted} refused",
            "refusals by rule: "
            + ", ".join(f"{rule} {n}" for rule, n in self.by_rule.most_common()),
        ]
        if self.disagreements:
            lines.append("disagreements by language pair:")
            lines += [f"  {a} vs {b}: {n}" for (a, b), n in sorted(self.disagreements.items())]
        else:
            lines.append("disagreements: 0 between every pair of languages")
        return "\n".join(lines)


def _key(answer: Answer) -> tuple[Any, ...]:
    if answer.output is not None:
        return ("accept", answer.output)
    return ("refuse", answer.exit_code, answer.kind, answer.rule, answer.path)


def _reference_answer(data: bytes) -> Answer:
    got = reference.verdict(data, cross_check=False)
    if got.output is not None:
        return Answer(output=got.output)
    return Answer(exit_code=3, kind="checkpoint_shape", rule=got.rule or "", path=got.path or "")


def run(
    count: int,
    seed: int,
    langs: list[str],
    *,
    use_reference: bool = False,
    batch: int = 1000,
    max_examples: int = 20,
    out: Any = sys.stdout,
) -> Report:
    report = Report()
    servers = {lang: Server(lang) for lang in langs}
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=len(servers)) as pool:
            stream = inputs(count, seed)
            while chunk := list(itertools.islice(stream, batch)):
                requests = [(REENCODE, data) for data in chunk]
                futures = {
                    lang: pool.submit(server.ask_many, requests) for lang, server in servers.items()
                }
                answers = {lang: future.result() for lang, future in futures.items()}
                if use_reference:
                    answers["reference"] = [_reference_answer(data) for data in chunk]
                names = list(answers)
                for k, data in enumerate(chunk):
                    keys = {name: _key(answers[name][k]) for name in names}
                    first = answers[names[0]][k]
                    report.inputs += 1
                    if first.accepted:
                        report.accepted += 1
                    else:
                        report.by_rule[first.rule or first.kind] += 1
                    if len(set(keys.values())) == 1:
                        continue
                    for a, b in itertools.combinations(names, 2):
                        if keys[a] != keys[b]:
                            report.disagreements[(a, b)] += 1
                    if len(report.examples) < max_examples:
                        text = f"disagreement on input {data.hex()}\n" + "".join(
                            f"  {name}: {answers[name][k]}\n" for name in names
                        )
                        report.examples.append(text)
                        out.write(text)
                if report.inputs % 100_000 < batch:
                    elapsed = time.monotonic() - started
                    out.write(f"{report.inputs} inputs, {elapsed:.0f} s\n")
                    out.flush()
    finally:
        for server in servers.values():
            server.close()
    return report


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--langs", default=",".join(LANGS))
    parser.add_argument("--reference", action="store_true", help="the reference answers too")
    args = parser.parse_args()
    started = time.monotonic()
    report = run(args.inputs, args.seed, args.langs.split(","), use_reference=args.reference)
    print(report.summary())
    print(f"{time.monotonic() - started:.0f} s")
    return 1 if report.disagreements else 0


if __name__ == "__main__":
    sys.exit(main())
