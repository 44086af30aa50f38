"""Keeping credentials out of checkpoint bytes: the writers' screen of FORMAT.md §10.

Every writer (``new``, ``record_trial``, ``cancel``/``complete``/``fail``,
``encode`` and therefore every store's ``put``, ``from_json``) screens every
text the checkpoint holds with two rules:

- **the key rule**: an option key or a string/atom map key that names a
  credential (:func:`credential_key`: ``api_key``, ``Authorization``,
  ``client_secret``, ``hf_token``, ``passphrase``…) may only hold a value
  that cannot carry one: null, a boolean, a number, ``""`` or
  :data:`REDACTED`;
- **the value rule**: no text (string or atom, key or value, option key,
  candidate id) may contain a secret of a well-known shape
  (:func:`secret_spans`: ``Bearer <token>``, provider key prefixes, JWTs, the
  password of a URL, ``password=…``/``?key=…`` assignments, ``'token': '…'``
  pairs).

A finding is refused with :class:`~dsxir.errors.InvalidCheckpoint` naming
its path, unless the caller asks for redaction: then the value of a
credential key becomes :data:`REDACTED`, and each secret inside a text is
replaced by :data:`REDACTED`, the rest of the text kept. A secret inside a
map key or an option key is refused even then (a key is a name, and two
redacted keys could collide).

The Python code here is the reference. With the compiled accelerator, the
bytes about to be written are screened in C (``dsxir._accel``), which walks
the canonical bytes with the same key rule and hands any text that may hold
a secret to :func:`has_secret`; the walk here runs only on a finding, for
its path, its detail or the redaction. Without it, a regular expression over
the bytes (:data:`CANDIDATE`, a necessary condition of every finding) decides
whether the walk runs. Readers do not screen: ``decode`` accepts what it
reads.
"""

from __future__ import annotations

import importlib
import numbers
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

from dsxir.errors import InvalidCheckpoint
from dsxir.optimizer_session import accel
from dsxir.optimizer_session.atom import Atom
from dsxir.optimizer_session.terms import _pairs, from_term
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint
from dsxir.optimizer_session.v1.term_pb2 import Term, TermMap

__all__ = [
    "CANDIDATE",
    "HEAD_WORDS",
    "KEY_QUALIFIERS",
    "QUERY_NAMES",
    "REDACTED",
    "SECRET_WORDS",
    "SHAPES",
    "credential_key",
    "has_secret",
    "key_words",
    "looks_secret",
    "redact_text",
    "screen_checkpoint",
    "screen_option",
    "screen_term_bytes",
    "screen_text",
    "screened_bytes",
    "secret_spans",
]

REDACTED = "[redacted]"
"""What redaction stores in place of a credential or of a secret inside a text."""

# --- the key rule ------------------------------------------------------------------

SECRET_WORDS = frozenset(
    {
        "accesskey",
        "accesstoken",
        "apikey",
        "apikeys",
        "authorization",
        "authtoken",
        "bearer",
        "bearertoken",
        "clientsecret",
        "cookie",
        "cookies",
        "credential",
        "credentials",
        "creds",
        "idtoken",
        "jwt",
        "passphrase",
        "passwd",
        "password",
        "passwords",
        "privatekey",
        "refreshtoken",
        "secret",
        "secretkey",
        "secrets",
        "sessiontoken",
        "signingkey",
    }
)
"""A key holding one of these words anywhere names a credential."""

KEY_QUALIFIERS = frozenset(
    {
        "access",
        "api",
        "client",
        "encryption",
        "master",
        "private",
        "secret",
        "session",
        "signing",
        "ssh",
    }
)
"""``key`` or ``keys`` right after one of these words names a credential (``api_key``)."""

HEAD_WORDS = frozenset({"auth", "token"})
"""A key whose last word is one of these names a credential (``hf_token``, not ``token_count``)."""

QUERY_NAMES = frozenset({"key", "sig", "signature"})
"""Names that are credentials as URL query parameters (``?key=…``), besides the key rule."""


def _is_upper(c: str) -> bool:
    return "A" <= c <= "Z"


def _is_lower(c: str) -> bool:
    return "a" <= c <= "z"


