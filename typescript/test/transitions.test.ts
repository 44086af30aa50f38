/** The transitions of FORMAT.md §9, statusName and fromTerm of a TermMap. */

import assert from "node:assert/strict";
import { test } from "node:test";
import { clone, create, equals } from "@bufbuild/protobuf";
import {
  AlreadyTerminal,
  Atom,
  type Checkpoint,
  CheckpointSchema,
  Direction,
  directionName,
  encode,
  fromTerm,
  InvalidCheckpoint,
  REDACTED,
  screen,
  SessionStatus,
  TermMapEntrySchema,
  TermMapSchema,
  TermSchema,
  TermTypeError,
  toTerm,
  toTermMap,
  TrialStatus,
  Tuple,
  validate,
} from "../src/index.js";
import { CheckpointError, InvalidTransition } from "../src/errors.js";
import { isTerminal, statusName } from "../src/status.js";
import { cancel, complete, fail, pause, recordTrial, resume } from "../src/transitions.js";
import { freshCheckpoint } from "./helpers.js";

const { RUNNING, PAUSED, COMPLETED, FAILED, CANCELLED } = SessionStatus;

function session(status: SessionStatus): Checkpoint {
  const cp = freshCheckpoint();
  cp.status = status;
  return cp;
}

const TRANSITIONS: [string, string, (cp: Checkpoint) => void][] = [
  ["record_trial", "record a trial", (cp) => void recordTrial(cp, { score: 1 })],
  ["pause", "pause", pause],
  ["resume", "resume", resume],
  ["complete", "complete", (cp) => complete(cp)],
  ["fail", "fail", (cp) => fail(cp)],
  ["cancel", "cancel", (cp) => cancel(cp)],
];

const REFUSED = "refused";
const TERMINAL = "terminal";
type Cell = SessionStatus | typeof REFUSED | typeof TERMINAL;
const T: Cell[] = [TERMINAL, TERMINAL, TERMINAL, TERMINAL, TERMINAL, TERMINAL];
const TABLE: [SessionStatus, Cell[]][] = [
  //           record   pause    resume   complete   fail    cancel
  [RUNNING, [RUNNING, PAUSED, REFUSED, COMPLETED, FAILED, CANCELLED]],
  [PAUSED, [REFUSED, REFUSED, RUNNING, REFUSED, REFUSED, CANCELLED]],
  [COMPLETED, T],
  [FAILED, T],
  [CANCELLED, T],
];

test("every cell of the transition table (FORMAT.md §9)", () => {
  for (const [from, row] of TABLE) {
    TRANSITIONS.forEach(([name, action, run], i) => {
      const label = `${statusName(from)}/${name}`;
      const cp = session(from);
      const before = clone(CheckpointSchema, cp);
      const want = row[i];
      if (want === REFUSED) {
        assert.throws(
          () => run(cp),
          (e: unknown) =>
            e instanceof InvalidTransition &&
            e.message === `session "s1" cannot ${action} while ${statusName(from)}` &&
            e.sessionId === "s1" &&
            e.status === statusName(from) &&
            e.action === action,
          label,
        );
        assert.ok(equals(CheckpointSchema, cp, before), `${label}: changed by a refusal`);
      } else if (want === TERMINAL) {
        assert.throws(
          () => run(cp),
          (e: unknown) =>
            e instanceof AlreadyTerminal && e.message === `session "s1" is already terminal: status=${statusName(from)}`,
          label,
        );
        assert.ok(equals(CheckpointSchema, cp, before), `${label}: changed by a refusal`);
      } else {
        run(cp);
        assert.equal(cp.status, want, label);
        assert.notDeepEqual(cp.updatedAt, before.updatedAt, `${label}: updated_at not set`);
        validate(cp);
        assert.equal(isTerminal(cp), isTerminal(want), label);
      }
    });
  }
});

test("InvalidTransition is a CheckpointError; an unspecified status is named", () => {
  assert.ok(new InvalidTransition("s", "paused", "pause") instanceof CheckpointError);
  assert.equal(new InvalidTransition("s", "paused", "pause").name, "InvalidTransition");
  const cp = session(SessionStatus.UNSPECIFIED);
  assert.throws(() => pause(cp), { message: 'session "s1" cannot pause while unspecified' });
});

