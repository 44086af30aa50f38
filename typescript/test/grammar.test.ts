/**
 * The byte grammar of FORMAT.md §2: the trailer and its CRC-32C, every wire
 * rule with the path §2.3 names, the weight limit, and unknown fields kept
 * byte for byte. The inputs are built by hand, with a correct trailer.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { decode, encode, FORMAT_ID, ResumeMismatch, unknownFields, weightLimit } from "../src/index.js";
import { WireError } from "../src/wire.js";
import { checkBody, crc32c, isUtf8, MAX_CHECKPOINT_BYTES, scanBody, seal, TRAILER_SIZE } from "../src/grammar.js";
import { fromHex, hexOf, manifest, prng, vector } from "./helpers.js";

// ---------------------------------------------------------------------------
// Hex builders of protobuf fields.

function varint(n: number | bigint): string {
  let v = BigInt(n);
  if (v < 0n) {
    v += 1n << 64n;
  }
  let out = "";
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) {
      b |= 0x80;
    }
    out += b.toString(16).padStart(2, "0");
  } while (v > 0n);
  return out;
}

const tag = (no: number, wireType: number): string => varint((BigInt(no) << 3n) | BigInt(wireType));
const vint = (no: number, value: number | bigint): string => tag(no, 0) + varint(value);
const len = (no: number, content: string): string => tag(no, 2) + varint(content.length / 2) + content;
const utf8 = (text: string): string => Buffer.from(text, "utf8").toString("hex");
const str = (no: number, text: string): string => len(no, utf8(text));

// Terms.
const tNull = len(1, "");
const tBool = (b: number) => vint(2, b);
const tInt = (n: number) => vint(3, n);
const tList = (items: string[]) => len(9, items.map((i) => len(1, i)).join(""));
const tMap = (entries: [string, string][]) => len(11, entries.map(([k, v]) => len(1, len(1, k) + len(2, v))).join(""));
const termMap = (no: number, entries: [string, string][]) =>
  len(no, entries.map(([k, v]) => len(1, len(1, k) + len(2, v))).join(""));

const stamp = vint(1, 1_767_225_600) + vint(2, 5);
const entry = (i: number, more = "") => (i === 0 ? "" : vint(1, i)) + vint(4, 1) + more;
function progress(entries: string[], extra = ""): string {
  const n = entries.length;
  const counters = n === 0 ? "" : vint(4, n) + vint(5, n);
  return len(9, entries.map((e) => len(1, e)).join("") + counters + len(7, stamp) + extra);
}
const option = (value: string, key = str(1, "k")) => len(4, key + len(2, value));

/** A valid checkpoint's fields by number, with `over` replacing some (a field's whole bytes). */
function body(over: Record<number, string> = {}, extra = ""): string {
  const fields: Record<number, string> = {
    1: str(1, FORMAT_ID),
    2: str(2, "s1"),
    3: str(3, "opt"),
    6: len(6, "07".repeat(32)),
    7: len(7, stamp),
    8: len(8, stamp),
    9: progress([]),
    12: len(12, str(1, "m") + vint(2, 1)),
    13: vint(13, 1),
    ...over,
  };
  return (
    Object.keys(fields)
      .map(Number)
      .sort((a, b) => a - b)
      .map((k) => fields[k])
      .join("") + extra
  );
}

const sealed = (hex: string): Uint8Array => seal(fromHex(hex));

function refusedAt(data: Uint8Array, field: string, rule: string, what: string): void {
  assert.throws(
    () => decode(data),
    (e: unknown) => {
      assert.ok(e instanceof ResumeMismatch, `${what}: ${String(e)}`);
      assert.equal(e.reason, "checkpoint_shape", what);
      assert.equal(`${e.rule} ${e.field}`, `${rule} ${field}`, `${what}: ${e.message}`);
      assert.ok(e.message.endsWith(` (rule ${rule})`), e.message);
      return true;
    },
  );
}

