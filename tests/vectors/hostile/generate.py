"""Write the hostile byte corpus: non-canonical and damaged checkpoint encodings.

Every case is derived from a valid vector of ``tests/vectors/valid`` by
editing the wire format of its body directly (no protobuf runtime is
involved, so the bytes are exactly what is described): padded tags, varints
and lengths, groups, field number 0, wrong wire types, fields out of order
or repeated, unknown fields, explicit defaults, deep nesting. Each edited
body is sealed with a right trailer (FORMAT.md §2.1), so that the grammar of
§2.2, not the checksum, is what refuses it. Then the trailer itself: bodies
left unsealed, sealed twice or with a wrong checksum, every prefix and every
single-bit flip of the sealed ``minimal.binpb``.

Each case is ``<name>.binpb`` beside this script and an entry of
``manifest.json``: ``{name, binpb, description}`` and the one verdict every
reader must give, computed here by the reference
(``tests/vectors/reference.py``): ``{"verdict": "accept", "sha256": <hex of
the bytes written back>}`` or ``{"verdict": "refuse", "rule": <id>, "path":
<path>}``.

Not in the corpus: an input just over the 256 MiB size limit
(``input.too_large``), a file too big to keep in the repository.

Run with ``--check`` to fail when the committed files differ from what this
script writes (``make check-generated`` does).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import reference  # noqa: E402
from sync import sync  # noqa: E402

VALID = HERE.parent / "valid"
VARINT, I64, LEN, SGROUP, EGROUP, I32 = 0, 1, 2, 3, 4, 5

Field = tuple[int, int, bytes]
"""One field of a message: number, wire type, and its encoded value (payload for LEN)."""


def varint(value: int, width: int = 0) -> bytes:
    """``value`` as a varint, padded with redundant continuation bytes to ``width`` bytes."""
    out = bytearray()
    while True:
        out.append(value & 0x7F)
        value >>= 7
        if not value:
            break
    while len(out) < width:
        out.append(0)
    for i in range(len(out) - 1):
        out[i] |= 0x80
    return bytes(out)


def tag(number: int, wire: int, width: int = 0) -> bytes:
    return varint(number << 3 | wire, width)


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def parse(data: bytes) -> list[Field]:
    """The fields of a canonical encoding (no groups), in order."""
    fields: list[Field] = []
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == VARINT:
            start = pos
            _, pos = read_varint(data, pos)
            fields.append((number, wire, data[start:pos]))
        elif wire == LEN:
            length, pos = read_varint(data, pos)
            fields.append((number, wire, data[pos : pos + length]))
            pos += length
        else:
            size = 8 if wire == I64 else 4
            fields.append((number, wire, data[pos : pos + size]))
            pos += size
    return fields


def field(number: int, wire: int, value: bytes, *, tag_width: int = 0, len_width: int = 0) -> bytes:
    """One encoded field; LEN values get their length prefix."""
    if wire == LEN:
        return tag(number, wire, tag_width) + varint(len(value), len_width) + value
    return tag(number, wire, tag_width) + value


def emit(fields: list[Field]) -> bytes:
    return b"".join(field(n, w, v) for n, w, v in fields)


def get(fields: list[Field], number: int) -> bytes:
    return next(v for n, _, v in fields if n == number)


def replace(
    fields: list[Field], number: int, encoded: bytes, *, before: int | None = None
) -> bytes:
    """Re-emit ``fields`` with field ``number`` written as ``encoded`` (or ``encoded``
    inserted before field ``before`` when ``number`` is absent)."""
    out = b""
    done = False
    for n, w, v in fields:
        if n == number:
            out += encoded
            done = True
        elif n == before and not done:
            out += encoded + field(n, w, v)
            done = True
        else:
            out += field(n, w, v)
    return out if done else out + encoded


def with_nested(
    fields: list[Field], outer: int, edit: Callable[[list[Field]], bytes], **widths: int
) -> bytes:
    """Re-emit ``fields`` with the message in field ``outer`` rewritten by ``edit``."""
    inner = edit(parse(get(fields, outer)))
    return replace(fields, outer, field(outer, LEN, inner, **widths))


def put(fields: list[Field], outer: int, inner: bytes) -> bytes:
    """Re-emit ``fields`` with the message in field ``outer`` replaced by ``inner``."""
    return replace(fields, outer, field(outer, LEN, inner))


def term(depth: int) -> bytes:
    """A Term nested ``depth`` deep: lists of one item around a null."""
    t = field(1, LEN, b"")
    for _ in range(depth - 1):
        t = field(9, LEN, field(1, LEN, t))
    return t


def option(key: str, value: bytes) -> bytes:
    return field(4, LEN, field(1, LEN, key.encode()) + field(2, LEN, value))


def groups(depth: int, number: int = 100) -> bytes:
    """Unknown groups nested ``depth`` deep around a varint field."""
    body = field(1, VARINT, varint(1))
    for _ in range(depth):
        body = tag(number, SGROUP) + body + tag(number, EGROUP)
    return body


def cases() -> list[tuple[str, str, bytes]]:
    """(name, description, bytes) of every case, in manifest order."""
    sealed_mini = (VALID / "minimal.binpb").read_bytes()
    mini = sealed_mini[:-9]
    canc = (VALID / "cancelled.binpb").read_bytes()[:-9]
    m, c = parse(mini), parse(canc)
    sid = get(m, 2)
    sampler_format, progress = parse(get(m, 12)), parse(get(m, 9))
    out: list[tuple[str, str, bytes]] = []

    def add(name: str, description: str, data: bytes) -> None:
        """A case whose body is ``data``, sealed with a right trailer."""
        out.append((name, description, reference.seal(data)))

    def add_raw(name: str, description: str, data: bytes) -> None:
        """A case of exactly ``data`` (a trailer is there only if ``data`` has one)."""
        out.append((name, description, data))

    # --- padded tags, varints and lengths ----------------------------------------------
    for width in (2, 5, 6, 10, 11):
        add(
            f"tag_padded_{width}_known",
            f"minimal: the tag of session_id padded to {width} bytes",
            replace(m, 2, field(2, LEN, sid, tag_width=width)),
        )
        add(
            f"tag_padded_{width}_unknown",
            f"minimal + unknown varint field 99 whose tag is padded to {width} bytes",
            mini + field(99, VARINT, varint(1), tag_width=width),
        )
        add(
            f"tag_padded_{width}_nested_known",
            f"minimal: the tag of sampler_format.version padded to {width} bytes",
            put(m, 12, replace(sampler_format, 2, field(2, VARINT, varint(1), tag_width=width))),
        )
        add(
            f"tag_padded_{width}_nested_unknown",
            f"minimal + unknown field 99 in sampler_format, its tag padded to {width} bytes",
            put(m, 12, emit(sampler_format) + field(99, VARINT, varint(1), tag_width=width)),
        )
        add(
            f"varint_padded_{width}_known",
            f"minimal: status (1) as a varint padded to {width} bytes",
            replace(m, 13, field(13, VARINT, varint(1, width))),
        )
        add(
            f"varint_padded_{width}_unknown",
            f"minimal + unknown field 99 = 1 as a varint padded to {width} bytes",
            mini + field(99, VARINT, varint(1, width)),
        )
        add(
            f"varint_padded_{width}_nested_known",
            f"minimal: sampler_format.version (1) as a varint padded to {width} bytes",
            put(m, 12, replace(sampler_format, 2, field(2, VARINT, varint(1, width)))),
        )
        add(
            f"length_padded_{width}_known",
            f"minimal: the length of session_id padded to {width} bytes",
            replace(m, 2, field(2, LEN, sid, len_width=width)),
        )
        add(
            f"length_padded_{width}_unknown",
            f"minimal + unknown bytes field 99 whose length is padded to {width} bytes",
            mini + field(99, LEN, b"xy", len_width=width),
        )
        add(
            f"length_padded_{width}_nested",
            f"minimal: the length of progress.started_at padded to {width} bytes",
            put(m, 9, replace(progress, 7, field(7, LEN, get(progress, 7), len_width=width))),
        )
    for last in (0x01, 0x02, 0x7F):
        high = bytes([0x81] + [0x80] * 8 + [last])
        add(
            f"varint_10_bytes_last_{last:02x}_known",
            f"minimal: status as a 10-byte varint ending in 0x{last:02x} (bits past 64)",
            replace(m, 13, field(13, VARINT, high)),
        )
        add(
            f"varint_10_bytes_last_{last:02x}_unknown",
            f"minimal + unknown varint field 99, 10 bytes ending in 0x{last:02x}",
            mini + field(99, VARINT, high),
        )
        add(
            f"varint_10_bytes_last_{last:02x}_nested",
            f"minimal: sampler_format.version as a 10-byte varint ending in 0x{last:02x}",
            put(m, 12, replace(sampler_format, 2, field(2, VARINT, high))),
        )
    add(
        "length_over_end",
        "minimal + unknown bytes field whose length runs past the end",
        mini + tag(99, LEN) + varint(10) + b"xy",
    )
    add(
        "length_huge",
        "minimal + unknown bytes field with length 2^63",
        mini + tag(99, LEN) + varint(1 << 63) + b"xy",
    )

    # --- groups ------------------------------------------------------------------------
    add("group_unknown", "minimal + an unknown group 100 holding a varint", mini + groups(1))
    add("group_unknown_first", "an unknown group 100 before every known field", groups(1) + mini)
    add("group_unknown_nested_2", "minimal + unknown groups nested 2 deep", mini + groups(2))
    add("group_unknown_nested_101", "minimal + unknown groups nested 101 deep", mini + groups(101))
    add("group_unknown_nested_200", "minimal + unknown groups nested 200 deep", mini + groups(200))
    add(
        "group_unknown_in_sampler_format",
        "minimal + an unknown group 100 inside sampler_format",
        with_nested(m, 12, lambda f: emit(f) + groups(1)),
    )
    add(
        "group_unknown_empty",
        "minimal + an empty unknown group 100",
        mini + tag(100, SGROUP) + tag(100, EGROUP),
    )
    add(
        "group_end_without_start",
        "minimal + an end-group tag 100 with no start",
        mini + tag(100, EGROUP),
    )
    add(
        "group_end_first",
        "an end-group tag 100 before every known field",
        tag(100, EGROUP) + mini,
    )
    add(
        "group_start_without_end",
        "minimal + a start-group tag 100 never closed",
        mini + tag(100, SGROUP) + field(1, VARINT, varint(1)),
    )
    add(
        "group_end_mismatched",
        "minimal + group 100 closed by an end-group tag 101",
        mini + tag(100, SGROUP) + field(1, VARINT, varint(1)) + tag(101, EGROUP),
    )
    add(
        "group_field_0_inside",
        "minimal + an unknown group 100 holding a varint field number 0",
        mini + tag(100, SGROUP) + field(0, VARINT, varint(1)) + tag(100, EGROUP),
    )
    add(
        "group_number_0",
        "minimal + a group with field number 0",
        mini + tag(0, SGROUP) + tag(0, EGROUP),
    )
    add(
        "group_known_number",
        "minimal: sampler_format (12) written as a group instead of a message",
        replace(m, 12, tag(12, SGROUP) + get(m, 12) + tag(12, EGROUP)),
    )
    add(
        "group_end_in_sampler_format",
        "minimal: an end-group tag 100 inside sampler_format",
        with_nested(m, 12, lambda f: emit(f) + tag(100, EGROUP)),
    )
    add(
        "group_wire_type_6",
        "minimal + a field of the reserved wire type 6",
        mini + tag(99, 6) + varint(1),
    )
    add(
        "group_wire_type_7",
        "minimal + a field of the reserved wire type 7",
        mini + tag(99, 7) + varint(1),
    )

    # --- field number 0 and out-of-range numbers ------------------------------------------
    add("field_0_varint", "minimal + a varint field number 0", mini + field(0, VARINT, varint(1)))
    add("field_0_len", "minimal + a bytes field number 0", mini + field(0, LEN, b"x"))
    add(
        "field_0_first",
        "a varint field number 0 before every known field",
        field(0, VARINT, varint(1)) + mini,
    )
    add(
        "field_0_nested",
        "minimal + a varint field number 0 inside sampler_format",
        with_nested(m, 12, lambda f: emit(f) + field(0, VARINT, varint(1))),
    )
    add(
        "field_max_number",
        "minimal + unknown field 2^29-1 (the largest field number)",
        mini + field((1 << 29) - 1, VARINT, varint(1)),
    )
    add(
        "field_number_over_max",
        "minimal + a field number 2^29 (one past the largest)",
        mini + varint((1 << 29) << 3) + varint(1),
    )
    add(
        "field_number_2_32",
        "minimal + a tag whose value exceeds 32 bits",
        mini + varint(1 << 35) + varint(1),
    )
    add(
        "field_reserved_19000",
        "minimal + unknown field 19000 (a number reserved for the protobuf runtime)",
        mini + field(19000, VARINT, varint(1)),
    )

    # --- wrong wire types for known fields ----------------------------------------------
    add(
        "wire_format_varint",
        "minimal: format (string) as a varint",
        replace(m, 1, field(1, VARINT, varint(1))),
    )
    add(
        "wire_status_len",
        "minimal: status (enum) as bytes holding its varint",
        replace(m, 13, field(13, LEN, varint(1))),
    )
    add(
        "wire_status_i64",
        "minimal: status (enum) as a fixed64",
        replace(m, 13, field(13, I64, (1).to_bytes(8, "little"))),
    )
    add(
        "wire_status_i32",
        "minimal: status (enum) as a fixed32",
        replace(m, 13, field(13, I32, (1).to_bytes(4, "little"))),
    )
    add(
        "wire_progress_varint",
        "minimal: progress (message) as a varint",
        replace(m, 9, field(9, VARINT, varint(1))),
    )
    add(
        "wire_version_i32",
        "minimal: sampler_format.version (uint32) as a fixed32",
        with_nested(m, 12, lambda f: replace(f, 2, field(2, I32, (1).to_bytes(4, "little")))),
    )
    add(
        "wire_seconds_len",
        "minimal: created_at.seconds as bytes holding its varint",
        with_nested(m, 7, lambda f: replace(f, 1, field(1, LEN, get(f, 1)))),
    )
    add(
        "wire_best_score_varint",
        "cancelled: progress.best_score (double) as a varint",
        with_nested(c, 9, lambda f: replace(f, 2, field(2, VARINT, varint(1)))),
    )
    add(
        "wire_status_and_direction_packed",
        "minimal: status and direction as packed (bytes) values",
        replace(m, 13, field(13, LEN, varint(1)) + field(15, LEN, varint(0) + varint(1))),
    )

    # --- order, repetition, unknown fields, defaults -------------------------------------
    add("order_reversed", "minimal with its top-level fields in reverse order", emit(m[::-1]))
    add(
        "order_status_first",
        "minimal with status written first",
        emit([f for f in m if f[0] == 13] + [f for f in m if f[0] != 13]),
    )
    add(
        "order_nested_reversed",
        "cancelled with the fields of progress and of every trial in reverse order",
        with_nested(
            c,
            9,
            lambda f: emit([(n, w, emit(parse(v)[::-1]) if n == 1 else v) for n, w, v in f][::-1]),
        ),
    )
    add(
        "order_reversed_cancelled",
        "cancelled with its top-level fields in reverse order",
        emit(c[::-1]),
    )
    add(
        "repeat_session_id",
        "minimal: session_id twice (the last one wins)",
        replace(m, 2, field(2, LEN, b"other") + field(2, LEN, sid)),
    )
    add(
        "repeat_status",
        "minimal: status written as 2 then 1",
        replace(m, 13, field(13, VARINT, varint(2)) + field(13, VARINT, varint(1))),
    )
    add(
        "repeat_sampler_format",
        "minimal: sampler_format twice (the two messages merge)",
        replace(m, 12, field(12, LEN, field(1, LEN, b"other")) + field(12, LEN, get(m, 12))),
    )
    add(
        "repeat_progress_split",
        "cancelled: progress split into two messages (the trial log and the rest)",
        replace(
            c,
            9,
            field(9, LEN, emit([f for f in parse(get(c, 9)) if f[0] == 1]))
            + field(9, LEN, emit([f for f in parse(get(c, 9)) if f[0] != 1])),
        ),
    )
    add(
        "repeat_created_at_merge",
        "minimal: created_at as two messages, seconds in one and nanos in the other",
        replace(
            m,
            7,
            field(7, LEN, emit([f for f in parse(get(m, 7)) if f[0] == 1]))
            + field(7, LEN, emit([f for f in parse(get(m, 7)) if f[0] == 2])),
        ),
    )
    add(
        "unknown_first",
        "an unknown varint, bytes and fixed64 field before every known field",
        field(99, VARINT, varint(7)) + field(98, LEN, b"u") + field(97, I64, bytes(8)) + mini,
    )
    add(
        "unknown_first_nested",
        "cancelled: unknown fields first in progress and in every trial",
        with_nested(
            c,
            9,
            lambda f: (
                field(99, VARINT, varint(7))
                + emit([(n, w, field(99, LEN, b"u") + v if n == 1 else v) for n, w, v in f])
            ),
        ),
    )
    add(
        "unknown_every_wire_type",
        "minimal + unknown fields of every wire type",
        mini
        + field(99, VARINT, varint(1))
        + field(98, I64, bytes(8))
        + field(97, LEN, b"")
        + groups(1, 96)
        + field(95, I32, bytes(4)),
    )
    add(
        "default_direction",
        "minimal + direction written as 0 (its default)",
        mini + field(15, VARINT, varint(0)),
    )
    add(
        "default_sampler_blob",
        "minimal + sampler_blob written empty (its default)",
        replace(m, 11, field(11, LEN, b""), before=12),
    )
    add(
        "default_program_module_empty",
        'minimal + program_module written as "" (optional, present)',
        replace(m, 5, field(5, LEN, b""), before=6),
    )
    add(
        "default_counters",
        "minimal: progress with attempts, completed and errors written as 0",
        with_nested(
            m,
            9,
            lambda f: (
                field(4, VARINT, varint(0))
                + field(5, VARINT, varint(0))
                + field(6, VARINT, varint(0))
                + emit(f)
            ),
        ),
    )
    add(
        "default_trial_idx",
        "cancelled: trial 0 with trial_idx written as 0",
        with_nested(
            c,
            9,
            lambda f: emit(
                [
                    (n, w, field(1, VARINT, varint(0)) + v if i == 0 else v)
                    for i, (n, w, v) in enumerate(f)
                ]
            ),
        ),
    )
    add(
        "option_null_value",
        "minimal + an option whose value is a null Term (in its place, before field 6)",
        replace(m, 4, option("k", term(1)), before=6),
    )

    # --- depth and size ------------------------------------------------------------------
    for depth in (24, 25, 100, 101, 200):
        add(
            f"term_depth_{depth}",
            f"minimal + an option whose value is a Term nested {depth} deep",
            replace(m, 4, option("deep", term(depth)), before=6),
        )
    add(
        "term_depth_25_in_trial_stats",
        "cancelled: a stats value of trial 0 nested 25 deep",
        with_nested(
            c,
            9,
            lambda f: emit(
                [
                    (
                        n,
                        w,
                        replace(
                            parse(v),
                            5,
                            field(
                                5,
                                LEN,
                                field(1, LEN, field(1, LEN, term(1)) + field(2, LEN, term(25))),
                            ),
                            before=6,
                        )
                        if i == 0
                        else v,
                    )
                    for i, (n, w, v) in enumerate(f)
                ]
            ),
        ),
    )
    add(
        "unknown_len_nested_101",
        "minimal + unknown bytes fields nested 101 deep (opaque to a parser)",
        mini + _nested_len(101),
    )
    add("empty", "an empty body with its trailer", b"")

    # --- the trailer -----------------------------------------------------------------------
    add_raw("unsealed_empty", "no bytes at all", b"")
    add_raw("unsealed_minimal", "the body of minimal without its trailer", mini)
    add_raw(
        "unsealed_cancelled_with_unknown",
        "the body of cancelled and an unknown field, no trailer",
        canc + field(99, VARINT, varint(1)),
    )
    add_raw(
        "sealed_twice", "minimal with a second trailer after its own", reference.seal(sealed_mini)
    )
    add_raw(
        "trailer_only_tag",
        "minimal's body and the trailer's 5-byte tag, no CRC",
        mini + sealed_mini[-9:-4],
    )
    add_raw(
        "trailer_crc_of_empty",
        "minimal's body with the trailer of an empty body",
        mini + reference.seal(b""),
    )
    add_raw(
        "trailer_crc_big_endian",
        "minimal with its CRC-32C written most significant byte first",
        sealed_mini[:-4] + sealed_mini[-4:][::-1],
    )
    add_raw(
        "trailer_tag_padded",
        "minimal with its trailer tag padded to 6 bytes (FD FF FF FF 8F 00)",
        mini + b"\xfd\xff\xff\xff\x8f\x00" + sealed_mini[-4:],
    )
    add_raw(
        "trailer_then_byte",
        "minimal with one byte after its trailer",
        sealed_mini + b"\x00",
    )

    # --- every prefix and every single-bit flip of the sealed minimal ------------------------
    for cut in range(len(sealed_mini)):
        add_raw(f"prefix_{cut:03d}", f"the first {cut} bytes of minimal", sealed_mini[:cut])
    for i in range(len(sealed_mini)):
        for bit in range(8):
            flipped = bytearray(sealed_mini)
            flipped[i] ^= 1 << bit
            add_raw(
                f"bitflip_{i:03d}_{bit}",
                f"minimal with bit {bit} of byte {i} flipped",
                bytes(flipped),
            )
    return out


def _nested_len(depth: int) -> bytes:
    body = b""
    for _ in range(depth):
        body = field(99, LEN, body)
    return body


def build() -> dict[str, bytes]:
    """Every file this script writes, by name relative to this directory."""
    files: dict[str, bytes] = {}
    manifest = []
    for name, description, data in cases():
        assert f"{name}.binpb" not in files, name
        files[f"{name}.binpb"] = data
        entry = {"name": name, "binpb": f"{name}.binpb", "description": description}
        manifest.append({**entry, **reference.verdict(data).as_json()})
    lines = ",\n".join(json.dumps(entry, ensure_ascii=False) for entry in manifest)
    files["manifest.json"] = ("[\n" + lines + "\n]\n").encode()
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when the committed files differ")
    args = parser.parse_args()
    files = build()
    on_disk = {p.name: p.read_bytes() for p in HERE.glob("*.binpb")}
    on_disk["manifest.json"] = (
        (HERE / "manifest.json").read_bytes() if (HERE / "manifest.json").exists() else b""
    )
    status = sync(
        files, on_disk, HERE, check=args.check, shown="hostile vector: tests/vectors/hostile/"
    )
    if args.check:
        return status
    print(f"wrote {len(files) - 1} cases, {sum(map(len, files.values()))} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
