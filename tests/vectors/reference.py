"""The reference verdict on checkpoint bytes, for the vector generators and the harness.

A reader (FORMAT.md §7) either accepts the input, and then writes it back
exactly (§2: ``encode(decode(b)) == b``), or refuses it with a rule id
(§7.1) and a path (§2.3, §7). :func:`verdict` computes that answer from the
two halves of the Python reference: the byte grammar of
``dsxir.optimizer_session.grammar`` (§7 step 1) and the rules of §1-§4 in
``dsxir.optimizer_session.validate`` (§7 steps 2-4) on the body the grammar
let through. When the library's own ``decode``/``encode`` read and write the
trailer, :func:`verdict` also asks them and fails on any difference, so a
vector never records an answer on which the reference and the library differ.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from dsxir.errors import InvalidCheckpoint, ResumeMismatch
from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session import grammar, validate
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint

__all__ = ["Verdict", "canonicalize", "library_seals", "seal", "verdict"]

seal = grammar.seal


@dataclass(frozen=True)
class Verdict:
    """Accepted with ``output`` (the bytes written back), or refused by ``rule`` at ``path``."""

    output: bytes | None = None
    rule: str | None = None
    path: str | None = None

    @property
    def accepted(self) -> bool:
        return self.output is not None

    def as_json(self) -> dict[str, Any]:
        """The form the manifests record: accept with the sha256 of the output, or refuse."""
        if self.output is not None:
            return {"verdict": "accept", "sha256": hashlib.sha256(self.output).hexdigest()}
        return {"verdict": "refuse", "rule": self.rule, "path": self.path}

    def __str__(self) -> str:
        if self.output is not None:
            return f"accept({hashlib.sha256(self.output).hexdigest()[:16]}, {len(self.output)} B)"
        return f"refuse({self.rule} at {self.path})"


def _grammar_then_rules(data: bytes) -> Verdict:
    try:
        body = grammar.check(data)
    except grammar.GrammarError as exc:
        return Verdict(rule=exc.rule, path=exc.path)
    cp = Checkpoint.FromString(body)  # the grammar holds: a runtime parses it
    try:
        validate.check(cp)
    except InvalidCheckpoint as exc:
        return Verdict(rule=exc.rule, path=exc.path)
    return Verdict(output=seal(cp.SerializeToString(deterministic=True)))


_LIBRARY_SEALS: bool | None = None


def library_seals() -> bool:
    """Whether the library's ``encode`` writes the trailer (and so ``decode`` reads it)."""
    global _LIBRARY_SEALS
    if _LIBRARY_SEALS is None:
        cp = ck.new(
            session_id="s",
            optimizer="o",
            trainset_hash=bytes(32),
            sampler_blob=b"",
            sampler_format=("m", 1),
        )
        try:
            grammar.check(ck.encode(cp))
            _LIBRARY_SEALS = True
        except grammar.GrammarError:
            _LIBRARY_SEALS = False
    return _LIBRARY_SEALS


def _library(data: bytes) -> Verdict:
    try:
        cp = ck.decode(data)
    except ResumeMismatch as exc:
        return Verdict(rule=exc.rule, path=exc.field)
    return Verdict(output=ck.encode(cp))


def verdict(data: bytes, *, cross_check: bool = True) -> Verdict:
    """What every reader answers to ``reencode`` of ``data`` (FORMAT.md §2, §7)."""
    data = bytes(data)
    got = _grammar_then_rules(data)
    if got.output is not None and got.output != data:
        raise AssertionError(
            f"accepted bytes that do not write back to themselves: {data.hex()} -> "
            f"{got.output.hex()} (the grammar of FORMAT.md §2 lets a non-canonical input through)"
        )
    if cross_check and library_seals():
        library = _library(data)
        if library != got:
            raise AssertionError(
                f"the library and the reference differ on {data.hex()}: library {library}, "
                f"reference {got}"
            )
    return got


def canonicalize(data: bytes) -> bytes:
    """The canonical bytes of a checkpoint in any protobuf encoding, with or without a
    trailer (FORMAT.md §2.6); raises ``ValueError`` naming what is wrong otherwise."""
    data = bytes(data)
    body = data
    if len(data) >= grammar.TRAILER_SIZE and data[-9:-4] == grammar.TRAILER_TAG:
        body = data[:-9]
        if grammar.crc32c(body) != int.from_bytes(data[-4:], "little"):
            raise ValueError("the trailer's checksum does not match")
    cp = Checkpoint.FromString(body)
    validate.check(cp)
    out = seal(cp.SerializeToString(deterministic=True))
    if not verdict(out, cross_check=False).accepted:
        raise ValueError("the rewrite is not canonical")
    return out
