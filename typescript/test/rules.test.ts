/** Rule ids: the constants are the ids of spec/checkpoint-rules-v1.json, and every refusal names its rule. */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import {
  canonicalTerm,
  checkTerm,
  decode,
  encode,
  InvalidCheckpoint,
  isRuleId,
  MAX_CHECKPOINT_BYTES,
  OptionEntrySchema,
  recordTrial,
  ResumeMismatch,
  Rule,
  type RuleId,
  TermSchema,
  TermTypeError,
  toTerm,
  validate,
} from "../src/index.js";
import { seal } from "../src/grammar.js";
import { freshCheckpoint } from "./helpers.js";

const SPEC = new URL("../../../spec/checkpoint-rules-v1.json", import.meta.url);

test("the Rule constants are exactly the ids of the rules file", () => {
  const spec = JSON.parse(readFileSync(SPEC, "utf8")) as { rules: { id: string }[] };
  const ids = spec.rules.map((r) => r.id);
  assert.ok(ids.length > 0, "the rules file lists no rule");
  const constants = Object.values(Rule);
  assert.equal(new Set(constants).size, constants.length, "a rule id appears twice");
  assert.deepEqual(constants, ids, "the constants follow the order of the file");
  assert.ok(ids.every(isRuleId));
  assert.ok(!isRuleId("no.such_rule") && !isRuleId(undefined));
});

/** The rule of a refusal; fails for any other error. */
function ruleOf(run: () => unknown): RuleId | null {
  try {
    run();
  } catch (e) {
    if (e instanceof ResumeMismatch && e.reason === "checkpoint_shape") {
      assert.equal(e.message.endsWith(` (rule ${e.rule})`), e.rule !== null, e.message);
      return e.rule;
    }
    if (e instanceof InvalidCheckpoint) {
      assert.equal(e.message.endsWith(` (rule ${e.rule})`), e.rule !== null, e.message);
      assert.ok(!e.message.includes("(rule null)"), e.message);
      return e.rule;
    }
    throw e;
  }
  assert.fail("accepted");
}

function deep(levels: number): unknown {
  let v: unknown = 1n;
  for (let i = 0; i < levels; i++) {
    v = [v];
  }
  return v;
}

const CASES: [string, () => unknown, RuleId | null][] = [
  [
    "encode",
    () => {
      const cp = freshCheckpoint();
      cp.progress!.completed = 7n;
      return encode(cp);
    },
    Rule.COUNTERS_COMPLETED,
  ],
  [
    "validate",
    () => {
      const cp = freshCheckpoint();
      cp.optimizer = "";
      validate(cp);
    },
    Rule.OPTIMIZER_REQUIRED,
  ],
  [
    "a hand-built counter below 0",
    () => {
      const cp = freshCheckpoint();
      cp.progress!.attempts = -1n;
      return encode(cp);
    },
    Rule.WIRE_RANGE,
  ],
  [
    "a hand-built counter of the wrong type",
    () => {
      const cp = freshCheckpoint();
      cp.progress!.attempts = 1 as unknown as bigint;
      return encode(cp);
    },
    null,
  ],
  [
    "a hand-built string with a lone surrogate",
    () => {
      const cp = freshCheckpoint();
      cp.sessionId = "s\ud800";
      return encode(cp);
    },
    Rule.WIRE_UTF8,
  ],
  ["input over the size limit", () => decode(new Uint8Array(MAX_CHECKPOINT_BYTES + 1)), Rule.INPUT_TOO_LARGE],
  ["bytes without the trailer", () => decode(new Uint8Array([0x0a, 0x05])), Rule.INPUT_TRAILER],
  ["no bytes at all", () => decode(new Uint8Array()), Rule.INPUT_TRAILER],
  ["a body cut short", () => decode(seal(new Uint8Array([0x0a, 0x05]))), Rule.WIRE_TRUNCATED],
  ["a Checkpoint with no format", () => decode(seal(new Uint8Array())), Rule.FORMAT_REQUIRED],
  ["toTerm NaN", () => toTerm([NaN]), Rule.FLOAT_NAN],
  ["toTerm depth", () => toTerm(deep(30)), Rule.TERM_DEPTH],
  ["checkTerm no kind", () => checkTerm(create(TermSchema), "term"), Rule.TERM_KIND],
  [
    "canonicalTerm short bigint",
    () => canonicalTerm(create(TermSchema, { kind: { case: "bigintValue", value: new Uint8Array([1]) } }), "term"),
    Rule.TERM_BIGINT,
  ],
  ["recordTrial NaN", () => recordTrial(freshCheckpoint(), { score: NaN }), Rule.FLOAT_NAN],
  ["recordTrial status", () => recordTrial(freshCheckpoint(), { status: "maybe" as "ok" }), null],
  [
    "a credential",
    () => {
      const cp = freshCheckpoint();
      cp.optimizerOpts.push(create(OptionEntrySchema, { key: "api_key", value: toTerm("x") }));
      return encode(cp);
    },
    null,
  ],
];

for (const [name, run, rule] of CASES) {
  test(`refusal names its rule: ${name}`, () => {
    assert.equal(ruleOf(run), rule);
  });
}

test("a value with no Term form is a TermTypeError, with no rule", () => {
  assert.throws(() => toTerm(() => 1), TermTypeError);
});

test("ResumeMismatch of the resume gate has no rule", () => {
  const e = new ResumeMismatch("s1", "optimizer", "a", "b");
  assert.equal(e.rule, null);
  assert.ok(!e.message.includes("(rule"));
});