function roundTrips(data: Uint8Array, what: string): void {
  let out: Uint8Array;
  try {
    out = encode(decode(data));
  } catch (e) {
    assert.fail(`${what}: ${String(e)}`);
  }
  assert.equal(hexOf(out), hexOf(data), what);
}

// ---------------------------------------------------------------------------

test("CRC-32C is the Castagnoli CRC, and seal appends FD FF FF FF 0F and the CRC least significant byte first", () => {
  assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array()), 0);
  // Every length around the 8-byte blocks agrees with a bytewise CRC.
  const rand = prng(7);
  for (let n = 0; n < 40; n++) {
    const data = new Uint8Array(n).map(() => Math.floor(rand() * 256));
    let c = 0xffffffff;
    for (const b of data) {
      c ^= b;
      for (let k = 0; k < 8; k++) {
        c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
      }
    }
    assert.equal(crc32c(data), (c ^ 0xffffffff) >>> 0, `length ${n}`);
    // An offset view reads its own bytes only.
    const padded = new Uint8Array(n + 3);
    padded.set(data, 1);
    assert.equal(crc32c(padded.subarray(1, n + 1)), crc32c(data));
  }
  assert.equal(hexOf(seal(fromHex("0a00"))), "0a00" + "fdffffff0f" + hexOf(le32(crc32c(fromHex("0a00")))));
  assert.equal(TRAILER_SIZE, 9);
});

function le32(n: number): Uint8Array {
  return Uint8Array.of(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24);
}

test("every prefix and every single-bit flip of a valid checkpoint is refused (trailer or checksum)", () => {
  const valid = sealed(body({ 4: option(tList([tInt(1), tNull])), 9: progress([entry(0), entry(1)]) }));
  roundTrips(valid, "the checkpoint itself");
  for (let cut = 0; cut < valid.length; cut++) {
    const prefix = valid.subarray(0, cut);
    assert.throws(
      () => decode(prefix),
      (e: unknown) =>
        e instanceof ResumeMismatch &&
        e.field === "<input>" &&
        (e.rule === "input.trailer" || e.rule === "input.checksum"),
      `prefix ${cut}`,
    );
  }
  const body9 = valid.length - 9;
  for (let i = 0; i < valid.length; i++) {
    for (let bit = 0; bit < 8; bit++) {
      const flipped = valid.slice();
      flipped[i]! ^= 1 << bit;
      const rule = i >= body9 && i < body9 + 5 ? "input.trailer" : "input.checksum";
      refusedAt(flipped, "<input>", rule, `byte ${i} bit ${bit}`);
    }
  }
});

test("the input is checked in order: size, trailer, checksum, then the body", () => {
  refusedAt(new Uint8Array(8), "<input>", "input.trailer", "8 bytes");
  refusedAt(fromHex("fdffffff0f01000000"), "<input>", "input.checksum", "an empty body with a wrong CRC");
  // An empty body with its right CRC is a Checkpoint with no format.
  refusedAt(sealed(""), "format", "format.required", "an empty body");
  // A damaged body with a correct trailer but a wrong CRC: the checksum, not the grammar, is named.
  const bad = sealed("ff");
  bad[bad.length - 1]! ^= 1;
  refusedAt(bad, "<input>", "input.checksum", "wrong CRC over a bad body");
  refusedAt(sealed("ff"), "<input>", "wire.truncated", "a tag cut short");
});

test("decode takes a Uint8Array only: a Buffer and an offset view work, other values are a TypeError", () => {
  const data = sealed(body());
  roundTrips(data, "Uint8Array");
  assert.equal(hexOf(encode(decode(Buffer.from(data)))), hexOf(data));
  const padded = new Uint8Array(data.length + 10);
  padded.set(data, 4);
  assert.equal(hexOf(encode(decode(padded.subarray(4, 4 + data.length)))), hexOf(data));
  for (const other of [data.buffer, new DataView(data.buffer), new Int8Array(data), "text", null, [1, 2]]) {
    assert.throws(() => decode(other as unknown as Uint8Array), TypeError);
  }
});

