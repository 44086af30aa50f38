"""Protobuf wire primitives the format writes by hand: the minimal varint."""

from __future__ import annotations

__all__ = ["varint"]


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