def key_words(name: str) -> list[str]:
    """The lower-case words of a key (FORMAT.md §10).

    A word is a run of ASCII letters; anything else separates words. Inside
    a run a word starts at an upper-case letter after a lower-case one
    (``apiKey``) and at an upper-case letter between an upper-case and a
    lower-case one (``APIKey`` is ``api``, ``key``).
    """
    words = []
    n = len(name)
    i = 0
    while i < n:
        if not (_is_upper(name[i]) or _is_lower(name[i])):
            i += 1
            continue
        j = i + 1
        while j < n and (_is_upper(name[j]) or _is_lower(name[j])):
            if _is_upper(name[j]) and (
                _is_lower(name[j - 1]) or (j + 1 < n and _is_lower(name[j + 1]))
            ):
                break
            j += 1
        words.append(name[i:j].lower())
        i = j
    return words


def credential_key(name: str) -> bool:
    """Whether a key names a credential: a word of :data:`SECRET_WORDS`, ``key(s)``
    after a word of :data:`KEY_QUALIFIERS`, or a last word in :data:`HEAD_WORDS`."""
    words = key_words(name)
    previous = ""
    for word in words:
        if word in SECRET_WORDS:
            return True
        if (word == "key" or word == "keys") and previous in KEY_QUALIFIERS:
            return True
        previous = word
    return bool(words) and words[-1] in HEAD_WORDS


def looks_secret(key: object) -> bool:
    """Whether a map or option key (a ``str`` or an :class:`Atom`) names a credential."""
    name = key.name if isinstance(key, Atom) else key
    return isinstance(name, str) and credential_key(name)


# --- the value rule ----------------------------------------------------------------

