/**
 * The transitions of a session (FORMAT.md §9): {@link recordTrial},
 * {@link pause}, {@link resume}, {@link cancel}, {@link complete} and
 * {@link fail}. They change the checkpoint in place, at a cost that does not
 * grow with the trial log, and check everything before they change anything:
 * a refused call leaves the checkpoint as it was.
 *
 * A terminal session (completed, failed, cancelled) refuses every transition
 * with {@link AlreadyTerminal}; any other move the table does not allow is
 * refused with {@link InvalidTransition}. Every transition sets `updated_at`
 * to now.
 */

import { clone, create, isMessage } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import {
  type Checkpoint,
  CheckpointSchema,
  Direction,
  ProgressSchema,
  SessionStatus,
  type TrialLogEntry,
  TrialLogEntrySchema,
  TrialStatus,
} from "./gen/dsxir/optimizer_session/v1/checkpoint_pb.js";
import { type Term, type TermMap, TermMapSchema, TermSchema } from "./gen/dsxir/optimizer_session/v1/term_pb.js";
import { redact, screen } from "./credentials.js";
import { AlreadyTerminal, InvalidCheckpoint, InvalidTransition } from "./errors.js";
import { Rule } from "./rules.js";
import { isTerminal, statusName } from "./status.js";
import { canonicalTerm, isWellFormed, toTerm, toTermMap } from "./term.js";
import { checkDirection } from "./validate.js";

const UINT64_LIMIT = 1n << 64n;

/** One finished trial, as {@link recordTrial} appends it to the trial log. */
export interface Trial {
  /** The trial's score; `null` or absent for none. NaN is refused. */
  score?: number | null;
  /** `ok` (the default) or `error`. */
  status?: "ok" | "error";
  /** The candidate tried. */
  candidateId?: string;
  /** Statistics: a `Map`, a plain object or a `TermMap` message. */
  stats?: unknown;
  /** Milliseconds the trial took: an integer in [0, 2^64). */
  durationMs?: number | bigint;
  /**
   * The error: a `Map`, a plain object, a `TermMap` message, or an `Error`,
   * stored as `{class, message}` with {@link errorClass} defaulting to its name.
   */
  error?: unknown;
  /** The error's class name. */
  errorClass?: string;
  /** When given, replaces the stored sampler state. */
  samplerBlob?: Uint8Array;
  /** When given (a mapping or a `TermMap` message), replaces the stored artifact. */
  bestProgramArtifact?: unknown;
  /** Store `[redacted]` in place of each credential (FORMAT.md §10) instead of refusing. */
  redactSecrets?: boolean;
}

/** Options of {@link cancel}, {@link complete} and {@link fail}. */
export interface ReasonOptions {
  /** Store `[redacted]` in place of each credential in the reason instead of refusing it. */
  redactSecrets?: boolean;
}

function requireStatus(cp: Checkpoint, action: string, ...allowed: SessionStatus[]): void {
  if (isTerminal(cp)) {
    throw new AlreadyTerminal(cp.sessionId, statusName(cp));
  }
  if (!allowed.includes(cp.status)) {
    throw new InvalidTransition(cp.sessionId, statusName(cp), action);
  }
}

/**
 * Append the next finished trial to a running session; return its index (the
 * log's length before it).
 *
 * Counts the attempt and the ok or error outcome; the trial becomes best only
 * when it is ok, has a score, and the score is strictly better than the best
 * so far: greater when `cp.direction` is `Direction.HIGHER` (the default),
 * lower when it is `Direction.LOWER` (the first of equal scores stays best;
 * -0 and 0 are equal). Refused, leaving `cp` as it was: a session that is not
 * running, a direction other than higher or lower ({@link InvalidCheckpoint}
 * at `direction`), a NaN score, a
 * status other than `ok`/`error`, stats, errors or an artifact with no Term
 * map form, and credentials unless `redactSecrets` ({@link InvalidCheckpoint}
 * naming the path, e.g. `stats.entries[0].value.string_value`).
 */
