/** encode / decode of checkpoints (FORMAT.md §2, §7) and the resume gate (§8). */

import assert from "node:assert/strict";
import { test } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";
import {
  AlreadyTerminal,
  CheckpointSchema,
  checkResume,
  Direction,
  decode,
  encode,
  FORMAT_ID,
  hashTrainset,
  InvalidCheckpoint,
  OptionEntrySchema,
  ResumeMismatch,
  SessionStatus,
  statusName,
  TermMapEntrySchema,
  TermMapSchema,
  TermSchema,
  toTerm,
  toTermMap,
  TrialLogEntrySchema,
  TrialStatus,
  type Checkpoint,
} from "../src/index.js";
import { seal } from "../src/grammar.js";
import { freshCheckpoint, fromHex, hexOf } from "./helpers.js";

/** The body of checkpoint bytes: all but the 9-byte trailer. */
function body(raw: Uint8Array): Uint8Array {
  return raw.subarray(0, raw.length - 9);
}

/** decode refuses `raw` by `rule` at `field`. */
function refused(raw: Uint8Array, field: string, rule: string): void {
  assert.throws(
    () => decode(raw),
    (e: unknown) => {
      assert.ok(e instanceof ResumeMismatch, String(e));
      assert.equal(e.field, field);
      assert.equal(e.rule, rule);
      return true;
    },
  );
}

function withTrials(): Checkpoint {
  const cp = freshCheckpoint();
  const p = cp.progress!;
  p.trialLog.push(
    create(TrialLogEntrySchema, { trialIdx: 0n, score: 0, status: TrialStatus.OK, durationMs: 5n }),
    create(TrialLogEntrySchema, { trialIdx: 1n, status: TrialStatus.ERROR, error: toTermMap({ class: "Boom" }) }),
    create(TrialLogEntrySchema, { trialIdx: 2n, score: -0, status: TrialStatus.OK, stats: toTermMap({ tokens: 3n }) }),
  );
  p.attempts = 4n;
  p.completed = 2n;
  p.errors = 1n;
  p.bestScore = 0;
  p.bestTrialIdx = 0n;
  return cp;
}

/**
 * encode refuses `cp` at `path`; unless `writerOnly` (a JavaScript value with
 * no protobuf form, such as a lone surrogate, which a lax writer would mangle),
 * decode refuses the bytes a lax writer produces at the same field.
 */
function encodeRefusedAt(cp: Checkpoint, path: string, writerOnly = false): void {
  assert.throws(
    () => encode(cp),
    (e: unknown) => {
      assert.ok(e instanceof InvalidCheckpoint, String(e));
      assert.equal(e.path, path);
      return true;
    },
  );
  if (writerOnly) {
    return;
  }
  let raw: Uint8Array | undefined;
  try {
    raw = seal(toBinary(CheckpointSchema, cp));
  } catch {
    assert.fail(`${path}: a lax writer could not write it`);
  }
  assert.throws(
    () => decode(raw),
    (e: unknown) => e instanceof ResumeMismatch && e.field === path,
  );
}

test("encode writes known fields in field-number order and round-trips", () => {
  const cp = withTrials();
  cp.programModule = "my.Program";
  cp.optimizerOpts.push(create(OptionEntrySchema, { key: "k", value: toTerm(3n) }));
  cp.terminalReason = toTerm(null);
  const sealed = encode(cp);
  const raw = body(sealed);
  assert.equal(hexOf(sealed.subarray(raw.length, raw.length + 5)), "fdffffff0f");
  // The top-level tags, in order.
  const tags: number[] = [];
  let pos = 0;
  while (pos < raw.length) {
    const tag = raw[pos]!;
    tags.push(tag >> 3);
    pos++;
    const wt = tag & 7;
    if (wt === 2) {
      let len = 0;
      let shift = 0;
      for (;;) {
        const b = raw[pos++]!;
        len += (b & 0x7f) * 2 ** shift;
        shift += 7;
        if (b < 0x80) break;
      }
      pos += len;
    } else if (wt === 0) {
      while (raw[pos++]! >= 0x80);
    } else {
      assert.fail(`unexpected wire type ${wt}`);
    }
  }
  assert.deepEqual(tags, [1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14]);
  assert.equal(hexOf(encode(decode(sealed))), hexOf(sealed));
});