SHAPES: tuple[tuple[str, str, int], ...] = (
    ("bearer token", r"\b[Bb][Ee][Aa][Rr][Ee][Rr][ \t]+([A-Za-z0-9._~+/-]{20,}=*)", 1),
    ("sk- key", r"\bsk-[A-Za-z0-9_-]{20,}", 0),
    ("GitHub token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})", 0),
    ("Slack token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}", 0),
    ("AWS access key id", r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b", 0),
    ("Google API key", r"\bAIza[A-Za-z0-9_-]{35}", 0),
    ("Hugging Face token", r"\bhf_[A-Za-z0-9]{30,}", 0),
    ("GitLab token", r"\bglpat-[A-Za-z0-9_-]{20,}", 0),
    ("JWT", r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*", 0),
    (
        "private key block",
        r"-----BEGIN[A-Z ]*PRIVATE KEY-----(?:[\s\S]*?-----END[A-Z ]*PRIVATE KEY-----"
        r"|[A-Za-z0-9+/=\r\n \t]*)",
        0,
    ),
)
"""Secrets recognised by their shape: (name, regular expression, group of the secret).

The expressions use only what Python's ``re`` (with ``re.ASCII``), Go's
``regexp`` and JavaScript agree on; FORMAT.md §10 lists them.
"""

_SHAPES = tuple((name, re.compile(pattern, re.ASCII), group) for name, pattern, group in SHAPES)
_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_VALUE_STOP = frozenset(" \t\r\n&#'\"<>,;)")
_USER_STOP = frozenset(" \t\r\n/?#@:")
_PASSWORD_STOP = frozenset(" \t\r\n/?#@")
_ANCHOR = re.compile(
    r"[Bb][Ee][Aa][Rr][Ee][Rr]|sk-|gh[pousr]_|github_pat_|xox|AKIA|ASIA|AIza|hf_|glpat-|eyJ"
    r"|-----BEGIN|[=:]"
)
"""Every secret of the value rule contains one of these (a quick first test)."""

CANDIDATE = re.compile(
    rb"(?i:auth|bearer|cookie|cred|jwt|pass|secret|key|sig)|(?i:token)(?!s)"
    rb"|sk-|gh[pousr]_|github_pat_|xox|AKIA|ASIA|AIza|hf_|glpat-|eyJ|-----BEGIN|://"
)
"""Bytes that every finding of either rule contains (the pure-Python prefilter).

A credential key holds ``auth``, ``bearer``, ``cookie``, ``cred``, ``jwt``,
``pass``, ``secret``, ``key`` or ``token`` in any case; ``token`` followed by
a lower-case ``s`` never starts the word ``token`` (``max_tokens`` does not
match). An assignment or a quoted pair is named by a credential key or by
``key``/``sig``/``signature``; the other secrets start with a fixed prefix or
follow ``://``.
"""

Span = tuple[int, int, str]


def _named_value(text: str, start: int) -> tuple[int, int]:
    """The value of an assignment starting at ``start``: an optional quote, then
    everything up to a character of :data:`_VALUE_STOP`."""
    n = len(text)
    if start < n and text[start] in "'\"":
        start += 1
    end = start
    while end < n and text[end] not in _VALUE_STOP:
        end += 1
    return start, end


def _is_secret_part(text: str, start: int, end: int) -> bool:
    return end > start and text[start:end] != REDACTED


def _assignments(text: str, spans: list[Span]) -> None:
    """``name=value`` with a credential name (or ``?key=``, ``&sig=``…)."""
    at = text.find("=")
    while at != -1:
        begin = at
        while begin > 0 and text[begin - 1] in _NAME_CHARS:
            begin -= 1
        name = text[begin:at]
        if name and (
            credential_key(name)
            or (begin > 0 and text[begin - 1] in "?&" and name.lower() in QUERY_NAMES)
        ):
            start, end = _named_value(text, at + 1)
            if _is_secret_part(text, start, end):
                spans.append((start, end, "credential assignment"))
        at = text.find("=", at + 1)


def _quoted_pairs(text: str, spans: list[Span]) -> None:
    """``'name': 'value'`` or ``"name": "value"`` with a credential name."""
    n = len(text)
    at = text.find(":")
    while at != -1:
        before = at
        while before > 0 and text[before - 1] in " \t":
            before -= 1
        if before > 0 and text[before - 1] in "'\"":
            end_name = before - 1
            begin = end_name
            while begin > 0 and text[begin - 1] in _NAME_CHARS:
                begin -= 1
            if begin < end_name and begin > 0 and text[begin - 1] in "'\"":
                after = at + 1
                while after < n and text[after] in " \t":
                    after += 1
                if after < n and text[after] in "'\"" and credential_key(text[begin:end_name]):
                    quote = text[after]
                    end = after + 1
                    while end < n and text[end] != quote and text[end] not in "\r\n":
                        end += 1
                    if end < n and text[end] == quote and _is_secret_part(text, after + 1, end):
                        spans.append((after + 1, end, "credential pair"))
        at = text.find(":", at + 1)


def _url_passwords(text: str, spans: list[Span]) -> None:
    """The password of ``scheme://user:password@host``."""
    n = len(text)
    at = text.find("://")
    while at != -1:
        i = at + 3
        while i < n and text[i] not in _USER_STOP:
            i += 1
        if i < n and text[i] == ":":
            start = end = i + 1
            while end < n and text[end] not in _PASSWORD_STOP:
                end += 1
            if end < n and text[end] == "@" and _is_secret_part(text, start, end):
                spans.append((start, end, "URL password"))
        at = text.find("://", at + 3)


def secret_spans(text: str) -> list[Span]:
    """The secrets inside ``text``: ``(start, end, kind)``, sorted, overlaps merged."""
    if _ANCHOR.search(text) is None:
        return []
    found: list[Span] = []
    for kind, pattern, group in _SHAPES:
        for match in pattern.finditer(text):
            start, end = match.span(group)
            if _is_secret_part(text, start, end):
                found.append((start, end, kind))
    if "://" in text:
        _url_passwords(text, found)
    if "=" in text:
        _assignments(text, found)
    if ":" in text:
        _quoted_pairs(text, found)
    if not found:
        return found
    found.sort()
    merged = [found[0]]
    for start, end, kind in found[1:]:
        last_start, last_end, last_kind = merged[-1]
        if start <= last_end:
            merged[-1] = (last_start, max(end, last_end), last_kind)
        else:
            merged.append((start, end, kind))
    return merged


def has_secret(text: str) -> bool:
    """Whether ``text`` holds a secret of the value rule."""
    return bool(secret_spans(text))


def redact_text(text: str) -> str:
    """``text`` with each secret of the value rule replaced by :data:`REDACTED`."""
    spans = secret_spans(text)
    if not spans:
        return text
    return _replace(text, spans)


def _replace(text: str, spans: list[Span]) -> str:
    parts = []
    last = 0
    for start, end, _ in spans:
        parts.append(text[last:start])
        parts.append(REDACTED)
        last = end
    parts.append(text[last:])
    return "".join(parts)


def _kinds(spans: list[Span]) -> str:
    return ", ".join(dict.fromkeys(kind for _, _, kind in spans))


# --- refusals -------------------------------------------------------------------


def _key_refusal(path: str, what: str, name: str) -> InvalidCheckpoint:
    return InvalidCheckpoint(
        path,
        f"{what} {name!r} looks like a credential; pass redact_secrets=True "
        "to store a redaction marker instead of its value",
    )


def _text_refusal(path: str, spans: list[Span]) -> InvalidCheckpoint:
    return InvalidCheckpoint(
        path,
        f"text holds a secret ({_kinds(spans)}); pass redact_secrets=True "
        f"to store {REDACTED} in its place",
    )


def _key_text_refusal(path: str, spans: list[Span]) -> InvalidCheckpoint:
    return InvalidCheckpoint(
        path, f"a key holds a secret ({_kinds(spans)}); keys are never redacted"
    )


# --- walking Terms ----------------------------------------------------------------

_HARMLESS_KINDS = frozenset(
    {"null_value", "bool_value", "int_value", "bigint_value", "float_value"}
)
_REDACTED_TERM = Term(string_value=REDACTED).SerializeToString(deterministic=True)


def _harmless(value: Term) -> bool:
    """Whether a value cannot carry a credential (null, bool, number, "" or the marker)."""
    kind = value.WhichOneof("kind")
    return kind in _HARMLESS_KINDS or (
        kind == "string_value" and value.string_value in ("", REDACTED)
    )


def _key_name(key: Term) -> str | None:
    kind = key.WhichOneof("kind")
    if kind == "string_value":
        return key.string_value
    if kind == "atom_value":
        return key.atom_value
    return None


class _Walk:
    """One screen of Terms: refuses the first finding, or redacts every one.

    ``python_paths`` names what it finds the way the Term encoder names a
    Python value (``stats['api_key']``, ``reason[0]``); otherwise as a field
    path of FORMAT.md §7 (``….map_value.entries[0].key``).
    """

    def __init__(self, *, redact: bool, python_paths: bool) -> None:
        self.redact = redact
        self.python_paths = python_paths
        self.changed = False

    def text(self, text: str, path: str) -> str:
        """``text`` screened with the value rule (redacted, or refused at ``path``)."""
        spans = secret_spans(text)
        if not spans:
            return text
        if not self.redact:
            raise _text_refusal(path, spans)
        self.changed = True
        return _replace(text, spans)

    def term(self, term: Term, path: str, *, in_key: bool = False) -> None:
        kind = term.WhichOneof("kind")
        if kind == "string_value" or kind == "atom_value":
            text = getattr(term, kind)
            spans = secret_spans(text)
            if not spans:
                return
            where = path if self.python_paths else f"{path}.{kind}"
            if in_key:
                raise _key_text_refusal(where, spans)
            if not self.redact:
                raise _text_refusal(where, spans)
            setattr(term, kind, _replace(text, spans))
            self.changed = True
        elif kind == "list_value" or kind == "tuple_value":
            for i, item in enumerate(getattr(term, kind).items):
                item_path = f"{path}[{i}]" if self.python_paths else f"{path}.{kind}.items[{i}]"
                self.term(item, item_path, in_key=in_key)
        elif kind == "map_value":
            self.term_map(
                term.map_value, path if self.python_paths else f"{path}.map_value", in_key=in_key
            )

    def term_map(self, term_map: TermMap, path: str, *, in_key: bool = False) -> None:
        for i, entry in enumerate(term_map.entries):
            if self.python_paths:
                key_path = value_path = f"{path}[{_show(entry.key)}]"
            else:
                key_path = f"{path}.entries[{i}].key"
                value_path = f"{path}.entries[{i}].value"
            self.term(entry.key, key_path, in_key=True)
            name = _key_name(entry.key)
            if name is not None and credential_key(name) and not _harmless(entry.value):
                if in_key or not self.redact:
                    raise _key_refusal(key_path, "key", name)
                entry.value.Clear()
                entry.value.string_value = REDACTED
                self.changed = True
                continue
            self.term(entry.value, value_path, in_key=in_key)

    def option(self, key: str, value: Term, index: int) -> None:
        """Option ``index``: its key (both rules), then its value."""
        key_path = f"optimizer_opts[{index}].key"
        spans = secret_spans(key)
        if spans:
            raise _key_text_refusal(key_path, spans)
        if credential_key(key) and not _harmless(value):
            if not self.redact:
                raise _key_refusal(key_path, "option", key)
            value.Clear()
            value.string_value = REDACTED
            self.changed = True
            return
        self.term(value, f"optimizer_opts[{index}].value")


class _Locate:
    """The first finding in a Python value, in the order the Term encoder visits it.

    Only names a refusal: :class:`_Walk` over the Term bytes, which are what
    gets written, decides. This walk follows the Python value (mappings in
    their own order, as ``terms`` reports its refusals) so that the path
    named is the first one in the caller's terms.
    """

    def value(self, value: Any, path: str, *, in_key: bool = False) -> None:
        if type(value) is Atom or isinstance(value, str):
            text = value.name if type(value) is Atom else value
            spans = secret_spans(text) if isinstance(text, str) else []
            if spans:
                raise (_key_text_refusal if in_key else _text_refusal)(path, spans)
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                self.value(item, f"{path}[{i}]", in_key=in_key)
        elif value is None or isinstance(value, (bytes, bytearray, memoryview, numbers.Number)):
            return
        else:
            try:
                pairs = list(_pairs(value))
            except Exception:  # not a mapping: the Term walk judges
                return
            for key, item in pairs:
                item_path = f"{path}[{redact_text(repr(key))}]"
                self.value(key, item_path, in_key=True)
                name = key.name if type(key) is Atom else key
                if isinstance(name, str) and credential_key(name) and not _harmless_value(item):
                    raise _key_refusal(item_path, "key", name)
                self.value(item, item_path, in_key=in_key)


def _harmless_value(value: Any) -> bool:
    if value is None or (isinstance(value, numbers.Number) and not isinstance(value, complex)):
        return True
    return isinstance(value, str) and value in ("", REDACTED)


def _show(key: Term) -> str:
    """A map key as the Term encoder shows it in a path, secrets hidden."""
    try:
        shown = repr(from_term(key))
    except Exception:  # a key Python cannot hold: shown by its kind
        shown = f"<{key.WhichOneof('kind')}>"
    return redact_text(shown)


# --- the compiled screen ------------------------------------------------------------

_Check = Callable[[bytes], bool]


def _compiled() -> ModuleType | None:
    """``dsxir._accel`` with its text screen set, when the accelerator is in use."""
    if not accel.ACCELERATED:
        return None
    module = importlib.import_module("dsxir._accel")
    if not hasattr(module, "check_screened"):  # an extension built before the screen
        return None
    module.set_text_screen(has_secret)
    return module


_C = _compiled()
check_screened: _Check | None = None if _C is None else _C.check_screened
"""C: whether checkpoint bytes are valid (as ``check_canonical``) and pass the screen."""
screen_head: _Check | None = None if _C is None else _C.screen_head
"""C: whether the bytes of a delta's head (a Checkpoint that may lack required
fields, its trial log starting anywhere) pass the screen, its Terms valid."""
seal_screened: Callable[[bytes], bytes | None] | None = None if _C is None else _C.seal_screened
"""C: the sealed checkpoint bytes of a serialization that passes
``check_screened``, holds no unknown field and keeps the size and weight
limits (FORMAT.md §2.4); ``None`` otherwise."""
screen_term: _Check | None = None if _C is None else _C.screen_term
"""C: whether canonical Term bytes are valid and pass the screen."""
screen_term_map: _Check | None = None if _C is None else _C.screen_term_map
"""C: whether canonical TermMap bytes are valid and pass the screen."""
clean_text: Callable[[str], bool] | None = None if _C is None else _C.screen_text
"""C: whether a text holds no secret of the value rule."""


def _maybe_found(raw: bytes, is_map: bool) -> bool:
    fast = screen_term_map if is_map else screen_term
    if fast is not None:
        return not fast(raw)
    return CANDIDATE.search(raw) is not None


# --- entry points -------------------------------------------------------------------


def screen_term_bytes(
    raw: bytes, *, root: str, redact: bool, is_map: bool = False, value: Any = None
) -> bytes:
    """Canonical Term (or, with ``is_map``, TermMap) bytes of a Python value, screened.

    Refusals name the path as the Term encoder does (``stats['api_key']``),
    the first one in the order of ``value`` (the Python value of ``raw``) when
    it is given; with ``redact`` the redacted bytes are returned.
    """
    if not _maybe_found(raw, is_map):
        return raw
    if not redact and value is not None:
        _Locate().value(value, root)
    walk = _Walk(redact=redact, python_paths=True)
    if is_map:
        term_map = TermMap.FromString(raw)
        walk.term_map(term_map, root)
        return term_map.SerializeToString(deterministic=True) if walk.changed else raw
    term = Term.FromString(raw)
    walk.term(term, root)
    return term.SerializeToString(deterministic=True) if walk.changed else raw


def screen_option(index: int, key: str, raw: bytes, *, redact: bool, value: Any = None) -> bytes:
    """Option ``index`` (its key and the canonical bytes of its value), screened.

    Returns the value's bytes, redacted with ``redact``.
    """
    spans = secret_spans(key)
    if spans:
        raise _key_text_refusal(f"optimizer_opts[{index}].key", spans)
    if credential_key(key) and not _harmless_bytes(raw):
        if not redact:
            raise _key_refusal(f"optimizer_opts[{index}].key", "option", key)
        return _REDACTED_TERM
    return screen_term_bytes(raw, root=f"optimizer_opts[{index}].value", redact=redact, value=value)


def _harmless_bytes(raw: bytes) -> bool:
    """:func:`_harmless` on canonical Term bytes (the kind's tag comes first)."""
    return (raw[:1] in (b"\x0a", b"\x10", b"\x18", b"\x22", b"\x29")) or raw in (
        b"\x32\x00",
        _REDACTED_TERM,
    )


def screen_text(text: str, *, path: str, redact: bool) -> str:
    """A plain text field (a candidate id) screened with the value rule."""
    fast = clean_text
    clean = fast(text) if fast is not None else _ANCHOR.search(text) is None
    if clean:
        return text
    return _Walk(redact=redact, python_paths=True).text(text, path)


def screen_checkpoint(cp: Checkpoint, *, redact: bool) -> bool:
    """Screen every Term, option key and candidate id of ``cp``, in the order of
    FORMAT.md §7; refuse the first finding, or (``redact``) redact ``cp`` in place
    and return whether anything changed."""
    walk = _Walk(redact=redact, python_paths=False)
    for i, option in enumerate(cp.optimizer_opts):
        walk.option(option.key, option.value, i)
    for i, entry in enumerate(cp.progress.trial_log):
        path = f"progress.trial_log[{i}]"
        if entry.HasField("candidate_id"):
            text = walk.text(entry.candidate_id, f"{path}.candidate_id")
            if text != entry.candidate_id:
                entry.candidate_id = text
        if entry.HasField("stats"):
            walk.term_map(entry.stats, f"{path}.stats")
        if entry.HasField("error"):
            walk.term_map(entry.error, f"{path}.error")
    if cp.HasField("best_program_artifact"):
        walk.term_map(cp.best_program_artifact, "best_program_artifact")
    if cp.HasField("terminal_reason"):
        walk.term(cp.terminal_reason, "terminal_reason")
    return walk.changed


def screened_bytes(
    cp: Checkpoint, data: bytes, *, redact: bool, in_place: bool = False, head: bool = False
) -> bytes:
    """The bytes to write for the valid checkpoint ``cp``, whose canonical bytes are ``data``.

    Refuses the first finding; with ``redact`` returns the bytes of ``cp``
    redacted (``cp`` itself is redacted only ``in_place``). The walk runs only
    when the compiled screen refuses ``data`` or, without it, when
    :data:`CANDIDATE` is found in ``data``. With ``head``, ``cp`` is the head
    of a delta (FORMAT.md §13), screened by the same rules without being a
    complete checkpoint (:data:`screen_head`).
    """
    fast = screen_head if head else check_screened
    if fast is not None:
        if fast(data):
            return data
    elif CANDIDATE.search(data) is None:
        return data
    target = cp
    if redact and not in_place:
        target = Checkpoint()
        target.CopyFrom(cp)
    if screen_checkpoint(target, redact=redact):
        return target.SerializeToString(deterministic=True)
    return data