export function recordTrial(cp: Checkpoint, trial: Trial): number {
  requireStatus(cp, "record a trial", SessionStatus.RUNNING);
  checkDirection(cp.direction);
  const status = trial.status ?? "ok";
  if (status !== "ok" && status !== "error") {
    throw new InvalidCheckpoint("status", `must be 'ok' or 'error', got '${String(status)}'`, null);
  }
  const score = trial.score ?? undefined;
  if (score !== undefined) {
    if (typeof score !== "number") {
      throw new TypeError("score must be a number");
    }
    if (Number.isNaN(score)) {
      throw new InvalidCheckpoint("score", "NaN is not allowed", Rule.FLOAT_NAN);
    }
  }
  const duration = trial.durationMs ?? 0n;
  if (typeof duration === "number" && !Number.isInteger(duration)) {
    throw new InvalidCheckpoint("duration_ms", `must be an integer in [0, 2^64), got ${duration}`, null);
  }
  if (typeof duration !== "number" && typeof duration !== "bigint") {
    throw new TypeError("durationMs must be a number or a bigint");
  }
  const durationMs = BigInt(duration);
  if (durationMs < 0n || durationMs >= UINT64_LIMIT) {
    throw new InvalidCheckpoint("duration_ms", `must be in [0, 2^64), got ${durationMs}`, null);
  }
  let error = trial.error;
  let errorClass = trial.errorClass;
  if (error instanceof Error) {
    errorClass = errorClass ?? error.name;
    error = { class: error.name, message: error.message };
  }
  const candidateId = text(trial.candidateId, "candidate_id");
  errorClass = text(errorClass, "error_class");
  if (trial.samplerBlob !== undefined && !(trial.samplerBlob instanceof Uint8Array)) {
    throw new TypeError("samplerBlob must be a Uint8Array");
  }

  const entry: TrialLogEntry = create(TrialLogEntrySchema, {
    status: status === "ok" ? TrialStatus.OK : TrialStatus.ERROR,
    durationMs,
  });
  if (candidateId !== undefined) {
    entry.candidateId = candidateId;
  }
  if (score !== undefined) {
    entry.score = score;
  }
  if (errorClass !== undefined) {
    entry.errorClass = errorClass;
  }
  entry.stats = mapOf(trial.stats, "stats");
  entry.error = mapOf(error, "error");
  const artifact = mapOf(trial.bestProgramArtifact, "best_program_artifact");

  // The credential screen (FORMAT.md §10) of what is new, on a scratch
  // checkpoint: the paths it names are made relative to the trial.
  const scratch = create(CheckpointSchema);
  scratch.progress = create(ProgressSchema);
  scratch.progress.trialLog.push(entry);
  scratch.bestProgramArtifact = artifact;
  screened(scratch, trial.redactSecrets ?? false, "progress.trial_log[0].", "");

  // Nothing is refused from here on.
  const lower = cp.direction === Direction.LOWER;
  if (cp.progress === undefined) {
    cp.progress = create(ProgressSchema);
  }
  const progress = cp.progress;
  const idx = progress.trialLog.length;
  entry.trialIdx = BigInt(idx);
  progress.trialLog.push(entry);
  progress.attempts += 1n;
  if (status === "ok") {
    progress.completed += 1n;
    const best = progress.bestScore;
    if (score !== undefined && (best === undefined || (lower ? score < best : score > best))) {
      progress.bestScore = score;
      progress.bestTrialIdx = BigInt(idx);
    }
  } else {
    progress.errors += 1n;
  }
  if (trial.samplerBlob !== undefined) {
    cp.samplerBlob = trial.samplerBlob.slice();
  }
  if (artifact !== undefined) {
    cp.bestProgramArtifact = artifact;
  }
  cp.updatedAt = timestampNow();
  return idx;
}

function text(value: unknown, path: string): string | undefined {
  if (value === undefined) {
    return undefined;
  }
  if (typeof value !== "string") {
    throw new TypeError(`${path} must be a string`);
  }
  if (!isWellFormed(value)) {
    throw new InvalidCheckpoint(path, "string has a lone surrogate: no UTF-8 form", Rule.WIRE_UTF8);
  }
  return value;
}

