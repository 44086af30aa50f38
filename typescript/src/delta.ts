/**
 * Checkpoint deltas (FORMAT.md §13): what one commit adds to a checkpoint,
 * its base.
 *
 * - {@link decodeDelta} reads delta bytes: the size limit, the trailer, the
 *   checksum, the byte grammar with `CheckpointDelta` as the top-level message
 *   (paths below the head are `head.` + a checkpoint's path), the weight
 *   limit, then the rules of §13.1. Unknown fields are kept.
 * - {@link encodeDelta} writes the canonical bytes of a delta and refuses
 *   what {@link decodeDelta} refuses; `encodeDelta(decodeDelta(b))` is `b`.
 * - {@link applyDelta} makes the new checkpoint from a base and a delta
 *   (§13.2) and checks it by every rule of §7 and the writer's limits.
 * - {@link makeDelta} writes the delta of a commit of `next` over `base`.
 *
 * A refusal of the delta is an {@link InvalidDelta} (`delta_shape`); a
 * refusal of the checkpoint a delta makes is a `ResumeMismatch` with reason
 * `checkpoint_shape`, as {@link decode} throws for checkpoint bytes.
 */

import { clone, create, type DescField, type DescMessage, isFieldSet, toBinary } from "@bufbuild/protobuf";
import {
  type Checkpoint,
  type CheckpointDelta,
  CheckpointDeltaSchema,
  CheckpointSchema,
} from "./gen/dsxir/optimizer_session/v1/checkpoint_pb.js";
import { DeltaRule, type DeltaRuleId } from "./delta_rules.js";
import { screen } from "./credentials.js";
import { CheckpointError, InvalidCheckpoint, ResumeMismatch } from "./errors.js";
import { checkBody, checkInput, seal } from "./grammar.js";
import { Rule, type RuleId } from "./rules.js";
import { isWellFormed } from "./term.js";
import { check } from "./validate.js";
import { parse } from "./wire.js";

/** The delta format identifier this library writes; readers accept any v1 minor. */
export const DELTA_FORMAT_ID = "dsxir.optimizer_session.delta/v1.0";
/** The `Checkpoint` fields a delta may keep from its base, as a bit set: fields 3-7 and 10-15. */
export const KEPT_MASK = 0xfcf8;

const DELTA_FORMAT_RE = /^dsxir\.optimizer_session\.delta\/v1\.(0|[1-9][0-9]*)$/;
const UINT64_MAX = (1n << 64n) - 1n;
const INPUT = "<input>";

/** The fields of a Checkpoint a delta may keep, in ascending number. */
const KEEPABLE: readonly DescField[] = CheckpointSchema.fields
  .filter((f) => f.number < 32 && (KEPT_MASK & (1 << f.number)) !== 0)
  .sort((a, b) => a.number - b.number);

/**
 * A delta breaks a rule of FORMAT.md §13 (or of the grammar it shares with a
 * checkpoint, §2). `path` names the offending field (`kept`,
 * `head.progress.trial_log[0].status`, `<input>`), `detail` the problem,
 * `rule` the rule's id (a {@link DeltaRuleId}, or a {@link RuleId} of the
 * grammar; `null` for a credential in the head, FORMAT.md §10, or a
 * hand-built value that has no encoding and breaks no rule). The message is
 * `delta_shape: <path>: <detail> (rule <id>)`.
 */
export class InvalidDelta extends CheckpointError {
  readonly path: string;
  readonly detail: string;
  readonly rule: RuleId | DeltaRuleId | null;

  constructor(path: string, detail: string, rule: RuleId | DeltaRuleId | null) {
    super(`delta_shape: ${path}: ${detail}${rule === null ? "" : ` (rule ${rule})`}`);
    this.path = path;
    this.detail = detail;
    this.rule = rule;
  }
}

/**
 * Read delta bytes, trusting nothing about them (FORMAT.md §13.1).
 *
 * Returns the delta, unknown fields kept, or throws {@link InvalidDelta}
 * for the first broken rule: `input.*`, `wire.*`, `term.depth` (paths below
 * the head start with `head.`), `input.weight` (limit of §2.4 for the delta's
 * length), then `delta.format`, `delta.base_generation`, `delta.head`,
 * `delta.kept`, `delta.kept_in_head`. The head is not checked by §7 on its
 * own: {@link applyDelta} checks the checkpoint it makes.
 */
export function decodeDelta(bytes: Uint8Array): CheckpointDelta {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError("decodeDelta takes a Uint8Array");
  }
  let body: Uint8Array;
  try {
    body = checkInput(bytes, CheckpointDeltaSchema);
  } catch (e) {
    throw asDelta(e);
  }
  const delta = parseBody(body);
  checkDelta(delta);
  return delta;
}

