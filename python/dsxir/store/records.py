"""Commit records: the deltas an appendable store file holds after its body (docs/store-file.md §9).

A record is a 28-byte header (integers big-endian), a summary and a delta::

    offset  size  field
         0     4  record magic  89 64 6C 74  ("\\x89dlt")
         4     8  generation the record commits
        12     4  summary length S (at most MAX_SUMMARY_BYTES)
        16     4  delta length D (at most MAX_BODY_BYTES)
        20     4  CRC32C of the summary and the delta
        24     4  CRC32C of bytes 0..23 (the record header)
        28     S  the summary of the checkpoint after this record (.summary)
      28+S     D  the delta's bytes (FORMAT.md §13)

:func:`scan` finds the records of a file's tail. A strict prefix of a
record at the end of the file (fewer than 28 bytes, or a record longer than
what is left) is a **torn tail**: the write of a commit that was never
acknowledged (a writer fsyncs a record before its commit returns); it is
ignored, and the next writer cuts it off. A whole record whose checksum
fails is damage (:class:`~dsxir.errors.CorruptStore`), wherever it is. :func:`last` finds the
last record by the headers alone (a listing); :func:`read` turns a whole
file into its generation, checkpoint and summary.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from dsxir.errors import CorruptStore, InvalidDelta
from dsxir.optimizer_session import checkpoint
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint, CheckpointDelta
from dsxir.store import framing
from dsxir.store.interface import decode_stored
from dsxir.store.replay import decode_ahead, decoded_at, replay
from dsxir.store.summary import encode_summary

__all__ = [
    "RECORD_HEADER_SIZE",
    "RECORD_MAGIC",
    "Record",
    "Stored",
    "last",
    "read",
    "record",
    "scan",
]

RECORD_MAGIC = b"\x89dlt"
_HEAD = struct.Struct(">4sQIII")
_HEAD_CRC = struct.Struct(">I")
_RECORD = struct.Struct(">4sQIIII")
RECORD_HEADER_SIZE = _HEAD.size + _HEAD_CRC.size
assert RECORD_HEADER_SIZE == 28

ReadAt = Callable[[int, int], bytes]
"""``read_at(offset, size)``: at most ``size`` bytes of the file from ``offset``."""


class _Framed(NamedTuple):
    """The records of a file (:func:`scan`), and the first of their deltas already decoded.

    ``decoded[i]`` is the delta of ``found[i]``, or the ``InvalidDelta``
    its bytes raised; deltas past ``decoded`` are decoded when applied.
    """

    found: list[Record]
    end: int
    decoded: list[CheckpointDelta | InvalidDelta]


def _frame(read_at: ReadAt, start: int, size: int, path: str) -> _Framed:
    """:func:`scan`, then its first kept deltas decoded (:func:`.replay.decode_ahead`)."""
    found, end = scan(read_at, start, size, path)
    return _Framed(found, end, decode_ahead(item.delta for item in found))


def _applied(
    cp: Checkpoint,
    found: list[Record],
    generation: int,
    path: str,
    read_at: ReadAt,
    decoded: list[CheckpointDelta | InvalidDelta],
) -> Checkpoint:
    """``cp`` changed by the records' deltas in order, then checked by FORMAT.md §7 (§9).

    Each record is checked (its generation, its delta readable and based on
    the one before) just before its delta is merged (:func:`.replay.replay`):
    the refusal of a delta in ``decoded`` is raised then; a delta past
    ``decoded`` is decoded then, and one :func:`scan` did not keep is read
    again, one at a time.
    """

    def deltas() -> Iterator[CheckpointDelta]:
        before = generation
        for index, item in enumerate(found):
            if item.generation != before + 1:
                raise CorruptStore(
                    path,
                    f"a record commits generation {item.generation} after {before}",
                    "record_generation",
                )
            delta = decoded_at(decoded, index, functools.partial(_delta, read_at, item, path))
            if delta.base_generation != before:
                raise CorruptStore(
                    path,
                    f"the delta of generation {item.generation} applies to {delta.base_generation}",
                    "record_generation",
                )
            yield delta
            before = item.generation

    return replay(cp, deltas())


def record(generation: int, summary: bytes, delta: bytes) -> bytes:
    """The bytes of one commit record."""
    if not 0 <= generation < 1 << 64:
        raise ValueError("generation out of range")
    if len(summary) > framing.MAX_SUMMARY_BYTES or len(delta) > framing.MAX_BODY_BYTES:
        raise ValueError("record lengths are over the limits")
    payload_crc = framing.crc32c(summary + delta)
    head = _HEAD.pack(RECORD_MAGIC, generation, len(summary), len(delta), payload_crc)
    return b"".join((head, _HEAD_CRC.pack(framing.crc32c(head)), summary, delta))


KEPT_DELTA_BYTES = 32 << 20
"""The most delta bytes :func:`scan` keeps in memory; later deltas are read again when applied."""


class Record(NamedTuple):
    """One intact record: its generation, summary, delta bytes and where it ends.

    ``delta`` is ``None`` when :func:`scan` did not keep it (past
    :data:`KEPT_DELTA_BYTES`): its bytes are then read again from ``at``.
    """

    generation: int
    summary: bytes
    delta: bytes | None
    end: int
    at: int = 0


def scan(read_at: ReadAt, start: int, size: int, path: str) -> tuple[list[Record], int]:
    """The intact records from ``start`` to ``size``, and where they end (torn tail excluded).

    A torn tail is a strict prefix of a record: fewer than 28 bytes, or an
    intact header whose record runs past ``size``. Anything else that is not
    an intact record is damage a torn write cannot explain: ``CorruptStore``
    with ``record_checksum`` (a header or payload checksum that fails, a
    wrong record magic) or ``over_limits`` (lengths over the limits).
    """
    found: list[Record] = []
    at = start
    kept = 0
    read_at = _buffered(read_at)
    for head in _heads(read_at, start, size, path):
        item = _payload(read_at, head, path, keep=kept + head.delta_length <= KEPT_DELTA_BYTES)
        if item is None:
            break  # the file shrank while it was read: what is left is a tail
        if item.delta is not None:
            kept += head.delta_length
        found.append(item)
        at = item.end
    return found, at


READ_BLOCK = 1 << 20
"""How many bytes :func:`scan` reads at once: many small records cost one read."""


def _buffered(read_at: ReadAt) -> ReadAt:
    """``read_at`` through one block of :data:`READ_BLOCK` bytes read ahead (reads forward)."""
    block_at, block = 0, b""

    def read(at: int, size: int) -> bytes:
        nonlocal block_at, block
        offset = at - block_at
        if offset >= 0 and offset + size <= len(block):
            return block[offset : offset + size]
        if size >= READ_BLOCK:
            return read_at(at, size)
        block_at, block = at, read_at(at, READ_BLOCK)
        return block[:size]

    return read


def last(read_at: ReadAt, start: int, size: int, path: str) -> Record | None:
    """The last intact record from ``start`` to ``size``, or ``None`` when there is none.

    Reads the record headers (docs/store-file.md §9.2 steps 1-4, refused as
    :func:`scan` refuses them), then the payload of the last record only,
    checked by its CRC (step 5): the bytes read grow with the number of
    records, not with their size. The payloads of the other records are not
    read, so damage in them is found by the next whole read (:func:`read`).
    """
    heads = list(_heads(read_at, start, size, path))
    while heads:
        item = _payload(read_at, heads.pop(), path)
        if item is not None:
            return item
    return None


class _Head(NamedTuple):
    """A record header that passed its checks, where its record starts and ends."""

    at: int
    generation: int
    summary_length: int
    delta_length: int
    payload_crc: int
    end: int


def _heads(read_at: ReadAt, start: int, size: int, path: str) -> Iterator[_Head]:
    """The headers of the records from ``start`` on, until a torn tail or ``size`` (steps 1-4)."""
    at = start
    crc32c = framing.crc32c
    while at < size:
        raw = read_at(at, RECORD_HEADER_SIZE)
        if len(raw) < RECORD_HEADER_SIZE:
            return
        magic, generation, summary_length, delta_length, payload_crc, crc = _RECORD.unpack(raw)
        if magic != RECORD_MAGIC or crc32c(raw[: _HEAD.size]) != crc:
            raise CorruptStore(
                path, f"record at byte {at}: header damaged (magic or checksum)", "record_checksum"
            )
        if summary_length > framing.MAX_SUMMARY_BYTES or delta_length > framing.MAX_BODY_BYTES:
            raise CorruptStore(path, f"record at byte {at}: lengths over the limits", "over_limits")
        end = at + RECORD_HEADER_SIZE + summary_length + delta_length
        if end > size:
            return
        yield _Head(at, generation, summary_length, delta_length, payload_crc, end)
        at = end


def _payload(read_at: ReadAt, head: _Head, path: str, *, keep: bool = True) -> Record | None:
    """The record of ``head`` with its payload checked (step 5); ``None`` when cut short.

    Without ``keep`` the record's delta is not kept (``delta`` is ``None``).
    """
    length = head.summary_length + head.delta_length
    payload = read_at(head.at + RECORD_HEADER_SIZE, length)
    if len(payload) != length:
        return None
    if framing.crc32c(payload) != head.payload_crc:
        raise CorruptStore(
            path, f"record at byte {head.at}: checksum mismatch (damaged)", "record_checksum"
        )
    summary = payload[: head.summary_length]
    delta = payload[head.summary_length :] if keep else None
    return Record(head.generation, summary, delta, head.end, head.at)


def _delta(read_at: ReadAt, item: Record, path: str) -> bytes:
    """The delta of a record; one :func:`scan` did not keep is read and checked again."""
    if item.delta is not None:
        return item.delta
    heads = list(_heads(read_at, item.at, item.end, path))
    again = _payload(read_at, heads[0], path) if len(heads) == 1 else None
    if again is None or again.generation != item.generation or again.delta is None:
        raise CorruptStore(path, f"record at byte {item.at} changed while read", "record_checksum")
    return again.delta


@dataclass(frozen=True)
class Stored:
    """A whole store file read: the generation, checkpoint and summary it ends with.

    ``snapshot`` is the body's length, ``end`` where the intact records end
    (a torn tail from there to the file's size is not part of it) and
    ``records`` how many records were applied.
    """

    generation: int
    checkpoint: Checkpoint
    summary: bytes
    snapshot: int
    end: int
    records: int
    records_bytes: int


def read(read_at: ReadAt, size: int, path: str, session_id: str | None = None) -> Stored:
    """Read a store file: the frame (§5), then its records (§9), in their order.

    Raises ``CorruptStore`` for a damaged file (the kinds of
    docs/store-file.md §6, ``record_generation`` for records out of
    sequence); for a body that is not a valid checkpoint, what
    ``checkpoint.decode`` raises (with ``session_id``: ``CorruptStore``, and
    for another session too); ``InvalidDelta`` for an intact record whose
    delta is not readable or not its predecessor's (§13.1, §13.2 steps
    1-2); ``InvalidCheckpoint`` when the checkpoint the records end with
    breaks FORMAT.md §7.
    """
    header = framing.parse_header(read_at(0, framing.HEADER_SIZE), path, file_size=size)
    summary = read_at(framing.HEADER_SIZE, header.summary_length)
    framing.check_summary(header, summary, path)
    body = read_at(framing.HEADER_SIZE + header.summary_length, header.body_length)
    framing.check_body(header, body, path)
    framed: list[_Framed | Exception] = []

    def frame() -> None:
        try:
            framed.append(_frame(read_at, header.total_length, size, path))
        except Exception as exc:  # raised below, after the snapshot's own errors
            framed.append(exc)

    meanwhile = frame if header.appendable and size > header.total_length else None
    if session_id:
        cp = decode_stored(body, session_id, path, meanwhile=meanwhile)
    else:
        cp = checkpoint.decode(body, meanwhile=meanwhile)
    if summary != encode_summary(cp):
        raise CorruptStore(path, "summary does not match the checkpoint", "summary_mismatch")
    if not header.appendable:
        return Stored(header.generation, cp, summary, header.body_length, size, 0, 0)
    outcome = framed[0] if framed else _Framed([], header.total_length, [])
    if isinstance(outcome, Exception):
        raise outcome
    found, end, decoded = outcome
    generation = header.generation
    if found:
        cp = _applied(cp, found, generation, path, read_at, decoded)
        generation = found[-1].generation
        summary = found[-1].summary
        if summary != encode_summary(cp):
            raise CorruptStore(path, "summary does not match the checkpoint", "summary_mismatch")
    spent = end - header.total_length
    return Stored(generation, cp, summary, header.body_length, end, len(found), spent)
