"""Torn, truncated and bit-flipped store files are reported with their path, never decoded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dsxir.errors import Conflict, CorruptStore
from dsxir.optimizer_session import checkpoint
from dsxir.store import FileStore, framing
from dsxir.store.summary import encode_summary
from store_util import make_cp


@pytest.fixture
def stored(tmp_path: Path) -> tuple[FileStore, Path, bytes]:
    store = FileStore(tmp_path)
    cp = make_cp("s1", trials=3)
    store.put(cp)
    store.put(cp, expected_generation=1)
    path = tmp_path / "s1.dsxckpt"
    return store, path, path.read_bytes()


def _assert_corrupt(store: FileStore, path: Path, *, listing_too: bool, put_too: bool) -> None:
    with pytest.raises(CorruptStore) as info:
        store.get("s1")
    assert info.value.path == str(path)
    assert str(path) in str(info.value)
    if listing_too:
        with pytest.raises(CorruptStore) as listed:
            store.list()
        assert listed.value.path == str(path)
    if put_too:  # the stored generation cannot be known: no commit over it
        with pytest.raises(CorruptStore):
            store.put(make_cp("s1"), expected_generation=2)


def test_every_flipped_byte_is_detected(stored: tuple[FileStore, Path, bytes]) -> None:
    store, path, good = stored
    header = framing.parse_header(good[: framing.HEADER_SIZE], "x", file_size=len(good))
    summary_end = framing.HEADER_SIZE + header.summary_length
    assert header.appendable and header.total_length < len(good)  # a snapshot and a record
    for position in range(len(good)):
        for mask in (0x01, 0x80, 0xFF):
            damaged = bytearray(good)
            damaged[position] ^= mask
            path.write_bytes(bytes(damaged))
            in_body = summary_end <= position < header.total_length
            _assert_corrupt(
                store,
                path,
                listing_too=not in_body,  # a listing reads the summaries and the records
                put_too=not in_body,
            )
            if in_body:
                assert store.list()[0].trials == 3  # the summaries alone are intact
            assert path.read_bytes() == bytes(damaged)  # nothing was committed over it
    path.write_bytes(good)
    assert store.get("s1").generation == 2


def test_every_truncation_is_detected(stored: tuple[FileStore, Path, bytes]) -> None:
    store, path, good = stored
    snapshot = framing.parse_header(good[: framing.HEADER_SIZE], "x").total_length
    for length in range(snapshot):
        path.write_bytes(good[:length])
        with pytest.raises(CorruptStore) as info:
            store.get("s1")
        assert info.value.path == str(path)
        assert "truncated" in str(info.value) or "bad magic" in str(info.value)
    for length in range(snapshot, len(good)):  # a torn record: a commit never acknowledged
        path.write_bytes(good[:length])
        assert store.get("s1").generation == 1


def test_trailing_bytes_are_detected(stored: tuple[FileStore, Path, bytes]) -> None:
    store, path, good = stored
    cp = store.get("s1").checkpoint
    path.write_bytes(framing.frame(2, encode_summary(cp), checkpoint.encode(cp)) + b"\x00")
    with pytest.raises(CorruptStore, match="trailing bytes"):
        store.get("s1")  # without the flag of an appendable file, nothing may follow
    path.write_bytes(good + b"\x89dlt")  # a record's first bytes: a torn tail
    assert store.get("s1").generation == 2


def test_a_foreign_file_is_refused(stored: tuple[FileStore, Path, bytes]) -> None:
    store, path, _ = stored
    path.write_bytes(checkpoint.encode(make_cp("s1")))  # a bare checkpoint, no frame
    with pytest.raises(CorruptStore, match="bad magic"):
        store.get("s1")
    path.write_bytes(b"")
    with pytest.raises(CorruptStore, match="truncated"):
        store.get("s1")


def test_a_directory_in_place_of_a_file_is_refused(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    os.mkdir(tmp_path / "s1.dsxckpt")
    with pytest.raises(CorruptStore, match="not a regular file"):
        store.get("s1")


def test_a_well_framed_file_of_another_session_is_refused(
    stored: tuple[FileStore, Path, bytes],
) -> None:
    store, path, _ = stored
    other = make_cp("s2")
    path.write_bytes(framing.frame(1, encode_summary(other), checkpoint.encode(other)))
    with pytest.raises(CorruptStore, match="holds session 's2'"):
        store.get("s1")


def test_a_summary_that_disagrees_with_its_checkpoint_is_refused(
    stored: tuple[FileStore, Path, bytes],
) -> None:
    store, path, _ = stored
    cp = make_cp("s1", trials=3)
    lying = make_cp("s1", trials=1)
    path.write_bytes(framing.frame(2, encode_summary(lying), checkpoint.encode(cp)))
    with pytest.raises(CorruptStore, match="summary does not match"):
        store.get("s1")


def test_an_invalid_checkpoint_in_an_intact_frame_is_refused(
    stored: tuple[FileStore, Path, bytes],
) -> None:
    store, path, _ = stored
    cp = make_cp("s1")
    path.write_bytes(framing.frame(2, encode_summary(cp), b"\x0a\x03bad"))
    with pytest.raises(CorruptStore, match="checkpoint is invalid"):
        store.get("s1")


def test_unknown_frame_version_and_flags_are_refused() -> None:
    cp = make_cp("s1")
    good = framing.frame(1, encode_summary(cp), checkpoint.encode(cp))
    for offset, value in ((8, b"\x00\x02"), (10, b"\x00\x02"), (10, b"\x80\x01")):
        head = bytearray(good[:40])
        head[offset : offset + 2] = value
        crc = framing.crc32c(bytes(head)).to_bytes(4, "big")
        damaged = bytes(head) + crc + good[44:]
        with pytest.raises(CorruptStore, match="unsupported frame"):
            framing.unframe(damaged, "f")


def test_crc32c_is_the_castagnoli_checksum() -> None:
    assert framing.crc32c(b"123456789") == 0xE3069283


def test_a_damaged_body_blocks_updates_until_the_file_is_deleted(
    stored: tuple[FileStore, Path, bytes],
) -> None:
    # An update must be a legal successor of the stored checkpoint (FORMAT.md
    # §9.1): a stored checkpoint that cannot be read cannot be extended.
    store, path, good = stored
    damaged = bytearray(good)
    damaged[framing.parse_header(good[: framing.HEADER_SIZE], "x").total_length - 1] ^= 0xFF
    path.write_bytes(bytes(damaged))
    with pytest.raises(CorruptStore):
        store.get("s1")
    with pytest.raises(Conflict):  # the generation check comes first
        store.put(make_cp("s1"), expected_generation=1)
    with pytest.raises(CorruptStore) as info:
        store.put(make_cp("s1", trials=4), expected_generation=2)
    assert info.value.kind == "body_checksum"
    assert path.read_bytes() == bytes(damaged)
    store.delete("s1")
    assert store.put(make_cp("s1", trials=4)) == 1


def test_delete_always_works_on_a_damaged_file(
    stored: tuple[FileStore, Path, bytes],
) -> None:
    store, path, good = stored
    path.write_bytes(good[:10])
    store.delete("s1")
    assert not path.exists()
    assert store.put(make_cp("s1")) == 1
