/** hashTrainsetJson / hashTrainsetJsonl (FORMAT.md §6.1) against tests/vectors/trainset-json/cases.json. */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  hashTrainset,
  hashTrainsetJson,
  hashTrainsetJsonl,
  MAX_CHECKPOINT_BYTES,
  TrainsetJsonError,
} from "../src/index.js";
import { fromHex, hexOf, VECTORS } from "./helpers.js";

interface Case {
  name: string;
  format: "json" | "jsonl";
  text?: string;
  text_hex?: string;
  digest?: string;
  error?: boolean;
  line?: number;
}

const CASES = (JSON.parse(readFileSync(new URL("trainset-json/cases.json", VECTORS), "utf8")) as { cases: Case[] })
  .cases;

function refusal(fn: () => unknown): TrainsetJsonError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof TrainsetJsonError, `expected TrainsetJsonError, got ${String(e)}`);
    return e;
  }
  assert.fail("not refused");
}

test("every case gives its digest or is refused naming the byte offset and line", () => {
  assert.ok(CASES.length >= 100);
  for (const c of CASES) {
    const hash = c.format === "json" ? hashTrainsetJson : hashTrainsetJsonl;
    const bytes = c.text_hex !== undefined ? fromHex(c.text_hex) : new TextEncoder().encode(c.text!);
    const inputs: (string | Uint8Array)[] = c.text !== undefined ? [bytes, c.text] : [bytes];
    for (const input of inputs) {
      if (c.error) {
        const e = refusal(() => hash(input));
        assert.equal(e.line, c.line, `${c.name}: ${e.message}`);
        const prefix = `${c.line === undefined ? "" : `line ${c.line}, `}byte ${e.offset}: `;
        assert.ok(e.message.startsWith(prefix), `${c.name}: ${e.message}`);
        assert.ok(e.offset >= 0 && e.offset <= bytes.length, c.name);
      } else {
        assert.equal(hexOf(hash(input)), c.digest, c.name);
      }
    }
  }
});

test("integers are bigints, other numbers doubles", () => {
  const same: [string, unknown][] = [
    ["[1]", 1n],
    ["[-0]", 0n],
    ["[1.0]", 1],
    ["[-0.0]", -0],
    ["[18446744073709551616]", 2n ** 64n],
    ["[9007199254740993]", 2n ** 53n + 1n],
    ["[9007199254740993.0]", 2 ** 53],
    ["[5e-324]", Number.MIN_VALUE],
    ['[{"b": [true, null], "a": "x"}]', new Map<string, unknown>([["a", "x"], ["b", [true, null]]])],
    ['[{"__proto__": 1}]', new Map([["__proto__", 1n]])],
  ];
  for (const [text, value] of same) {
    assert.equal(hexOf(hashTrainsetJson(text)), hexOf(hashTrainset([value])), text);
  }
  assert.notEqual(hexOf(hashTrainsetJson("[1]")), hexOf(hashTrainsetJson("[1.0]")));
});

test("errors name UTF-8 byte offsets and lines", () => {
  let e = refusal(() => hashTrainsetJson('[{"a": 1, "a": 2}]'));
  assert.deepEqual([e.offset, e.line, e.detail], [10, undefined, 'duplicate key "a"']);
  assert.equal(e.message, 'byte 10: duplicate key "a"');
  e = refusal(() => hashTrainsetJson('["日本", x]'));
  assert.equal(e.offset, 11);
  e = refusal(() => hashTrainsetJsonl('"é"\n\n[1, x]'));
  assert.deepEqual([e.offset, e.line], [10, 3]);
  e = refusal(() => hashTrainsetJson('["é\ud800"]'));
  assert.equal(e.offset, 4);
  assert.match(e.message, /not UTF-8/);
  e = refusal(() => hashTrainsetJsonl('"é"\n"\udc00"'));
  assert.deepEqual([e.offset, e.line], [6, 2]);
  e = refusal(() => hashTrainsetJsonl(new Uint8Array([0x31, 0x0a, 0x22, 0xff, 0x22])));
  assert.deepEqual([e.offset, e.line], [3, 2]);
});

test("text over the size limit is refused before parsing", () => {
  const big = new Uint8Array(MAX_CHECKPOINT_BYTES + 1);
  for (const hash of [hashTrainsetJson, hashTrainsetJsonl]) {
    assert.match(refusal(() => hash(big)).message, /more than the limit/);
  }
});

test("text JSON.stringify writes hashes as the values JSON.parse reads, floats kept apart", () => {
  const examples = [{ q: "Grüße 𝄞 \u2028", n: 0.5, l: [null, true, -7.25, 1e300, "\u0000\"\\"] }, [], {}];
  const asMaps = [
    new Map<string, unknown>([
      ["q", "Grüße 𝄞 \u2028"],
      ["n", 0.5],
      ["l", [null, true, -7.25, 1e300, "\u0000\"\\"]],
    ]),
    [],
    new Map(),
  ];
  assert.equal(hexOf(hashTrainsetJson(JSON.stringify(examples))), hexOf(hashTrainset(asMaps)));
  const lines = examples.map((e) => JSON.stringify(e)).join("\r\n");
  assert.equal(hexOf(hashTrainsetJsonl(lines)), hexOf(hashTrainset(asMaps)));
});
