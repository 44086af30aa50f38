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
    "rtl\u202eoverride",  # bidirectional controls reorder what a person reads
    "lri\u2066isolate",
    "zero\u200bwidth",  # invisible: two ids that look the same
    "zwj\u200d",
    "\ufeffbom",
    "soft\u00adhyphen",
    "tag\U000e0041",
    "line\u2028separator",
    "para\u2029separator",
    "no\u00a0break",  # every space but U+0020
    "ideographic\u3000space",
    "thin\u2009space",
    "private\ue000use",
    "plane16\U00100000",
    "unassigned\u0378",
    "non\ufffecharacter",
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
    "two  spaces",
    "emoji \U0001f600",
    "ﬁ ligature",
    "combining e\u0301",
]

REFUSED_CODE_POINTS = {
    "nul\x00byte": "the control character U+0000",
    "rtl\u202eoverride": "the format character U+202E RIGHT-TO-LEFT OVERRIDE",
    "zero\u200bwidth": "the format character U+200B ZERO WIDTH SPACE",
    "line\u2028separator": "the line separator U+2028 LINE SEPARATOR",
    "para\u2029separator": "the paragraph separator U+2029 PARAGRAPH SEPARATOR",
    "no\u00a0break": "the space character U+00A0 NO-BREAK SPACE",
    "private\ue000use": "the private-use character U+E000",
    "unassigned\u0378": "the unassigned code point U+0378",
    "del\x7f": "the control character U+007F",
}


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


@pytest.mark.parametrize(("session_id", "named"), REFUSED_CODE_POINTS.items(), ids=repr)
def test_refusal_names_the_code_point(session_id: str, named: str) -> None:
    with pytest.raises(InvalidSessionId) as info:
        check_session_id(session_id)
    message = str(info.value)
    assert message.endswith(f": it contains {named}")
    assert message.isprintable()  # the message never carries the character itself


def test_only_printable_characters_and_the_plain_space_are_accepted() -> None:
    # Every code point of the refused categories, and no other, is refused.
    import unicodedata

    refused = {"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn", "Zs"}
    for code in range(0x110000):
        char = chr(code)
        if 0xD800 <= code <= 0xDFFF or char in "./\\":
            continue  # lone surrogates and path characters are refused for other reasons
        expected = unicodedata.category(char) in refused and char != " "
        try:
            check_session_id(f"x{char}x")
        except InvalidSessionId:
            assert expected, f"U+{code:04X} refused"
        else:
            assert not expected, f"U+{code:04X} accepted"


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
