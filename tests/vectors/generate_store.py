"""Write the store-file vectors of tests/vectors/store/ (docs/store-file.md) with Python.

Every file is a whole file-store file (``<session_id>.dsxckpt``) framed by
:mod:`dsxir.store.framing` around the summary of :mod:`dsxir.store.summary`:
valid files at several generations and damaged ones, each listed with its
expected verdict in ``store/manifest.jsonl`` (one JSON object a line):

- ``ok``: ``generation`` (decimal string), ``checkpoint`` (the canonical
  checkpoint bytes a reader returns, relative to tests/vectors/) and
  ``known_only`` (the same without unknown fields; kept as data: every reader
  keeps unknown fields and returns ``checkpoint``);
- ``damaged``: ``kind``, the frame check that fails first;
- ``checkpoint_refused``: ``field`` and ``rule``, the path and rule id the
  checkpoint reader reports (FORMAT.md §7; the body is a sealed checkpoint, §2.1).

Every verdict is computed by the reference (tests/vectors/reference.py) when
the files are written.

Each verdict is also checked against ``FileStore.get`` while generating: a
file that the Python store reads differently is an error of this script.
Run with ``--check`` to fail when the committed files differ from what this
script writes. Vectors come from tests/vectors/valid and tests/vectors/unknown
(written by generate.py), so run generate.py first.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import reference
from generate import encoded
from sync import sync

from dsxir.errors import CorruptStore, InvalidCheckpoint, InvalidDelta
from dsxir.optimizer_session import checkpoint as ck
from dsxir.optimizer_session import delta as dl
from dsxir.optimizer_session import grammar
from dsxir.optimizer_session.v1.checkpoint_pb2 import Checkpoint, CheckpointDelta
from dsxir.store import FileStore, framing, records
from dsxir.store.summary import encode_summary

HERE = Path(__file__).resolve().parent
STORE = HERE / "store"
MANIFEST = "manifest.jsonl"
# The store's own files: generate.py owns every .binpb and .json under tests/vectors.
SUFFIXES = (".dsxckpt", ".checkpoint", ".jsonl")

OK, DAMAGED, REFUSED = "ok", "damaged", "checkpoint_refused"
DELTA_REFUSED = "delta_refused"


@dataclass(frozen=True)
class Vector:
    """One store file and what a reader makes of it."""

    name: str
    data: bytes
    description: str
    session_id: str  # the session the file would be stored under
    expect: dict[str, Any]


def _read(rel: str) -> bytes:
    path = HERE / rel
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run tests/vectors/generate.py first")
    return path.read_bytes()


def parsed(data: bytes) -> Checkpoint:
    """The message of sealed checkpoint bytes (their body, parsed by the runtime)."""
    return Checkpoint.FromString(grammar.check(data))


def _valid(name: str) -> Checkpoint:
    return parsed(_read(f"valid/{name}.binpb"))


def stored(generation: int, cp: Checkpoint) -> bytes:
    """The bytes FileStore.put writes for ``cp`` committed as ``generation``."""
    return framing.frame(generation, encode_summary(cp), encoded(cp))


def header_with(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    """``data`` with one header field replaced and the header CRC made right again."""
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    struct.pack_into(">I", out, 40, framing.crc32c(bytes(out[:40])))
    return bytes(out)


def flip(data: bytes, position: int, mask: int = 0x01) -> bytes:
    out = bytearray(data)
    out[position] ^= mask
    return bytes(out)


def escapes_checkpoint() -> Checkpoint:
    """A checkpoint whose strings need every JSON escape (and none of the others)."""
    cp = _valid("minimal")
    cp.session_id = "sessi\u00f3n-\U0001f600_1"
    cp.optimizer = 'q"b\\s/\x00\x01\x1f\b\t\n\f\r\x7f\x80\u2028\u2029\ufeff\u00e9\U0001d11e'
    cp.created_at.seconds, cp.created_at.nanos = -62_135_596_800, 0
    cp.updated_at.seconds, cp.updated_at.nanos = -62_135_596_800, 1
    cp.progress.started_at.seconds, cp.progress.started_at.nanos = -62_135_596_800, 0
    return cp


def valid_vectors() -> tuple[list[Vector], dict[str, bytes]]:
    """The valid files, and extra checkpoint files they refer to (by path under tests/vectors)."""
    extra: dict[str, bytes] = {}
    vectors: list[Vector] = []

    def add(
        name: str,
        generation: int,
        cp: Checkpoint,
        checkpoint: str,
        description: str,
        known_only: str | None = None,
    ) -> None:
        vectors.append(
            Vector(
                name,
                stored(generation, cp),
                description,
                cp.session_id,
                {
                    "verdict": OK,
                    "generation": str(generation),
                    "checkpoint": checkpoint,
                    "known_only": known_only or checkpoint,
                },
            )
        )

    for name, generation, description in (
        ("fresh", 1, "a new session, as created: no best score, best_trial_idx null"),
        ("minimal", 1, "no options, empty sampler blob"),
        ("running_trials", 2, "ok and error trials: counts, best score 0.75, best_trial_idx 3"),
        ("paused", 7, "paused"),
        ("completed", 12, "completed, with a terminal reason"),
        ("cancelled_no_reason", 3, "cancelled"),
        ("failed", 1, "failed"),
        ("negative_zero_score", 3, "best score -0.0: best_score 8000000000000000"),
        ("infinite_scores", 4, "best score +Infinity: best_score 7ff0000000000000"),
        ("score_zero_vs_absent", 5, "best score 0.0: best_score 0000000000000000"),
        ("timestamp_extremes", 1, "updated_at [253402300799,999999999]"),
        ("long_log", 300, "150 trials: a body of several kilobytes"),
        ("terms_edge", 1 << 32, "a generation beyond 32 bits"),
        ("deep_stats", (1 << 64) - 1, "the largest generation, 2^64-1"),
    ):
        add(name, generation, _valid(name), f"valid/{name}.binpb", description)

    unknown = "unknown/newer_minor_extra_fields"
    add(
        "unknown_fields",
        9,
        parsed(_read(f"{unknown}.binpb")),
        f"{unknown}.binpb",
        "a checkpoint of a newer minor with unknown fields, which every reader keeps and "
        "writes back (known_only: the same without them, kept as data)",
        known_only=f"{unknown}.known_only.binpb",
    )

    cp = escapes_checkpoint()
    extra["store/escapes.checkpoint"] = encoded(cp)
    add(
        "escapes",
        2,
        cp,
        "store/escapes.checkpoint",
        "session id and optimizer beyond ASCII; the optimizer holds every character JSON "
        "escapes and characters it does not (DEL, U+0080, U+2028, U+FEFF, astral); "
        "updated_at [-62135596800,1]",
    )
    return vectors, extra


def damaged_vectors() -> list[Vector]:
    base_cp = _valid("running_trials")
    base = stored(2, base_cp)
    summary_length = struct.unpack_from(">I", base, 20)[0]
    body_start = framing.HEADER_SIZE + summary_length
    vectors: list[Vector] = []

    def damaged(name: str, data: bytes, kind: str, description: str) -> None:
        vectors.append(Vector(name, data, description, "s1", {"verdict": DAMAGED, "kind": kind}))

    def refused(name: str, data: bytes, field: str, rule: str, description: str) -> None:
        expect = {"verdict": REFUSED, "field": field, "rule": rule}
        vectors.append(Vector(name, data, description, "s1", expect))

    damaged("empty", b"", "truncated", "zero bytes")
    damaged("truncated_in_magic", base[:5], "truncated", "5 bytes, inside the magic")
    damaged("truncated_header", base[:43], "truncated", "43 bytes: one short of a header")
    damaged("header_only", base[:44], "truncated", "the header alone")
    damaged(
        "truncated_in_summary", base[: framing.HEADER_SIZE + 10], "truncated", "cut in the summary"
    )
    damaged("truncated_at_body", base[:body_start], "truncated", "header and summary, no body")
    damaged("truncated_last_byte", base[:-1], "truncated", "the last byte missing")
    damaged("trailing_byte", base + b"\x00", "trailing_bytes", "one byte after the end")
    damaged("bad_magic", flip(base, 1), "bad_magic", "a flipped bit in the magic")
    damaged(
        "text_mode_copy",
        base.replace(b"\r\n", b"\n"),
        "bad_magic",
        "CR LF turned into LF, as a text-mode copy does",
    )
    damaged(
        "bare_checkpoint",
        _read("valid/running_trials.binpb"),
        "bad_magic",
        "the checkpoint bytes alone, not framed",
    )
    damaged("generation_bit_flip", flip(base, 19), "header_checksum", "a flipped generation bit")
    damaged("length_bit_flip", flip(base, 31, 0x02), "header_checksum", "a flipped body-length bit")
    damaged("header_crc_flip", flip(base, 43, 0x80), "header_checksum", "a flipped header-CRC bit")
    damaged(
        "version_2",
        header_with(base, 8, ">H", 2),
        "unsupported_version",
        "frame version 2 (header CRC right)",
    )
    damaged(
        "version_0",
        header_with(base, 8, ">H", 0),
        "unsupported_version",
        "frame version 0 (header CRC right)",
    )
    damaged(
        "flags_2",
        header_with(base, 10, ">H", 2),
        "unsupported_flags",
        "flags 0x0002 (header CRC right)",
    )
    damaged(
        "flags_3",
        header_with(base, 10, ">H", 3),
        "unsupported_flags",
        "flags 0x0003: the record flag and an unknown one (header CRC right)",
    )
    damaged(
        "flags_8000",
        header_with(base, 10, ">H", 0x8000),
        "unsupported_flags",
        "flags 0x8000 (header CRC right)",
    )
    damaged(
        "summary_over_limit",
        header_with(base, 20, ">I", framing.MAX_SUMMARY_BYTES + 1),
        "over_limits",
        "a summary length of 2^20+1 (header CRC right)",
    )
    damaged(
        "body_over_limit",
        header_with(base, 24, ">Q", framing.MAX_BODY_BYTES + 1),
        "over_limits",
        "a body length of 2^28+1 (header CRC right)",
    )
    damaged(
        "body_length_max",
        header_with(base, 24, ">Q", (1 << 64) - 1),
        "over_limits",
        "a body length of 2^64-1: unsigned, not -1 (header CRC right)",
    )
    moved = header_with(base, 20, ">I", summary_length + 1)
    damaged(
        "lengths_shifted",
        header_with(moved, 24, ">Q", len(base) - body_start - 1),
        "summary_checksum",
        "summary length one more and body length one less: the size matches, the CRCs do not",
    )
    damaged("summary_bit_flip", flip(base, 50), "summary_checksum", "a flipped bit in the summary")
    damaged("body_bit_flip", flip(base, body_start + 3), "body_checksum", "a flipped body bit")
    damaged(
        "body_last_byte", flip(base, len(base) - 1, 0xFF), "body_checksum", "last byte inverted"
    )

    body = encoded(base_cp)
    damaged(
        "summary_of_another_checkpoint",
        framing.frame(2, encode_summary(_valid("paused")), body),
        "summary_mismatch",
        "every CRC right, but the summary is the one of another checkpoint (status paused)",
    )
    negative_zero = _valid("negative_zero_score")
    positive_zero = Checkpoint()
    positive_zero.CopyFrom(negative_zero)
    positive_zero.progress.best_score = 0.0
    damaged(
        "summary_best_score_bits",
        framing.frame(3, encode_summary(positive_zero), encoded(negative_zero)),
        "summary_mismatch",
        "best_score 0000000000000000 for a best score of -0.0",
    )
    summary = json.loads(encode_summary(base_cp))
    summary["summary"] = 2
    damaged(
        "summary_version_2",
        framing.frame(2, json.dumps(summary, sort_keys=True, separators=(",", ":")).encode(), body),
        "summary_mismatch",
        'a summary with "summary":2',
    )
    damaged(
        "summary_not_json",
        framing.frame(2, b"not json", body),
        "summary_mismatch",
        "a summary that is not JSON",
    )
    damaged("summary_empty", framing.frame(2, b"", body), "summary_mismatch", "no summary at all")

    refused(
        "body_not_protobuf",
        framing.frame(2, encode_summary(base_cp), b"\xff\xff\xff\xff"),
        "<input>",
        "input.trailer",
        "every CRC of the file right, the body is no checkpoint (no trailer)",
    )
    refused(
        "body_empty",
        framing.frame(2, encode_summary(base_cp), b""),
        "<input>",
        "input.trailer",
        "every CRC of the file right, an empty body: no checkpoint trailer",
    )
    invalid = _read("invalid/best_score_mismatch.binpb")
    refused(
        "body_unsealed",
        framing.frame(2, encode_summary(base_cp), encoded(base_cp)[:-9]),
        "<input>",
        "input.trailer",
        "every CRC of the file right, the body a valid checkpoint's bytes without its trailer",
    )
    refused(
        "body_empty_sealed",
        framing.frame(2, encode_summary(base_cp), reference.seal(b"")),
        "format",
        "format.required",
        "every CRC right, an empty checkpoint body with its trailer: no format",
    )
    refused(
        "body_invalid_checkpoint",
        framing.frame(2, encode_summary(parsed(invalid)), invalid),
        "progress.best_trial_idx",
        "best.score",
        "every CRC right and the summary agrees, but the checkpoint breaks a rule of FORMAT.md",
    )
    refused(
        "body_invalid_summary_bad_too",
        framing.frame(2, b"{}", invalid),
        "progress.best_trial_idx",
        "best.score",
        "an invalid checkpoint and a bad summary: the checkpoint is reported first",
    )
    return vectors


def _commits(cp: Checkpoint, count: int) -> list[Checkpoint]:
    """``count`` checkpoints after ``cp``, each with one more trial and a later updated_at."""
    out = []
    for i in range(count):
        cp = parsed(encoded(cp))
        ck.record_trial(cp, score=0.5 + i / 100, candidate_id=f"r{i}", sampler_blob=bytes([i]))
        cp.updated_at.seconds = 1_767_300_000 + i
        cp.updated_at.nanos = 0
        out.append(cp)
    return out


def _sealed_delta(delta: CheckpointDelta) -> bytes:
    """A delta's bytes as they are (no check), for records a writer would refuse."""
    return grammar.seal(delta.SerializeToString(deterministic=True))