test("an explicit 0.0 or -0.0 score is written; no score writes nothing", () => {
  const raw = hexOf(encode(withTrials()));
  // trial 0: trial_idx 0 (omitted), score 0.0, status OK, duration 5
  assert.ok(raw.includes("1900000000000000002001" + "3005"), raw);
  // trial 2: trial_idx 2, score -0.0
  assert.ok(raw.includes("0802190000000000000080" + "2001"), raw);
  // best_score 0.0 (field 2 of Progress) then best_trial_idx 0 (field 3)
  assert.ok(raw.includes("1100000000000000001800"), raw);
  const cp = decode(encode(withTrials()));
  const log = cp.progress!.trialLog;
  assert.ok(Object.is(log[0]!.score, 0));
  assert.equal(log[1]!.score, undefined);
  assert.ok(Object.is(log[2]!.score, -0));
  assert.ok(Object.is(cp.progress!.bestScore, 0));
});

test("-0.0 best score must match the trial's bits", () => {
  const cp = withTrials();
  cp.progress!.bestScore = -0;
  encodeRefusedAt(cp, "progress.best_trial_idx");
  cp.progress!.bestTrialIdx = 2n;
  encode(cp);
});

test("unknown fields are kept and written after the known fields of their message", () => {
  const cp = withTrials();
  const known = encode(cp);
  // Field 16 (varint 42) at the top, and field 9 (bytes "abc") in trial 1.
  const extraTop = fromHex("80012a");
  const extraEntry = fromHex("4a03616263");
  const entry1 = toBinary(TrialLogEntrySchema, cp.progress!.trialLog[1]!);
  cp.progress!.trialLog[1]!.$unknown = [{ no: 9, wireType: WireType.LengthDelimited, data: fromHex("03616263") }];
  cp.$unknown = [{ no: 16, wireType: WireType.Varint, data: fromHex("2a") }];
  const raw = encode(cp);
  assert.ok(hexOf(body(raw)).endsWith("80012a"));
  assert.ok(hexOf(raw).includes(hexOf(entry1) + hexOf(extraEntry)));
  assert.equal(raw.length, known.length + extraTop.length + extraEntry.length);
  // A reader keeps them and writes them back unchanged.
  const back = decode(raw);
  assert.equal(back.$unknown?.length, 1);
  assert.equal(hexOf(encode(back)), hexOf(raw));
  // Unknown fields before known ones are not canonical: refused, by reader and writer.
  refused(seal(new Uint8Array([...extraTop, ...body(known)])), "<input>", "wire.order");
  const early = withTrials();
  early.$unknown = [{ no: 3, wireType: WireType.Varint, data: fromHex("2a") }];
  assert.throws(
    () => encode(early),
    (e: unknown) => e instanceof InvalidCheckpoint && e.path === "<input>" && e.rule === "wire.order",
  );
});

test("a known field with another wire type is refused (wire.tag), naming its message", () => {
  const known = body(encode(withTrials()));
  // direction (field 15) as a string.
  refused(seal(new Uint8Array([...known, 0x7a, 0x00])), "<input>", "wire.tag");
  // An unknown field 16 as a varint is fine, and kept.
  const raw = seal(new Uint8Array([...known, 0x80, 0x01, 0x05]));
  assert.equal(hexOf(encode(decode(raw))), hexOf(raw));
});

