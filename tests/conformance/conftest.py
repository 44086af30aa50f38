"""What the conformance suites share: one ``serve`` loop per language, for a module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from protocol import LANGS, Server


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Server]]:
    started = {lang: Server(lang) for lang in LANGS}
    yield started
    for server in started.values():
        server.close()
