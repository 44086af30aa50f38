/** JavaScript values ↔ Term (FORMAT.md §1, §3) and hash_trainset (§6). */

import assert from "node:assert/strict";
import { test } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import {
  Atom,
  bigintToBytes,
  bytesToBigint,
  canonicalTerm,
  checkTerm,
  fromTerm,
  hashTrainset,
  hex,
  InvalidCheckpoint,
  MAX_TERM_DEPTH,
  type Term,
  TermMapEntrySchema,
  TermMapSchema,
  TermSchema,
  termBytes,
  TermTypeError,
  toTerm,
  Tuple,
} from "../src/index.js";
import { hexOf } from "./helpers.js";

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function refusedAt(fn: () => unknown, path: string, kind: typeof InvalidCheckpoint | typeof TermTypeError): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof kind, `expected ${kind.name}, got ${String(e)}`);
    assert.equal(e.path, path);
    assert.ok(e.message.startsWith(`${path}: `), e.message);
    return true;
  });
}

function deepList(depth: number): unknown {
  let v: unknown = "leaf";
  for (let i = 1; i < depth; i++) {
    v = [v];
  }
  return v;
}

test("scalars map to their kinds, and a number is always a float", () => {
  assert.equal(toTerm(null).kind.case, "nullValue");
  assert.deepEqual(toTerm(true).kind, { case: "boolValue", value: true });
  assert.deepEqual(toTerm(1n).kind, { case: "intValue", value: 1n });
  assert.deepEqual(toTerm(1).kind, { case: "floatValue", value: 1 });
  assert.deepEqual(toTerm("1").kind, { case: "stringValue", value: "1" });
  assert.deepEqual(toTerm(new Atom("ok")).kind, { case: "atomValue", value: "ok" });
  assert.equal(hexOf(termBytes(new Uint8Array([0, 255]))), "3a0200ff");
  assert.equal(hexOf(termBytes(1n)), "1802");
  assert.equal(hexOf(termBytes(-1n)), "1801");
  assert.equal(hexOf(termBytes(1)), "29000000000000f03f");
  assert.equal(hexOf(termBytes(true)), "1001");
  assert.equal(hexOf(termBytes(false)), "1000");
  assert.equal(hexOf(termBytes(null)), "0a00");
  assert.equal(hexOf(termBytes("")), "3200");
  // 1n, 1, true and "1" are four different Terms.
  const all = [1n, 1, true, "1", new Atom("1")].map((v) => hexOf(termBytes(v)));
  assert.equal(new Set(all).size, all.length);
});

test("int64 bounds are int_value; one past them is a minimal bigint_value", () => {
  assert.deepEqual(toTerm(INT64_MAX).kind, { case: "intValue", value: INT64_MAX });
  assert.deepEqual(toTerm(INT64_MIN).kind, { case: "intValue", value: INT64_MIN });
  assert.equal(hexOf(termBytes(INT64_MAX)), "18feffffffffffffffff01");
  assert.equal(hexOf(termBytes(INT64_MIN)), "18ffffffffffffffffff01");
  // FORMAT.md §3.3 examples.
  assert.equal(hexOf(termBytes(2n ** 63n)), "2209008000000000000000");
  assert.equal(hexOf(termBytes(-(2n ** 63n) - 1n)), "2209ff7fffffffffffffff");
  assert.equal(hexOf(bigintToBytes(2n ** 64n)), "010000000000000000");
  assert.equal(hexOf(bigintToBytes(-(2n ** 64n))), "ff0000000000000000");
  assert.equal(hexOf(bigintToBytes(-(2n ** 64n) - 1n)), "feffffffffffffffff");
});

test("big integers round-trip through bigint_value", () => {
  const values = [2n ** 63n, -(2n ** 63n) - 1n, 2n ** 64n - 1n, -(2n ** 64n), 10n ** 40n, -(10n ** 40n), 2n ** 200n + 12345n];
  for (const v of values) {
    const t = toTerm(v);
    assert.equal(t.kind.case, "bigintValue");
    checkTerm(t, "value");
    assert.equal(fromTerm(t), v);
    assert.equal(bytesToBigint(bigintToBytes(v)), v);
  }
  for (let k = 0n; k < 300n; k += 7n) {
    for (const v of [2n ** k, -(2n ** k), 2n ** k - 1n, -(2n ** k) + 1n]) {
      const raw = bigintToBytes(v);
      assert.equal(bytesToBigint(raw), v, `2^${k}`);
      // Minimal: dropping the first byte changes the value.
      if (raw.length > 1) {
        assert.notEqual(bytesToBigint(raw.subarray(1)), v, `2^${k} not minimal`);
      }
    }
  }
});