test("non-canonical input is refused, naming the rule and the place", () => {
  const canonical = body(encode(withTrials()));
  const cp = withTrials();
  // Fields out of order: sampler_format first, then the rest.
  const sf = toBinary(CheckpointSchema, create(CheckpointSchema, { samplerFormat: cp.samplerFormat }));
  const rest = toBinary(CheckpointSchema, { ...cp, samplerFormat: undefined } as Checkpoint);
  refused(seal(new Uint8Array([...sf, ...rest])), "<input>", "wire.order");
  // A singular field written twice.
  const twice = new Uint8Array([...toBinary(CheckpointSchema, create(CheckpointSchema, { format: "old" })), ...canonical]);
  refused(seal(twice), "<input>", "wire.order");
  // A non-minimal varint (status 1 as 81 00) names the field.
  const status = hexOf(canonical).lastIndexOf("6801");
  const padded = fromHex(hexOf(canonical).slice(0, status) + "688100" + hexOf(canonical).slice(status + 4));
  refused(seal(padded), "status", "wire.varint");
  // The canonical bytes themselves go through unchanged.
  assert.equal(hexOf(encode(decode(seal(canonical)))), hexOf(seal(canonical)));
});

test("encode refuses what decode refuses, naming the field", () => {
  const cases: [string, (cp: Checkpoint) => void, boolean?][] = [
    ["format", (cp) => (cp.format = "")],
    ["format", (cp) => (cp.format = "dsxir.optimizer_session.checkpoint/v2.0")],
    ["format", (cp) => (cp.format = "dsxir.optimizer_session.checkpoint/v01.0")],
    ["session_id", (cp) => (cp.sessionId = "")],
    ["session_id", (cp) => (cp.sessionId = "bad\ud800"), true],
    ["optimizer", (cp) => (cp.optimizer = "")],
    ["optimizer_opts[0].key", (cp) => cp.optimizerOpts.push(create(OptionEntrySchema, { key: "", value: toTerm(1n) }))],
    ["optimizer_opts[0].value", (cp) => cp.optimizerOpts.push(create(OptionEntrySchema, { key: "k" }))],
    [
      "optimizer_opts[0].value.list_value.items[1].float_value",
      (cp) =>
        cp.optimizerOpts.push(
          create(OptionEntrySchema, {
            key: "k",
            value: create(TermSchema, {
              kind: { case: "listValue", value: { items: [toTerm(1), create(TermSchema, { kind: { case: "floatValue", value: NaN } })] } },
            }),
          }),
        ),
    ],
    ["program_module", (cp) => (cp.programModule = "")],
    ["trainset_hash", (cp) => (cp.trainsetHash = new Uint8Array(31))],
    ["created_at", (cp) => (cp.createdAt = undefined)],
    ["updated_at.nanos", (cp) => (cp.updatedAt!.nanos = 1_000_000_000)],
    ["updated_at.seconds", (cp) => (cp.updatedAt!.seconds = 253_402_300_800n)],
    ["created_at.seconds", (cp) => (cp.createdAt!.seconds = -62_135_596_801n)],
    ["progress", (cp) => (cp.progress = undefined)],
    ["progress.trial_log[1].trial_idx", (cp) => (cp.progress!.trialLog[1]!.trialIdx = 5n)],
    ["progress.trial_log[0].score", (cp) => (cp.progress!.trialLog[0]!.score = NaN)],
    ["progress.trial_log[1].status", (cp) => (cp.progress!.trialLog[1]!.status = 7 as TrialStatus)],
    ["progress.trial_log[1].status", (cp) => (cp.progress!.trialLog[1]!.status = TrialStatus.UNSPECIFIED)],
    [
      "progress.trial_log[2].stats.entries[1].key",
      (cp) => {
        const stats = cp.progress!.trialLog[2]!.stats!;
        stats.entries.push(create(TermMapEntrySchema, { key: toTerm("a"), value: toTerm(1n) }));
      },
    ],
    ["progress.trial_log[0].candidate_id", (cp) => (cp.progress!.trialLog[0]!.candidateId = "\udfff"), true],
    ["progress.trial_log[0].duration_ms", (cp) => (cp.progress!.trialLog[0]!.durationMs = -1n), true],
    ["progress.started_at", (cp) => (cp.progress!.startedAt = undefined)],
    ["progress.best_score", (cp) => (cp.progress!.bestScore = NaN)],
    ["progress.best_score", (cp) => (cp.progress!.bestScore = undefined)],
    ["progress.best_trial_idx", (cp) => (cp.progress!.bestTrialIdx = undefined)],
    ["progress.best_trial_idx", (cp) => (cp.progress!.bestTrialIdx = 3n)],
    ["progress.best_trial_idx", (cp) => (cp.progress!.bestTrialIdx = 1n)],
    ["progress.best_trial_idx", (cp) => (cp.progress!.bestScore = 0.5)],
    ["progress.completed", (cp) => (cp.progress!.completed = 3n)],
    ["progress.errors", (cp) => (cp.progress!.errors = 0n)],
    ["progress.attempts", (cp) => (cp.progress!.attempts = 2n)],
    [
      "best_program_artifact.entries[0].value",
      (cp) => (cp.bestProgramArtifact = create(TermMapSchema, { entries: [create(TermMapEntrySchema, { key: toTerm("k"), value: create(TermSchema) })] })),
    ],
    ["sampler_format", (cp) => (cp.samplerFormat = undefined)],
    ["sampler_format.module", (cp) => (cp.samplerFormat!.module = "")],
    ["sampler_format.version", (cp) => (cp.samplerFormat!.version = 0)],
    ["status", (cp) => (cp.status = SessionStatus.UNSPECIFIED)],
    ["status", (cp) => (cp.status = 9 as SessionStatus)],
    ["terminal_reason", (cp) => (cp.terminalReason = create(TermSchema))],
    ["direction", (cp) => (cp.direction = 2 as Direction)],
    ["direction", (cp) => (cp.direction = -1 as Direction)],
    [
      "terminal_reason.bigint_value",
      (cp) => (cp.terminalReason = create(TermSchema, { kind: { case: "bigintValue", value: new Uint8Array([0, 1]) } })),
    ],
  ];
  for (const [path, change, writerOnly] of cases) {
    const cp = withTrials();
    change(cp);
    try {
      encodeRefusedAt(cp, path, writerOnly);
    } catch (e) {
      assert.fail(`${path} (${change.toString().slice(0, 80)}): ${String(e)}`);
    }
  }
});

