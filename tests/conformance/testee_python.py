"""The Python conformance testee (see tests/conformance/README.md for the contract)."""

from __future__ import annotations

import struct
import sys
from typing import BinaryIO

from dsxir.errors import CorruptStore, InvalidCheckpoint, ResumeMismatch
from dsxir.optimizer_session import checkpoint as ck
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


def reencode(data: bytes) -> tuple[int, bytes]:
    """Canonical bytes, or ``checkpoint_shape: <field>: <detail> (rule <id>)``."""
    try:
        return 0, ck.encode(ck.decode(data))
    except ResumeMismatch as exc:  # its message ends with the rule id
        return REFUSED, str(exc).encode()
    except InvalidCheckpoint as exc:  # a writer's refusal: a credential (FORMAT.md §10), no rule
        return REFUSED, f"checkpoint_shape: {exc}".encode()


def hash_trainset(data: bytes) -> tuple[int, bytes]:
    try:
        term = Term.FromString(data)
    except Exception as exc:  # untrusted bytes: any parse failure is a refusal
        return REFUSED, f"checkpoint_shape: <input>: not a Term ({exc})".encode()
    if term.WhichOneof("kind") != "list_value":
        return REFUSED, b"checkpoint_shape: <input>: not a Term list"
    try:
        examples = [
            ck.from_term(item, root=f"items[{i}]") for i, item in enumerate(term.list_value.items)
        ]
        return 0, (ck.hash_trainset(examples).hex() + "\n").encode()
    except (InvalidCheckpoint, TypeError) as exc:
        return REFUSED, f"checkpoint_shape: {exc}".encode()


def hash_trainset_text(data: bytes, *, lines: bool) -> tuple[int, bytes]:
    """A trainset kept as JSON text (FORMAT.md §6.1) → the digest line, or ``trainset_json: …``."""
    try:
        digest = hash_trainset_jsonl(data) if lines else hash_trainset_json(data)
    except TrainsetJSONError as exc:
        return REFUSED, f"trainset_json: {exc}".encode()
    return 0, (digest.hex() + "\n").encode()


def hash_trainset_json_text(data: bytes) -> tuple[int, bytes]:
    return hash_trainset_text(data, lines=False)


def hash_trainset_jsonl_text(data: bytes) -> tuple[int, bytes]:
    return hash_trainset_text(data, lines=True)


def read_store_file(data: bytes) -> tuple[int, bytes]:
    """A whole store file (docs/store-file.md) → the canonical checkpoint bytes."""
    try:
        _, summary, body = framing.unframe(data, "<stdin>")
    except CorruptStore as exc:  # framing names the kind of docs/store-file.md §6
        return DAMAGED, f"store_file: {exc.kind}: {exc.detail}".encode()
    try:
        cp = ck.decode(body)
    except ResumeMismatch as exc:
        return REFUSED, str(exc).encode()
    if summary != encode_summary(cp):
        return DAMAGED, b"store_file: summary_mismatch: the summary is not the checkpoint's"
    return 0, ck.encode(cp)


COMMANDS = {
    "reencode": reencode,
    "hash-trainset": hash_trainset,
    "hash-trainset-json": hash_trainset_json_text,
    "hash-trainset-jsonl": hash_trainset_jsonl_text,
    "read-store-file": read_store_file,
}
FRAMED = {
    b"r": reencode,
    b"h": hash_trainset,
    b"j": hash_trainset_json_text,
    b"l": hash_trainset_jsonl_text,
    b"s": read_store_file,
}


def serve(stdin: BinaryIO, stdout: BinaryIO) -> int:
    while True:
        head = stdin.read(5)
        if not head:
            return 0
        if len(head) < 5 or head[:1] not in FRAMED:
            print("bad request frame", file=sys.stderr)
            return 2
        (length,) = struct.unpack(">I", head[1:])
        status, payload = FRAMED[head[:1]](stdin.read(length))
        stdout.write(bytes([status]) + struct.pack(">I", len(payload)) + payload)
        stdout.flush()


def main(argv: list[str]) -> int:
    if len(argv) != 2 or (argv[1] not in COMMANDS and argv[1] != "serve"):
        print(f"usage: testee-python {'|'.join(COMMANDS)}|serve", file=sys.stderr)
        return 2
    if argv[1] == "serve":
        return serve(sys.stdin.buffer, sys.stdout.buffer)
    status, payload = COMMANDS[argv[1]](sys.stdin.buffer.read())
    if status:
        sys.stderr.write(payload.decode(errors="replace") + "\n")
    else:
        sys.stdout.buffer.write(payload)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
