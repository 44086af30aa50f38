"""The harness side of a testee's ``serve`` loop (tests/conformance/README.md).

The protocol is ``tests/conformance/proto/dsxir/conformance/v1/testee.proto``:
size-delimited ``Request`` messages on the testee's stdin, one size-delimited
``Response`` each on its stdout. Its Python code is generated into
``tests/conformance/gen`` by ``make generate-conformance``; it is loaded here
from that file, as the module ``testee_pb2`` (its package name,
``dsxir.conformance.v1``, would clash with the installed ``dsxir``).

:class:`Server` runs one testee's loop; :meth:`Server.ask_many` keeps many
requests in flight (a writer thread feeds stdin while answers are read), so
bulk runs are not bound by round trips. :class:`Answer` is what the suite
compares: the output bytes, or the refusal's kind, rule and path.
"""

from __future__ import annotations

import importlib.util
import subprocess
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
_GEN = HERE / "gen" / "dsxir" / "conformance" / "v1" / "testee_pb2.py"


def _load() -> Any:
    if not _GEN.is_file():
        raise RuntimeError(f"{_GEN} is missing: run 'make generate-conformance'")
    spec = importlib.util.spec_from_file_location("testee_pb2", _GEN)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pb: Any = _load()
"""The generated module: ``pb.Request``, ``pb.Response``, ``pb.Refusal``, the commands."""

REENCODE: int = pb.COMMAND_REENCODE
HASH_TRAINSET: int = pb.COMMAND_HASH_TRAINSET
HASH_TRAINSET_JSON: int = pb.COMMAND_HASH_TRAINSET_JSON
HASH_TRAINSET_JSONL: int = pb.COMMAND_HASH_TRAINSET_JSONL
READ_STORE_FILE: int = pb.COMMAND_READ_STORE_FILE
REENCODE_DELTA: int = pb.COMMAND_REENCODE_DELTA
APPLY_DELTA: int = pb.COMMAND_APPLY_DELTA
OK, REFUSED, DAMAGED = 0, 3, 4
LANGS = ["python", "go", "typescript", "java", "rust"]
"""Every language with a testee; none is skipped."""


def varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def write_delimited(stream: IO[bytes], message: Any) -> None:
    data = message.SerializeToString()
    stream.write(varint(len(data)) + data)


def read_delimited(stream: IO[bytes], kind: Any) -> Any | None:
    """The next size-delimited message of type ``kind``; None at a clean end of input."""
    length = shift = 0
    for i in range(10):
        byte = stream.read(1)
        if not byte:
            if i == 0:
                return None
            raise EOFError("input ends inside a message length")
        length |= (byte[0] & 0x7F) << shift
        shift += 7
        if byte[0] < 0x80:
            break
    else:
        raise ValueError("a message length of more than 10 bytes")
    data = stream.read(length)
    if len(data) != length:
        raise EOFError(f"input ends inside a message ({len(data)} of {length} bytes)")
    return kind.FromString(data)


@dataclass(frozen=True)
class Answer:
    """A testee's answer: ``output`` when accepted, else the refusal's fields."""

    output: bytes | None = None
    exit_code: int = 0
    kind: str = ""
    rule: str = ""
    path: str = ""
    message: str = ""

    @property
    def accepted(self) -> bool:
        return self.output is not None

    def key(self) -> tuple[Any, ...]:
        """What must be identical between languages (the message is each one's own)."""
        if self.output is not None:
            return ("accept", self.output)
        return ("refuse", self.exit_code, self.kind, self.rule, self.path)

    def __str__(self) -> str:
        if self.output is not None:
            return f"accept({len(self.output)} bytes: {self.output[:48].hex()}...)"
        return (
            f"refuse(exit {self.exit_code}, {self.kind}, rule {self.rule or '-'}, "
            f"path {self.path!r}: {self.message})"
        )


def answer_of(response: Any) -> Answer:
    which = response.WhichOneof("result")
    if which == "output":
        return Answer(output=bytes(response.output))
    if which == "refusal":
        r = response.refusal
        return Answer(
            exit_code=r.exit_code, kind=r.kind, rule=r.rule, path=r.path, message=r.message
        )
    raise AssertionError(f"a Response with no result: {response}")


class Server:
    """One testee's ``serve`` loop."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        launcher = HERE / f"testee-{lang}"
        assert launcher.is_file(), f"{launcher} is missing"
        self.proc = subprocess.Popen(
            [str(launcher), "serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )

    def ask(self, command: int, data: bytes) -> Answer:
        return next(iter(self.ask_many([(command, data)])))

    def ask_many(self, requests: Iterable[tuple[int, bytes]]) -> list[Answer]:
        """The answers to ``requests``, in order, with many requests in flight."""
        return list(self._stream([(command, data, b"") for command, data in requests]))

    def apply_many(self, requests: Iterable[tuple[bytes, bytes]]) -> list[Answer]:
        """The answers to ``APPLY_DELTA`` of each ``(base, delta)``, in order."""
        return list(self._stream([(APPLY_DELTA, delta, base) for base, delta in requests]))

    def _stream(self, items: list[tuple[int, bytes, bytes]]) -> Iterator[Answer]:
        assert self.proc.stdin and self.proc.stdout
        stdin, failure = self.proc.stdin, []

        def feed() -> None:
            try:
                for command, data, base in items:
                    write_delimited(stdin, pb.Request(command=command, input=data, base=base))
                stdin.flush()
            except (BrokenPipeError, OSError) as exc:  # the testee died: reported below
                failure.append(exc)

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        try:
            for _ in items:
                response = read_delimited(self.proc.stdout, pb.Response)
                if response is None:
                    raise AssertionError(
                        f"testee-{self.lang} serve ended its output early "
                        f"(exit {self.proc.poll()}; {failure})"
                    )
                yield answer_of(response)
        finally:
            writer.join()

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        code = self.proc.wait(timeout=120)
        assert code == 0, f"testee-{self.lang} serve exited with {code}"