test("-0.0 is kept bit for bit, infinities are allowed, NaN is refused", () => {
  assert.equal(hexOf(termBytes(-0)), "290000000000000080");
  assert.equal(hexOf(termBytes(0)), "290000000000000000");
  assert.ok(Object.is(fromTerm(toTerm(-0)), -0));
  assert.equal(hexOf(termBytes(Infinity)), "29000000000000f07f");
  assert.equal(hexOf(termBytes(-Infinity)), "29000000000000f0ff");
  assert.equal(fromTerm(toTerm(-Infinity)), -Infinity);
  refusedAt(() => toTerm(NaN), "value", InvalidCheckpoint);
  refusedAt(() => toTerm({ a: [1, NaN] }), 'value["a"][1]', InvalidCheckpoint);
  refusedAt(() => hashTrainset([{}, { x: NaN }]), 'trainset[1]["x"]', InvalidCheckpoint);
});

test("maps are sorted by canonical key bytes, whatever the insertion order", () => {
  const a = termBytes(new Map<unknown, unknown>([["b", 1n], ["a", 2n], [1n, null], [new Atom("z"), []]]));
  const b = termBytes(new Map<unknown, unknown>([[new Atom("z"), []], [1n, null], ["a", 2n], ["b", 1n]]));
  assert.equal(hexOf(a), hexOf(b));
  const t = toTerm(new Map<unknown, unknown>([["b", 1n], ["a", 2n], [1n, null]]));
  assert.equal(t.kind.case, "mapValue");
  const keys = t.kind.value.entries.map((e) => hexOf(toBinary(TermSchema, e.key!)));
  assert.deepEqual(keys, ["1802", "320161", "320162"]);
  // A plain object is a map with string keys, the same as the Map.
  assert.equal(hexOf(termBytes({ b: 1n, a: 2n })), hexOf(termBytes(new Map([["a", 2n], ["b", 1n]]))));
  // A proper prefix sorts first: "a" before "ab".
  const prefix = toTerm({ ab: 1n, a: 2n });
  assert.equal(prefix.kind.case, "mapValue");
  assert.deepEqual(prefix.kind.value.entries.map((e) => e.key!.kind.value), ["a", "ab"]);
  checkTerm(t, "value");
});

test("duplicate map keys (equal canonical bytes) are refused", () => {
  refusedAt(
    () => toTerm(new Map([[new Uint8Array([1]), 1n], [new Uint8Array([1]), 2n]])),
    "value",
    InvalidCheckpoint,
  );
  refusedAt(() => toTerm({ m: new Map([[new Atom("x"), 1n], [new Atom("x"), 2n]]) }), 'value["m"]', InvalidCheckpoint);
  refusedAt(() => toTerm(new Map([[[1n], 1n], [[1n], 2n]])), "value", InvalidCheckpoint);
});

test("unsorted or duplicate keys in a Term message are refused by a reader", () => {
  const key = (s: string) => toTerm(s);
  const entry = (k: string) => create(TermMapEntrySchema, { key: key(k), value: toTerm(null) });
  const unsorted = create(TermSchema, {
    kind: { case: "mapValue", value: create(TermMapSchema, { entries: [entry("b"), entry("a")] }) },
  });
  refusedAt(() => checkTerm(unsorted, "t"), "t.map_value.entries[1].key", InvalidCheckpoint);
  const dup = create(TermSchema, {
    kind: { case: "mapValue", value: create(TermMapSchema, { entries: [entry("a"), entry("a")] }) },
  });
  refusedAt(() => checkTerm(dup, "t"), "t.map_value.entries[1].key", InvalidCheckpoint);
  // canonicalTerm (for a trainset read in any order) sorts, and still refuses duplicates.
  const sorted = canonicalTerm(unsorted, "t");
  checkTerm(sorted, "t");
  assert.equal(hexOf(toBinary(TermSchema, sorted)), hexOf(termBytes({ a: null, b: null })));
  refusedAt(() => canonicalTerm(dup, "items[0]"), "items[0].map_value.entries[1].key", InvalidCheckpoint);
  const noKey = create(TermSchema, {
    kind: { case: "mapValue", value: create(TermMapSchema, { entries: [create(TermMapEntrySchema, { value: toTerm(1n) })] }) },
  });
  refusedAt(() => checkTerm(noKey, "t"), "t.map_value.entries[0]", InvalidCheckpoint);
});

test("nesting up to depth 24 is accepted, 25 is refused", () => {
  assert.equal(MAX_TERM_DEPTH, 24);
  const ok = toTerm(deepList(24));
  checkTerm(ok, "value");
  refusedAt(() => toTerm(deepList(25)), "value" + "[0]".repeat(24), InvalidCheckpoint);
  // An empty container counts as depth 1.
  let v: unknown = [];
  for (let i = 1; i < 24; i++) {
    v = { k: v };
  }
  toTerm(v);
  refusedAt(() => toTerm({ k: v }), "value" + '["k"]'.repeat(24), InvalidCheckpoint);
  // A cycle is refused by the depth limit instead of looping forever.
  const cycle: unknown[] = [];
  cycle.push(cycle);
  assert.throws(() => toTerm(cycle), InvalidCheckpoint);
  // The reader applies the same limit to Term messages.
  let deep: Term = toTerm("leaf");
  for (let i = 1; i < 25; i++) {
    deep = create(TermSchema, { kind: { case: "listValue", value: { items: [deep] } } });
  }
  refusedAt(() => checkTerm(deep, "t"), "t" + ".list_value.items[0]".repeat(24), InvalidCheckpoint);
});