/**
 * The canonical bytes of `delta` (FORMAT.md §13, §2.5): known fields in
 * number order, unknown fields after them as read, then the trailer.
 *
 * Throws {@link InvalidDelta} for a delta {@link decodeDelta} would refuse,
 * with the same rule and path: the bytes are checked as a reader checks them
 * (size, grammar, weight), then the rules of §13.1; then for a head holding
 * a credential (FORMAT.md §10; path `head.` + the checkpoint's, no rule).
 */
export function encodeDelta(delta: CheckpointDelta): Uint8Array {
  checkScalars(delta);
  checkTexts(CheckpointDeltaSchema, delta as unknown as Record<string, unknown>, "");
  let body: Uint8Array;
  try {
    body = toBinary(CheckpointDeltaSchema, delta);
  } catch (e) {
    throw new InvalidDelta(INPUT, `no encoding: ${e instanceof Error ? e.message : String(e)}`, null);
  }
  try {
    checkBody(body, CheckpointDeltaSchema);
  } catch (e) {
    throw asDelta(e);
  }
  // The rules are checked on what the bytes say, as a reader sees them.
  const read = parseBody(body);
  checkDelta(read);
  // The credential screen of FORMAT.md §10 over the head, as a checkpoint writer screens.
  try {
    screen(read.head!);
  } catch (e) {
    if (e instanceof InvalidCheckpoint) {
      throw new InvalidDelta(`head.${e.path}`, e.detail, e.rule);
    }
    throw e;
  }
  return seal(body);
}

/**
 * The checkpoint `delta` makes from `base` (FORMAT.md §13.2).
 *
 * `base` is a valid checkpoint (as {@link decode} returns), `delta` one that
 * §13.1 accepts (its rules are checked again). Throws {@link InvalidDelta}
 * for `delta.session` (`head.session_id`) and `delta.base_trials`
 * (`base_trials`); then the new checkpoint is the head with each kept field
 * set to the base's value (unknown fields inside it included) and, when the
 * head has a `progress`, the base's trial entries before the head's. It must
 * pass the writer's size and weight limits, every rule of §7 and the
 * credential screen of §10 (as `encode` would write it), else a
 * `ResumeMismatch` with reason `checkpoint_shape` names the field in the new
 * checkpoint (`progress.trial_log[9].trial_idx`; no rule for a credential).
 * Neither argument is changed.
 */
export function applyDelta(base: Checkpoint, delta: CheckpointDelta): Checkpoint {
  checkDelta(delta);
  const head = delta.head!;
  if (head.sessionId !== base.sessionId) {
    throw new InvalidDelta(
      "head.session_id",
      `session ${JSON.stringify(head.sessionId)} is not the base's ${JSON.stringify(base.sessionId)}`,
      DeltaRule.SESSION,
    );
  }
  const baseTrials = base.progress?.trialLog.length ?? 0;
  if (delta.baseTrials !== BigInt(baseTrials)) {
    throw new InvalidDelta(
      "base_trials",
      `${delta.baseTrials} entries expected, the base's trial log has ${baseTrials}`,
      DeltaRule.BASE_TRIALS,
    );
  }
  const from = clone(CheckpointSchema, base) as unknown as Record<string, unknown>;
  const result = clone(CheckpointSchema, head);
  const out = result as unknown as Record<string, unknown>;
  for (const field of KEEPABLE) {
    if ((delta.kept & (1 << field.number)) !== 0) {
      out[field.localName] = from[field.localName];
    }
  }
  if (result.progress !== undefined) {
    const before = (from as unknown as Checkpoint).progress?.trialLog ?? [];
    result.progress.trialLog = [...before, ...result.progress.trialLog];
  }
  try {
    // In a reader's order: the writer's limits on the bytes, the rules of §7,
    // then the credential screen of §10, as the checkpoint writer refuses.
    checkBody(toBinary(CheckpointSchema, result));
    check(result);
    screen(result);
  } catch (e) {
    if (e instanceof InvalidCheckpoint) {
      throw new ResumeMismatch(result.sessionId || null, "checkpoint_shape", null, null, {
        field: e.path,
        detail: e.detail,
        rule: e.rule,
      });
    }
    throw e;
  }
  return result;
}

/**
 * The checkpoint `delta` makes from `base` after FORMAT.md §13.2 steps 1-2
 * only (`delta.session`, `delta.base_trials`: {@link InvalidDelta}), not
 * checked by §7: for a reader that applies many deltas in a row and checks
 * only the checkpoint they end with (docs/store-file.md §9.2).
 *
 * Both arguments are consumed: the result is `delta.head` itself, given the
 * base's kept fields and, when it has a `progress`, the base's trial entries
 * before its own (the base's array, appended to in place); a head without
 * `progress` leaves none. Neither may be used afterwards. `delta` must be one
 * that {@link decodeDelta} returned (its rules are not checked again).
 */
