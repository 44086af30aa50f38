"""The Python conformance testee (see tests/conformance/README.md for the contract)."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import protocol

from dsxir.errors import CorruptStore, InvalidCheckpoint, InvalidDelta, ResumeMismatch
from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session import delta as dl
from dsxir.optimizer_session import rules, term_rules
from dsxir.optimizer_session.trainset_json import (
    TrainsetJSONError,
    hash_trainset_json,
    hash_trainset_jsonl,
)
from dsxir.optimizer_session.v1.term_pb2 import Term, TermMap
from dsxir.store import records

REFUSED = 3
DAMAGED = 4


@dataclass(frozen=True)
class Refusal:
    """A refusal: the fields of the protocol's Refusal, and the one-shot command's line."""

    exit_code: int
    kind: str
    path: str
    rule: str | None
    message: str

    def line(self) -> str:
        suffix = f" (rule {self.rule})" if self.rule else ""
        return f"{self.kind}: {self.path}: {self.message}{suffix}"


Result = bytes | Refusal


def _shape(path: str, detail: str, rule: str | None) -> Refusal:
    return Refusal(REFUSED, "checkpoint_shape", path, rule, detail)


def _read_checkpoint(data: bytes) -> Result:
    try:
        return ck.encode(ck.decode(data))
    except ResumeMismatch as exc:
        return _shape(exc.field or "<input>", exc.detail or str(exc), exc.rule)
    except InvalidCheckpoint as exc:  # a writer's refusal: a credential (FORMAT.md §10), no rule
        return _shape(exc.path, exc.detail, exc.rule)


def reencode(data: bytes) -> Result:
    """The canonical bytes, or the refusal naming the field path and the rule."""
    return _read_checkpoint(data)


def hash_trainset(data: bytes) -> Result:
    """The digest line of hash_trainset over the items of one list Term (FORMAT.md §6).

    The input is any protobuf encoding of a Term (map entries in any order);
    unknown fields are dropped as it is read. Each item is checked by the Term
    rules (FORMAT.md §7: per map entry, in order, its key, its value, then
    that its key's canonical bytes repeat no earlier key's), its maps are
    sorted, and its canonical bytes are hashed: Terms, never Python values.
    Refusals name ``<input>`` or a path from ``items[i]``.
    """
    if len(data) > ck.MAX_CHECKPOINT_BYTES:
        return _shape("<input>", f"input is {len(data)} bytes", rules.INPUT_TOO_LARGE)
    try:
        term = Term.FromString(data)
    except Exception as exc:  # untrusted bytes: any parse failure is a refusal
        return _shape("<input>", f"not a Term ({exc})", rules.INPUT_MALFORMED)
    if term.WhichOneof("kind") != "list_value":
        return _shape("<input>", "not a Term list", rules.INPUT_MALFORMED)
    term.DiscardUnknownFields()
    digest = hashlib.sha256(b"dsxir.trainset.v1\n")
    items = term.list_value.items
    digest.update(len(items).to_bytes(8, "big"))
    for i, item in enumerate(items):
        try:
            raw = _canonical(item, 1).SerializeToString(deterministic=True)
        except term_rules.Refusal as bad:
            path = f"items[{i}]" + "".join(reversed(bad.parts))
            return _shape(path, bad.detail, bad.rule)
        digest.update(len(raw).to_bytes(8, "big"))
        digest.update(raw)
    return (digest.hexdigest() + "\n").encode()


def _canonical(term: Term, depth: int) -> Term:
    """A checked copy of ``term`` with its maps sorted by key bytes (raises term_rules.Refusal)."""
    if depth > term_rules.MAX_TERM_DEPTH:
        raise term_rules.Refusal(
            f"nesting deeper than {term_rules.MAX_TERM_DEPTH}", rule=rules.TERM_DEPTH
        )
    kind = term.WhichOneof("kind")
    out = Term()
    if kind in ("list_value", "tuple_value"):
        target = getattr(out, kind)
        target.SetInParent()
        for i, item in enumerate(getattr(term, kind).items):
            try:
                target.items.append(_canonical(item, depth + 1))
            except term_rules.Refusal as bad:
                bad.parts.append(f".{kind}.items[{i}]")
                raise
    elif kind == "map_value":
        out.map_value.SetInParent()
        try:
            _canonical_map(term.map_value, depth + 1, out.map_value)
        except term_rules.Refusal as bad:
            bad.parts.append(".map_value")
            raise
    else:  # a scalar, or no kind: the node's own rules
        try:
            term_rules.check_term(term, "")
        except InvalidCheckpoint as exc:
            raise term_rules.Refusal(exc.detail, part=exc.path or None, rule=exc.rule) from None
        out.CopyFrom(term)
    return out


def _canonical_map(term_map: TermMap, depth: int, out: TermMap) -> None:
    keyed: list[tuple[bytes, Term, Term]] = []
    seen: set[bytes] = set()
    for i, entry in enumerate(term_map.entries):
        try:
            if not entry.HasField("key"):
                raise term_rules.Refusal("map entry has no key", rule=rules.TERM_MAP_KEY_REQUIRED)
            key = _canonical_part(entry.key, depth, ".key")
            if not entry.HasField("value"):
                raise term_rules.Refusal(
                    "map entry has no value", rule=rules.TERM_MAP_VALUE_REQUIRED
                )
            value = _canonical_part(entry.value, depth, ".value")
            key_bytes = key.SerializeToString(deterministic=True)
            if key_bytes in seen:
                raise term_rules.Refusal(
                    "duplicate map key", part=".key", rule=rules.TERM_MAP_ORDER
                )
            seen.add(key_bytes)
            keyed.append((key_bytes, key, value))
        except term_rules.Refusal as bad:
            bad.parts.append(f".entries[{i}]")
            raise
    for _, key, value in sorted(keyed, key=lambda entry: entry[0]):
        added = out.entries.add()
        added.key.CopyFrom(key)
        added.value.CopyFrom(value)


def _canonical_part(term: Term, depth: int, part: str) -> Term:
    try:
        return _canonical(term, depth)
    except term_rules.Refusal as bad:
        bad.parts.append(part)
        raise


def _hash_text(data: bytes, *, lines: bool) -> Result:
    """A trainset kept as JSON text (FORMAT.md §6.1): the digest line, or the refusal."""
    try:
        digest = hash_trainset_jsonl(data) if lines else hash_trainset_json(data)
    except TrainsetJSONError as exc:
        where = f"byte {exc.offset}" if exc.line is None else f"line {exc.line}, byte {exc.offset}"
        return Refusal(REFUSED, "trainset_json", where, None, exc.detail)
    return (digest.hex() + "\n").encode()


def hash_trainset_json_text(data: bytes) -> Result:
    return _hash_text(data, lines=False)


def hash_trainset_jsonl_text(data: bytes) -> Result:
    return _hash_text(data, lines=True)


def read_store_file(data: bytes) -> Result:
    """A whole store file (docs/store-file.md §5, §9) → the canonical checkpoint bytes."""
    try:
        whole = records.read(lambda at, size: data[at : at + size], len(data), "<stdin>")
    except CorruptStore as exc:  # framing names the kind of docs/store-file.md §6
        return Refusal(DAMAGED, "store_file", exc.kind or "", None, exc.detail)
    except ResumeMismatch as exc:  # the snapshot's body
        return _shape(exc.field or "<input>", exc.detail or str(exc), exc.rule)
    except InvalidDelta as exc:  # a record's delta
        return _delta_shape(exc)
    except InvalidCheckpoint as exc:  # the checkpoint the records end with
        return _shape(exc.path, exc.detail, exc.rule)
    try:
        return ck.encode(whole.checkpoint)
    except InvalidCheckpoint as exc:
        return _shape(exc.path, exc.detail, exc.rule)


def _delta_shape(exc: InvalidDelta) -> Refusal:
    return Refusal(REFUSED, "delta_shape", exc.path, exc.rule, exc.detail)


def reencode_delta(data: bytes) -> Result:
    """A delta's canonical bytes (FORMAT.md §13.1), or the refusal of kind ``delta_shape``."""
    try:
        return dl.encode_delta(dl.decode_delta(data))
    except InvalidDelta as exc:
        return _delta_shape(exc)
    except InvalidCheckpoint as exc:  # a credential in the head (FORMAT.md §10), no rule
        return Refusal(REFUSED, "delta_shape", exc.path, exc.rule, exc.detail)