/** A canonical copy of a mapping or a TermMap message; undefined for undefined/null. */
function mapOf(value: unknown, root: string): TermMap | undefined {
  if (value === undefined || value === null) {
    return undefined;
  }
  if (isMessage(value, TermMapSchema)) {
    const wrapped = create(TermSchema, { kind: { case: "mapValue", value: clone(TermMapSchema, value) } });
    let checked: Term;
    try {
      checked = canonicalTerm(wrapped, root);
    } catch (e) {
      throw e instanceof InvalidCheckpoint ? relative(e, `${root}.map_value`, root) : e;
    }
    return checked.kind.case === "mapValue" ? checked.kind.value : undefined;
  }
  if (isMessage(value)) {
    throw new InvalidCheckpoint(root, `a ${value.$typeName} is not a mapping`, null);
  }
  return toTermMap(value, root);
}

/** An InvalidCheckpoint whose path starting with `from` starts with `to` instead. */
function relative(e: InvalidCheckpoint, from: string, to: string): InvalidCheckpoint {
  if (!e.path.startsWith(from)) {
    return e;
  }
  const rest = e.path.slice(from.length);
  const path = to === "" ? rest.replace(/^\./, "") : to + rest;
  return new InvalidCheckpoint(path, e.detail, e.rule);
}

function screened(scratch: Checkpoint, redactSecrets: boolean, from: string, to: string): void {
  try {
    (redactSecrets ? redact : screen)(scratch);
  } catch (e) {
    throw e instanceof InvalidCheckpoint ? relative(e, from, to) : e;
  }
}

/** running → paused. */
export function pause(cp: Checkpoint): void {
  requireStatus(cp, "pause", SessionStatus.RUNNING);
  move(cp, SessionStatus.PAUSED, undefined);
}

/** paused → running. */
export function resume(cp: Checkpoint): void {
  requireStatus(cp, "resume", SessionStatus.PAUSED);
  move(cp, SessionStatus.RUNNING, undefined);
}

/**
 * running or paused → cancelled, with an optional reason (any Term value, or
 * a `Term` message; `null` or `undefined` for none) stored in `terminal_reason`. A reason with no Term form,
 * or holding a credential (FORMAT.md §10) unless `redactSecrets`, is refused
 * with {@link InvalidCheckpoint} naming `reason…`; so for {@link complete}
 * and {@link fail}.
 */
export function cancel(cp: Checkpoint, reason?: unknown, options: ReasonOptions = {}): void {
  requireStatus(cp, "cancel", SessionStatus.RUNNING, SessionStatus.PAUSED);
  move(cp, SessionStatus.CANCELLED, reasonTerm(reason, options));
}

/** running → completed, with an optional reason (see {@link cancel}). */
export function complete(cp: Checkpoint, reason?: unknown, options: ReasonOptions = {}): void {
  requireStatus(cp, "complete", SessionStatus.RUNNING);
  move(cp, SessionStatus.COMPLETED, reasonTerm(reason, options));
}

/** running → failed, with an optional reason (see {@link cancel}). */
export function fail(cp: Checkpoint, reason?: unknown, options: ReasonOptions = {}): void {
  requireStatus(cp, "fail", SessionStatus.RUNNING);
  move(cp, SessionStatus.FAILED, reasonTerm(reason, options));
}

function reasonTerm(reason: unknown, options: ReasonOptions): Term | undefined {
  if (reason === undefined || reason === null) {
    return undefined;
  }
  const t = isMessage(reason, TermSchema) ? canonicalTerm(clone(TermSchema, reason), "reason") : toTerm(reason, "reason");
  const scratch = create(CheckpointSchema);
  scratch.terminalReason = t;
  screened(scratch, options.redactSecrets ?? false, "terminal_reason", "reason");
  return scratch.terminalReason;
}

function move(cp: Checkpoint, status: SessionStatus, reason: Term | undefined): void {
  cp.status = status;
  cp.terminalReason = reason;
  cp.updatedAt = timestampNow();
}