export function mergeUnchecked(base: Checkpoint, delta: CheckpointDelta): Checkpoint {
  const head = delta.head;
  if (head === undefined) {
    throw new InvalidDelta("head", "is required", DeltaRule.HEAD);
  }
  if (head.sessionId !== base.sessionId) {
    throw new InvalidDelta(
      "head.session_id",
      `session ${JSON.stringify(head.sessionId)} is not the base's ${JSON.stringify(base.sessionId)}`,
      DeltaRule.SESSION,
    );
  }
  const baseTrials = base.progress?.trialLog.length ?? 0;
  if (delta.baseTrials !== BigInt(baseTrials)) {
    throw new InvalidDelta(
      "base_trials",
      `${delta.baseTrials} entries expected, the base's trial log has ${baseTrials}`,
      DeltaRule.BASE_TRIALS,
    );
  }
  const from = base as unknown as Record<string, unknown>;
  const out = head as unknown as Record<string, unknown>;
  for (const field of KEEPABLE) {
    if ((delta.kept & (1 << field.number)) !== 0) {
      out[field.localName] = from[field.localName];
    }
  }
  if (head.progress !== undefined && base.progress !== undefined) {
    const log = base.progress.trialLog;
    for (const entry of head.progress.trialLog) {
      log.push(entry);
    }
    head.progress.trialLog = log;
  }
  delta.head = undefined;
  return head;
}

/**
 * The delta of a commit of `next` over `base` (FORMAT.md §13.2, "Writing a
 * delta"), at store generation `baseGeneration` of the base: the head is
 * `next` without the base's trial entries and without every allowed field
 * that `next` holds with the same bytes as the base, which are kept.
 * `applyDelta(base, makeDelta(base, next, g))` is `next`.
 *
 * Throws a `CheckpointError` when `next` is not of the base's session or its
 * trial log does not start with the base's entries, byte for byte.
 */
export function makeDelta(base: Checkpoint, next: Checkpoint, baseGeneration: bigint): CheckpointDelta {
  if (next.sessionId !== base.sessionId) {
    throw new CheckpointError(
      `the new checkpoint's session ${JSON.stringify(next.sessionId)} is not the base's ${JSON.stringify(base.sessionId)}`,
    );
  }
  const baseLog = base.progress?.trialLog ?? [];
  const nextLog = next.progress?.trialLog ?? [];
  const prefixOk =
    nextLog.length >= baseLog.length &&
    baseLog.every((entry, i) => sameBytes(entryBytes(entry), entryBytes(nextLog[i]!)));
  if (!prefixOk) {
    throw new CheckpointError("the new checkpoint's trial log does not extend the base's");
  }
  const head = clone(CheckpointSchema, next);
  if (head.progress !== undefined) {
    head.progress.trialLog = head.progress.trialLog.slice(baseLog.length);
  }
  let kept = 0;
  const h = head as unknown as Record<string, unknown>;
  for (const field of KEEPABLE) {
    if (isFieldSet(next, field) && sameBytes(fieldBytes(next, field), fieldBytes(base, field))) {
      kept |= 1 << field.number;
      clearField(h, field);
    }
  }
  return create(CheckpointDeltaSchema, {
    format: DELTA_FORMAT_ID,
    baseGeneration,
    baseTrials: BigInt(baseLog.length),
    head,
    kept,
  });
}

// ---------------------------------------------------------------------------

/** Parse a body the grammar accepted. */
function parseBody(body: Uint8Array): CheckpointDelta {
  try {
    return parse(CheckpointDeltaSchema, body);
  } catch (e) {
    // The grammar accepted the body, so the runtime cannot fail on it; if it
    // does, that is a bug of this library, refused rather than let through.
    throw new InvalidDelta(
      INPUT,
      `the protobuf runtime failed on bytes the grammar accepted (${e instanceof Error ? e.message : String(e)})`,
      Rule.WIRE_TRUNCATED,
    );
  }
}

