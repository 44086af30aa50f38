/**
 * The rules a checkpoint message must keep (FORMAT.md §1-§4), in the order of §7.
 *
 * {@link check} throws {@link InvalidCheckpoint} naming the first offending
 * field and the rule it breaks; `decode` turns that into a `ResumeMismatch`
 * and `encode` throws it as is, so no writer produces bytes a reader
 * refuses. Besides the rules of FORMAT.md it checks the JavaScript types and
 * ranges of a hand-built message, which a parsed message always has right:
 * a string with a lone surrogate has no UTF-8 form (`wire.utf8`), an integer
 * outside its field's range has no encoding (`wire.range`), and a value of
 * the wrong JavaScript type (a `number` where a `bigint` belongs) breaks no
 * rule of the format but the API's, so it names the field and no rule.
 */

import type { Timestamp } from "@bufbuild/protobuf/wkt";
import {
  type Checkpoint,
  Direction,
  type Progress,
  SessionStatus,
  TrialStatus,
} from "./gen/dsxir/optimizer_session/v1/checkpoint_pb.js";
import { InvalidCheckpoint } from "./errors.js";
import { Rule, type RuleId } from "./rules.js";
import { checkTerm, checkTermMap, isWellFormed } from "./term.js";

/** The major version of the format this library reads. */
export const FORMAT_MAJOR = 1;
/** The identifier this library writes in field 1 of every checkpoint; readers accept any v1 minor. */
export const FORMAT_ID = "dsxir.optimizer_session.checkpoint/v1.1";
export { MAX_CHECKPOINT_BYTES } from "./grammar.js";

const FORMAT_RE = /^dsxir\.optimizer_session\.checkpoint\/v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$/;
const MIN_SECONDS = -62_135_596_800n;
const MAX_SECONDS = 253_402_300_799n;
const UINT64_MAX = (1n << 64n) - 1n;

/** Refuse a checkpoint that breaks a rule of FORMAT.md, naming the field. */
export function check(cp: Checkpoint): void {
  checkFormat(cp.format);
  requireText(cp.sessionId, "session_id", Rule.SESSION_ID_REQUIRED);
  requireText(cp.optimizer, "optimizer", Rule.OPTIMIZER_REQUIRED);
  cp.optimizerOpts.forEach((option, i) => {
    requireText(option.key, `optimizer_opts[${i}].key`, Rule.OPTIMIZER_OPTS_KEY_REQUIRED);
    if (option.value === undefined) {
      throw new InvalidCheckpoint(`optimizer_opts[${i}].value`, "is required", Rule.OPTIMIZER_OPTS_VALUE_REQUIRED);
    }
    checkTerm(option.value, `optimizer_opts[${i}].value`);
  });
  if (cp.programModule !== undefined) {
    wellFormedText(cp.programModule, "program_module");
    if (cp.programModule === "") {
      throw new InvalidCheckpoint("program_module", "must not be empty when present", Rule.PROGRAM_MODULE_NOT_EMPTY);
    }
  }
  if (!(cp.trainsetHash instanceof Uint8Array) || cp.trainsetHash.length !== 32) {
    const got = cp.trainsetHash instanceof Uint8Array ? String(cp.trainsetHash.length) : typeof cp.trainsetHash;
    throw new InvalidCheckpoint(
      "trainset_hash",
      `must be 32 bytes (SHA-256), got ${got}`,
      cp.trainsetHash instanceof Uint8Array ? Rule.TRAINSET_HASH_LENGTH : null,
    );
  }
  checkTimestamp(cp.createdAt, "created_at");
  checkTimestamp(cp.updatedAt, "updated_at");
  checkProgress(cp.progress);
  if (cp.bestProgramArtifact !== undefined) {
    checkTermMap(cp.bestProgramArtifact, "best_program_artifact");
  }
  const sf = cp.samplerFormat;
  if (sf === undefined) {
    throw new InvalidCheckpoint("sampler_format", "is required", Rule.SAMPLER_FORMAT_REQUIRED);
  }
  requireText(sf.module, "sampler_format.module", Rule.SAMPLER_FORMAT_MODULE_REQUIRED);
  if (!Number.isInteger(sf.version)) {
    throw new InvalidCheckpoint("sampler_format.version", "must be an integer number", null);
  }
  if (sf.version > 0xffffffff) {
    throw new InvalidCheckpoint("sampler_format.version", "must be below 2^32 (a uint32)", Rule.WIRE_RANGE);
  }
  if (sf.version < 1) {
    throw new InvalidCheckpoint("sampler_format.version", "must be at least 1", Rule.SAMPLER_FORMAT_VERSION_MIN);
  }
  if (!Number.isInteger(cp.status) || cp.status < SessionStatus.RUNNING || cp.status > SessionStatus.CANCELLED) {
    throw new InvalidCheckpoint("status", `unknown or unspecified status ${String(cp.status)}`, Rule.STATUS_KNOWN);
  }
  if (cp.terminalReason !== undefined) {
    checkTerm(cp.terminalReason, "terminal_reason");
  }
  checkDirection(cp.direction);
  if (!(cp.samplerBlob instanceof Uint8Array)) {
    throw new InvalidCheckpoint("sampler_blob", "must be a Uint8Array", null);
  }
}

