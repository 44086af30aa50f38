/**
 * Store files: the file in which the file store keeps the latest checkpoint
 * of one session (`<session_id>.dsxckpt`). docs/store-file.md in the
 * repository is the normative description.
 *
 * A store file is a 44-byte header (magic, frame version, flags, generation,
 * lengths and CRC32C checksums), a JSON summary of the checkpoint and the
 * canonical checkpoint bytes.
 *
 * - {@link readStoreFile} checks the frame and every checksum, decodes the
 *   checkpoint with every rule of {@link decode} and checks that the summary
 *   is the checkpoint's. Frame damage throws {@link CorruptStoreFile} naming
 *   its kind; an invalid checkpoint throws the {@link ResumeMismatch} of
 *   {@link decode}.
 * - {@link writeStoreFile} returns the exact bytes the Python FileStore
 *   writes for a checkpoint committed as a generation.
 */

import { decode, encode, statusName } from "./checkpoint.js";
import { CheckpointError, hex, InvalidCheckpoint, type ResumeMismatch } from "./errors.js";
import { Rule } from "./rules.js";
import type { Checkpoint } from "./gen/dsxir/optimizer_session/v1/checkpoint_pb.js";
import { crc32c, MAX_CHECKPOINT_BYTES } from "./grammar.js";
import { check } from "./validate.js";

/** The first 8 bytes of every store file: `"\x89dsxir\r\n"`. */
export const STORE_FILE_MAGIC: Uint8Array = Uint8Array.of(
  0x89, 0x64, 0x73, 0x78, 0x69, 0x72, 0x0d, 0x0a,
);
/** The only frame version read and written. */
export const STORE_FRAME_VERSION = 1;
/** The size of the header, in bytes. */
export const STORE_HEADER_SIZE = 44;
/** The largest summary a reader accepts (2^20 bytes). */
export const MAX_SUMMARY_BYTES = 1 << 20;
/** The largest body: the checkpoint size limit (2^28 bytes). */
export const MAX_BODY_BYTES = MAX_CHECKPOINT_BYTES;
/** The `"summary"` value of the summary layout. */
export const SUMMARY_VERSION = 1;

/** The frame check a damaged store file fails (docs/store-file.md §6), in the order checked. */
export type DamageKind =
  | "truncated"
  | "trailing_bytes"
  | "bad_magic"
  | "header_checksum"
  | "unsupported_version"
  | "unsupported_flags"
  | "over_limits"
  | "summary_checksum"
  | "body_checksum"
  | "summary_mismatch";

/** A damaged store file; the message reads `store_file: <kind>: <detail>`. */
export class CorruptStoreFile extends CheckpointError {
  readonly kind: DamageKind;
  readonly detail: string;

  constructor(kind: DamageKind, detail: string) {
    super(`store_file: ${kind}: ${detail}`);
    this.kind = kind;
    this.detail = detail;
  }
}

/** The values of a store file's summary (docs/store-file.md §3). */
export interface StoreSummary {
  sessionId: string;
  optimizer: string;
  /** running, paused, completed, failed or cancelled. */
  status: string;
  updatedAt: { seconds: bigint; nanos: number };
  /** null when the checkpoint has no best score (then bestTrialIdx is null too). */
  bestScore: number | null;
  bestTrialIdx: bigint | null;
  attempts: bigint;
  completed: bigint;
  errors: bigint;
  /** The length of the trial log. */
  trials: number;
}

/** A store file that passed every check of {@link readStoreFile}. */
export interface StoreFile {
  generation: bigint;
  summary: StoreSummary;
  checkpoint: Checkpoint;
}

/** The CRC-32C (Castagnoli) of `data`, an unsigned 32-bit integer; the same as the checkpoint trailer's. */
export { crc32c };

/**
 * Read a whole store file, checking it in the order of docs/store-file.md §5.
 *
 * Throws {@link CorruptStoreFile} for a damaged file, or the
 * {@link ResumeMismatch} (reason `checkpoint_shape`) of {@link decode} for a
 * body that is not a valid checkpoint.
 */
