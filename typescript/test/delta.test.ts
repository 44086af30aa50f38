/** Checkpoint deltas (FORMAT.md §13): reading, writing, applying, the rule ids and the delta vectors. */

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { clone, create, toBinary } from "@bufbuild/protobuf";
import {
  applyDelta,
  type Checkpoint,
  type CheckpointDelta,
  CheckpointDeltaSchema,
  CheckpointSchema,
  decode,
  decodeDelta,
  DELTA_FORMAT_ID,
  DeltaRule,
  encode,
  encodeDelta,
  InvalidDelta,
  isDeltaRuleId,
  KEPT_MASK,
  makeDelta,
  OptionEntrySchema,
  recordTrial,
  ResumeMismatch,
  Rule,
  SessionStatus,
  TermMapSchema,
  toTerm,
  toTermMap,
  TrialLogEntrySchema,
  TrialStatus,
  weightLimit,
} from "../src/index.js";
import { seal } from "../src/grammar.js";
import { freshCheckpoint, fromHex, hexOf, VECTORS } from "./helpers.js";

const SPEC = new URL("../../../spec/delta-rules-v1.json", import.meta.url);

test("the DeltaRule constants are exactly the ids of spec/delta-rules-v1.json", () => {
  const spec = JSON.parse(readFileSync(SPEC, "utf8")) as { rules: { id: string; path: string }[] };
  const ids = spec.rules.map((r) => r.id);
  assert.equal(ids.length, 7);
  const constants = Object.values(DeltaRule);
  assert.equal(new Set(constants).size, constants.length, "a rule id appears twice");
  assert.deepEqual(constants, ids, "the constants follow the order of the file");
  assert.ok(ids.every(isDeltaRuleId));
  assert.ok(!isDeltaRuleId("format.shape") && !isDeltaRuleId(undefined));
  // No delta rule shares an id with a checkpoint rule.
  const checkpointIds = new Set<string>(Object.values(Rule));
  assert.ok(ids.every((id) => !checkpointIds.has(id)));
});

/** A base with two trials, an artifact, options and a program module. */
function base(): Checkpoint {
  const cp = freshCheckpoint();
  cp.programModule = "app.program";
  cp.optimizerOpts.push(create(OptionEntrySchema, { key: "num_trials", value: toTerm(8n) }));
  cp.bestProgramArtifact = toTermMap(new Map([["prompt", "hello"]]));
  recordTrial(cp, { score: 0.5 });
  recordTrial(cp, { status: "error", error: new Map([["message", "boom"]]), errorClass: "ValueError" });
  return decode(encode(cp));
}

/** The base after one more trial and a new sampler blob. */
function successor(b: Checkpoint): Checkpoint {
  const next = clone(CheckpointSchema, b);
  recordTrial(next, { score: 0.75, candidateId: "c3" });
  next.samplerBlob = new Uint8Array([9, 9, 9]);
  return decode(encode(next));
}

interface DeltaInit {
  format?: string;
  baseGeneration?: bigint;
  baseTrials?: bigint;
  head?: Checkpoint | undefined;
  kept?: number;
}

/** A delta of v1.0 at generation 1 whose head holds a session id only, with `init` over it. */
function delta(init: DeltaInit): CheckpointDelta {
  const d = create(CheckpointDeltaSchema, {
    format: DELTA_FORMAT_ID,
    baseGeneration: 1n,
    head: create(CheckpointSchema, { sessionId: "s1" }),
  });
  return Object.assign(d, init);
}

/** The bytes of a hand-built delta, written by the runtime, no check. */
function raw(d: CheckpointDelta): Uint8Array {
  return seal(toBinary(CheckpointDeltaSchema, d));
}

/** The InvalidDelta `run` throws; fails for anything else. */
function refusal(run: () => unknown): InvalidDelta {
  try {
    run();
  } catch (e) {
    if (e instanceof InvalidDelta) {
      assert.equal(e.message, `delta_shape: ${e.path}: ${e.detail}${e.rule === null ? "" : ` (rule ${e.rule})`}`);
      return e;
    }
    throw e;
  }
  assert.fail("accepted");
}

function refusedBoth(d: CheckpointDelta, path: string, rule: string): void {
  const read = refusal(() => decodeDelta(raw(d)));
  assert.deepEqual([read.path, read.rule], [path, rule], read.message);
  const written = refusal(() => encodeDelta(d));
  assert.deepEqual([written.path, written.rule], [path, rule], written.message);
}