test("lone surrogates are refused, astral characters are fine", () => {
  refusedAt(() => toTerm("a\ud800b"), "value", InvalidCheckpoint);
  refusedAt(() => toTerm(["ok", "\udc00"]), "value[1]", InvalidCheckpoint);
  refusedAt(() => toTerm(new Atom("\ud83d")), "value", InvalidCheckpoint);
  refusedAt(() => toTerm({ "\ud800": 1n }), 'value["\\ud800"]', InvalidCheckpoint);
  assert.equal(hexOf(termBytes("\u{1F389}")), "3204f09f8e89");
});

test("values with no Term form are refused with their path", () => {
  refusedAt(() => toTerm(undefined), "value", TermTypeError);
  refusedAt(() => toTerm({ a: [1n, () => 1] }), 'value["a"][1]', TermTypeError);
  refusedAt(() => toTerm([Symbol("s")]), "value[0]", TermTypeError);
  refusedAt(() => toTerm({ when: new Date(0) }), 'value["when"]', TermTypeError);
  refusedAt(() => toTerm(new (class Example {})()), "value", TermTypeError);
  refusedAt(() => toTerm(new Uint16Array(2)), "value", TermTypeError);
  refusedAt(() => toTerm(new Set([1])), "value", TermTypeError);
  refusedAt(() => toTerm({ [Symbol("k")]: 1n }), "value", TermTypeError);
  // eslint-disable-next-line no-sparse-arrays
  refusedAt(() => toTerm([1n, , 3n]), "value[1]", TermTypeError);
  refusedAt(() => hashTrainset([{ ok: 1n }, { meta: [undefined] }]), 'trainset[1]["meta"][0]', TermTypeError);
});

test("fromTerm gives back bigint, number, Map, Tuple, Atom, Uint8Array", () => {
  const value = new Map<unknown, unknown>([
    ["int", 5n],
    ["float", 2.5],
    ["tuple", Tuple.of(1n, "x")],
    ["atom", new Atom("ok")],
    ["bytes", new Uint8Array([9])],
    ["list", [null, true, 2n ** 70n]],
    [new Number(-0), "negative zero key"],
  ]);
  const keyBytes = (toTerm(value).kind.value as { entries: { key?: Term }[] }).entries.map((e) =>
    hexOf(toBinary(TermSchema, e.key!)),
  );
  assert.ok(keyBytes.includes("290000000000000080"), "the boxed -0 key is the float -0.0");
  const back = fromTerm(toTerm(value)) as Map<unknown, unknown>;
  assert.ok(back instanceof Map);
  assert.equal(back.get("int"), 5n);
  assert.equal(back.get("float"), 2.5);
  assert.ok(back.get("tuple") instanceof Tuple);
  assert.deepEqual((back.get("tuple") as Tuple).items, [1n, "x"]);
  assert.ok(back.get("atom") instanceof Atom);
  assert.equal((back.get("atom") as Atom).name, "ok");
  assert.deepEqual(back.get("bytes"), new Uint8Array([9]));
  assert.deepEqual(back.get("list"), [null, true, 2n ** 70n]);
  // The Map cannot hold -0 as a key: it comes back boxed, and re-encodes as -0.0.
  const zeroKey = [...back.keys()].find((k) => k instanceof Number);
  assert.ok(zeroKey instanceof Number && Object.is(zeroKey.valueOf(), -0));
  assert.equal(hexOf(termBytes(back)), hexOf(termBytes(value)));
  const empty = create(TermSchema);
  refusedAt(() => fromTerm(empty), "term", InvalidCheckpoint);
});

test("hash_trainset: 32 bytes, insertion order irrelevant, type and example order relevant", () => {
  const qa = [
    { question: "2+2?", answer: "4" },
    { question: "capital of France?", answer: "Paris" },
  ];
  const d = hashTrainset(qa);
  assert.equal(d.length, 32);
  const reordered = qa.map((e) => ({ answer: e.answer, question: e.question }));
  assert.equal(hex(hashTrainset(reordered)), hex(d));
  assert.equal(hex(hashTrainset(qa.map((e) => new Map(Object.entries(e))))), hex(d));
  assert.notEqual(hex(hashTrainset([...qa].reverse())), hex(d));
  const digests = [[1n], [1], [true], ["1"]].map((t) => hex(hashTrainset(t)));
  assert.equal(new Set(digests).size, 4);
  // The empty trainset: SHA-256 of the domain separator and a zero count.
  assert.equal(hex(hashTrainset([])), "f58936aa0d3a7b6b9aef34fa6adea782377eb2c66bc27ce83bc28a2b979422eb");
  // Any iterable of examples.
  assert.equal(hex(hashTrainset(new Set(qa))), hex(d));
});
