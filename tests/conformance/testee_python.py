"""The Python conformance testee (see tests/conformance/README.md for the contract)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import protocol

from dsxir.errors import CorruptStore, InvalidCheckpoint, ResumeMismatch
from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session import rules
from dsxir.optimizer_session.trainset_json import (
    TrainsetJSONError,
    hash_trainset_json,
    hash_trainset_jsonl,
)
from dsxir.optimizer_session.v1.term_pb2 import Term
from dsxir.store import framing
from dsxir.store.summary import encode_summary

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
    try:
        term = Term.FromString(data)
    except Exception as exc:  # untrusted bytes: any parse failure is a refusal
        return _shape("<input>", f"not a Term ({exc})", rules.INPUT_MALFORMED)
    if term.WhichOneof("kind") != "list_value":
        return _shape("<input>", "not a Term list", None)
    try:
        examples = [
            ck.from_term(item, root=f"items[{i}]") for i, item in enumerate(term.list_value.items)
        ]
        return (ck.hash_trainset(examples).hex() + "\n").encode()
    except InvalidCheckpoint as exc:
        return _shape(exc.path, exc.detail, exc.rule)
    except TypeError as exc:
        return _shape("<input>", str(exc), None)


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
    """A whole store file (docs/store-file.md) → the canonical checkpoint bytes."""
    try:
        _, summary, body = framing.unframe(data, "<stdin>")
    except CorruptStore as exc:  # framing names the kind of docs/store-file.md §6
        return Refusal(DAMAGED, "store_file", exc.kind or "", None, exc.detail)
    try:
        cp = ck.decode(body)
    except ResumeMismatch as exc:
        return _shape(exc.field or "<input>", exc.detail or str(exc), exc.rule)
    if summary != encode_summary(cp):
        return Refusal(
            DAMAGED, "store_file", "summary_mismatch", None, "the summary is not the checkpoint's"
        )
    try:
        return ck.encode(cp)
    except InvalidCheckpoint as exc:
        return _shape(exc.path, exc.detail, exc.rule)


COMMANDS: dict[str, Callable[[bytes], Result]] = {
    "reencode": reencode,
    "hash-trainset": hash_trainset,
    "hash-trainset-json": hash_trainset_json_text,
    "hash-trainset-jsonl": hash_trainset_jsonl_text,
    "read-store-file": read_store_file,
}
BY_COMMAND: dict[int, Callable[[bytes], Result]] = {
    protocol.REENCODE: reencode,
    protocol.HASH_TRAINSET: hash_trainset,
    protocol.HASH_TRAINSET_JSON: hash_trainset_json_text,
    protocol.HASH_TRAINSET_JSONL: hash_trainset_jsonl_text,
    protocol.READ_STORE_FILE: read_store_file,
}


def respond(request: protocol.pb.Request) -> protocol.pb.Response:
    handler = BY_COMMAND.get(request.command)
    if handler is None:
        result: Result = Refusal(2, "command", "", None, f"unknown command {request.command}")
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
    if len(argv) != 2 or (argv[1] not in COMMANDS and argv[1] != "serve"):
        print(f"usage: testee-python {'|'.join(COMMANDS)}|serve", file=sys.stderr)
        return 2
    if argv[1] == "serve":
        return serve(sys.stdin.buffer, sys.stdout.buffer)
    result = COMMANDS[argv[1]](sys.stdin.buffer.read())
    if isinstance(result, Refusal):
        sys.stderr.write(result.line() + "\n")
        return result.exit_code
    sys.stdout.buffer.write(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
