"""hash_trainset of a trainset kept as JSON text (FORMAT.md §6.1).

:func:`hash_trainset_json` reads one JSON array, :func:`hash_trainset_jsonl`
JSON Lines; both return :func:`~dsxir.optimizer_session.checkpoint.hash_trainset`
of the examples, each converted to a Term by one rule, the same in every
language: an integer (no fraction, no exponent) is an integer Term, a big one
too, never a float; any other number is the nearest double; strings, arrays,
objects, ``true``/``false`` and ``null`` are string, list, map, bool and nil
Terms. The same text therefore gives the same digest in every language that
implements FORMAT.md §6.1, which :func:`json.loads` (silent about duplicate
keys and ``NaN``) and ``JSON.parse`` (floats for every number) cannot promise.

Refused with :class:`TrainsetJSONError` (a ``ValueError``) naming the byte
offset, and for JSON Lines the line: text over 256 MiB, text that is not
UTF-8, a byte order mark, any syntax error (``NaN``, ``Infinity``, leading
zeros, trailing content), a lone surrogate escape, a duplicate key, a float
too large for a double, an integer of more than 4300 digits, nesting deeper
than the Term depth limit, and (JSON) a top-level value that is not an array.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from json import decoder as _json_decoder
from typing import Any

from dsxir.errors import CheckpointError
from dsxir.optimizer_session.checkpoint import hash_trainset
from dsxir.optimizer_session.term_rules import MAX_TERM_DEPTH

__all__ = [
    "MAX_INTEGER_DIGITS",
    "MAX_TRAINSET_TEXT_BYTES",
    "TrainsetJSONError",
    "hash_trainset_json",
    "hash_trainset_jsonl",
]

MAX_TRAINSET_TEXT_BYTES = 256 * 1024 * 1024
"""The longest text accepted, in bytes of UTF-8 (checked before parsing)."""

MAX_INTEGER_DIGITS = 4300
"""The most digits of an integer (decimal-to-binary conversion grows faster than linearly)."""


class TrainsetJSONError(CheckpointError, ValueError):
    """JSON text that is not a trainset under FORMAT.md §6.1.

    ``offset`` is the byte offset (from the start of the text, in UTF-8) of
    the offending part, ``line`` its 1-based line for JSON Lines (else
    ``None``), ``detail`` what is wrong. The message reads
    ``byte 12: detail`` or ``line 3, byte 12: detail``.
    """

    def __init__(self, offset: int, detail: str, line: int | None = None) -> None:
        where = f"byte {offset}" if line is None else f"line {line}, byte {offset}"
        super().__init__(f"{where}: {detail}")
        self.offset = offset
        self.line = line
        self.detail = detail


_WS = re.compile(r"[ \t\n\r]*")
_BLANK = re.compile(r"[ \t]*")
_PLAIN = re.compile(r'[^"\\\x00-\x1f]*')
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")
_NUMBER_TAIL = re.compile(r"[0-9.eE+-]")
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_SIMPLE_ESCAPES = frozenset('"\\/bfnrt')
_SURROGATE = re.compile("[\ud800-\udfff]")
_LITERALS = (("true", True), ("false", False), ("null", None))
_scanstring: Callable[[str, int, bool], tuple[str, int]] = _json_decoder.scanstring  # type: ignore[attr-defined]
"""The C string decoder of :mod:`json` (strict: no control characters)."""
_INT_CHUNK = 600  # digits int() converts under any sys.set_int_max_str_digits (at least 640)


class _Refusal(Exception):
    """A refusal at a character index of the text, turned into a byte offset by the caller."""

    def __init__(self, index: int, detail: str) -> None:
        super().__init__(detail)
        self.index = index
        self.detail = detail


def hash_trainset_json(text: str | bytes) -> bytes:
    """The FORMAT.md §6 digest of a JSON array of examples, 32 bytes (FORMAT.md §6.1).

    ``text`` is the JSON text, as ``str`` or UTF-8 ``bytes``; its top-level
    value must be an array, whose elements are the examples in order.
    Raises :class:`TrainsetJSONError` naming the byte offset.
    """
    s = _checked_text(text, None)
    parser = _Parser(s, len(s))
    try:
        i = parser.skip(0)
        if i >= len(s) or s[i] != "[":
            raise _Refusal(i, "the top-level value must be an array of examples")
        examples, i = parser.array(i, 0)
        i = parser.skip(i)
        if i < len(s):
            raise _Refusal(i, "content after the array")
    except _Refusal as bad:
        raise TrainsetJSONError(_byte_offset(s, bad.index), bad.detail) from None
    return hash_trainset(examples)


def hash_trainset_jsonl(text: str | bytes) -> bytes:
    """The FORMAT.md §6 digest of JSON Lines, one example a line, 32 bytes (FORMAT.md §6.1).

    The text is split at ``"\\n"``; a trailing ``"\\r"`` of a line is removed;
    lines then empty or only spaces and tabs are skipped; every other line is
    one JSON value. Raises :class:`TrainsetJSONError` naming the line and the
    byte offset from the start of the text.
    """
    s = _checked_text(text, 1)
    examples: list[Any] = []
    start, line = 0, 1
    while start <= len(s):
        newline = s.find("\n", start)
        stop = len(s) if newline < 0 else newline
        end = stop - 1 if stop > start and s[stop - 1] == "\r" else stop
        if _match_end(_BLANK, s, start, end) != end:
            parser = _Parser(s, end)
            try:
                value, i = parser.value(parser.skip(start), 1)
                i = parser.skip(i)
                if i < end:
                    raise _Refusal(i, "content after the value")
            except _Refusal as bad:
                offset = _byte_offset(s, bad.index)
                raise TrainsetJSONError(offset, bad.detail, line) from None
            examples.append(value)
        start, line = stop + 1, line + 1
    return hash_trainset(examples)


def _checked_text(text: str | bytes, line: int | None) -> str:
    """The text as ``str``, refusing oversize, non-UTF-8 text and a byte order mark."""
    if isinstance(text, str):
        if len(text) > MAX_TRAINSET_TEXT_BYTES:
            raise TrainsetJSONError(0, _too_long(len(text), "characters"), line)
        if text.startswith("\ufeff"):
            raise TrainsetJSONError(0, "a byte order mark is not allowed", line)
        try:
            size = len(text.encode("utf-8"))
        except UnicodeEncodeError as bad:
            offset = len(text[: bad.start].encode("utf-8"))
            where = None if line is None else text.count("\n", 0, bad.start) + 1
            detail = f"not UTF-8 (lone surrogate U+{ord(text[bad.start]):04X})"
            raise TrainsetJSONError(offset, detail, where) from None
        if size > MAX_TRAINSET_TEXT_BYTES:
            raise TrainsetJSONError(0, _too_long(size, "bytes"), line)
        return text
    data = bytes(text)
    if len(data) > MAX_TRAINSET_TEXT_BYTES:
        raise TrainsetJSONError(0, _too_long(len(data), "bytes"), line)
    if data.startswith(b"\xef\xbb\xbf"):
        raise TrainsetJSONError(0, "a byte order mark is not allowed", line)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as bad:
        where = None if line is None else data.count(b"\n", 0, bad.start) + 1
        raise TrainsetJSONError(bad.start, "not UTF-8", where) from None


def _too_long(size: int, unit: str) -> str:
    return f"text is {size} {unit}, more than the limit of {MAX_TRAINSET_TEXT_BYTES} bytes"


def _match_end(pattern: re.Pattern[str], s: str, i: int, end: int) -> int:
    """Where a match of ``pattern`` (one that may be empty) at ``i`` ends."""
    match = pattern.match(s, i, end)
    return i if match is None else match.end()


def _byte_offset(s: str, index: int) -> int:
    return index if s.isascii() else len(s[:index].encode("utf-8"))


class _Parser:
    """A strict RFC 8259 parser of ``s[:end]`` building the values of FORMAT.md §6.1.

    ``level`` is the Term depth a value would have: examples are at level 1.
    """

    def __init__(self, s: str, end: int) -> None:
        self.s = s
        self.end = end

    def skip(self, i: int) -> int:
        return _match_end(_WS, self.s, i, self.end)

    def value(self, i: int, level: int) -> tuple[Any, int]:
        s, end = self.s, self.end
        if i >= end:
            raise _Refusal(i, "expected a value, found the end of the text")
        if level > MAX_TERM_DEPTH:
            raise _Refusal(i, f"nesting deeper than {MAX_TERM_DEPTH}")
        c = s[i]
        if c == '"':
            return self.string(i)
        if c == "-" or "0" <= c <= "9":
            return self.number(i)
        if c == "[" or c == "{":
            return self.array(i, level) if c == "[" else self.object(i, level)
        for word, literal in _LITERALS:
            if s.startswith(word, i, end):
                return literal, i + len(word)
        raise _Refusal(i, f"expected a value, found {c!r}")

    def array(self, i: int, level: int) -> tuple[list[Any], int]:
        s, items = self.s, list[Any]()
        i = self.skip(i + 1)
        if i < self.end and s[i] == "]":
            return items, i + 1
        while True:
            item, i = self.value(i, level + 1)
            items.append(item)
            i = self.skip(i)
            if i < self.end and s[i] == ",":
                i = self.skip(i + 1)
            elif i < self.end and s[i] == "]":
                return items, i + 1
            else:
                raise _Refusal(i, "expected ',' or ']' after an array item")

    def object(self, i: int, level: int) -> tuple[dict[str, Any], int]:
        s, members = self.s, dict[str, Any]()
        i = self.skip(i + 1)
        if i < self.end and s[i] == "}":
            return members, i + 1
        while True:
            if i >= self.end or s[i] != '"':
                raise _Refusal(i, "expected a string key")
            key, after = self.string(i)
            if key in members:
                raise _Refusal(i, f"duplicate key {_show(key)}")
            i = self.skip(after)
            if i >= self.end or s[i] != ":":
                raise _Refusal(i, "expected ':' after a key")
            members[key], i = self.value(self.skip(i + 1), level + 1)
            i = self.skip(i)
            if i < self.end and s[i] == ",":
                i = self.skip(i + 1)
            elif i < self.end and s[i] == "}":
                return members, i + 1
            else:
                raise _Refusal(i, "expected ',' or '}' after an object member")

    def string(self, start: int) -> tuple[str, int]:
        """The decoded string whose opening quote is at ``start``, and the index after it."""
        s, end = self.s, self.end
        j = _match_end(_PLAIN, s, start + 1, end)
        if j < end and s[j] == '"':
            return s[start + 1 : j], j + 1
        try:
            text, after = _scanstring(s, start + 1, True)
        except ValueError:
            pass
        else:
            if after <= end and _SURROGATE.search(text) is None:
                return text, after
        raise self._string_refusal(start, j)

    def _string_refusal(self, start: int, j: int) -> _Refusal:
        """The first problem of a string the fast path refused, looked for from ``j``."""
        s, end = self.s, self.end
        while j < end and s[j] != '"':
            if s[j] != "\\":
                return _Refusal(j, f"control character U+{ord(s[j]):04X} in a string")
            escape = s[j + 1 : j + 2] if j + 1 < end else ""
            if escape in _SIMPLE_ESCAPES:
                j += 2
            elif escape == "u" and self._hex4_at(j):
                code = int(s[j + 2 : j + 6], 16)
                if 0xD800 <= code <= 0xDBFF and self._hex4_at(j + 6):
                    low = int(s[j + 8 : j + 12], 16)
                    code = 0x10000 if 0xDC00 <= low <= 0xDFFF else code
                if 0xD800 <= code <= 0xDFFF:
                    escaped = s[j + 2 : j + 6]
                    return _Refusal(j, f"lone surrogate escape \\u{escaped} (not Unicode text)")
                j += 12 if code >= 0x10000 else 6
            else:
                return _Refusal(j, "invalid escape")
            j = _match_end(_PLAIN, s, j, end)
        return _Refusal(start, "unterminated string")

    def _hex4_at(self, j: int) -> bool:
        """Whether a ``\\uXXXX`` escape is at ``j``."""
        return (
            j + 6 <= self.end
            and self.s.startswith("\\u", j)
            and _HEX4.fullmatch(self.s, j + 2, j + 6) is not None
        )

    def number(self, i: int) -> tuple[int | float, int]:
        s, end = self.s, self.end
        match = _NUMBER.match(s, i, end)
        if match is None or _NUMBER_TAIL.match(s, match.end(), end):
            raise _Refusal(i, "invalid number (JSON has no leading zeros, NaN or Infinity)")
        token = match.group()
        if match.group(1) is None and match.group(2) is None:
            digits = len(token) - (token[0] == "-")
            if digits > MAX_INTEGER_DIGITS:
                raise _Refusal(i, f"integer of {digits} digits, more than {MAX_INTEGER_DIGITS}")
            return _integer(token), match.end()
        number = float(token)
        if number in (float("inf"), float("-inf")):
            raise _Refusal(i, "number too large for a double")
        return number, match.end()


def _integer(token: str) -> int:
    """``int(token)`` whatever limit ``sys.set_int_max_str_digits`` sets."""
    if len(token) <= _INT_CHUNK:
        return int(token)
    negative = token[0] == "-"
    digits = token[1:] if negative else token
    value = 0
    for k in range(0, len(digits), _INT_CHUNK):
        chunk = digits[k : k + _INT_CHUNK]
        value = value * 10 ** len(chunk) + int(chunk)
    return -value if negative else value


def _show(key: str) -> str:
    shown = key if len(key) <= 40 else key[:40] + "…"
    return '"' + shown.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