test("a delta made by makeDelta keeps unchanged fields and round-trips byte for byte", () => {
  const b = base();
  const next = successor(b);
  const d = makeDelta(b, next, 4n);
  assert.equal(d.format, DELTA_FORMAT_ID);
  assert.equal(d.baseGeneration, 4n);
  assert.equal(d.baseTrials, 2n);
  // optimizer 3, options 4, program_module 5, trainset_hash 6, created_at 7,
  // artifact 10, sampler_format 12, status 13; not the new sampler blob (11).
  const expectedKept = [3, 4, 5, 6, 7, 10, 12, 13].reduce((m, n) => m | (1 << n), 0);
  assert.equal(d.kept, expectedKept);
  assert.equal(d.head!.progress!.trialLog.length, 1);
  assert.equal(d.head!.optimizer, "");
  assert.equal(d.head!.bestProgramArtifact, undefined);
  const bytes = encodeDelta(d);
  const back = decodeDelta(bytes);
  assert.equal(hexOf(encodeDelta(back)), hexOf(bytes));
  // Applying it gives the new checkpoint, byte for byte.
  assert.equal(hexOf(encode(applyDelta(b, back))), hexOf(encode(next)));
  // A delta is smaller than the checkpoint it makes.
  assert.ok(bytes.length < encode(next).length);
});

test("format: any v1 minor is read; anything else is delta.format", () => {
  for (const ok of ["dsxir.optimizer_session.delta/v1.0", "dsxir.optimizer_session.delta/v1.17"]) {
    const bytes = encodeDelta(delta({ format: ok }));
    assert.equal(decodeDelta(bytes).format, ok);
  }
  for (const bad of [
    "",
    "dsxir.optimizer_session.delta/v2.0",
    "dsxir.optimizer_session.delta/v1.01",
    "dsxir.optimizer_session.delta/v1.",
    "dsxir.optimizer_session.checkpoint/v1.1",
    "dsxir.optimizer_session.delta/v1.0 ",
    "dsxir.optimizer_session.delta/v1.١",
  ]) {
    refusedBoth(delta({ format: bad }), "format", DeltaRule.FORMAT);
  }
});

test("base_generation 0 is delta.base_generation", () => {
  refusedBoth(delta({ baseGeneration: 0n }), "base_generation", DeltaRule.BASE_GENERATION);
});

test("no head is delta.head", () => {
  refusedBoth(delta({ head: undefined }), "head", DeltaRule.HEAD);
});

test("a kept bit outside 0xFCF8 is delta.kept", () => {
  assert.equal(KEPT_MASK, 0xfcf8);
  for (const n of [0, 1, 2, 8, 9, 16, 31]) {
    refusedBoth(delta({ kept: 2 ** n }), "kept", DeltaRule.KEPT);
  }
  // Checked before kept_in_head.
  refusedBoth(delta({ kept: (1 << 2) | (1 << 3), head: create(CheckpointSchema, { optimizer: "x" }) }), "kept", DeltaRule.KEPT);
  assert.equal(decodeDelta(encodeDelta(delta({ kept: KEPT_MASK }))).kept, KEPT_MASK);
});

test("a kept field held by the head is delta.kept_in_head, the lowest-numbered first", () => {
  const head = create(CheckpointSchema, {
    sessionId: "s1",
    optimizer: "o",
    samplerBlob: new Uint8Array([1]),
    direction: 1,
  });
  const all = (1 << 3) | (1 << 11) | (1 << 15);
  refusedBoth(delta({ head, kept: all }), "head.optimizer", DeltaRule.KEPT_IN_HEAD);
  refusedBoth(delta({ head, kept: (1 << 11) | (1 << 15) }), "head.sampler_blob", DeltaRule.KEPT_IN_HEAD);
  refusedBoth(delta({ head, kept: 1 << 15 }), "head.direction", DeltaRule.KEPT_IN_HEAD);
  // A field with presence is held even when empty.
  const empty = create(CheckpointSchema, { programModule: "", bestProgramArtifact: create(TermMapSchema) });
  refusedBoth(delta({ head: empty, kept: 1 << 10 }), "head.best_program_artifact", DeltaRule.KEPT_IN_HEAD);
  const pm = refusal(() => decodeDelta(raw(delta({ head: empty, kept: (1 << 5) | (1 << 10) }))));
  assert.equal(pm.path, "head.program_module");
  // Kept fields the head does not hold are fine.
  assert.doesNotThrow(() => decodeDelta(encodeDelta(delta({ head, kept: 1 << 4 }))));
});

