"""Store URLs with their secrets hidden, for every message, log line and output.

A store URL may carry a secret: the password of ``user:password@host``, or a
query parameter such as ``password=``, ``sslpassword=``, ``token=`` or
``secret=``. :func:`redact_url` replaces each such value with
:data:`HIDDEN`; :func:`redact_text` does it for every URL inside a text (a
driver's error message that quotes its connection string, say). Anything
that names a store in an exception, a log line, a gRPC status or the command
line's output goes through one of them.
"""

from __future__ import annotations

import re
import urllib.parse

__all__ = ["HIDDEN", "SECRET_PARAMETERS", "redact_text", "redact_url"]

HIDDEN = "***"
"""What a hidden secret is replaced with."""

SECRET_PARAMETERS = frozenset(
    {
        "password",
        "passwd",
        "pass",
        "pwd",
        "sslpassword",
        "sslkey",
        "token",
        "access_token",
        "auth_token",
        "api_key",
        "apikey",
        "key",
        "secret",
        "client_secret",
    }
)
"""Query parameters (and libpq ``key=value`` words) whose value is a secret."""

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_KEYWORD = re.compile(
    r"\b(" + "|".join(sorted(SECRET_PARAMETERS, key=len, reverse=True)) + r")\s*=\s*"
    r"('[^']*'|[^\s&;,'\"]+)",
    re.IGNORECASE,
)


def redact_url(url: str) -> str:
    """``url`` with the password of its user part and every secret parameter hidden."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return _URL.sub(HIDDEN, url) if "@" in url else url
    netloc = parts.netloc
    user, at, host = netloc.rpartition("@")
    if at and ":" in user:
        netloc = f"{user.split(':', 1)[0]}:{HIDDEN}@{host}"
    query = parts.query
    if query:
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        if any(name.lower() in SECRET_PARAMETERS for name, _ in pairs):
            query = "&".join(
                f"{name}={HIDDEN if name.lower() in SECRET_PARAMETERS else value}"
                for name, value in pairs
            )
    if netloc == parts.netloc and query == parts.query:
        return url  # nothing hidden: the URL exactly as given
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=query))


def redact_text(text: str) -> str:
    """``text`` with :func:`redact_url` applied to every URL in it, and libpq
    ``password=…`` words hidden."""
    text = _URL.sub(lambda match: redact_url(match.group(0)), text)
    return _KEYWORD.sub(lambda match: f"{match.group(1)}={HIDDEN}", text)