const CASES: [what: string, hex: string, field: string, rule: string][] = [
  // Tags: truncation and minimality name the message, then the number and wire type.
  ["a tag cut short", body({}, "80"), "<input>", "wire.truncated"],
  ["a tag not minimal", body({}, "8000"), "<input>", "wire.varint"],
  ["a tag of 2^32", body({}, "8080808010"), "<input>", "wire.varint"],
  ["field number 0", body({}, "0000"), "<input>", "wire.tag"],
  ["the trailer's number in the body", body({}, "fdffffff0f00000000"), "<input>", "wire.tag"],
  ["a group (wire type 3)", body({}, tag(16, 3)), "<input>", "wire.tag"],
  ["an end group (wire type 4)", body({}, tag(16, 4)), "<input>", "wire.tag"],
  ["wire type 6", body({}, tag(16, 6)), "<input>", "wire.tag"],
  ["wire type 7", body({}, tag(16, 7)), "<input>", "wire.tag"],
  ["a group inside progress", body({ 9: progress([], tag(20, 3)) }), "progress", "wire.tag"],
  // Order.
  ["field numbers decrease", body({ 3: str(3, "opt") + str(1, FORMAT_ID) }), "<input>", "wire.order"],
  ["a singular field twice", body({ 2: str(2, "s1") + str(2, "s2") }), "<input>", "wire.order"],
  ["a repeated field interrupted", body({ 4: option(tNull), 5: str(5, "m") + option(tNull) }), "<input>", "wire.order"],
  ["an unknown field repeated with another wire type", body({}, vint(16, 1) + len(16, "")), "<input>", "wire.order"],
  ["out of order inside a trial", body({ 9: progress([vint(4, 1) + vint(1, 0)]) }), "progress.trial_log[0]", "wire.order"],
  // Wire types of known fields.
  ["session_id as a varint", body({ 2: vint(2, 1) }), "<input>", "wire.tag"],
  ["a trial's status as an I64", body({ 9: progress([tag(4, 1) + "0100000000000000"]) }), "progress.trial_log[0]", "wire.tag"],
  ["a score as an I32", body({ 9: progress([tag(3, 5) + "00000000" + vint(4, 1)]) }), "progress.trial_log[0]", "wire.tag"],
  ["order before the wire type", body({ 3: str(3, "opt") + vint(1, 1) }), "<input>", "wire.order"],
  // Oneof.
  ["a Term with two kinds", body({ 4: option(tBool(1) + tInt(2)) }), "optimizer_opts[0].value", "wire.oneof"],
  [
    "a list item with two kinds",
    body({ 4: option(tList([tNull, tNull, tNull + tBool(1)])) }),
    "optimizer_opts[0].value.list_value.items[2]",
    "wire.oneof",
  ],
  ["the wire type before the oneof", body({ 4: option(tBool(1) + len(3, "")) }), "optimizer_opts[0].value", "wire.tag"],
  // Values: truncation names the message, minimality the field.
  [
    "a status not minimal",
    body({ 9: progress([entry(0), entry(1), entry(2), vint(1, 3) + "208100"]) }),
    "progress.trial_log[3].status",
    "wire.varint",
  ],
  ["a varint cut at the end of its message", body({ 9: progress([vint(4, 1) + "3081"]) }), "progress.trial_log[0]", "wire.truncated"],
  ["a double cut short", body({ 9: progress([tag(3, 1) + "0000"]) }), "progress.trial_log[0]", "wire.truncated"],
  ["a length past its message", body({ 4: len(4, tag(1, 2) + "0a6b") }), "optimizer_opts[0]", "wire.truncated"],
  ["a length past the body", body({}, tag(16, 2) + "05aa"), "<input>", "wire.truncated"],
  ["a length not minimal", body({ 4: len(4, tag(1, 2) + "8100" + "6b") }), "optimizer_opts[0].key", "wire.varint"],
  ["a length cut short", body({ 4: len(4, tag(1, 2) + "81") }), "optimizer_opts[0]", "wire.truncated"],
  ["an unknown varint not minimal", body({ 4: option(tNull) + "" }, tag(16, 0) + "8000"), "<input>", "wire.varint"],
  [
    "an unknown varint not minimal, nested",
    body({ 4: len(4, str(1, "k") + len(2, tNull) + tag(9, 0) + "8000") }),
    "optimizer_opts[0]",
    "wire.varint",
  ],
  ["an unknown length not minimal", body({}, tag(16, 2) + "8000"), "<input>", "wire.varint"],
  ["an unknown I64 cut short", body({}, tag(16, 1) + "000000"), "<input>", "wire.truncated"],
  ["an unknown I32 cut short", body({}, tag(16, 5) + "000000"), "<input>", "wire.truncated"],
  ["a 10-byte varint ending in 02", body({}, tag(16, 0) + "ffffffffffffffffff02"), "<input>", "wire.varint"],
  ["an 11-byte varint", body({}, tag(16, 0) + "ffffffffffffffffff8001"), "<input>", "wire.varint"],
  ["a 10-byte value ending in 00", body({ 13: tag(13, 0) + "81808080808080808000" }), "status", "wire.varint"],
  // Ranges.
  ["a bool of 2", body({ 4: option(tBool(2)) }), "optimizer_opts[0].value.bool_value", "wire.range"],
  ["a uint32 of 2^32", body({ 12: len(12, str(1, "m") + vint(2, 2 ** 32)) }), "sampler_format.version", "wire.range"],
  ["an enum of 2^31", body({ 9: progress([vint(4, 2 ** 31)]) }), "progress.trial_log[0].status", "wire.range"],
  ["an enum of 2^64 - 2^31 - 1", body({ 13: vint(13, (1n << 64n) - (1n << 31n) - 1n) }), "status", "wire.range"],
  ["an int32 of 2^31", body({ 7: len(7, vint(1, 1) + vint(2, 2 ** 31)) }), "created_at.nanos", "wire.range"],
  // UTF-8.
  ["a string cut inside a character", body({ 2: len(2, "c3") }), "session_id", "wire.utf8"],
  ["a surrogate", body({ 2: len(2, "eda080") }), "session_id", "wire.utf8"],
  ["an overlong form", body({ 2: len(2, "c0af") }), "session_id", "wire.utf8"],
  ["above U+10FFFF", body({ 2: len(2, "f4908080") }), "session_id", "wire.utf8"],
  ["a Term string", body({ 4: option(len(6, "ff")) }), "optimizer_opts[0].value.string_value", "wire.utf8"],
  ["an atom", body({ 4: option(len(8, "80")) }), "optimizer_opts[0].value.atom_value", "wire.utf8"],
  // Defaults of fields without presence.
  ["an empty session id", body({ 2: len(2, "") }), "session_id", "wire.default"],
  ["an empty sampler blob", body({ 11: len(11, "") }), "sampler_blob", "wire.default"],
  ["nanos 0 written", body({ 7: len(7, vint(1, 1) + vint(2, 0)) }), "created_at.nanos", "wire.default"],
  ["seconds 0 written", body({ 8: len(8, vint(1, 0) + vint(2, 1)) }), "updated_at.seconds", "wire.default"],
  ["trial_idx 0 written", body({ 9: progress([vint(1, 0) + vint(4, 1)]) }), "progress.trial_log[0].trial_idx", "wire.default"],
  ["direction 0 written", body({ 15: vint(15, 0) }), "direction", "wire.default"],
  ["an empty option key", body({ 4: option(tNull, len(1, "")) }), "optimizer_opts[0].key", "wire.default"],
  // A negative int32, sign-extended to 10 bytes, passes the grammar; §3.5 refuses it.
  ["a negative nanos", body({ 7: len(7, vint(1, 1) + vint(2, -1)) }), "created_at.nanos", "timestamp.nanos"],
  ["the range before the default", body({ 4: option(tBool(2)) }), "optimizer_opts[0].value.bool_value", "wire.range"],
  // The first broken rule in byte order.
  ["two broken fields", body({ 2: len(2, "ff"), 11: len(11, "") }), "session_id", "wire.utf8"],
];