test("grammar refusals name the path below head, before the delta rules", () => {
  // format "x" (delta.format if reached), then head: progress with one entry
  // whose status is written as 0.
  const body = fromHex("0a0178" + "2206" + "4a04" + "0a02" + "2000");
  const e = refusal(() => decodeDelta(seal(body)));
  assert.deepEqual([e.path, e.rule], ["head.progress.trial_log[0].status", Rule.WIRE_DEFAULT]);
  // The head's bytes cut short name the head; a wrong trailer the input.
  const cut = refusal(() => decodeDelta(seal(fromHex("2202" + "0a05"))));
  assert.deepEqual([cut.path, cut.rule], ["head", Rule.WIRE_TRUNCATED]);
  const damaged = raw(delta({}));
  damaged[damaged.length - 1]! ^= 1;
  assert.deepEqual(refusal(() => decodeDelta(damaged)).rule, Rule.INPUT_CHECKSUM);
  assert.deepEqual(refusal(() => decodeDelta(new Uint8Array([1, 2]))).rule, Rule.INPUT_TRAILER);
  // A field of the delta's top level written with its default, and out of order.
  const zero = refusal(() => decodeDelta(seal(fromHex("1000"))));
  assert.deepEqual([zero.path, zero.rule], ["base_generation", Rule.WIRE_DEFAULT]);
  const order = refusal(() => decodeDelta(seal(fromHex("1001" + "0a0178"))));
  assert.deepEqual([order.path, order.rule], ["<input>", Rule.WIRE_ORDER]);
  // kept is a uint32.
  const big = refusal(() => decodeDelta(seal(fromHex("28" + "8080808010"))));
  assert.deepEqual([big.path, big.rule], ["kept", Rule.WIRE_RANGE]);
});

test("the weight limit counts the delta's length and the head", () => {
  // A head holding k empty trial entries (2 bytes, weight 104 each).
  const build = (k: number): Uint8Array => {
    const entries = new Uint8Array(2 * k);
    for (let i = 0; i < k; i++) {
      entries[2 * i] = 0x0a;
    }
    const progress = concat(fromHex("4a"), varint(entries.length), entries);
    const head = concat(fromHex("22"), varint(progress.length), progress);
    const format = concat(fromHex("0a"), varint(DELTA_FORMAT_ID.length), new TextEncoder().encode(DELTA_FORMAT_ID));
    return seal(concat(format, fromHex("1001"), head));
  };
  // Find the smallest k over the limit: weight 48 (head) + 48 (progress) + 104 k.
  let k = 1;
  for (;;) {
    const size = build(k).length;
    if (48 + 48 + 104 * k > weightLimit(size)) {
      break;
    }
    k = Math.max(k + 1, Math.floor((weightLimit(size) - 96) / 104) + 1);
  }
  const over = build(k);
  assert.ok(96 + 104 * k > weightLimit(over.length));
  const e = refusal(() => decodeDelta(over));
  assert.deepEqual([e.path, e.rule], ["<input>", Rule.INPUT_WEIGHT]);
  // One entry fewer is within the limit, or close enough that only the limit decides.
  const under = build(k - 1);
  if (96 + 104 * (k - 1) <= weightLimit(under.length)) {
    assert.equal(decodeDelta(under).head!.progress!.trialLog.length, k - 1);
  }
});

