"""Keeping credentials out of checkpoint bytes (FORMAT.md §10).

An option key that looks like a credential (``api_key``, ``hf_token``,
``client_secret``, ``password``…), at the top of ``optimizer_opts`` or as a
string or atom key anywhere inside an option's value, is refused unless the
caller asks for redaction, which stores :data:`REDACTED` in place of the
value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from dsxir.errors import InvalidCheckpoint
from dsxir.optimizer_session.atom import Atom

__all__ = ["REDACTED", "looks_secret", "screen"]

REDACTED = "[redacted]"
"""The value stored in place of a credential when redaction is asked for."""

_SUFFIXES = (
    "api_key",
    "apikey",
    "token",
    "password",
    "passwd",
    "secret",
    "private_key",
    "access_key",
    "credentials",
    "auth",
)


def looks_secret(key: object) -> bool:
    """Whether an option key names a credential (case-insensitive suffix match)."""
    name = key.name if isinstance(key, Atom) else key
    return isinstance(name, str) and name.lower().replace("-", "_").endswith(_SUFFIXES)


def screen(key: str, value: Any, index: int, *, redact: bool) -> Any:
    """Return option ``index``'s value with credentials redacted.

    Refuses (``InvalidCheckpoint`` naming the key's path) a credential-like
    key when ``redact`` is false.
    """
    base = f"optimizer_opts[{index}]"
    if looks_secret(key):
        return _redacted(key, base + ".key", redact)
    return _screen_inside(value, base + ".value", redact)


def _redacted(key: object, path: str, redact: bool) -> str:
    if not redact:
        raise InvalidCheckpoint(
            path,
            f"option {key!r} looks like a credential; pass redact_secrets=True "
            "to store a redaction marker instead of its value",
        )
    return REDACTED


def _screen_inside(value: Any, path: str, redact: bool) -> Any:
    if isinstance(value, Atom):
        return value
    if isinstance(value, Mapping) or (
        dataclasses.is_dataclass(value) and not isinstance(value, type)
    ):
        items = (
            value.items()
            if isinstance(value, Mapping)
            else ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
        )
        screened = {}
        for k, v in items:
            inner = f"{path}[{k!r}]"
            screened[k] = (
                _redacted(k, inner, redact) if looks_secret(k) else _screen_inside(v, inner, redact)
            )
        return screened
    if isinstance(value, (list, tuple)):
        items_ = [_screen_inside(v, f"{path}[{i}]", redact) for i, v in enumerate(value)]
        return items_ if isinstance(value, list) else tuple(items_)
    return value