def apply_delta(base: bytes, data: bytes) -> Result:
    """The canonical bytes of the checkpoint a delta makes from ``base`` (FORMAT.md §13.2)."""
    try:
        cp = ck.decode(base)
    except ResumeMismatch as exc:
        return _shape(exc.field or "<input>", exc.detail or str(exc), exc.rule)
    try:
        delta = dl.decode_delta(data)
        return ck.encode(dl.apply(cp, delta))
    except InvalidDelta as exc:
        return _delta_shape(exc)
    except InvalidCheckpoint as exc:
        return _shape(exc.path, exc.detail, exc.rule)


COMMANDS: dict[str, Callable[[bytes], Result]] = {
    "reencode": reencode,
    "hash-trainset": hash_trainset,
    "hash-trainset-json": hash_trainset_json_text,
    "hash-trainset-jsonl": hash_trainset_jsonl_text,
    "read-store-file": read_store_file,
    "reencode-delta": reencode_delta,
}
BY_COMMAND: dict[int, Callable[[bytes], Result]] = {
    protocol.REENCODE: reencode,
    protocol.HASH_TRAINSET: hash_trainset,
    protocol.HASH_TRAINSET_JSON: hash_trainset_json_text,
    protocol.HASH_TRAINSET_JSONL: hash_trainset_jsonl_text,
    protocol.READ_STORE_FILE: read_store_file,
    protocol.REENCODE_DELTA: reencode_delta,
}