function varint(n: number): Uint8Array {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return new Uint8Array(out);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

test("unknown fields of the delta and of its head are kept byte for byte", () => {
  const b = base();
  const d = makeDelta(b, successor(b), 1n);
  // Fields 1-3, the head (4) with an unknown field 99 (varint 5) at its end,
  // kept (5), then an unknown field 6 of the delta (bytes "z").
  const before = toBinary(CheckpointDeltaSchema, { ...d, head: undefined, kept: 0 });
  const head = concat(toBinary(CheckpointSchema, d.head!), fromHex("98" + "06" + "05"));
  const kept = concat(fromHex("28"), varint(d.kept));
  const bytes = seal(concat(before, fromHex("22"), varint(head.length), head, kept, fromHex("32017a")));
  const read = decodeDelta(bytes);
  assert.equal(hexOf(encodeDelta(read)), hexOf(bytes));
  // The head's unknown field reaches the new checkpoint.
  const result = encode(applyDelta(b, read));
  assert.ok(hexOf(result).includes("980605"), "the head's unknown field is in the result");
});

test("apply: kept fields come from the base, unknown fields inside them included", () => {
  const b = base();
  // An unknown field (20, varint 1) inside the base's artifact and options' Term.
  const bytes = encode(b);
  const cp = decode(bytes);
  cp.bestProgramArtifact!.$unknown = [{ no: 20, wireType: 0, data: new Uint8Array([1]) }];
  const withUnknown = decode(seal(toBinary(CheckpointSchema, cp)));
  const head = clone(CheckpointSchema, withUnknown);
  for (const f of ["optimizer", "programModule", "bestProgramArtifact", "optimizerOpts"] as const) {
    (head as Record<string, unknown>)[f] = create(CheckpointSchema)[f];
  }
  head.progress!.trialLog = [];
  const d = delta({
    baseTrials: 2n,
    head,
    kept: (1 << 3) | (1 << 4) | (1 << 5) | (1 << 10),
  });
  const out = applyDelta(withUnknown, decodeDelta(encodeDelta(d)));
  assert.equal(hexOf(encode(out)), hexOf(encode(withUnknown)));
  assert.deepEqual(out.bestProgramArtifact!.$unknown?.map((u) => u.no), [20]);
  // A kept field the base does not hold stays absent (program_module 5, terminal_reason 14).
  const noModule = clone(CheckpointSchema, withUnknown);
  noModule.programModule = undefined;
  const r = applyDelta(noModule, decodeDelta(encodeDelta(delta({ ...d, kept: d.kept | (1 << 14) }))));
  assert.equal(r.programModule, undefined);
  assert.equal(r.terminalReason, undefined);
  // The arguments are not changed.
  assert.equal(withUnknown.progress!.trialLog.length, 2);
  assert.equal(head.progress!.trialLog.length, 0);
});

test("apply: delta.session, then delta.base_trials", () => {
  const b = base();
  const d = makeDelta(b, successor(b), 1n);
  const other = clone(CheckpointDeltaSchema, d);
  other.head!.sessionId = "s2";
  other.baseTrials = 5n;
  const s = refusal(() => applyDelta(b, other));
  assert.deepEqual([s.path, s.rule], ["head.session_id", DeltaRule.SESSION]);
  const t = refusal(() => applyDelta(b, { ...d, baseTrials: 1n }));
  assert.deepEqual([t.path, t.rule], ["base_trials", DeltaRule.BASE_TRIALS]);
});

/** The checkpoint_shape refusal of `run`. */
function shapeOf(run: () => unknown): ResumeMismatch {
  try {
    run();
  } catch (e) {
    if (e instanceof ResumeMismatch && e.reason === "checkpoint_shape") {
      return e;
    }
    throw e;
  }
  assert.fail("accepted");
}

test("apply: the new checkpoint is checked by §7 with its own paths", () => {
  const b = base();
  const d = makeDelta(b, successor(b), 1n);
  // The appended entry must have trial_idx 2, its place in the new log.
  const wrongIdx = clone(CheckpointDeltaSchema, d);
  wrongIdx.head!.progress!.trialLog[0]!.trialIdx = 0n;
  const e = shapeOf(() => applyDelta(b, wrongIdx));
  assert.deepEqual([e.field, e.rule], ["progress.trial_log[2].trial_idx", Rule.TRIAL_TRIAL_IDX]);
  // A head without progress makes a checkpoint without one.
  const noProgress = clone(CheckpointDeltaSchema, d);
  noProgress.head!.progress = undefined;
  const p = shapeOf(() => applyDelta(b, decodeDelta(encodeDelta(noProgress))));
  assert.deepEqual([p.field, p.rule], ["progress", Rule.PROGRESS_REQUIRED]);
  // Counters of the head that do not count the base's entries.
  const counters = clone(CheckpointDeltaSchema, d);
  counters.head!.progress!.completed = 1n;
  const c = shapeOf(() => applyDelta(b, counters));
  assert.deepEqual([c.field, c.rule], ["progress.completed", Rule.COUNTERS_COMPLETED]);
  // A head missing a field the delta does not keep: the result lacks it.
  const noStatus = clone(CheckpointDeltaSchema, d);
  noStatus.kept &= ~(1 << 13);
  const st = shapeOf(() => applyDelta(b, noStatus));
  assert.deepEqual([st.field, st.rule], ["status", Rule.STATUS_KNOWN]);
});

test("apply: a terminal head over a running base", () => {
  const b = base();
  const next = clone(CheckpointSchema, b);
  next.status = SessionStatus.COMPLETED;
  const d = makeDelta(b, next, 3n);
  assert.equal(d.head!.status, SessionStatus.COMPLETED);
  assert.equal(d.head!.progress!.trialLog.length, 0);
  assert.equal(hexOf(encode(applyDelta(b, decodeDelta(encodeDelta(d))))), hexOf(encode(next)));
});

test("encodeDelta refuses a hand-built value with no encoding, naming the field", () => {
  const head = create(CheckpointSchema, {
    sessionId: "s1",
    progress: { trialLog: [create(TrialLogEntrySchema, { status: TrialStatus.OK, candidateId: "c\ud800" })] },
  });
  const e = refusal(() => encodeDelta(delta({ head })));
  assert.deepEqual([e.path, e.rule], ["head.progress.trial_log[0].candidate_id", Rule.WIRE_UTF8]);
  const r = refusal(() => encodeDelta(delta({ baseTrials: -1n })));
  assert.deepEqual([r.path, r.rule], ["base_trials", Rule.WIRE_RANGE]);
  const k = refusal(() => encodeDelta(delta({ kept: 2 ** 32 })));
  assert.deepEqual([k.path, k.rule], ["kept", Rule.WIRE_RANGE]);
});

test("a credential in the head: read, but refused by the writers, naming no rule", () => {
  const b = base();
  const head = clone(CheckpointSchema, b);
  head.optimizerOpts = [create(OptionEntrySchema, { key: "api_key", value: toTerm("sk-live") })];
  head.progress!.trialLog = [];
  const d = delta({ head, baseTrials: 2n });
  const bytes = raw(d);
  const read = decodeDelta(bytes);
  assert.equal(read.head!.optimizerOpts.length, 1);
  const e = refusal(() => encodeDelta(read));
  assert.deepEqual([e.path, e.rule], ["head.optimizer_opts[0].key", null]);
  assert.ok(!e.message.includes("(rule"), e.message);
  // The checkpoint it makes is refused as encode would refuse it.
  const r = shapeOf(() => applyDelta(b, read));
  assert.deepEqual([r.field, r.rule], ["optimizer_opts[0].key", null]);
});

test("makeDelta refuses a checkpoint that does not extend the base", () => {
  const b = base();
  const other = clone(CheckpointSchema, b);
  other.progress!.trialLog[0]!.score = 0.25;
  assert.throws(() => makeDelta(b, other, 1n), /does not extend/);
  const foreign = clone(CheckpointSchema, b);
  foreign.sessionId = "s9";
  assert.throws(() => makeDelta(b, foreign, 1n), /session/);
});

// ---------------------------------------------------------------------------
// The delta vectors (tests/vectors/delta/manifest.json).

interface DeltaCase {
  name: string;
  description: string;
  base: string;
  delta: string;
  result?: string;
  refused?: { stage: "read" | "apply" | "result"; rule: string; field: string };
}

const DELTA_VECTORS = new URL("delta/", VECTORS);
const MANIFEST = new URL("manifest.json", DELTA_VECTORS);
const present = existsSync(MANIFEST);

test("delta vectors: every case gives its result or its refusal", { skip: present ? false : "tests/vectors/delta/manifest.json is absent" }, () => {
  const m = JSON.parse(readFileSync(MANIFEST, "utf8")) as { cases: DeltaCase[] };
  assert.ok(m.cases.length > 0);
  const file = (name: string) => new Uint8Array(readFileSync(new URL(name, DELTA_VECTORS)));
  const stages = new Set<string>();
  for (const c of m.cases) {
    const deltaBytes = file(c.delta);
    const baseCp = decode(file(c.base));
    const got = (() => {
      let d: CheckpointDelta;
      try {
        d = decodeDelta(deltaBytes);
      } catch (e) {
        if (e instanceof InvalidDelta) {
          return { stage: "read", rule: e.rule, field: e.path };
        }
        throw e;
      }
      assert.equal(hexOf(encodeDelta(d)), hexOf(deltaBytes), `${c.name}: the delta re-encodes to its bytes`);
      try {
        return { bytes: encode(applyDelta(baseCp, d)) };
      } catch (e) {
        if (e instanceof InvalidDelta) {
          return { stage: "apply", rule: e.rule, field: e.path };
        }
        if (e instanceof ResumeMismatch && e.reason === "checkpoint_shape") {
          return { stage: "result", rule: e.rule, field: e.field };
        }
        throw e;
      }
    })();
    if (c.refused !== undefined) {
      stages.add(c.refused.stage);
      assert.deepEqual(got, c.refused, `${c.name}: ${c.description}`);
    } else {
      assert.ok(c.result !== undefined, c.name);
      assert.ok("bytes" in got && got.bytes !== undefined, `${c.name}: refused ${JSON.stringify(got)}`);
      assert.equal(hexOf(got.bytes), hexOf(file(c.result)), c.name);
    }
  }
});
