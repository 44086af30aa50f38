"""The frame of a stored checkpoint file: magic, version, lengths and CRC32C checksums.

A file store keeps each session in one file laid out as (integers big-endian)::

    offset  size  field
         0     8  magic  89 64 73 78 69 72 0D 0A  ("\\x89dsxir\\r\\n")
         8     2  frame version (1)
        10     2  flags (0, or 1: commit records may follow the body)
        12     8  generation
        20     4  summary length S
        24     8  body length B
        32     4  CRC32C of the summary
        36     4  CRC32C of the body
        40     4  CRC32C of bytes 0..39 (the header)
        44     S  summary (see :mod:`.summary`)
      44+S     B  body: the canonical checkpoint bytes

Without flags the file is exactly ``44 + S + B`` bytes; with flag 1
(:data:`FLAG_APPENDABLE`) commit records may follow the body
(:mod:`.records`, docs/store-file.md §9). The magic's first byte is not ASCII
and it holds CR LF, so a file passed through a text-mode or 7-bit copy is
refused at once. CRC32C (Castagnoli) detects every error burst of up to 32
bits, so a flipped byte anywhere is always found; the checksums are computed
by ``google-crc32c`` (hardware-accelerated where the CPU allows).

Every check failure raises :class:`~dsxir.errors.CorruptStore` naming the
file: a damaged file is reported, never decoded into wrong data. A reader can
read the header and the summary alone (:func:`parse_header`,
:func:`check_summary`) without reading the body.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import google_crc32c

from dsxir.errors import CorruptStore

__all__ = [
    "FLAG_APPENDABLE",
    "FRAME_VERSION",
    "HEADER_SIZE",
    "MAGIC",
    "MAX_BODY_BYTES",
    "MAX_SUMMARY_BYTES",
    "Header",
    "check_body",
    "check_summary",
    "crc32c",
    "frame",
    "parse_header",
    "unframe",
]

MAGIC = b"\x89dsxir\r\n"
FRAME_VERSION = 1
FLAG_APPENDABLE = 1
"""The flag of a file whose body may be followed by commit records (docs/store-file.md §9)."""
MAX_SUMMARY_BYTES = 1 << 20
"""The largest summary a reader accepts (a summary is a few hundred bytes)."""
MAX_BODY_BYTES = 268_435_456
"""The largest body: the checkpoint size limit of FORMAT.md §3.6."""

_HEADER = struct.Struct(">8sHHQIQII")
_HEADER_CRC = struct.Struct(">I")
HEADER_SIZE = _HEADER.size + _HEADER_CRC.size
assert HEADER_SIZE == 44


def crc32c(data: bytes) -> int:
    """The CRC32C (Castagnoli) of ``data``."""
    return int(google_crc32c.value(data))


@dataclass(frozen=True)
class Header:
    """The checked header of a frame."""

    generation: int
    summary_length: int
    body_length: int
    summary_crc: int
    body_crc: int
    flags: int = 0

    @property
    def total_length(self) -> int:
        """The length of the header, summary and body: the whole file without records."""
        return HEADER_SIZE + self.summary_length + self.body_length

    @property
    def appendable(self) -> bool:
        """Whether commit records may follow the body."""
        return bool(self.flags & FLAG_APPENDABLE)


def frame(generation: int, summary: bytes, body: bytes, *, appendable: bool = False) -> bytes:
    """The framed file content of one committed checkpoint (flag 1 when ``appendable``)."""
    if not 0 <= generation < 1 << 64:
        raise ValueError("generation out of range")
    if len(summary) > MAX_SUMMARY_BYTES:
        raise ValueError(f"summary of {len(summary)} bytes is over {MAX_SUMMARY_BYTES}")
    if len(body) > MAX_BODY_BYTES:
        raise ValueError(f"body of {len(body)} bytes is over {MAX_BODY_BYTES}")
    head = _HEADER.pack(
        MAGIC,
        FRAME_VERSION,
        FLAG_APPENDABLE if appendable else 0,
        generation,
        len(summary),
        len(body),
        crc32c(summary),
        crc32c(body),
    )
    return b"".join((head, _HEADER_CRC.pack(crc32c(head)), summary, body))


def parse_header(raw: bytes, path: str, *, file_size: int | None = None) -> Header:
    """Check the first :data:`HEADER_SIZE` bytes of a file (and its size, when given).

    Refuses a short header, a wrong magic, a header checksum mismatch, an
    unknown frame version or flags, lengths over the limits, and a file whose
    size is not the one the header announces (truncated, or with bytes after
    the end; an appendable file may be longer).
    """
    if len(raw) < HEADER_SIZE:
        raise CorruptStore(
            path, f"truncated: {len(raw)} bytes, a header needs {HEADER_SIZE}", "truncated"
        )
    if raw[:8] != MAGIC:
        raise CorruptStore(path, "not a dsxir checkpoint store file (bad magic)", "bad_magic")
    fields = _HEADER.unpack_from(raw)
    (stored_crc,) = _HEADER_CRC.unpack_from(raw, _HEADER.size)
    if crc32c(raw[: _HEADER.size]) != stored_crc:
        raise CorruptStore(path, "header checksum mismatch (damaged file)", "header_checksum")
    _, version, flags, generation, summary_length, body_length, summary_crc, body_crc = fields
    if version != FRAME_VERSION:
        raise CorruptStore(path, f"unsupported frame version {version}", "unsupported_version")
    if flags & ~FLAG_APPENDABLE:
        raise CorruptStore(path, f"unsupported frame flags {flags:#06x}", "unsupported_flags")
    if summary_length > MAX_SUMMARY_BYTES or body_length > MAX_BODY_BYTES:
        raise CorruptStore(path, "frame lengths are over the limits", "over_limits")
    header = Header(generation, summary_length, body_length, summary_crc, body_crc, flags)
    if file_size is not None and file_size != header.total_length:
        if header.appendable and file_size > header.total_length:
            return header
        what = "truncated" if file_size < header.total_length else "trailing bytes"
        raise CorruptStore(
            path,
            f"{what}: file has {file_size} bytes, its frame says {header.total_length}",
            what.replace(" ", "_"),
        )
    return header


def check_summary(header: Header, summary: bytes, path: str) -> None:
    """Refuse summary bytes of the wrong length or checksum."""
    if len(summary) != header.summary_length:
        raise CorruptStore(
            path,
            f"truncated: summary has {len(summary)} bytes of {header.summary_length}",
            "truncated",
        )
    if crc32c(summary) != header.summary_crc:
        raise CorruptStore(path, "summary checksum mismatch (damaged file)", "summary_checksum")


def check_body(header: Header, body: bytes, path: str) -> None:
    """Refuse body bytes of the wrong length or checksum."""
    if len(body) != header.body_length:
        raise CorruptStore(
            path, f"truncated: body has {len(body)} bytes of {header.body_length}", "truncated"
        )
    if crc32c(body) != header.body_crc:
        raise CorruptStore(path, "checkpoint checksum mismatch (damaged file)", "body_checksum")


def unframe(data: bytes, path: str) -> tuple[Header, bytes, bytes]:
    """Check the snapshot of a framed file; return its header, summary and body.

    The bytes after the body (an appendable file's records) are not looked
    at; ``header.total_length`` is where they start.
    """
    header = parse_header(data[:HEADER_SIZE], path, file_size=len(data))
    summary_end = HEADER_SIZE + header.summary_length
    summary = data[HEADER_SIZE:summary_end]
    body = data[summary_end : header.total_length]
    check_summary(header, summary, path)
    check_body(header, body, path)
    return header, summary, body
