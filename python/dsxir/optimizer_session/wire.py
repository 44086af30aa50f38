"""Protobuf wire primitives written by hand: the minimal varint, and reading one back."""

from __future__ import annotations

__all__ = ["read_varint", "varint"]


def varint(n: int) -> bytes:
    """The minimal base-128 varint of a non-negative ``n`` (a length, a tag, a uint64)."""
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def read_varint(view: memoryview, position: int) -> tuple[int | None, int]:
    """The varint at ``position`` of ``view`` and the position after it.

    ``None`` (and where the reading stopped) when the bytes end first or
    ten bytes hold no last byte. Any encoding is read, padded or not: the
    callers walk request envelopes, not canonical checkpoints.
    """
    value = shift = 0
    while position < len(view) and shift < 64:
        byte = view[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7
    return None, position