test("the first failing check in FORMAT.md §7 order is reported", () => {
  const cp = withTrials();
  cp.status = SessionStatus.UNSPECIFIED;
  cp.progress!.completed = 9n;
  cp.optimizer = "";
  encodeRefusedAt(cp, "optimizer");
  cp.optimizer = "o";
  encodeRefusedAt(cp, "progress.completed");
  cp.progress!.completed = 2n;
  encodeRefusedAt(cp, "status");
  cp.status = SessionStatus.RUNNING;
  cp.direction = 2 as Direction;
  cp.terminalReason = create(TermSchema);
  encodeRefusedAt(cp, "terminal_reason");
  cp.terminalReason = undefined;
  encodeRefusedAt(cp, "direction");
});

test("direction: lower is written after terminal_reason, higher (the default) is not written", () => {
  const cp = withTrials();
  assert.equal(cp.direction, Direction.HIGHER);
  const higher = body(encode(cp));
  cp.direction = Direction.LOWER;
  const lower = encode(cp);
  assert.equal(hexOf(body(lower)), hexOf(higher) + "7801");
  assert.equal(decode(lower).direction, Direction.LOWER);
  // An explicit 0 on the wire is the default written: refused.
  refused(seal(fromHex(hexOf(higher) + "7800")), "direction", "wire.default");
  assert.throws(
    () => decode(seal(fromHex(hexOf(higher) + "7802"))),
    (e: unknown) => e instanceof ResumeMismatch && e.field === "direction" && e.detail === "unknown direction 2",
  );
  // Outside the int32 range: refused by the grammar.
  refused(seal(fromHex(hexOf(higher) + "788080808008")), "direction", "wire.range");
});

