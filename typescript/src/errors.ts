/**
 * Errors of the dsxir checkpoint library.
 *
 * Every error a caller may want to handle is a {@link CheckpointError}.
 * Messages read the same as in the other bindings of the format.
 */

import type { RuleId } from "./rules.js";

/** Base class of every error raised by this library. */
export class CheckpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * A checkpoint (or a value meant for one) breaks a rule of FORMAT.md.
 *
 * `path` names the offending field, e.g. `progress.trial_log[3].score`;
 * `detail` says what is wrong with it; `rule` is the id of the reader's rule
 * it breaks ({@link RuleId}), or `null` for a refusal that is no reader rule (a
 * credential, FORMAT.md §10, or an argument with no checkpoint form). The
 * message is `<path>: <detail> (rule <id>)`. {@link encode} throws it;
 * {@link decode} turns it into a {@link ResumeMismatch} with reason
 * `checkpoint_shape`.
 */
export class InvalidCheckpoint extends CheckpointError {
  readonly path: string;
  readonly detail: string;
  readonly rule: RuleId | null;

  constructor(path: string, detail: string, rule: RuleId | null) {
    super(`${path}: ${detail}${ruleSuffix(rule)}`);
    this.path = path;
    this.detail = detail;
    this.rule = rule;
  }
}

/** ` (rule <id>)`, the end of a refusal's message; empty without a rule. */
function ruleSuffix(rule: RuleId | null): string {
  return rule === null ? "" : ` (rule ${rule})`;
}

/** A value with no Term form (a function, `undefined`, a Date, …), naming its path. */
export class TermTypeError extends TypeError {
  readonly path: string;
  readonly detail: string;

  constructor(path: string, detail: string) {
    super(`${path}: ${detail}`);
    this.name = "TermTypeError";
    this.path = path;
    this.detail = detail;
  }
}

/** The reasons a {@link ResumeMismatch} carries. */
export type MismatchReason =
  | "checkpoint_shape"
  | "optimizer"
  | "sampler_format"
  | "sampler_version"
  | "trainset_hash"
  | "direction";

/**
 * A checkpoint cannot be used to resume a session.
 *
 * `reason` is `checkpoint_shape` (the bytes are not a valid checkpoint;
 * `field` names the offending field, `detail` the problem and `rule` the id
 * of the rule it breaks; the message is
 * `checkpoint_shape: <field>: <detail> (rule <id>)`), `optimizer`,
 * `sampler_format`, `sampler_version`, `trainset_hash` or `direction`. `expected` is what
 * the caller asked for, `got` what the checkpoint holds.
 */
export class ResumeMismatch extends CheckpointError {
  readonly sessionId: string | null;
  readonly reason: MismatchReason;
  readonly expected: unknown;
  readonly got: unknown;
  readonly field: string | null;
  readonly detail: string | null;
  readonly rule: RuleId | null;

  constructor(
    sessionId: string | null,
    reason: MismatchReason,
    expected: unknown = null,
    got: unknown = null,
    options: { field?: string; detail?: string; rule?: RuleId | null } = {},
  ) {
    const field = options.field ?? null;
    const detail = options.detail ?? null;
    const rule = options.rule ?? null;
    super(
      reason === "checkpoint_shape"
        ? `checkpoint_shape: ${field}: ${detail}${ruleSuffix(rule)}`
        : `cannot resume session "${sessionId}": ${reason}: ` + gateMessage(reason, show(got), show(expected)),
    );
    this.sessionId = sessionId;
    this.reason = reason;
    this.expected = expected;
    this.got = got;
    this.field = field;
    this.detail = detail;
    this.rule = rule;
  }
}

/** The resume gate's message of FORMAT.md §8 (the same text in every language). */
function gateMessage(reason: MismatchReason, got: string, exp: string): string {
  switch (reason) {
    case "optimizer":
      return `the checkpoint was written by optimizer ${got}; this run is ${exp}. Resume with ${got}, or start a new session.`;
    case "sampler_format":
      return `the checkpoint's sampler is ${got}; this run's is ${exp}. Resume with sampler ${got}, or start a new session.`;
    case "sampler_version":
      return `the checkpoint holds sampler state version ${got}; this run accepts ${exp}. Accept version ${got} if the sampler can read it, or start a new session.`;
    case "trainset_hash":
      return `the checkpoint was made on the trainset with hash ${got}; this run's hash is ${exp}. Pass the same trainset, or start a new session.`;
    case "direction":
      return `the checkpoint's scores are better when ${got}; this run's are better when ${exp}. Resume with direction ${got}, or start a new session.`;
    default:
      return `the checkpoint has ${got}; this run expects ${exp}.`;
  }
}

/** The session has ended (completed, failed or cancelled); it cannot go on. */
export class AlreadyTerminal extends CheckpointError {
  readonly sessionId: string;
  readonly status: string;

  constructor(sessionId: string, status: string) {
    super(`session "${sessionId}" is already terminal: status=${status}`);
    this.sessionId = sessionId;
    this.status = status;
  }
}

/** A transition that the session's current (non-terminal) status does not allow (FORMAT.md §9). */
export class InvalidTransition extends CheckpointError {
  readonly sessionId: string;
  /** The current status: `running`, `paused` (or `unspecified`). */
  readonly status: string;
  /** What was asked: `record a trial`, `pause`, `resume`, `complete`, `fail` or `cancel`. */
  readonly action: string;

  constructor(sessionId: string, status: string, action: string) {
    super(`session "${sessionId}" cannot ${action} while ${status}`);
    this.sessionId = sessionId;
    this.status = status;
    this.action = action;
  }
}

/** How expected/got values read in a mismatch message: bytes in lowercase hex, sets as [a,b]. */
export function show(value: unknown): string {
  if (value === null || value === undefined) {
    return "none";
  }
  if (value instanceof Uint8Array) {
    return hex(value);
  }
  if (Array.isArray(value) || value instanceof Set) {
    // Numbers in numeric order, anything else by its text.
    const items = [...value];
    const sorted = items.every((v) => typeof v === "number")
      ? (items as number[]).sort((a, b) => a - b).map(String)
      : items.map((v) => show(v)).sort(compareText);
    return "[" + sorted.join(",") + "]";
  }
  return String(value);
}

/** Lowercase hexadecimal of bytes. */
export function hex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) {
    out += b.toString(16).padStart(2, "0");
  }
  return out;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