def _record_file(generation: int, base: Checkpoint, steps: list[tuple[int, bytes, bytes]]) -> bytes:
    """An appendable file: ``base`` at ``generation``, then one record per ``steps`` item."""
    head = framing.frame(generation, encode_summary(base), encoded(base), appendable=True)
    return head + b"".join(records.record(g, summary, data) for g, summary, data in steps)


def appended_vectors() -> tuple[list[Vector], dict[str, bytes]]:
    """Appendable files (docs/store-file.md §9): records, torn tails, damaged records."""
    base = _valid("running_trials")
    chain = [base, *_commits(base, 3)]
    steps = [
        (
            6 + i,
            encode_summary(chain[i + 1]),
            dl.encode_delta(dl.diff(chain[i], chain[i + 1], base_generation=5 + i)),
        )
        for i in range(3)
    ]
    good = _record_file(5, base, steps)
    extra = {"store/records_three.checkpoint": encoded(chain[3])}
    vectors: list[Vector] = []

    def ok(name: str, data: bytes, generation: int, checkpoint: str, text: str) -> None:
        expect = {"verdict": OK, "generation": str(generation), "checkpoint": checkpoint}
        expect["known_only"] = checkpoint
        vectors.append(Vector(name, data, text, "s1", expect))

    def bad(name: str, data: bytes, text: str, **expect: str) -> None:
        vectors.append(Vector(name, data, text, "s1", expect))

    def with_step(index: int, data: bytes) -> bytes:
        changed = list(steps)
        changed[index] = (changed[index][0], changed[index][1], data)
        return _record_file(5, base, changed)

    first_record = len(_record_file(5, base, []))
    ok(
        "appendable_no_records",
        _record_file(5, base, []),
        5,
        "valid/running_trials.binpb",
        "flags 1 and no record: the snapshot",
    )
    ok("records_three", good, 8, "store/records_three.checkpoint", "a snapshot and 3 records")
    torn = records.record(9, b"{}", b"x" * 40)
    ok(
        "records_torn_header",
        good + torn[:27],
        8,
        "store/records_three.checkpoint",
        "27 bytes of a fourth record: a torn tail, ignored",
    )
    ok(
        "records_torn_payload",
        good + torn[:50],
        8,
        "store/records_three.checkpoint",
        "a fourth record's header and part of its payload: a torn tail, ignored",
    )
    second = first_record + len(records.record(*steps[0]))
    bad(
        "record_header_damaged",
        flip(good, second + 5),
        "a flipped bit in the second record's generation",
        verdict=DAMAGED,
        kind="record_checksum",
    )
    bad(
        "record_payload_damaged",
        flip(good, len(good) - 3),
        "a flipped bit in the last record's delta: whole, so damaged, not torn",
        verdict=DAMAGED,
        kind="record_checksum",
    )
    wrong_magic = bytearray(good)
    wrong_magic[first_record : first_record + 4] = b"\x89dlx"
    struct.pack_into(
        ">I",
        wrong_magic,
        first_record + 24,
        framing.crc32c(bytes(wrong_magic[first_record : first_record + 24])),
    )
    bad(
        "record_magic_wrong",
        bytes(wrong_magic),
        "the first record's magic changed, its header CRC right",
        verdict=DAMAGED,
        kind="record_checksum",
    )
    over = bytearray(good)
    struct.pack_into(">I", over, first_record + 12, framing.MAX_SUMMARY_BYTES + 1)
    struct.pack_into(
        ">I", over, first_record + 24, framing.crc32c(bytes(over[first_record : first_record + 24]))
    )
    bad(
        "record_over_limits",
        bytes(over),
        "a record summary length of 2^20+1, its header CRC right",
        verdict=DAMAGED,
        kind="over_limits",
    )
    gap = list(steps)
    gap[1] = (8, gap[1][1], gap[1][2])
    bad(
        "record_generation_gap",
        _record_file(5, base, gap),
        "the second record commits generation 8 after 6",
        verdict=DAMAGED,
        kind="record_generation",
    )
    off = dl.diff(chain[1], chain[2], base_generation=4)
    bad(
        "record_base_generation_wrong",
        with_step(1, dl.encode_delta(off)),
        "the second record's delta applies to generation 4, not 6",
        verdict=DAMAGED,
        kind="record_generation",
    )
    kept = dl.diff(chain[0], chain[1], base_generation=5)
    kept.kept |= 1 << 1
    bad(
        "record_delta_refused",
        with_step(0, _sealed_delta(kept)),
        "the first record's delta keeps field 1: refused as a delta reader refuses it",
        verdict=DELTA_REFUSED,
        field="kept",
        rule="delta.kept",
    )
    other = dl.diff(chain[1], chain[2], base_generation=6)
    other.head.session_id = "s2"
    bad(
        "record_delta_other_session",
        with_step(1, _sealed_delta(other)),
        "the second record's delta is of session s2",
        verdict=DELTA_REFUSED,
        field="head.session_id",
        rule="delta.session",
    )
    wrong_idx = dl.diff(chain[2], chain[3], base_generation=7)
    wrong_idx.head.progress.trial_log[0].trial_idx = 99
    last = len(chain[3].progress.trial_log) - 1
    bad(
        "record_final_invalid",
        with_step(2, _sealed_delta(wrong_idx)),
        "the last record's trial entry numbered 99: the final checkpoint breaks FORMAT.md §7",
        verdict=REFUSED,
        field=f"progress.trial_log[{last}].trial_idx",
        rule="trial.trial_idx",
    )
    lying = list(steps)
    lying[2] = (lying[2][0], encode_summary(chain[2]), lying[2][2])
    bad(
        "record_summary_mismatch",
        _record_file(5, base, lying),
        "the last record's summary is the checkpoint before it",
        verdict=DAMAGED,
        kind="summary_mismatch",
    )
    odd = dl.diff(chain[0], chain[1], base_generation=5)
    odd.head.progress.completed += 1
    fixed = dl.diff(chain[1], chain[2], base_generation=6)
    mid = list(steps)
    mid[0] = (mid[0][0], mid[0][1], _sealed_delta(odd))
    mid[1] = (mid[1][0], mid[1][1], _sealed_delta(fixed))
    extra["store/records_intermediate.checkpoint"] = encoded(chain[3])
    ok(
        "records_intermediate_unchecked",
        _record_file(5, base, mid),
        8,
        "store/records_intermediate.checkpoint",
        "the first record makes a checkpoint whose completed count is wrong, the next one "
        "sets it right: only the checkpoint the records end with is checked",
    )
    return vectors, extra


