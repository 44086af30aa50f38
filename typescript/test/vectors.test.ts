/** The golden vectors of tests/vectors/ (FORMAT.md §11). */

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  canonicalTerm,
  decode,
  encode,
  fromTerm,
  hashTrainset,
  hex,
  isRuleId,
  ResumeMismatch,
  TermSchema,
} from "../src/index.js";
import { parse } from "../src/wire.js";
import { hexOf, manifest, vector } from "./helpers.js";

const m = manifest();

test("the manifest lists every kind of vector", () => {
  assert.ok(m.valid.length >= 10, "valid vectors");
  assert.ok(m.unknown.length >= 1, "unknown-field vectors");
  assert.ok(m.invalid.length >= 30, "invalid vectors");
  assert.ok(m.canonicalize.length >= 1, "canonicalize vectors");
  assert.ok(m.trainset.length >= 5, "trainset vectors");
});

for (const v of m.valid) {
  test(`valid vector ${v.name} re-encodes to identical bytes`, () => {
    const raw = vector(v.binpb);
    const cp = decode(raw);
    assert.equal(hexOf(encode(cp)), hexOf(raw));
  });
}

for (const v of m.unknown) {
  test(`unknown-field vector ${v.name} is accepted and keeps its unknown fields`, () => {
    const raw = vector(v.binpb);
    const cp = decode(raw);
    assert.ok(cp.$unknown !== undefined && cp.$unknown.length > 0, "top-level unknown fields kept");
    assert.equal(hexOf(encode(cp)), hexOf(raw));
    // The known-only bytes are a valid checkpoint too, and stay as they are.
    const known = vector(v.known_only);
    assert.equal(hexOf(encode(decode(known))), hexOf(known));
    assert.notEqual(hexOf(known), hexOf(raw));
  });
}

for (const v of m.invalid) {
  test(`invalid vector ${v.name} is refused at ${v.field} by rule ${v.rule}`, () => {
    assert.ok(isRuleId(v.rule), `the manifest names no rule id for ${v.name}: ${String(v.rule)}`);
    const raw = vector(v.binpb);
    assert.throws(
      () => decode(raw),
      (e: unknown) => {
        assert.ok(e instanceof ResumeMismatch, `not a ResumeMismatch: ${String(e)}`);
        assert.equal(e.reason, "checkpoint_shape");
        assert.equal(e.field, v.field);
        assert.equal(e.rule, v.rule);
        assert.ok(e.message.startsWith(`checkpoint_shape: ${v.field}: `), e.message);
        assert.ok(e.message.endsWith(` (rule ${v.rule})`), e.message);
        assert.ok(!e.message.includes("\n"));
        return true;
      },
    );
  });
}

for (const v of m.canonicalize) {
  test(`canonicalize vector ${v.name}: decode refuses the input, and accepts its canonical bytes as they are`, () => {
    const input = vector(v.input);
    const canonical = vector(v.canonical);
    assert.equal(hexOf(encode(decode(canonical))), hexOf(canonical));
    if (hexOf(input) === hexOf(canonical)) {
      return;
    }
    // Other encodings are not checkpoints until rewritten (FORMAT.md §2.6); decode never rewrites.
    assert.throws(
      () => decode(input),
      (e: unknown) => e instanceof ResumeMismatch && e.reason === "checkpoint_shape" && isRuleId(e.rule),
    );
  });
}

for (const v of m.trainset) {
  test(`trainset vector ${v.name} hashes to the Python digest`, () => {
    const list = parse(TermSchema, vector(v.input));
    assert.equal(list.kind.case, "listValue");
    const examples = list.kind.value.items.map((item, i) => fromTerm(canonicalTerm(item, `items[${i}]`)));
    const digest = hashTrainset(examples);
    assert.equal(digest.length, 32);
    assert.equal(hex(digest), v.sha256);
  });
}

test("trainset digests differ where the vectors say they do", () => {
  const digest = new Map(m.trainset.map((v) => [v.name, v.sha256]));
  const names = ["int_one", "float_one", "bool_true", "string_one"].filter((n) => digest.has(n));
  assert.equal(new Set(names.map((n) => digest.get(n))).size, names.length);
  if (digest.has("qa") && digest.has("qa_unsorted_input")) {
    assert.equal(digest.get("qa"), digest.get("qa_unsorted_input"));
  }
});
