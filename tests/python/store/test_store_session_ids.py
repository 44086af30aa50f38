"""Session ids that could escape or confuse a store are refused; nothing lands outside it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dsxir.errors import CorruptStore, InvalidSessionId
from dsxir.store import (
    FileStore,
    MemoryStore,
    Store,
    check_session_id,
)
from store_util import make_cp, tree

BAD_IDS = [
    "",
    ".",
    "..",
    ".hidden",
    "../escape",
    "../../etc/passwd",
    "a/b",
    "/abs",
    "a\\b",
    "..\\escape",
    "a..b",
    "x/..",
    "nul\x00byte",
    "\x00",
    "new\nline",
    "tab\tchar",
    "cr\r",
    "esc\x1b[0m",
    "del\x7f",
    "c1\x85control",
    "x" * 201,
    "é" * 101,  # 202 bytes of UTF-8
    "lone\ud800surrogate",
]

GOOD_IDS = [
    "a",
    "s1",
    "run 2026-01-01",
    "ünïcødé-сессия",
    "a.b",
    "a-b_c",
    "x" * 200,
    "é" * 100,
]


@pytest.mark.parametrize("session_id", BAD_IDS, ids=repr)
def test_bad_ids_are_refused_everywhere(tmp_path: Path, session_id: str) -> None:
    root = tmp_path / "root"
    folder = root / "inner" / "store"
    file_store = FileStore(folder)
    file_store.put(make_cp("keep"))
    before = tree(root)
    stores: list[Store] = [file_store, MemoryStore()]
    for store in stores:
        with pytest.raises(InvalidSessionId):
            store.get(session_id)
        with pytest.raises(InvalidSessionId):
            store.delete(session_id)
        cp = make_cp("placeholder")
        try:
            cp.session_id = session_id
        except UnicodeEncodeError:
            continue  # protobuf cannot even hold it, so no checkpoint can carry it
        with pytest.raises(InvalidSessionId):
            store.put(cp)
        with pytest.raises(InvalidSessionId):
            store.put(cp, expected_generation=1)
    with pytest.raises(InvalidSessionId):
        file_store.file_path(session_id)
    assert tree(root) == before  # nothing written anywhere, inside or outside the store
    assert [item.session_id for item in file_store.list()] == ["keep"]


@pytest.mark.parametrize("session_id", BAD_IDS, ids=repr)
def test_refusal_says_why(session_id: str) -> None:
    with pytest.raises(InvalidSessionId, match="session id") as info:
        check_session_id(session_id)
    assert isinstance(info.value, ValueError)


def test_non_strings_are_refused() -> None:
    for value in (None, 1, b"s1"):
        with pytest.raises(InvalidSessionId):
            check_session_id(value)


@pytest.mark.parametrize("session_id", GOOD_IDS)
def test_good_ids_round_trip_in_their_own_file(tmp_path: Path, session_id: str) -> None:
    store = FileStore(tmp_path / "store")
    assert store.put(make_cp(session_id, trials=1)) == 1
    assert store.get(session_id).checkpoint.session_id == session_id
    assert [item.session_id for item in store.list()] == [session_id]
    assert os.path.dirname(store.file_path(session_id)) == store.path
    assert tree(tmp_path) == {
        "store",
        f"store/{session_id}.dsxckpt",
        f"store/.lock.{session_id}",
    }
    store.delete(session_id)
    assert tree(tmp_path) == {"store"}


def test_a_planted_symlink_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.dsxckpt"
    store_dir = tmp_path / "store"
    store = FileStore(store_dir)
    store.put(make_cp("other"))
    FileStore(tmp_path).put(make_cp("outside"))
    secret = outside.read_bytes()
    os.symlink(outside, store_dir / "s1.dsxckpt")
    with pytest.raises(CorruptStore, match="symbolic link"):
        store.get("s1")
    with pytest.raises(CorruptStore, match="symbolic link"):
        store.list()
    with pytest.raises(CorruptStore):
        store.put(make_cp("s1"))
    store.delete("s1")  # removes the link, never the file it points to
    assert not os.path.lexists(store_dir / "s1.dsxckpt")
    assert outside.read_bytes() == secret
