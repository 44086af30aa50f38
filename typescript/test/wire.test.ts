/**
 * Parsing untrusted bytes: a standalone Term by the rules of the official
 * runtimes (upb, Go), and decode never throwing anything but ResumeMismatch.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { toBinary } from "@bufbuild/protobuf";
import { decode, encode, ResumeMismatch, TermSchema } from "../src/index.js";
import { seal } from "../src/grammar.js";
import { parse, RECURSION_LIMIT, WireError } from "../src/wire.js";
import { fromHex, hexOf, manifest, prng, vector } from "./helpers.js";

function reencodeTerm(hex: string): string {
  return hexOf(toBinary(TermSchema, parse(TermSchema, fromHex(hex))));
}

function refused(hex: string): void {
  assert.throws(() => parse(TermSchema, fromHex(hex)), WireError, hex);
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

function ld(field: number, body: number[]): number[] {
  return [...varint((field << 3) | 2), ...varint(body.length), ...body];
}

/** A Term made of `messages` nested messages (Term, TermList, Term, … , TermNull). */
function nested(messages: number): Uint8Array {
  let body = ld(1, []); // Term{null_value: TermNull{}}: 2 messages
  let count = 2;
  while (count + 3 <= messages && (messages - count) % 2 === 1) {
    body = ld(11, ld(1, ld(1, body))); // Term{map: TermMap{entries: [Entry{key: …}]}}: +3
    count += 3;
  }
  while (count < messages) {
    body = ld(9, ld(1, body)); // Term{list: TermList{items: […]}}: +2
    count += 2;
  }
  assert.equal(count, messages);
  return new Uint8Array(body);
}

test("values of known fields follow the protobuf rules", () => {
  assert.equal(reencodeTerm("18ffffffffffffffffff7f"), "18ffffffffffffffffff01"); // bits past 64 dropped
  assert.equal(reencodeTerm("1002"), "1001"); // any non-zero bool is true
  assert.equal(reencodeTerm("10808080808080808001"), "1001");
  assert.equal(reencodeTerm("10011802"), "1802"); // the last oneof member wins
  assert.equal(reencodeTerm("900001"), "1001"); // a non-minimal tag of a known field
  assert.equal(reencodeTerm("4a8000"), "4a00"); // a non-minimal length
  assert.equal(reencodeTerm("3200"), "3200");
});

test("unknown fields and known fields with another wire type are kept, in order", () => {
  assert.equal(reencodeTerm("60ffffffffffffffffff7f"), "60ffffffffffffffffff7f");
  assert.equal(reencodeTerm("608100"), "608100"); // an unknown varint keeps its bytes
  assert.equal(reencodeTerm("6501020304"), "6501020304");
  assert.equal(reencodeTerm("63080164"), "63080164"); // an unknown group
  assert.equal(reencodeTerm("13080114"), "13080114"); // bool_value sent as a group
  assert.equal(reencodeTerm("1501020304"), "1501020304"); // bool_value sent as fixed32
  assert.equal(reencodeTerm("2801"), "2801"); // float_value sent as a varint
  assert.equal(reencodeTerm("6308016b6c64"), "6308016b6c64"); // nested groups
  assert.equal(reencodeTerm("63050102030464"), "63050102030464"); // field 0 inside a group passes, as in upb
  assert.equal(reencodeTerm("f8ffffff0f00"), "f8ffffff0f00"); // the largest field number
  assert.equal(reencodeTerm("6501020304" + "1001"), "1001" + "6501020304"); // unknown fields go last
});

test("malformed wire data is refused", () => {
  for (const hex of [
    "18" + "ff".repeat(10) + "01", // 11-byte varint
    "60" + "ff".repeat(10) + "01", // 11-byte unknown varint
    "0001", // field 0
    "66", // wire type 6
    "67", // wire type 7
    "64", // stray end-group
    "630801", // unterminated group
    "6308016c", // mismatched end-group
    "630464", // end-group of field 0 inside group 12
    "2900000000", // truncated double
    "3205 41", // length past the end
    "32ffffffff0f", // huge length
    "32818080808000 41", // 6-byte length
    "8080808080 00", // 6-byte tag
    "8080808010 00", // tag of 2^32
    "3201ff", // invalid UTF-8
    "3203eda080", // UTF-8 of a surrogate
    "3202c080", // overlong UTF-8
    "4a03 0a02 1801", // a nested length past its parent's end
    "80", // truncated tag
  ]) {
    refused(hex);
  }
});

test(`nesting: ${RECURSION_LIMIT} messages below the top one parse, one more does not`, () => {
  assert.equal(RECURSION_LIMIT, 100);
  for (const n of [99, 100, 101]) {
    parse(TermSchema, nested(n));
  }
  for (const n of [102, 103, 500]) {
    assert.throws(() => parse(TermSchema, nested(n)), WireError, String(n));
  }
  // Groups count as nesting too.
  const groups = (depth: number) =>
    fromHex("0a00" + "63".repeat(depth) + "64".repeat(depth));
  parse(TermSchema, groups(100));
  assert.throws(() => parse(TermSchema, groups(101)), WireError);
  // Very deep input is a refusal, not a stack overflow.
  const deep = new Uint8Array(200_000).fill(0x63);
  assert.throws(() => parse(TermSchema, deep), WireError);
});

test("decode never throws anything but ResumeMismatch (random bytes, truncations, bit flips)", () => {
  const m = manifest();
  const seeds = [...m.valid, ...m.unknown, ...m.invalid].map((v) => vector(v.binpb));
  const rand = prng(20_240_901);
  const int = (n: number) => Math.floor(rand() * n);
  let accepted = 0;
  let refusedCount = 0;
  const attempt = (bytes: Uint8Array) => {
    try {
      const cp = decode(bytes);
      // Whatever is accepted re-encodes, and its canonical bytes are stable.
      const again = encode(cp);
      assert.equal(hexOf(encode(decode(again))), hexOf(again));
      accepted++;
    } catch (e) {
      if (!(e instanceof ResumeMismatch) || e.reason !== "checkpoint_shape" || !e.field || e.rule === null) {
        assert.fail(`decode(${hexOf(bytes)}) threw ${String(e)}`);
      }
      refusedCount++;
    }
  };
  for (let i = 0; i < 3000; i++) {
    const bytes = new Uint8Array(int(64));
    for (let j = 0; j < bytes.length; j++) bytes[j] = int(256);
    attempt(bytes);
  }
  for (const seed of seeds) {
    for (let cut = 0; cut < seed.length; cut += Math.max(1, Math.floor(seed.length / 97))) {
      attempt(seed.subarray(0, cut));
    }
  }
  for (let i = 0; i < 20_000; i++) {
    // Half of them damage the body and seal it again, so the grammar, not the checksum, decides.
    const resealed = i % 2 === 0;
    const seed = seeds[int(seeds.length)]!;
    const bytes = resealed && seed.length >= 9 ? seed.slice(0, seed.length - 9) : seed.slice();
    if (bytes.length === 0) continue;
    const flips = 1 + int(3);
    for (let f = 0; f < flips; f++) {
      const at = int(bytes.length);
      const kind = int(3);
      if (kind === 0) bytes[at]! ^= 1 << int(8);
      else if (kind === 1) bytes[at] = int(256);
      else bytes[at] = [0x00, 0x7f, 0x80, 0xff][int(4)]!;
    }
    attempt(resealed ? seal(bytes) : bytes);
  }
  assert.ok(accepted > 100, `some corrupted inputs stay valid (${accepted})`);
  assert.ok(refusedCount > 10_000, `most are refused (${refusedCount})`);
});