for (const [what, hex, field, rule] of CASES) {
  test(`grammar: ${what} is refused by ${rule} at ${field}`, () => {
    refusedAt(sealed(hex), field, rule, what);
    if (!rule.startsWith("wire.")) {
      return;
    }
    // A writer's check of its bytes refuses the same body the same way.
    assert.throws(
      () => checkBody(fromHex(hex)),
      (e: unknown) => e instanceof Error && e.message.endsWith(` (rule ${rule})`) && e.message.startsWith(`${field}: `),
    );
  });
}

test("grammar: what it allows is accepted and written back byte for byte", () => {
  const ok: [string, string][] = [
    ["the base checkpoint", body()],
    ["presence fields written with zero values", body({ 9: progress([tag(2, 2) + "00" + tag(3, 1) + "0000000000000000" + vint(4, 1)]) })],
    ["a -0.0 score", body({ 9: progress([tag(3, 1) + "0000000000000080" + vint(4, 1)]) })],
    ["an empty map and list", body({ 4: option(tList([])) + option(tMap([])), 10: len(10, "") })],
    ["repeated options", body({ 4: option(tNull) + option(tInt(-1)) + option(tBool(0)) })],
    ["a 10-byte varint ending in 01 in an unknown field", body({}, tag(16, 0) + "ffffffffffffffffff01")],
    [
      "unknown fields of every wire type, top level",
      body({}, vint(16, 1) + vint(16, 2) + tag(17, 1) + "0102030405060708" + tag(18, 5) + "01020304" + len(19, "ffff") + len(536_870_910, "")),
    ],
    ["unknown fields in a trial", body({ 9: progress([entry(0, vint(9, 7) + len(12, "c0"))]) })],
    ["unknown fields in a Term", body({ 4: option(tNull + vint(12, 5) + len(13, "ff")) })],
    ["unknown fields in a timestamp", body({ 7: len(7, stamp + vint(3, 1)) })],
    ["a valid multi-byte string", body({ 2: str(2, "s\u00e9\u4e2d\ud83d\ude00") })],
  ];
  for (const [what, hex] of ok) {
    roundTrips(sealed(hex), what);
  }
});