test("decode refuses oversized input before parsing, and reports <input> for bad bytes", () => {
  const big = new Uint8Array(256 * 1024 * 1024 + 1);
  assert.throws(
    () => decode(big),
    (e: unknown) => e instanceof ResumeMismatch && e.field === "<input>" && /over the limit/.test(e.message),
  );
  for (const hex of ["ff", "0a05616263", "0aff", "08" + "ff".repeat(10) + "01", "0a02c328", "0f", "0c", "00"]) {
    assert.throws(
      () => decode(fromHex(hex)),
      (e: unknown) => e instanceof ResumeMismatch && e.reason === "checkpoint_shape" && e.field === "<input>",
      hex,
    );
  }
  // The session id is carried when it was readable.
  const cp = withTrials();
  cp.progress!.completed = 0n;
  assert.throws(
    () => decode(seal(toBinary(CheckpointSchema, cp))),
    (e: unknown) => e instanceof ResumeMismatch && e.sessionId === "s1" && e.field === "progress.completed",
  );
});

test("resume gate: terminal sessions, then optimizer, sampler module, version, trainset, direction", () => {
  const cp = withTrials();
  const trainset = [{ q: "1+1", a: "2" }];
  cp.trainsetHash = hashTrainset(trainset);
  const ok = { optimizer: "dspy.teleprompt.MIPROv2", samplerFormat: ["demo.RandomSearch", 1] as const };
  checkResume(cp, ok);
  checkResume(cp, { ...ok, trainset });
  checkResume(cp, { ...ok, trainsetHash: hashTrainset(trainset) });
  checkResume(cp, { ...ok, samplerFormat: ["demo.RandomSearch", [3, 1]] });
  checkResume(cp, { ...ok, direction: "higher" });
  cp.status = SessionStatus.PAUSED;
  checkResume(cp, ok);

  const mismatch = (expect: Parameters<typeof checkResume>[1], message: string, reason: string) =>
    assert.throws(
      () => checkResume(cp, expect),
      (e: unknown) => {
        assert.ok(e instanceof ResumeMismatch, String(e));
        assert.equal(e.reason, reason);
        assert.equal(e.sessionId, "s1");
        assert.equal(e.message, message);
        return true;
      },
    );
  mismatch(
    { ...ok, optimizer: "other.Opt" },
    'cannot resume session "s1": optimizer: the checkpoint was written by optimizer dspy.teleprompt.MIPROv2; this run is other.Opt. Resume with dspy.teleprompt.MIPROv2, or start a new session.',
    "optimizer",
  );
  mismatch(
    { ...ok, samplerFormat: ["other.Sampler", 1] },
    "cannot resume session \"s1\": sampler_format: the checkpoint's sampler is demo.RandomSearch; this run's is other.Sampler. Resume with sampler demo.RandomSearch, or start a new session.",
    "sampler_format",
  );
  mismatch(
    { ...ok, samplerFormat: ["demo.RandomSearch", 2] },
    'cannot resume session "s1": sampler_version: the checkpoint holds sampler state version 1; this run accepts 2. Accept version 1 if the sampler can read it, or start a new session.',
    "sampler_version",
  );
  mismatch(
    { ...ok, samplerFormat: ["demo.RandomSearch", [3, 2]] },
    'cannot resume session "s1": sampler_version: the checkpoint holds sampler state version 1; this run accepts [2,3]. Accept version 1 if the sampler can read it, or start a new session.',
    "sampler_version",
  );
  const other = hashTrainset([{ q: "1+1", a: "3" }]);
  mismatch(
    { ...ok, trainset: [{ q: "1+1", a: "3" }] },
    `cannot resume session "s1": trainset_hash: the checkpoint was made on the trainset with hash ${hexOf(cp.trainsetHash)}; this run's hash is ${hexOf(other)}. Pass the same trainset, or start a new session.`,
    "trainset_hash",
  );
  mismatch(
    { ...ok, trainset, direction: "lower" },
    "cannot resume session \"s1\": direction: the checkpoint's scores are better when higher; this run's are better when lower. Resume with direction higher, or start a new session.",
    "direction",
  );
  // The trainset is checked before the direction.
  mismatch({ ...ok, trainset: [{ q: "1+1", a: "3" }], direction: "lower" }, `cannot resume session "s1": trainset_hash: the checkpoint was made on the trainset with hash ${hexOf(cp.trainsetHash)}; this run's hash is ${hexOf(other)}. Pass the same trainset, or start a new session.`, "trainset_hash");
  cp.direction = Direction.LOWER;
  checkResume(cp, { ...ok, direction: "lower" });
  checkResume(cp, ok);
  mismatch(
    { ...ok, direction: "higher" },
    "cannot resume session \"s1\": direction: the checkpoint's scores are better when lower; this run's are better when higher. Resume with direction lower, or start a new session.",
    "direction",
  );
  cp.direction = 2 as Direction;
  checkResume(cp, ok);
  assert.throws(
    () => checkResume(cp, { ...ok, direction: "lower" }),
    (e: unknown) => e instanceof ResumeMismatch && e.reason === "checkpoint_shape" && e.field === "direction",
  );
  cp.direction = Direction.HIGHER;
  // The checks run in order: the optimizer is reported before the version.
  mismatch({ optimizer: "x", samplerFormat: ["y", 9] }, 'cannot resume session "s1": optimizer: the checkpoint was written by optimizer dspy.teleprompt.MIPROv2; this run is x. Resume with dspy.teleprompt.MIPROv2, or start a new session.', "optimizer");
  assert.throws(() => checkResume(cp, { ...ok, trainset, trainsetHash: other }), TypeError);

  for (const [status, name] of [
    [SessionStatus.COMPLETED, "completed"],
    [SessionStatus.FAILED, "failed"],
    [SessionStatus.CANCELLED, "cancelled"],
  ] as const) {
    cp.status = status;
    assert.equal(statusName(cp), name);
    // Terminal comes first, even when everything else mismatches too.
    assert.throws(
      () => checkResume(cp, { optimizer: "x", samplerFormat: ["y", 9] }),
      (e: unknown) => {
        assert.ok(e instanceof AlreadyTerminal);
        assert.equal(e.sessionId, "s1");
        assert.equal(e.status, name);
        assert.equal(e.message, `session "s1" is already terminal: status=${name}`);
        return true;
      },
    );
  }
});

test("a checkpoint survives encode → decode with every field set", () => {
  const cp = withTrials();
  cp.programModule = "pkg.Program";
  cp.optimizerOpts.push(
    create(OptionEntrySchema, { key: "num_candidates", value: toTerm(16n) }),
    create(OptionEntrySchema, { key: "num_candidates", value: toTerm(8n) }),
  );
  cp.bestProgramArtifact = toTermMap({ prompt: "Answer briefly.", demos: [] });
  cp.status = SessionStatus.COMPLETED;
  cp.terminalReason = toTerm({ reason: "budget" });
  cp.progress!.trialLog[0]!.candidateId = "c0";
  cp.progress!.trialLog[1]!.errorClass = "ValueError";
  const raw = encode(cp);
  const back = decode(raw);
  assert.equal(back.format, FORMAT_ID);
  assert.deepEqual(back.optimizerOpts.map((o) => o.key), ["num_candidates", "num_candidates"]);
  assert.equal(back.progress!.trialLog[1]!.errorClass, "ValueError");
  assert.equal(hexOf(encode(back)), hexOf(raw));
});