/** Refuse a direction other than higher (0, also a v1.0 checkpoint's) and lower (1). */
export function checkDirection(direction: Direction): void {
  if (direction !== Direction.HIGHER && direction !== Direction.LOWER) {
    throw new InvalidCheckpoint("direction", `unknown direction ${String(direction)}`, Rule.DIRECTION_KNOWN);
  }
}

function checkFormat(formatId: string): void {
  if (typeof formatId !== "string" || formatId === "") {
    throw new InvalidCheckpoint("format", "missing format identifier: not a dsxir checkpoint", Rule.FORMAT_REQUIRED);
  }
  const match = FORMAT_RE.exec(formatId);
  if (match === null) {
    throw new InvalidCheckpoint(
      "format",
      `wrong format identifier ${JSON.stringify(formatId.slice(0, 80))}`,
      Rule.FORMAT_SHAPE,
    );
  }
  if (match[1] !== String(FORMAT_MAJOR)) {
    throw new InvalidCheckpoint(
      "format",
      `unsupported major version ${match[1]} (this reader reads 1)`,
      Rule.FORMAT_MAJOR,
    );
  }
}

/** A string with a UTF-8 form: not a string is the API's refusal, a lone surrogate `wire.utf8`. */
function wellFormedText(value: unknown, path: string): void {
  if (typeof value !== "string") {
    throw new InvalidCheckpoint(path, "must be a string", null);
  }
  if (!isWellFormed(value)) {
    throw new InvalidCheckpoint(path, "string has a lone surrogate: no UTF-8 form", Rule.WIRE_UTF8);
  }
}

function requireText(value: string, path: string, rule: RuleId): void {
  wellFormedText(value, path);
  if (value === "") {
    throw new InvalidCheckpoint(path, "must not be empty", rule);
  }
}

function optionalText(value: string | undefined, path: string): void {
  if (value !== undefined) {
    wellFormedText(value, path);
  }
}

function checkUint64(value: bigint, path: string): void {
  if (typeof value !== "bigint") {
    throw new InvalidCheckpoint(path, "must be a bigint", null);
  }
  if (value < 0n || value > UINT64_MAX) {
    throw new InvalidCheckpoint(path, "must be in [0, 2^64) (a uint64)", Rule.WIRE_RANGE);
  }
}

function checkDouble(value: number | undefined, path: string): void {
  if (value === undefined) {
    return;
  }
  if (typeof value !== "number") {
    throw new InvalidCheckpoint(path, "must be a number", null);
  }
  if (Number.isNaN(value)) {
    throw new InvalidCheckpoint(path, "NaN is not allowed", Rule.FLOAT_NAN);
  }
}

function checkTimestamp(stamp: Timestamp | undefined, path: string): void {
  if (stamp === undefined) {
    throw new InvalidCheckpoint(path, "is required", Rule.TIMESTAMP_REQUIRED);
  }
  if (!Number.isInteger(stamp.nanos) || stamp.nanos < 0 || stamp.nanos >= 1_000_000_000) {
    throw new InvalidCheckpoint(
      `${path}.nanos`,
      "must be in [0, 1e9)",
      Number.isInteger(stamp.nanos) ? Rule.TIMESTAMP_NANOS : null,
    );
  }
  if (typeof stamp.seconds !== "bigint" || stamp.seconds < MIN_SECONDS || stamp.seconds > MAX_SECONDS) {
    throw new InvalidCheckpoint(
      `${path}.seconds`,
      "outside 0001-01-01..9999-12-31",
      typeof stamp.seconds === "bigint" ? Rule.TIMESTAMP_SECONDS : null,
    );
  }
}

