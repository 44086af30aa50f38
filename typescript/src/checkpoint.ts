/**
 * The checkpoint of an optimizer session: encode, decode, hash a trainset,
 * and the resume gate. FORMAT.md is the normative description of the bytes
 * and of every rule enforced here.
 *
 * - {@link encode} writes the canonical bytes and refuses
 *   ({@link InvalidCheckpoint}, naming the field) any checkpoint
 *   {@link decode} would refuse, and any checkpoint holding a credential
 *   (FORMAT.md §10) unless asked to redact it; {@link decode} does not screen.
 * - {@link decode} takes any bytes and returns a valid checkpoint or throws
 *   {@link ResumeMismatch} with reason `checkpoint_shape` and the offending
 *   field; nothing else.
 * - {@link checkResume} is the gate a resuming optimizer passes first.
 * - A session's `direction` (`Direction.HIGHER`, the default, or
 *   `Direction.LOWER`) says which scores are better; `recordTrial` tracks
 *   the best by it.
 */

import { createHash } from "node:crypto";
import { clone, toBinary } from "@bufbuild/protobuf";
import { type Checkpoint, CheckpointSchema } from "./gen/dsxir/optimizer_session/v1/checkpoint_pb.js";
import { redact, screen } from "./credentials.js";
import { AlreadyTerminal, InvalidCheckpoint, ResumeMismatch } from "./errors.js";
import { Rule, type RuleId } from "./rules.js";
import { type DirectionName, directionName, isTerminal, statusName } from "./status.js";
import { termBytes } from "./term.js";
import { checkBody, checkInput, seal } from "./grammar.js";
import { check } from "./validate.js";
import { parse } from "./wire.js";

export { directionName, isTerminal, statusName, type DirectionName } from "./status.js";

const TRAINSET_DOMAIN = new TextEncoder().encode("dsxir.trainset.v1\n");

/** Options of {@link encode}. */
export interface EncodeOptions {
  /**
   * Write `[redacted]` in place of each credential (FORMAT.md §10) instead of
   * refusing the checkpoint; `cp` itself is not changed.
   */
  redactSecrets?: boolean;
}

/**
 * The canonical bytes of `cp` (FORMAT.md §2): known fields in field-number
 * order, fields with presence written even when 0.0 / -0.0, unknown fields
 * (read from a newer minor) last in the order read, then the checksum
 * trailer (§2.1).
 *
 * Throws {@link InvalidCheckpoint} naming the field for a checkpoint that
 * {@link decode} would refuse, so no invalid bytes are ever written: the
 * rules of §1-§4, then the bytes written are checked as a reader checks them
 * (the size limit, trailer included, the grammar of §2.2 and the weight
 * limit of §2.4). Throws it as well for a checkpoint holding a credential
 * (FORMAT.md §10: a key that names one, a secret-shaped text) unless
 * `redactSecrets` is set.
 */
export function encode(cp: Checkpoint, options: EncodeOptions = {}): Uint8Array {
  check(cp);
  let body: Uint8Array;
  if (options.redactSecrets === true) {
    const copy = clone(CheckpointSchema, cp);
    redact(copy);
    body = toBinary(CheckpointSchema, copy);
  } else {
    screen(cp);
    body = toBinary(CheckpointSchema, cp);
  }
  // A hand-built message may hold what the runtime writes but the grammar
  // refuses (unknown fields out of place, say); refuse it as a reader would.
  checkBody(body);
  return seal(body);
}

/**
 * Read checkpoint bytes, trusting nothing about them.
 *
 * Returns a checkpoint that keeps every rule of FORMAT.md, or throws
 * {@link ResumeMismatch} with reason `checkpoint_shape` whose `field` names
 * the offending field (`<input>` for the size, the trailer, the checksum,
 * the weight, and a grammar rule broken by the top-level message) and `rule`
 * the rule it breaks, in the order of FORMAT.md §7. Unknown fields of a
 * newer minor version are kept and written back by {@link encode}.
 *
 * `bytes` must be a `Uint8Array` (a Node.js `Buffer` is one); any other value
 * (an `ArrayBuffer`, a `DataView`, another typed array, a string) is a
 * `TypeError`, not a refusal. Its length is `byteLength`, checked against the
 * size limit before anything else.
 */
export function decode(bytes: Uint8Array): Checkpoint {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`decode takes a Uint8Array, not ${describeInput(bytes)}`);
  }
  let body: Uint8Array;
  try {
    body = checkInput(bytes);
  } catch (e) {
    if (e instanceof InvalidCheckpoint) {
      throw shape(null, e.path, e.detail, e.rule);
    }
    throw e;
  }
  let cp: Checkpoint;
  try {
    cp = parse(CheckpointSchema, body);
  } catch (e) {
    // The grammar accepted the body, so the runtime cannot fail on it; if it
    // does, that is a bug of this library, refused rather than let through.
    throw shape(
      null,
      "<input>",
      `the protobuf runtime failed on bytes the grammar accepted (${e instanceof Error ? e.message : String(e)})`,
      Rule.WIRE_TRUNCATED,
    );
  }
  try {
    check(cp);
  } catch (e) {
    if (e instanceof InvalidCheckpoint) {
      throw shape(cp.sessionId || null, e.path, e.detail, e.rule);
    }
    throw e;
  }
  return cp;
}