test("grammar: unknown fields are kept where they stood, as read, and written after the known fields", () => {
  const unknown = vint(9, 7) + len(12, "c0");
  const data = sealed(body({ 9: progress([entry(0, unknown)]) }, vint(16, 1) + len(17, "00ff")));
  const cp = decode(data);
  // One record per message: the first unknown field's number and wire type,
  // then its value and the following fields, verbatim.
  assert.deepEqual(
    cp.$unknown?.map((u) => [u.no, u.wireType, hexOf(u.data)]),
    [[16, 0, "01" + tag(17, 2) + "0200ff"]],
  );
  assert.deepEqual(
    unknownFields(cp).map((u) => [u.no, u.wireType, hexOf(u.data)]),
    [
      [16, 0, "01"],
      [17, 2, "0200ff"],
    ],
  );
  assert.equal(cp.progress!.trialLog[0]!.$unknown?.length, 1);
  assert.deepEqual(
    unknownFields(cp.progress!.trialLog[0]!).map((u) => [u.no, u.wireType, hexOf(u.data)]),
    [
      [9, 0, "07"],
      [12, 2, "01c0"],
    ],
  );
  assert.deepEqual(unknownFields(cp.progress!), []);
  assert.equal(hexOf(encode(cp)), hexOf(data));
});