function checkProgress(progress: Progress | undefined): void {
  if (progress === undefined) {
    throw new InvalidCheckpoint("progress", "is required", Rule.PROGRESS_REQUIRED);
  }
  let ok = 0n;
  let error = 0n;
  progress.trialLog.forEach((entry, i) => {
    const at = `progress.trial_log[${i}]`;
    checkUint64(entry.trialIdx, `${at}.trial_idx`);
    if (entry.trialIdx !== BigInt(i)) {
      throw new InvalidCheckpoint(`${at}.trial_idx`, `is ${entry.trialIdx}, must be ${i}`, Rule.TRIAL_TRIAL_IDX);
    }
    optionalText(entry.candidateId, `${at}.candidate_id`);
    checkDouble(entry.score, `${at}.score`);
    if (entry.status === TrialStatus.OK) {
      ok++;
    } else if (entry.status === TrialStatus.ERROR) {
      error++;
    } else {
      throw new InvalidCheckpoint(
        `${at}.status`,
        `unknown or unspecified status ${String(entry.status)}`,
        Rule.TRIAL_STATUS,
      );
    }
    if (entry.stats !== undefined) {
      checkTermMap(entry.stats, `${at}.stats`);
    }
    if (entry.error !== undefined) {
      checkTermMap(entry.error, `${at}.error`);
    }
    checkUint64(entry.durationMs, `${at}.duration_ms`);
    optionalText(entry.errorClass, `${at}.error_class`);
  });
  checkTimestamp(progress.startedAt, "progress.started_at");
  checkBest(progress);
  checkUint64(progress.completed, "progress.completed");
  if (progress.completed !== ok) {
    throw new InvalidCheckpoint(
      "progress.completed",
      `is ${progress.completed}, but ${ok} trials are ok`,
      Rule.COUNTERS_COMPLETED,
    );
  }
  checkUint64(progress.errors, "progress.errors");
  if (progress.errors !== error) {
    throw new InvalidCheckpoint(
      "progress.errors",
      `is ${progress.errors}, but ${error} trials are errors`,
      Rule.COUNTERS_ERRORS,
    );
  }
  checkUint64(progress.attempts, "progress.attempts");
  if (progress.attempts < ok + error) {
    throw new InvalidCheckpoint(
      "progress.attempts",
      `is ${progress.attempts}, less than completed + errors`,
      Rule.COUNTERS_ATTEMPTS,
    );
  }
}

function checkBest(progress: Progress): void {
  const hasScore = progress.bestScore !== undefined;
  const hasIdx = progress.bestTrialIdx !== undefined;
  checkDouble(progress.bestScore, "progress.best_score");
  if (hasScore !== hasIdx) {
    throw new InvalidCheckpoint(
      hasIdx ? "progress.best_score" : "progress.best_trial_idx",
      "best_score and best_trial_idx must be set together",
      Rule.BEST_PAIR,
    );
  }
  if (progress.bestTrialIdx === undefined) {
    return;
  }
  const idx = progress.bestTrialIdx;
  checkUint64(idx, "progress.best_trial_idx");
  const log = progress.trialLog;
  if (idx >= BigInt(log.length)) {
    throw new InvalidCheckpoint("progress.best_trial_idx", `${idx} is past the trial log`, Rule.BEST_TRIAL_IDX_RANGE);
  }
  const best = log[Number(idx)]!;
  if (best.status !== TrialStatus.OK || best.score === undefined) {
    throw new InvalidCheckpoint(
      "progress.best_trial_idx",
      `trial ${idx} is not an ok trial with a score`,
      Rule.BEST_TRIAL_IDX_TRIAL,
    );
  }
  if (!sameBits(best.score, progress.bestScore!)) {
    throw new InvalidCheckpoint(
      "progress.best_trial_idx",
      `trial ${idx} scored ${showFloat(best.score)}, not best_score ${showFloat(progress.bestScore!)}`,
      Rule.BEST_SCORE,
    );
  }
}

/** Whether two doubles have the same 64 bits (-0.0 is not 0.0). */
export function sameBits(a: number, b: number): boolean {
  return Object.is(a, b);
}

function showFloat(x: number): string {
  return Object.is(x, -0) ? "-0.0" : String(x);
}