/** The rules of §13.1, in order, on a delta whose bytes the grammar accepted. */
function checkDelta(delta: CheckpointDelta): void {
  if (typeof delta.format !== "string" || !DELTA_FORMAT_RE.test(delta.format)) {
    const shown = typeof delta.format === "string" ? JSON.stringify(delta.format.slice(0, 80)) : typeof delta.format;
    throw new InvalidDelta(
      "format",
      delta.format === "" ? "missing delta format identifier" : `wrong delta format identifier ${shown}`,
      DeltaRule.FORMAT,
    );
  }
  if (delta.baseGeneration === 0n) {
    throw new InvalidDelta("base_generation", "the base generation must be at least 1", DeltaRule.BASE_GENERATION);
  }
  const head = delta.head;
  if (head === undefined) {
    throw new InvalidDelta("head", "is required", DeltaRule.HEAD);
  }
  const outside = (delta.kept & ~KEPT_MASK) >>> 0;
  if (outside !== 0) {
    throw new InvalidDelta(
      "kept",
      `bits 0x${outside.toString(16).toUpperCase()} set outside the mask 0xFCF8`,
      DeltaRule.KEPT,
    );
  }
  for (const field of KEEPABLE) {
    if ((delta.kept & (1 << field.number)) !== 0 && isFieldSet(head, field)) {
      throw new InvalidDelta(
        `head.${field.name}`,
        `field ${field.number} is kept from the base and held by the head`,
        DeltaRule.KEPT_IN_HEAD,
      );
    }
  }
}

/** A grammar refusal (an InvalidCheckpoint of grammar.ts) as a delta's. */
function asDelta(e: unknown): unknown {
  if (e instanceof InvalidCheckpoint) {
    return new InvalidDelta(e.path, e.detail, e.rule);
  }
  return e;
}

/** The delta's own scalars of a hand-built message: the JavaScript types and ranges its fields can encode. */
function checkScalars(delta: CheckpointDelta): void {
  if (typeof delta.format !== "string") {
    throw new InvalidDelta("format", "must be a string", null);
  }
  for (const [value, path] of [
    [delta.baseGeneration, "base_generation"],
    [delta.baseTrials, "base_trials"],
  ] as const) {
    if (typeof value !== "bigint") {
      throw new InvalidDelta(path, "must be a bigint", null);
    }
    if (value < 0n || value > UINT64_MAX) {
      throw new InvalidDelta(path, "must be in [0, 2^64) (a uint64)", Rule.WIRE_RANGE);
    }
  }
  if (!Number.isInteger(delta.kept)) {
    throw new InvalidDelta("kept", "must be an integer number", null);
  }
  if (delta.kept < 0 || delta.kept > 0xffffffff) {
    throw new InvalidDelta("kept", "must be in [0, 2^32) (a uint32)", Rule.WIRE_RANGE);
  }
}

/**
 * Refuse a string with a lone surrogate anywhere in a hand-built message
 * (it has no UTF-8 form: `wire.utf8`, naming the field), which the runtime
 * would otherwise write as U+FFFD.
 */
function checkTexts(desc: DescMessage, msg: Record<string, unknown>, at: string): void {
  const join = (name: string) => (at === "" ? name : `${at}.${name}`);
  for (const field of desc.fields) {
    let value: unknown;
    if (field.oneof !== undefined) {
      const o = msg[field.oneof.localName] as { case?: string; value?: unknown } | undefined;
      if (o?.case !== field.localName) {
        continue;
      }
      value = o.value;
    } else {
      value = msg[field.localName];
    }
    if (value === undefined) {
      continue;
    }
    const path = join(field.name);
    if (field.fieldKind === "scalar" && typeof value === "string" && !isWellFormed(value)) {
      throw new InvalidDelta(path, "string has a lone surrogate: no UTF-8 form", Rule.WIRE_UTF8);
    }
    if (field.fieldKind === "message" && typeof value === "object" && value !== null) {
      checkTexts(field.message, value as Record<string, unknown>, path);
    }
    if (field.fieldKind === "list" && field.listKind === "message" && Array.isArray(value)) {
      value.forEach((item, i) => {
        if (typeof item === "object" && item !== null) {
          checkTexts(field.message, item as Record<string, unknown>, `${path}[${i}]`);
        }
      });
    }
  }
}

function entryBytes(entry: NonNullable<Checkpoint["progress"]>["trialLog"][number]): Uint8Array {
  return toBinary(CheckpointSchema, create(CheckpointSchema, { progress: { trialLog: [entry] } }));
}

/** The bytes of one field of `cp` alone (nothing when it is not set). */
function fieldBytes(cp: Checkpoint, field: DescField): Uint8Array {
  const only = create(CheckpointSchema) as unknown as Record<string, unknown>;
  only[field.localName] = (cp as unknown as Record<string, unknown>)[field.localName];
  return toBinary(CheckpointSchema, only as unknown as Checkpoint);
}

function clearField(msg: Record<string, unknown>, field: DescField): void {
  const empty = create(CheckpointSchema) as unknown as Record<string, unknown>;
  msg[field.localName] = empty[field.localName];
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