def verdict(data: bytes) -> dict[str, Any]:
    """What docs/store-file.md says a reader makes of ``data`` (the ``expect`` of a vector).

    The snapshot by the reference (§5), then the commit records (§9) by the
    library's reader.
    """
    try:
        header, summary, body = framing.unframe(data, "<vector>")
    except CorruptStore as exc:
        assert exc.kind is not None, exc.detail
        return {"verdict": DAMAGED, "kind": exc.kind}
    read = reference.verdict(body)
    if read.output is None:
        return {"verdict": REFUSED, "field": read.path, "rule": read.rule}
    if summary != encode_summary(parsed(read.output)):
        return {"verdict": DAMAGED, "kind": "summary_mismatch"}
    if not header.appendable:
        return {"verdict": OK, "generation": str(header.generation), "body": read.output}
    try:
        whole = records.read(lambda at, size: data[at : at + size], len(data), "<vector>")
    except CorruptStore as exc:
        assert exc.kind is not None, exc.detail
        return {"verdict": DAMAGED, "kind": exc.kind}
    except InvalidDelta as exc:
        return {"verdict": DELTA_REFUSED, "field": exc.path, "rule": exc.rule}
    except InvalidCheckpoint as exc:
        return {"verdict": REFUSED, "field": exc.path, "rule": exc.rule}
    return {"verdict": OK, "generation": str(whole.generation), "body": encoded(whole.checkpoint)}