def respond(request: protocol.pb.Request) -> protocol.pb.Response:
    handler = BY_COMMAND.get(request.command)
    result: Result
    if request.command == protocol.APPLY_DELTA:
        result = apply_delta(bytes(request.base), bytes(request.input))
    elif handler is None:
        result = Refusal(2, "command", "", None, f"unknown command {request.command}")
    else:
        result = handler(bytes(request.input))
    if isinstance(result, bytes):
        return protocol.pb.Response(output=result)
    refusal = protocol.pb.Refusal(
        exit_code=result.exit_code,
        kind=result.kind,
        path=result.path,
        rule=result.rule or "",
        message=result.message,
    )
    return protocol.pb.Response(refusal=refusal)


def serve(stdin: BinaryIO, stdout: BinaryIO) -> int:
    while True:
        try:
            request = protocol.read_delimited(stdin, protocol.pb.Request)
        except (EOFError, ValueError) as exc:
            print(f"bad request: {exc}", file=sys.stderr)
            return 2
        if request is None:
            return 0
        protocol.write_delimited(stdout, respond(request))
        stdout.flush()


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[1] == "apply-delta":
        try:
            with open(argv[2], "rb") as handle:
                base = handle.read()
        except OSError as exc:
            print(f"cannot read the base: {exc.strerror}", file=sys.stderr)
            return 2
        result = apply_delta(base, sys.stdin.buffer.read())
    elif len(argv) != 2 or (argv[1] not in COMMANDS and argv[1] != "serve"):
        print(f"usage: testee-python {'|'.join(COMMANDS)}|apply-delta BASE|serve", file=sys.stderr)
        return 2
    elif argv[1] == "serve":
        return serve(sys.stdin.buffer, sys.stdout.buffer)
    else:
        result = COMMANDS[argv[1]](sys.stdin.buffer.read())
    if isinstance(result, Refusal):
        sys.stderr.write(result.line() + "\n")
        return result.exit_code
    sys.stdout.buffer.write(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