test("grammar: unknownFields splits every wire type, a multi-byte tag and several records", () => {
  const fields: [number, number, string][] = [
    [16, 0, "ffffffffffffffffff01"],
    [16, 0, "00"],
    [17, 1, "0102030405060708"],
    [18, 5, "01020304"],
    [19, 2, "02ffff"],
    [536_870_910, 2, "00"],
  ];
  const hex = fields.map(([no, wt, v]) => tag(no, wt) + v).join("");
  const cp = decode(sealed(body({}, hex)));
  assert.equal(cp.$unknown?.length, 1);
  assert.deepEqual(
    unknownFields(cp).map((u) => [u.no, u.wireType, hexOf(u.data)]),
    fields,
  );
  // Hand-built records, one field each or several: split in order.
  const two = {
    $unknown: [
      { no: 20, wireType: 0, data: fromHex("2a") },
      { no: 21, wireType: 2, data: fromHex("0161" + vint(22, 3)) },
    ],
  };
  assert.deepEqual(
    unknownFields(two).map((u) => [u.no, u.wireType, hexOf(u.data)]),
    [
      [20, 0, "2a"],
      [21, 2, "0161"],
      [22, 0, "03"],
    ],
  );
  assert.throws(() => unknownFields({ $unknown: [{ no: 20, wireType: 2, data: fromHex("05") }] }), WireError);
});

test("grammar: a million small unknown fields cost one record per message, with bounded memory", () => {
  // 1,500,000 fields `60 00` (field 12, varint 0) in each of three places:
  // after a Term's kind, in a Timestamp, and at the top level (field 16).
  const n = 1_500_000;
  const run = "6000".repeat(n);
  const data = sealed(
    body({ 4: option(tBool(1) + run), 7: len(7, stamp + run) }, (tag(16, 0) + "00").repeat(n)),
  );
  const bound = 8 * data.length + 64 * 1024 * 1024;
  const before = process.memoryUsage();
  const cp = decode(data);
  const after = process.memoryUsage();
  const heap = after.heapUsed - before.heapUsed;
  const rss = after.rss - before.rss;
  assert.ok(heap < bound, `heap grew by ${heap} bytes for ${data.length} input bytes (bound ${bound})`);
  assert.ok(rss < bound, `rss grew by ${rss} bytes for ${data.length} input bytes (bound ${bound})`);
  const term = cp.optimizerOpts[0]!.value!;
  assert.equal(term.kind.case, "boolValue");
  assert.equal(term.$unknown?.length, 1);
  assert.equal(term.$unknown![0]!.data.length, 2 * n - 1);
  assert.equal(cp.createdAt!.$unknown?.length, 1);
  assert.equal(cp.$unknown?.length, 1);
  assert.equal(cp.$unknown![0]!.data.length, 3 * n - 2);
  const back = encode(cp);
  assert.equal(Buffer.compare(back, data), 0, "encode(decode(b)) is b");
});

test("grammar: a Term deeper than 24 is refused where it is reached, naming it", () => {
  const nest = (levels: number, inner: string) => {
    let t = inner;
    for (let i = 0; i < levels; i++) {
      t = tList([t]);
    }
    return t;
  };
  // In an option value (depth 1): 23 lists around a scalar reach depth 24.
  roundTrips(sealed(body({ 4: option(nest(23, tInt(1))) })), "depth 24");
  const items = (n: number) => ".list_value.items[0]".repeat(n);
  refusedAt(sealed(body({ 4: option(nest(24, tInt(1))) })), `optimizer_opts[0].value${items(24)}`, "term.depth", "depth 25");
  // The depth is checked before the content: a broken Term past the limit is still term.depth.
  refusedAt(sealed(body({ 4: option(nest(24, "ff")) })), `optimizer_opts[0].value${items(24)}`, "term.depth", "bad content");
  // In a TermMap field the keys and values start at depth 2.
  const stats = (value: string) => body({ 9: progress([entry(0, termMap(5, [[tInt(1), value]]))]) });
  roundTrips(sealed(stats(nest(22, tNull))), "stats value at depth 24");
  refusedAt(
    sealed(stats(nest(23, tNull))),
    `progress.trial_log[0].stats.entries[0].value${items(23)}`,
    "term.depth",
    "stats value at depth 25",
  );
  // Map values inside a Term: a map at depth d holds keys and values at d + 1.
  const maps = (levels: number) => {
    let t = tNull;
    for (let i = 0; i < levels; i++) {
      t = tMap([[tInt(i), t]]);
    }
    return t;
  };
  roundTrips(sealed(body({ 14: len(14, maps(23)) })), "maps to depth 24");
  refusedAt(
    sealed(body({ 14: len(14, maps(24)) })),
    // The key comes first in byte order: it is the first Term past the limit.
    "terminal_reason" + ".map_value.entries[0].value".repeat(23) + ".map_value.entries[0].key",
    "term.depth",
    "maps to depth 25",
  );
});

