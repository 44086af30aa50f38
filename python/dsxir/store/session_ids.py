"""Which session ids a store accepts.

A store names things after the session id (a file store uses it as a file
name), so an id must not be able to escape the store's folder or confuse the
file system or a person reading a listing. :func:`check_session_id` refuses,
with :class:`~dsxir.errors.InvalidSessionId` (a ``ValueError``) saying why:

- anything that is not a ``str``, and the empty string;
- more than :data:`MAX_SESSION_ID_BYTES` bytes of UTF-8 (room is left for the
  store's own prefixes and suffixes within the usual 255-byte name limit);
- a lone surrogate (not encodable as UTF-8);
- a leading dot (hidden files, ``.`` and ``..``; the file store keeps its own
  lock and temporary files under names that start with a dot);
- ``/`` and ``\\`` (path separators on POSIX and Windows) and ``..`` anywhere;
- every character that is invisible, reorders text or is not a character
  yet, by Unicode general category: ``Cc`` (NUL and every other control
  character: C0, DEL, C1), ``Cf`` (format characters: bidirectional controls
  such as U+202E, zero-width characters such as U+200B and U+FEFF, soft
  hyphen), ``Zl`` and ``Zp`` (U+2028, U+2029), ``Co`` (private use), ``Cs``
  (surrogates) and ``Cn`` (unassigned code points and noncharacters);
- every space but U+0020 (category ``Zs``: U+00A0, U+2000..U+200A, U+3000
  and the others), so that two ids that look alike are one id.

Categories come from the Unicode database of the running Python
(``unicodedata.unidata_version``): a newer database assigns more code points,
so it may accept an id that an older one refused as ``Cn``. The refusal names
the first offending code point (``U+202E RIGHT-TO-LEFT OVERRIDE``).

Every store checks ids the same way, on every call, before touching anything.
"""

from __future__ import annotations

import unicodedata

from dsxir.errors import InvalidSessionId

__all__ = ["MAX_SESSION_ID_BYTES", "check_session_id"]

MAX_SESSION_ID_BYTES = 200
"""The longest session id a store accepts, in bytes of UTF-8."""

# The Unicode general categories refused in a session id (``Zs`` but U+0020),
# with how a refusal names them: exactly the characters ``str.isprintable`` denies.
_REFUSED_CATEGORIES = {
    "Cc": "the control character",
    "Cf": "the format character",
    "Zl": "the line separator",
    "Zp": "the paragraph separator",
    "Co": "the private-use character",
    "Cs": "the surrogate",
    "Cn": "the unassigned code point",
    "Zs": "the space character",
}


def check_session_id(session_id: object) -> str:
    """Return ``session_id`` when a store may use it; raise ``InvalidSessionId`` otherwise."""
    if not isinstance(session_id, str):
        raise InvalidSessionId(f"session id must be a str, not {type(session_id).__name__}")
    if not session_id:
        raise InvalidSessionId("invalid session id '': it is empty")
    try:
        size = len(session_id.encode("utf-8"))
    except UnicodeEncodeError:
        raise _bad(session_id, "it is not valid Unicode (lone surrogate)") from None
    if size > MAX_SESSION_ID_BYTES:
        raise _bad(
            session_id, f"it is {size} bytes of UTF-8, over the limit of {MAX_SESSION_ID_BYTES}"
        )
    if session_id.startswith("."):
        raise _bad(session_id, "it starts with a dot")
    for separator in ("/", "\\"):
        if separator in session_id:
            raise _bad(session_id, f"it contains the path separator {separator!r}")
    if ".." in session_id:
        raise _bad(session_id, "it contains '..'")
    if not session_id.isprintable():  # exactly the refused categories, U+0020 excepted
        for char in session_id:
            what = _REFUSED_CATEGORIES.get(unicodedata.category(char))
            if what is not None and char != " ":
                raise _bad(session_id, f"it contains {what} {_code_point(char)}")
    return session_id


def _code_point(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X} {name}" if name else f"U+{ord(char):04X}"


def _bad(session_id: str, reason: str) -> InvalidSessionId:
    shown = session_id if len(session_id) <= 60 else session_id[:57] + "..."
    # repr() escapes every character this module refuses, so the message shows it
    return InvalidSessionId(f"invalid session id {shown!r}: {reason}")