test("recordTrial: indexes, counts, entries", () => {
  const cp = freshCheckpoint();
  const before = cp.updatedAt;
  const indexes = [
    recordTrial(cp, { score: 0.5, candidateId: "a", stats: { tokens: 10n }, durationMs: 7 }),
    recordTrial(cp, { status: "error", error: { message: "boom" }, errorClass: "RuntimeError" }),
    recordTrial(cp, {}),
    recordTrial(cp, { score: 0.25, durationMs: 2n ** 64n - 1n }),
    recordTrial(cp, { status: "error", error: new TypeError("late"), samplerBlob: new Uint8Array([9]) }),
  ];
  assert.deepEqual(indexes, [0, 1, 2, 3, 4]);
  const p = cp.progress!;
  assert.deepEqual(
    p.trialLog.map((e) => e.trialIdx),
    [0n, 1n, 2n, 3n, 4n],
  );
  assert.equal(p.attempts, 5n);
  assert.equal(p.completed, 3n);
  assert.equal(p.errors, 2n);
  assert.equal(p.bestScore, 0.5);
  assert.equal(p.bestTrialIdx, 0n);
  const [first, second, third, fourth, last] = p.trialLog;
  assert.equal(first!.candidateId, "a");
  assert.equal(first!.durationMs, 7n);
  assert.equal(first!.status, TrialStatus.OK);
  assert.deepEqual(fromTerm(first!.stats!), new Map([["tokens", 10n]]));
  assert.equal(second!.status, TrialStatus.ERROR);
  assert.equal(second!.errorClass, "RuntimeError");
  assert.equal(third!.score, undefined);
  assert.equal(fourth!.durationMs, 2n ** 64n - 1n);
  assert.equal(last!.errorClass, "TypeError");
  assert.deepEqual(
    fromTerm(last!.error!),
    new Map([
      ["class", "TypeError"],
      ["message", "late"],
    ]),
  );
  assert.deepEqual(cp.samplerBlob, new Uint8Array([9]));
  assert.notDeepEqual(cp.updatedAt, before);
  encode(cp);
});

test("recordTrial: the best trial", () => {
  const cases: [string, Parameters<typeof recordTrial>[1][], number | undefined, bigint | undefined][] = [
    ["none without a score", [{}, { score: null }], undefined, undefined],
    ["an error is never best", [{ score: 9, status: "error" }, { score: 1 }], 1, 1n],
    ["the first of equals stays", [{ score: 2 }, { score: 2 }], 2, 0n],
    ["strictly greater wins", [{ score: 2 }, { score: 3 }], 3, 1n],
    ["lower stays out", [{ score: 2 }, { score: -1 }], 2, 0n],
    ["-0 does not beat 0", [{ score: 0 }, { score: -0 }], 0, 0n],
    ["the first score is best", [{}, { score: -5 }], -5, 1n],
    ["-Infinity is a score", [{ score: -Infinity }], -Infinity, 0n],
  ];
  for (const [name, trials, score, idx] of cases) {
    const cp = freshCheckpoint();
    for (const t of trials) {
      recordTrial(cp, t);
    }
    assert.ok(Object.is(cp.progress!.bestScore, score), `${name}: best ${cp.progress!.bestScore}`);
    assert.equal(cp.progress!.bestTrialIdx, idx, name);
  }
});

test("recordTrial: the best trial of a session whose direction is lower", () => {
  const cases: [string, Parameters<typeof recordTrial>[1][], number, bigint][] = [
    ["the first score is best", [{}, { score: 5 }], 5, 1n],
    ["strictly lower wins", [{ score: 2 }, { score: 1 }], 1, 1n],
    ["greater stays out", [{ score: 2 }, { score: 3 }], 2, 0n],
    ["the first of equals stays", [{ score: 2 }, { score: 2 }], 2, 0n],
    ["-0 does not beat 0", [{ score: 0 }, { score: -0 }], 0, 0n],
    ["an error is never best", [{ score: 3 }, { score: -9, status: "error" }], 3, 0n],
    ["-Infinity beats everything", [{ score: -1e308 }, { score: -Infinity }], -Infinity, 1n],
  ];
  for (const [name, trials, score, idx] of cases) {
    const cp = freshCheckpoint();
    cp.direction = Direction.LOWER;
    for (const t of trials) {
      recordTrial(cp, t);
    }
    assert.ok(Object.is(cp.progress!.bestScore, score), `${name}: best ${cp.progress!.bestScore}`);
    assert.equal(cp.progress!.bestTrialIdx, idx, name);
    encode(cp);
  }
});

test("recordTrial refuses a session whose direction is unknown", () => {
  const cp = freshCheckpoint();
  cp.direction = 2 as Direction;
  const before = clone(CheckpointSchema, cp);
  assert.throws(
    () => recordTrial(cp, { score: 1 }),
    (e: unknown) => e instanceof InvalidCheckpoint && e.path === "direction",
  );
  assert.ok(equals(CheckpointSchema, cp, before));
});

test("recordTrial refuses bad trials and leaves the checkpoint as it was", () => {
  const missingValue = create(TermMapSchema, { entries: [create(TermMapEntrySchema, { key: toTerm("a") })] });
  const cases: [Parameters<typeof recordTrial>[1], string][] = [
    [{ score: NaN }, "score"],
    [{ status: "maybe" as "ok" }, "status"],
    [{ durationMs: -1 }, "duration_ms"],
    [{ durationMs: 1.5 }, "duration_ms"],
    [{ durationMs: 2n ** 64n }, "duration_ms"],
    [{ stats: { x: NaN } }, 'stats["x"]'],
    [{ stats: 42n }, "stats"],
    [{ stats: toTerm(1n) }, "stats"],
    [{ stats: missingValue }, "stats.entries[0]"],
    [{ candidateId: "\ud800" }, "candidate_id"],
    [{ candidateId: "key sk-proj-abcdefghijklmnopqrstuvwxyz0123456789" }, "candidate_id"],
    [{ stats: { api_key: "abc123" } }, "stats.entries[0].key"],
    [{ error: { message: "password=hunter2hunter2" } }, "error.entries[0].value.string_value"],
    [{ bestProgramArtifact: { token: "abc" } }, "best_program_artifact.entries[0].key"],
  ];
  cases.forEach(([trial, path], i) => {
    const cp = freshCheckpoint();
    const before = clone(CheckpointSchema, cp);
    assert.throws(
      () => recordTrial(cp, trial),
      (e: unknown) => (e instanceof InvalidCheckpoint || e instanceof TermTypeError) && e.path === path,
      `case ${i}: want InvalidCheckpoint or TermTypeError at ${path}`,
    );
    assert.ok(equals(CheckpointSchema, cp, before), `case ${i}: changed by a refusal`);
  });
});