// A body of empty trials: each `0a 00` weighs 104 for 2 bytes; with a sampler blob
// (field 11) of `blob` bytes, which weighs nothing.
function emptyTrials(k: number, blob = 0): Uint8Array {
  const trial = fromHex(len(1, ""));
  const started = fromHex(len(7, stamp));
  const inner = k * trial.length + started.length;
  const prefix = fromHex(tag(9, 2) + varint(inner));
  const blobField = len(11, "78".repeat(blob));
  const top = fromHex(blob > 0 ? body({ 9: "", 11: blobField }) : body({ 9: "" }));
  // progress (field 9) goes between updated_at (8) and the blob (11) or sampler_format (12):
  // split the top.
  const at = hexOf(top).indexOf(blob > 0 ? blobField : len(12, str(1, "m") + vint(2, 1))) / 2;
  const out = new Uint8Array(top.length + prefix.length + inner);
  out.set(top.subarray(0, at), 0);
  let pos = at;
  out.set(prefix, pos);
  pos += prefix.length;
  for (let i = 0; i < k; i++) {
    out.set(trial, pos);
    pos += trial.length;
  }
  out.set(started, pos);
  pos += started.length;
  out.set(top.subarray(at), pos);
  return out;
}

const WEIGHT_FACTOR = weightLimit(1) - weightLimit(0);

test("grammar: the weight limit is 7 x the length + 48 MiB", () => {
  assert.equal(weightLimit(0), 50_331_648);
  assert.equal(weightLimit(100), 700 + 50_331_648);
  assert.equal(weightLimit(MAX_CHECKPOINT_BYTES), 7 * 268_435_456 + 50_331_648);
});

test("grammar: a weight exactly at the limit passes; one byte shorter (the limit 7 lower) is refused", () => {
  const weight = (k: number) => 104 * k + 240;
  let k = Math.floor((weightLimit(0) - 240) / (104 - 2 * WEIGHT_FACTOR)) - 40;
  let blob = 0;
  for (;;) {
    const excess = weight(k) - weightLimit(0);
    if (excess % WEIGHT_FACTOR === 0) {
      blob = excess / WEIGHT_FACTOR - (emptyTrials(k, 1).length + TRAILER_SIZE) + 1;
      assert.ok(blob <= 127, `the search started past the limit (k=${k}, blob=${blob})`);
      if (blob >= 2) {
        break;
      }
    }
    k++;
  }
  const at = emptyTrials(k, blob);
  const shorter = emptyTrials(k, blob - 1);
  assert.equal(scanBody(at), weight(k));
  assert.equal(scanBody(shorter), weight(k));
  assert.equal(weight(k), weightLimit(at.length + TRAILER_SIZE));
  assert.equal(shorter.length, at.length - 1);
  assert.equal(weight(k), weightLimit(shorter.length + TRAILER_SIZE) + WEIGHT_FACTOR);
  refusedAt(seal(at), "progress.trial_log[0].status", "trial.status", `${k} trials at the limit`);
  refusedAt(seal(shorter), "<input>", "input.weight", `${k} trials, one byte shorter`);
  assert.throws(
    () => checkBody(shorter),
    (e: unknown) =>
      e instanceof Error &&
      e.message ===
        `<input>: weight ${weight(k)} over the limit of ${weight(k) - WEIGHT_FACTOR} for ${shorter.length + TRAILER_SIZE} bytes (rule input.weight)`,
  );
});