def check_vector(vector: Vector, files: dict[str, bytes]) -> None:
    """The verdict of ``vector`` is the declared one, and FileStore.get agrees."""
    got = verdict(vector.data)
    expect = vector.expect
    if got["verdict"] != expect["verdict"] or any(
        got[key] != expect[key] for key in ("kind", "field", "rule", "generation") if key in expect
    ):
        raise AssertionError(f"{vector.name}: expected {expect}, a reader says {got}")
    if got["verdict"] == OK and got["body"] != files[expect["checkpoint"]]:
        raise AssertionError(f"{vector.name}: the body is not the checkpoint's canonical bytes")
    if not reference.library_seals():
        return  # FileStore reads sealed bodies once the library writes the trailer
    with tempfile.TemporaryDirectory() as folder:
        store = FileStore(folder)
        (Path(folder) / f"{vector.session_id}.dsxckpt").write_bytes(vector.data)
        try:
            read = store.get(vector.session_id)
        except CorruptStore as exc:
            if got["verdict"] == OK:
                raise AssertionError(f"{vector.name}: FileStore.get refuses it: {exc}") from None
            return
        if got["verdict"] != OK:
            raise AssertionError(f"{vector.name}: FileStore.get reads it, a reader must not")
        if str(read.generation) != got["generation"] or encoded(read.checkpoint) != got["body"]:
            raise AssertionError(f"{vector.name}: FileStore.get reads another checkpoint")