export function readStoreFile(data: Uint8Array): StoreFile {
  if (!(data instanceof Uint8Array)) {
    throw new TypeError("readStoreFile takes a Uint8Array");
  }
  const n = data.length;
  if (n < STORE_HEADER_SIZE) {
    throw new CorruptStoreFile("truncated", `${n} bytes, a header needs ${STORE_HEADER_SIZE}`);
  }
  if (!STORE_FILE_MAGIC.every((b, i) => data[i] === b)) {
    throw new CorruptStoreFile("bad_magic", "not a dsxir checkpoint store file (bad magic)");
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (crc32c(data.subarray(0, 40)) !== view.getUint32(40)) {
    throw new CorruptStoreFile("header_checksum", "header checksum mismatch (damaged file)");
  }
  const version = view.getUint16(8);
  if (version !== STORE_FRAME_VERSION) {
    throw new CorruptStoreFile("unsupported_version", `unsupported frame version ${version}`);
  }
  const flags = view.getUint16(10);
  if (flags !== 0) {
    const shown = flags.toString(16).padStart(4, "0");
    throw new CorruptStoreFile("unsupported_flags", `unsupported frame flags 0x${shown}`);
  }
  const generation = view.getBigUint64(12);
  const summaryLength = view.getUint32(20);
  const bodyLength = view.getBigUint64(24);
  if (summaryLength > MAX_SUMMARY_BYTES || bodyLength > BigInt(MAX_BODY_BYTES)) {
    throw new CorruptStoreFile(
      "over_limits",
      `summary length ${summaryLength} or body length ${bodyLength} is over the limits ` +
        `(${MAX_SUMMARY_BYTES}, ${MAX_BODY_BYTES})`,
    );
  }
  const total = STORE_HEADER_SIZE + summaryLength + Number(bodyLength);
  if (n !== total) {
    const kind = n < total ? "truncated" : "trailing_bytes";
    throw new CorruptStoreFile(kind, `file has ${n} bytes, its frame says ${total}`);
  }
  const summary = data.subarray(STORE_HEADER_SIZE, STORE_HEADER_SIZE + summaryLength);
  const body = data.subarray(STORE_HEADER_SIZE + summaryLength);
  if (crc32c(summary) !== view.getUint32(32)) {
    throw new CorruptStoreFile("summary_checksum", "summary checksum mismatch (damaged file)");
  }
  if (crc32c(body) !== view.getUint32(36)) {
    throw new CorruptStoreFile("body_checksum", "checkpoint checksum mismatch (damaged file)");
  }
  const cp = decode(body);
  const values = summaryOf(cp);
  const expected = summaryBytes(values);
  if (!sameBytes(summary, expected)) {
    throw new CorruptStoreFile(
      "summary_mismatch",
      `the summary is not the checkpoint's (${summary.length} bytes, expected ${expected.length})`,
    );
  }
  return { generation, summary: values, checkpoint: cp };
}

/**
 * The store file of `cp` committed as `generation` (0 to 2^64-1): byte for
 * byte what the Python FileStore writes.
 *
 * Throws {@link InvalidCheckpoint} for an invalid checkpoint or one whose
 * encoding is over {@link MAX_BODY_BYTES}, and a RangeError for a generation
 * out of range or a summary over {@link MAX_SUMMARY_BYTES}.
 */
export function writeStoreFile(generation: bigint | number, cp: Checkpoint): Uint8Array {
  const g =
    typeof generation === "number" && Number.isSafeInteger(generation) ? BigInt(generation) : generation;
  if (typeof g !== "bigint" || g < 0n || g >= 1n << 64n) {
    throw new RangeError(`generation must be an integer from 0 to 2^64-1, not ${String(generation)}`);
  }
  const body = encode(cp);
  if (body.length > MAX_BODY_BYTES) {
    const detail = `${body.length} bytes, over the limit of ${MAX_BODY_BYTES}`;
    throw new InvalidCheckpoint("<input>", detail, Rule.INPUT_TOO_LARGE);
  }
  const summary = summaryBytes(summaryOf(cp));
  if (summary.length > MAX_SUMMARY_BYTES) {
    throw new RangeError(`summary of ${summary.length} bytes is over ${MAX_SUMMARY_BYTES}`);
  }
  const out = new Uint8Array(STORE_HEADER_SIZE + summary.length + body.length);
  const view = new DataView(out.buffer);
  out.set(STORE_FILE_MAGIC, 0);
  view.setUint16(8, STORE_FRAME_VERSION);
  view.setUint16(10, 0);
  view.setBigUint64(12, g);
  view.setUint32(20, summary.length);
  view.setBigUint64(24, BigInt(body.length));
  view.setUint32(32, crc32c(summary));
  view.setUint32(36, crc32c(body));
  view.setUint32(40, crc32c(out.subarray(0, 40)));
  out.set(summary, STORE_HEADER_SIZE);
  out.set(body, STORE_HEADER_SIZE + summary.length);
  return out;
}

/**
 * The canonical summary of a valid checkpoint (docs/store-file.md §3): the
 * bytes of Python's `encode_summary`. Throws {@link InvalidCheckpoint} for an
 * invalid checkpoint.
 */
export function encodeSummary(cp: Checkpoint): Uint8Array {
  check(cp);
  return summaryBytes(summaryOf(cp));
}

function summaryOf(cp: Checkpoint): StoreSummary {
  const progress = cp.progress!;
  const stamp = cp.updatedAt!;
  const hasBest = progress.bestScore !== undefined;
  return {
    sessionId: cp.sessionId,
    optimizer: cp.optimizer,
    status: statusName(cp),
    updatedAt: { seconds: stamp.seconds, nanos: stamp.nanos },
    bestScore: hasBest ? progress.bestScore! : null,
    bestTrialIdx: progress.bestTrialIdx ?? null,
    attempts: progress.attempts,
    completed: progress.completed,
    errors: progress.errors,
    trials: progress.trialLog.length,
  };
}

function summaryBytes(s: StoreSummary): Uint8Array {
  const text =
    `{"attempts":${s.attempts}` +
    `,"best_score":${s.bestScore === null ? "null" : `"${floatBits(s.bestScore)}"`}` +
    `,"best_trial_idx":${s.bestTrialIdx === null ? "null" : s.bestTrialIdx}` +
    `,"completed":${s.completed}` +
    `,"errors":${s.errors}` +
    `,"optimizer":${jsonString(s.optimizer)}` +
    `,"session_id":${jsonString(s.sessionId)}` +
    `,"status":${jsonString(s.status)}` +
    `,"summary":${SUMMARY_VERSION}` +
    `,"trials":${s.trials}` +
    `,"updated_at":[${s.updatedAt.seconds},${s.updatedAt.nanos}]}`;
  return new TextEncoder().encode(text);
}

/** The 16 lowercase hex digits of the IEEE 754 bits of `x`, most significant first. */
function floatBits(x: number): string {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setFloat64(0, x);
  return hex(bytes);
}

const SHORT_ESCAPES: ReadonlyMap<number, string> = new Map([
  [0x22, '\\"'],
  [0x5c, "\\\\"],
  [0x08, "\\b"],
  [0x09, "\\t"],
  [0x0a, "\\n"],
  [0x0c, "\\f"],
  [0x0d, "\\r"],
]);

/**
 * `s` as a JSON string the way Python's `json.dumps(ensure_ascii=False)`
 * writes it: only `"`, `\` and characters below U+0020 are escaped (`\b \t
 * \n \f \r`, else `\u00xx` in lowercase); everything else is kept.
 */
function jsonString(s: string): string {
  let out = '"';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c !== 0x22 && c !== 0x5c) {
      continue;
    }
    out += s.slice(start, i) + (SHORT_ESCAPES.get(c) ?? "\\u" + c.toString(16).padStart(4, "0"));
    start = i + 1;
  }
  return out + s.slice(start) + '"';
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