function describeInput(value: unknown): string {
  if (value === null) {
    return "null";
  }
  if (typeof value === "object") {
    return (value as object).constructor?.name ?? "an object";
  }
  return typeof value;
}

function shape(sessionId: string | null, field: string, detail: string, rule: RuleId | null): ResumeMismatch {
  return new ResumeMismatch(sessionId, "checkpoint_shape", null, null, { field, detail, rule });
}

/**
 * SHA-256 fingerprint of an ordered trainset (FORMAT.md §6), 32 bytes.
 *
 * Each example is hashed as its canonical Term bytes (see `toTerm`),
 * length-framed, after a domain separator and the example count: map
 * insertion order does not matter; any change of value, type (`1n`, `1`,
 * `true`, `"1"`) or example order does. Maps and plain objects hash as maps.
 * Throws naming the path (`trainset[3]["meta"]`) for a value with no Term
 * form, NaN, a lone surrogate, a duplicate key or nesting deeper than 24.
 */
export function hashTrainset(examples: Iterable<unknown>): Uint8Array {
  const encoded: Uint8Array[] = [];
  let i = 0;
  for (const example of examples) {
    encoded.push(termBytes(example, `trainset[${i}]`));
    i++;
  }
  const h = createHash("sha256");
  h.update(TRAINSET_DOMAIN);
  h.update(u64be(encoded.length));
  for (const t of encoded) {
    h.update(u64be(t.length));
    h.update(t);
  }
  return new Uint8Array(h.digest());
}

function u64be(n: number): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), false);
  return out;
}

/** What a resuming caller expects of a checkpoint (see {@link checkResume}). */
export interface ResumeExpectation {
  /** The optimizer's name; must equal the checkpoint's. */
  optimizer: string;
  /** The sampler module and the blob version (or versions) the caller reads. */
  samplerFormat: readonly [module: string, version: number | Iterable<number>];
  /** The trainset the caller will run on; hashed per FORMAT.md §6. */
  trainset?: Iterable<unknown>;
  /** Or the hash of that trainset (32 bytes); not both. */
  trainsetHash?: Uint8Array;
  /** Which scores the caller prefers; must equal the checkpoint's direction when given. */
  direction?: DirectionName;
}

/**
 * Refuse to resume a session that cannot safely go on (FORMAT.md §8).
 *
 * Throws {@link AlreadyTerminal} for a completed, failed or cancelled
 * session, then {@link ResumeMismatch} with reason `optimizer`,
 * `sampler_format`, `sampler_version`, `trainset_hash` or `direction`. The
 * trainset is checked only when `trainset` or `trainsetHash` is given (not
 * both), the direction only when `direction` is given (a checkpoint whose
 * direction number the format does not define is then refused with reason
 * `checkpoint_shape`, field `direction`).
 */
export function checkResume(cp: Checkpoint, expect: ResumeExpectation): void {
  if (expect.trainset !== undefined && expect.trainsetHash !== undefined) {
    throw new TypeError("give trainset or trainsetHash, not both");
  }
  const sid = cp.sessionId;
  if (isTerminal(cp)) {
    throw new AlreadyTerminal(sid, statusName(cp));
  }
  if (cp.optimizer !== expect.optimizer) {
    throw new ResumeMismatch(sid, "optimizer", expect.optimizer, cp.optimizer);
  }
  const [module, accepted] = expect.samplerFormat;
  const got = cp.samplerFormat;
  if (got?.module !== module) {
    throw new ResumeMismatch(sid, "sampler_format", module, got?.module ?? null);
  }
  const single = typeof accepted === "number";
  const versions = new Set<number>(single ? [accepted] : accepted);
  if (!versions.has(got.version)) {
    const expected = single ? accepted : [...versions].sort((a, b) => a - b);
    throw new ResumeMismatch(sid, "sampler_version", expected, got.version);
  }
  const hash = expect.trainset !== undefined ? hashTrainset(expect.trainset) : expect.trainsetHash;
  if (hash !== undefined && !equalBytes(hash, cp.trainsetHash)) {
    throw new ResumeMismatch(sid, "trainset_hash", hash, cp.trainsetHash);
  }
  if (expect.direction !== undefined) {
    const direction = directionName(cp);
    if (direction === undefined) {
      throw shape(sid, "direction", `unknown direction ${String(cp.direction)}`, Rule.DIRECTION_KNOWN);
    }
    if (expect.direction !== direction) {
      throw new ResumeMismatch(sid, "direction", expect.direction, direction);
    }
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