test("grammar: the weight limit (7 x length + 48 MiB) refuses many small messages, just over and not just under", () => {
  const build = (k: number): Uint8Array => emptyTrials(k);
  // weight(k) = 104 k + 48 x 5 (progress, three timestamps, sampler_format); n(k) = body + 9.
  const weight = (k: number) => 104 * k + 240;
  const size = (k: number) => build(k).length + TRAILER_SIZE;
  let k = Math.floor(weightLimit(0) / (104 - 2 * WEIGHT_FACTOR));
  while (weight(k) <= weightLimit(size(k))) {
    k++;
  }
  while (weight(k - 1) > weightLimit(size(k - 1))) {
    k--;
  }
  const over = build(k);
  const under = build(k - 1);
  assert.equal(scanBody(over), weight(k));
  assert.equal(scanBody(under), weight(k - 1));
  assert.ok(weight(k) > weightLimit(over.length + 9) && weight(k - 1) <= weightLimit(under.length + 9));
  refusedAt(seal(over), "<input>", "input.weight", `${k} trials`);
  // One trial fewer passes the grammar and the weight: the next refusal is a rule of §1
  // (the trials have no status).
  refusedAt(seal(under), "progress.trial_log[0].status", "trial.status", `${k - 1} trials`);
  // The weight comes after the whole grammar: a grammar error at the very end wins.
  const broken = new Uint8Array([...over, ...fromHex("8000")]);
  refusedAt(seal(broken), "<input>", "wire.varint", "weight and a bad tag");
});

test("the writer checks its bytes: weight and size limits apply to encode as to decode", () => {
  assert.equal(MAX_CHECKPOINT_BYTES, 268_435_456);
  assert.throws(
    () => checkBody(new Uint8Array(MAX_CHECKPOINT_BYTES - TRAILER_SIZE + 1)),
    (e: unknown) => e instanceof Error && e.message === `<input>: ${MAX_CHECKPOINT_BYTES + 1} bytes, over the limit of ${MAX_CHECKPOINT_BYTES} (rule input.too_large)`,
  );
  assert.equal(weightLimit(100), 700 + 50_331_648);
});

test("isUtf8 agrees with a fatal TextDecoder on random and edge-case bytes", () => {
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  const valid = (b: Uint8Array) => {
    try {
      decoder.decode(b);
      return true;
    } catch {
      return false;
    }
  };
  const rand = prng(11);
  const pieces = [0x00, 0x7f, 0x80, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xa0, 0x9f, 0xed, 0xef, 0xf0, 0x90, 0x8f, 0xf4, 0xf5, 0xff];
  for (let i = 0; i < 50_000; i++) {
    const n = 1 + Math.floor(rand() * 6);
    const b = new Uint8Array(n).map(() => (rand() < 0.7 ? pieces[Math.floor(rand() * pieces.length)]! : Math.floor(rand() * 256)));
    assert.equal(isUtf8(b, 0, b.length), valid(b), hexOf(b));
  }
});

test("every valid vector re-encodes to its own bytes through the grammar, and scans to a weight", () => {
  const m = manifest();
  for (const v of m.valid) {
    const raw = vector(v.binpb);
    let body: Uint8Array;
    try {
      body = raw.subarray(0, raw.length - 9);
      scanBody(body);
    } catch (e) {
      assert.fail(`${v.name}: ${String(e)}`);
    }
    assert.equal(hexOf(encode(decode(raw))), hexOf(raw), v.name);
  }
});