def build() -> dict[str, bytes]:
    """Every file of tests/vectors/store/, by path relative to tests/vectors/."""
    valid, files = valid_vectors()
    appended, more = appended_vectors()
    files.update(more)
    valid += [vector for vector in appended if vector.expect["verdict"] == OK]
    vectors = valid + damaged_vectors() + [v for v in appended if v.expect["verdict"] != OK]
    referenced = {**files}
    for vector in valid:
        for key in ("checkpoint", "known_only"):
            rel = vector.expect[key]
            referenced.setdefault(rel, files.get(rel) or _read(rel))
    lines = []
    for vector in vectors:
        check_vector(vector, referenced)
        rel = f"store/{vector.name}.dsxckpt"
        files[rel] = vector.data
        entry = {"name": vector.name, "file": rel, **vector.expect}
        entry["description"] = vector.description
        lines.append(json.dumps(entry, ensure_ascii=False))
    if len({vector.name for vector in vectors}) != len(vectors):
        raise AssertionError("two vectors have the same name")
    files[f"store/{MANIFEST}"] = ("\n".join(lines) + "\n").encode()
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="fail when the committed vectors differ"
    )
    args = parser.parse_args()
    files = build()
    on_disk = {
        str(p.relative_to(HERE)): p.read_bytes()
        for p in STORE.rglob("*")
        if p.is_file() and p.suffix in SUFFIXES
    }
    status = sync(files, on_disk, HERE, check=args.check, shown="store vector: tests/vectors/")
    if args.check:
        return status
    digest = hashlib.sha256(files[f"store/{MANIFEST}"]).hexdigest()[:16]
    print(f"wrote {len(files)} files; store manifest sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