test("recordTrial with redactSecrets redacts a copy, not the caller's values", () => {
  const cp = freshCheckpoint();
  const stats = toTermMap({ note: "password=hunter2hunter2", api_key: "abc123" });
  const before = clone(TermMapSchema, stats);
  recordTrial(cp, {
    stats,
    candidateId: "c sk-proj-abcdefghijklmnopqrstuvwxyz0123456789",
    bestProgramArtifact: new Map([["instructions", "be brief"]]),
    redactSecrets: true,
  });
  assert.ok(equals(TermMapSchema, stats, before));
  screen(cp);
  const entry = cp.progress!.trialLog[0]!;
  assert.ok(entry.candidateId!.includes(REDACTED));
  assert.equal((fromTerm(entry.stats!) as Map<unknown, unknown>).get("api_key"), REDACTED);
  assert.deepEqual(fromTerm(cp.bestProgramArtifact!), new Map([["instructions", "be brief"]]));
});

test("cancel, complete and fail record a terminal reason", () => {
  let cp = session(PAUSED);
  cancel(cp, { by: "user" });
  assert.deepEqual(fromTerm(cp.terminalReason!), new Map([["by", "user"]]));

  cp = freshCheckpoint();
  cp.terminalReason = toTerm("stale");
  complete(cp);
  assert.equal(cp.terminalReason, undefined);

  cp = freshCheckpoint();
  fail(cp, toTerm(new Tuple([new Atom("error"), "oom"])));
  assert.equal(cp.status, FAILED);
  assert.deepEqual(fromTerm(cp.terminalReason!), new Tuple([new Atom("error"), "oom"]));

  cp = freshCheckpoint();
  fail(cp, "password=hunter2hunter2", { redactSecrets: true });
  screen(cp);

  for (const reason of [NaN, () => 1, "password=hunter2hunter2"]) {
    cp = freshCheckpoint();
    const before = clone(CheckpointSchema, cp);
    assert.throws(
      () => fail(cp, reason),
      (e: unknown) => (e instanceof InvalidCheckpoint || e instanceof TypeError) && /^reason/.test((e as InvalidCheckpoint).path),
      String(reason),
    );
    assert.ok(equals(CheckpointSchema, cp, before));
  }
});

test("directionName takes a checkpoint or a Direction", () => {
  const cp = freshCheckpoint();
  assert.equal(directionName(cp), "higher");
  cp.direction = Direction.LOWER;
  assert.equal(directionName(cp), "lower");
  assert.equal(directionName(Direction.HIGHER), "higher");
  assert.equal(directionName(2 as Direction), undefined);
});

test("statusName and isTerminal take a checkpoint or a SessionStatus", () => {
  const names: [SessionStatus, string][] = [
    [SessionStatus.UNSPECIFIED, "unspecified"],
    [RUNNING, "running"],
    [PAUSED, "paused"],
    [COMPLETED, "completed"],
    [FAILED, "failed"],
    [CANCELLED, "cancelled"],
    [99 as SessionStatus, "unspecified"],
  ];
  for (const [status, name] of names) {
    assert.equal(statusName(status), name);
    assert.equal(statusName(session(status)), name);
    const terminal = status === COMPLETED || status === FAILED || status === CANCELLED;
    assert.equal(isTerminal(status), terminal);
    assert.equal(isTerminal(session(status)), terminal);
  }
});

test("fromTerm takes a TermMap message as it takes a map Term", () => {
  const m = toTermMap({ b: 2n, a: [1.5, null] });
  const want = fromTerm(create(TermSchema, { kind: { case: "mapValue", value: m } }));
  assert.deepEqual(fromTerm(m), want);
  assert.deepEqual(
    fromTerm(m),
    new Map<unknown, unknown>([
      ["a", [1.5, null]],
      ["b", 2n],
    ]),
  );
  assert.deepEqual(fromTerm(create(TermMapSchema)), new Map());
  const bad = create(TermMapSchema, {
    entries: [create(TermMapEntrySchema, { key: toTerm("a"), value: create(TermSchema) })],
  });
  assert.throws(
    () => fromTerm(bad),
    (e: unknown) => e instanceof InvalidCheckpoint && e.path === "term.map_value.entries[0]",
  );
});
